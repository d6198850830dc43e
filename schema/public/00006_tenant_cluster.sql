-- +goose Up
-- The PostgreSQL cluster that holds the tenant's schema, by its name in
-- TENANT_DATABASES; main is the catalog's own, where every tenant so far is.
ALTER TABLE tenants ADD COLUMN cluster text NOT NULL DEFAULT 'main'
    CHECK (cluster ~ '^[a-z][a-z0-9_]{0,30}$');

-- +goose Down
ALTER TABLE tenants DROP COLUMN cluster;

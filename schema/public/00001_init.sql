-- +goose Up
-- Tenants and the host names that route to them. A tenant row exists from
-- the moment provisioning starts; only state = 'active' tenants are served.
CREATE TABLE tenants (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schema_name    text        NOT NULL,
    display_name   text        NOT NULL,
    state          text        NOT NULL DEFAULT 'provisioning',
    -- Highest tenant migration applied to the schema: lets `saas migrate`
    -- find the tenants with work to do in one query.
    schema_version bigint      NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenants_schema_name_key UNIQUE (schema_name),
    CONSTRAINT tenants_schema_name_check CHECK (
        schema_name ~ '^[a-z][a-z0-9_]{2,62}$'
        AND schema_name <> 'public'
        AND schema_name <> 'information_schema'
        AND schema_name NOT LIKE 'pg\_%'),
    CONSTRAINT tenants_display_name_check CHECK (char_length(display_name) BETWEEN 1 AND 200),
    CONSTRAINT tenants_state_check CHECK (state IN ('provisioning', 'active', 'deleting'))
);

CREATE INDEX tenants_pending_migration_idx ON tenants (schema_version);

CREATE TABLE domains (
    domain     text        NOT NULL,
    tenant_id  bigint      NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    is_primary boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT domains_pkey PRIMARY KEY (domain),
    CONSTRAINT domains_domain_check CHECK (domain = lower(domain) AND char_length(domain) BETWEEN 1 AND 253)
);

CREATE INDEX domains_tenant_id_idx ON domains (tenant_id);
CREATE UNIQUE INDEX domains_one_primary_idx ON domains (tenant_id) WHERE is_primary;

CREATE TABLE superusers (
    id            uuid        NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    email         text        NOT NULL,
    password_hash text        NOT NULL,
    is_active     boolean     NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT superusers_email_key UNIQUE (email),
    CONSTRAINT superusers_email_check CHECK (email = lower(email))
);

-- +goose Down
DROP TABLE superusers;
DROP TABLE domains;
DROP TABLE tenants;

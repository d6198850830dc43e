-- +goose Up
-- One row per move of a tenant to another cluster (saas tenant move, or
-- POST /api/platform/tenants/{schema}/move), written by the mover as it
-- goes, so that any API process can say how a move is doing.
CREATE TABLE tenant_moves (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schema_name   text NOT NULL,
    from_cluster  text NOT NULL,
    to_cluster    text NOT NULL,
    state         text NOT NULL DEFAULT 'pending' CHECK (state IN
                  ('pending', 'copying', 'streaming', 'pausing', 'switching', 'cleaning', 'done', 'failed')),
    rows_copied   bigint NOT NULL DEFAULT 0,
    tables_copied integer NOT NULL DEFAULT 0,
    tables        integer NOT NULL DEFAULT 0,
    started_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    error         text,
    copy_ms       bigint,
    pause_ms      double precision,
    -- what the clean-up after a done switch left behind
    cleanup_error text
);
CREATE INDEX tenant_moves_schema_idx ON tenant_moves (schema_name, id DESC);

-- +goose Down
DROP TABLE tenant_moves;

-- +goose Up
-- One row per committed outbox write, in any tenant: how the relay finds the
-- tenants with pending events without looking at every schema. Rows are
-- inserted by the trigger below and deleted by the relay once the tenant's
-- events up to them are published.
CREATE TABLE outbox_pending (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schema_name text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX outbox_pending_schema_name_idx ON outbox_pending (schema_name, id);

-- Fired after each statement that inserts into a tenant's outbox. The NOTIFY
-- is delivered at commit and wakes the relays at once; the row is what the
-- relays' periodic sweep finds if a notification was lost.
-- +goose StatementBegin
CREATE FUNCTION saas_outbox_enqueue() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.outbox_pending (schema_name) VALUES (TG_TABLE_SCHEMA);
    PERFORM pg_notify('saas_outbox', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION saas_outbox_enqueue();
DROP TABLE outbox_pending;

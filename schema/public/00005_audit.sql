-- +goose Up
-- The platform's audit trail: tenants, domains and superusers. Same shape
-- as each tenant's audit_log.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_kind  text NOT NULL CHECK (actor_kind IN ('user', 'superuser', 'cli', 'system')),
    actor_id    text NOT NULL DEFAULT '',
    actor_email text NOT NULL DEFAULT '',
    action      text NOT NULL,
    target_type text NOT NULL,
    target_id   text NOT NULL,
    changes     jsonb NOT NULL DEFAULT '{}',
    request_id  text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_target ON audit_log (target_type, target_id, id);
CREATE INDEX audit_log_actor ON audit_log (actor_id, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_at ON audit_log (at);

-- Entries are never updated (retention deletes whole rows); shared by every
-- tenant's audit_log.
-- +goose StatementBegin
CREATE FUNCTION public.audit_log_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are never updated';
END $$;
-- +goose StatementEnd
CREATE TRIGGER audit_log_immutable BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION public.audit_log_immutable();

-- +goose Down
DROP TABLE audit_log;
DROP FUNCTION public.audit_log_immutable();

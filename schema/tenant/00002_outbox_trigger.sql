-- +goose Up
CREATE TRIGGER outbox_enqueue AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION public.saas_outbox_enqueue();

-- +goose Down
DROP TRIGGER outbox_enqueue ON outbox;

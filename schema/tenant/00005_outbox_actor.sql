-- +goose Up
-- Who caused an event (DESIGN.md section 11: events on the stream carry the
-- actor): the audit actor {"kind", "id", "email"}, written with the outbox
-- row and published in the envelope. NULL for rows written before.
ALTER TABLE outbox ADD COLUMN actor jsonb;

-- +goose Down
ALTER TABLE outbox DROP COLUMN actor;

-- +goose Up
-- A superuser's token generation, as users.token_generation in each tenant:
-- a password reset adds one and revokes every platform token issued before.
ALTER TABLE superusers ADD COLUMN token_generation bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE superusers DROP COLUMN token_generation;

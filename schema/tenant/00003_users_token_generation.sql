-- +goose Up
-- A user's token generation: every password change or reset adds one, and
-- a token issued at an older generation is refused on its next request.
-- A counter rather than a time: JWT times are whole seconds, a counter has
-- no same-second ambiguity. Existing tokens carry no generation (0), the
-- value every existing user starts at, so they stay valid.
ALTER TABLE users ADD COLUMN token_generation bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE users DROP COLUMN token_generation;

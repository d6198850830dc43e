-- +goose Up
-- Every statement here runs with search_path set to the tenant's schema
-- alone, so the names below land in that schema.
CREATE TABLE users (
    id            uuid        NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    email         text        NOT NULL,
    password_hash text        NOT NULL,
    is_staff      boolean     NOT NULL DEFAULT false,
    is_active     boolean     NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_email_check CHECK (email = lower(email))
);

CREATE TABLE products (
    id          uuid          NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    sku         text          NOT NULL,
    name        text          NOT NULL,
    description text          NOT NULL DEFAULT '',
    price       numeric(14,2) NOT NULL,
    currency    char(3)       NOT NULL,
    stock       integer       NOT NULL DEFAULT 0,
    version     bigint        NOT NULL DEFAULT 1,
    created_at  timestamptz   NOT NULL DEFAULT now(),
    updated_at  timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT products_sku_key UNIQUE (sku),
    CONSTRAINT products_price_check CHECK (price >= 0),
    CONSTRAINT products_stock_check CHECK (stock >= 0),
    CONSTRAINT products_version_check CHECK (version >= 1)
);

-- Keyset pagination orders by (created_at, id) and (name, id).
CREATE INDEX products_created_at_id_idx ON products (created_at, id);
CREATE INDEX products_name_id_idx ON products (name, id);

-- The transactional outbox: a row is written in the same transaction as the
-- product change it describes, and published by the relay afterwards.
CREATE TABLE outbox (
    id                bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id          uuid        NOT NULL,
    event_type        text        NOT NULL,
    aggregate_id      uuid        NOT NULL,
    aggregate_version bigint      NOT NULL,
    payload           jsonb       NOT NULL,
    request_id        text        NOT NULL DEFAULT '',
    occurred_at       timestamptz NOT NULL DEFAULT now(),
    published_at      timestamptz,
    CONSTRAINT outbox_event_id_key UNIQUE (event_id)
);

CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;

CREATE TABLE notifications (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id   uuid        NOT NULL,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       text        NOT NULL,
    title      text        NOT NULL,
    data       jsonb       NOT NULL DEFAULT '{}',
    read_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notifications_event_user_key UNIQUE (event_id, user_id)
);

CREATE INDEX notifications_user_id_id_idx ON notifications (user_id, id DESC);

-- +goose Down
DROP TABLE notifications;
DROP TABLE outbox;
DROP TABLE products;
DROP TABLE users;

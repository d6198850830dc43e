-- +goose Up
-- A notification row made cheaper to write (the notifier writes one per
-- staff user per event: 1,000 a product for a tenant with 1,000 staff).
--
-- Exactly-once moves from a unique (event_id, user_id) entry per row to
-- one row per event written: the notifier, holding the notifications
-- table's lock, records the event with the id range of its rows in the
-- same transaction, and a redelivered event reads those rows back by
-- primary key. first_id and last_id are NULL for an event that had no
-- recipient.
CREATE TABLE notification_events (
    event_id uuid   NOT NULL PRIMARY KEY,
    first_id bigint,
    last_id  bigint
);

INSERT INTO notification_events (event_id, first_id, last_id)
SELECT event_id, min(id), max(id) FROM notifications GROUP BY event_id;

-- The foreign key's check locked each recipient's users row, one probe
-- per notification. The notifier takes the recipients from users in the
-- same statement, and deleting a user deletes their notifications in the
-- same transaction (postgres.DB.DeleteUser), which is what ON DELETE
-- CASCADE did. IF EXISTS: this migration can be taken back by dropping
-- notification_events alone and applied again.
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_user_id_fkey;
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_event_user_key;

-- +goose Down
DELETE FROM notifications n WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = n.user_id);
ALTER TABLE notifications ADD CONSTRAINT notifications_event_user_key UNIQUE (event_id, user_id);
ALTER TABLE notifications ADD CONSTRAINT notifications_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
DROP TABLE notification_events;

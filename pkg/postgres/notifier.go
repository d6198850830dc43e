package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/domain"
)

// ErrNoSchema is returned when a tenant's schema does not exist (any more):
// the tenant was deleted after the event was written.
var ErrNoSchema = domain.Errorf(domain.ENOTFOUND, "tenant schema not found")

// EventNotification is a notification about one event, written once per
// recipient.
type EventNotification struct {
	EventID string // the event's id (a UUID); with the user id, the row's key
	Kind    string
	Title   string
	Data    json.RawMessage // a JSON object
}

// NotifyActiveStaff writes n for every active staff user of the tenant, in
// one statement that skips the users who already have it, and returns every
// notification of the event in id order: the rows inserted now and those
// an earlier delivery of the same event inserted. So a handler that crashed
// after the insert and before pushing pushes them all the next time.
//
// Errors: ErrNoSchema when the tenant's schema is gone; EINVALID when the
// event id is not a UUID or Data is not JSON; EUNAVAILABLE when the
// database is down. Cost: one INSERT ... SELECT over the users table and
// one index scan of notifications_event_user_key, under a lock that
// serializes the tenant's notification writers.
func (db *DB) NotifyActiveStaff(ctx context.Context, schemaName string, n EventNotification) ([]domain.Notification, error) {
	if _, err := uuid.Parse(n.EventID); err != nil {
		return nil, &domain.Error{Code: domain.EINVALID, Message: "invalid event id", Details: map[string]string{"event_id": "must be a UUID"}}
	}
	if !json.Valid(n.Data) {
		return nil, &domain.Error{Code: domain.EINVALID, Message: "invalid notification data", Details: map[string]string{"data": "must be JSON"}}
	}
	var out []domain.Notification
	err := db.InTenant(ctx, schemaName, func(tx pgx.Tx) error {
		// Writers of one tenant's notifications go one at a time, so ids
		// commit in id order: a reader that asks for "id > the last one I
		// saw" (a reconnecting WebSocket) never skips a row that commits
		// after a greater one. Readers are not blocked by this lock.
		if _, err := tx.Exec(ctx, `LOCK TABLE notifications IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx,
			`INSERT INTO notifications (event_id, user_id, kind, title, data)
			 SELECT $1::uuid, u.id, $2::text, $3::text, $4::jsonb FROM users u WHERE u.is_staff AND u.is_active
			 ON CONFLICT (event_id, user_id) DO NOTHING`,
			n.EventID, n.Kind, n.Title, string(n.Data)); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+notificationColumns+` FROM notifications WHERE event_id = $1 ORDER BY id`, n.EventID)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Notification, error) { return scanNotification(r) })
		return err
	})
	if HasCode(err, "42P01") { // undefined_table: the schema, or its tables, are gone
		if gone, gerr := db.schemaGone(ctx, schemaName); gerr == nil && gone {
			return nil, ErrNoSchema
		}
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: notify active staff: %w", err)
	}
	return out, nil
}

func (db *DB) schemaGone(ctx context.Context, schemaName string) (bool, error) {
	on, _, err := db.ForTenant(ctx, schemaName)
	if err != nil {
		return false, err
	}
	var exists bool
	err = on.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schemaName).Scan(&exists)
	return !exists, Translate(err)
}

// NotificationsAfter returns up to limit (1..100) of userID's notifications
// whose id is greater than after, in id order: what a reconnecting client
// missed. Only userID's rows are ever read, whatever after is. Errors:
// EINVALID naming limit; a userID that is not a UUID has no notifications.
// Cost: one range scan of notifications_user_id_id_idx.
func (db *DB) NotificationsAfter(ctx context.Context, schemaName, userID string, after int64, limit int) ([]domain.Notification, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	if _, err := uuid.Parse(userID); err != nil {
		return nil, nil
	}
	var out []domain.Notification
	err := db.InTenant(ctx, schemaName, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx,
			`SELECT `+notificationColumns+` FROM notifications WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
			userID, after, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Notification, error) { return scanNotification(r) })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: notifications after: %w", err)
	}
	return out, nil
}

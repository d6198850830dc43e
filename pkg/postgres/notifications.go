package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/domain"
)

const notificationColumns = `id, event_id, user_id, kind, title, data, read_at, created_at`

func scanNotification(row pgx.Row) (domain.Notification, error) {
	var (
		n    domain.Notification
		data []byte
	)
	err := row.Scan(&n.ID, &n.EventID, &n.UserID, &n.Kind, &n.Title, &data, &n.ReadAt, &n.CreatedAt)
	n.Data = data
	return n, err
}

// NotificationQuery selects a page of a tenant's notifications, newest
// (highest id) first.
type NotificationQuery struct {
	// UserID keeps one user's notifications; "" keeps every user's.
	UserID string
	// Unread keeps the notifications not read yet.
	Unread bool
	// Limit is the page size, 1..100.
	Limit int
	// Cursor is "" for the first page, else a next cursor of an earlier page.
	Cursor string
}

var errNotificationNotFound = domain.Errorf(domain.ENOTFOUND, "notification not found")

// ListNotifications returns one page of the tenant's notifications that
// match q, newest first (keyset pagination on id), and the cursor of the
// next page ("" at the end). Errors: EINVALID naming limit, cursor or
// user_id. A user's page is one range scan of notifications_user_id_id_idx.
func (db *DB) ListNotifications(ctx context.Context, schemaName string, q NotificationQuery) ([]domain.Notification, string, error) {
	if err := checkLimit(q.Limit); err != nil {
		return nil, "", err
	}
	// The statement is built from fixed fragments only; every value is a
	// parameter.
	sql := `SELECT ` + notificationColumns + ` FROM notifications WHERE true`
	args := []any{q.Limit + 1}
	if q.UserID != "" {
		if _, err := parseUUID(q.UserID); err != nil {
			return nil, "", &domain.Error{Code: domain.EINVALID, Message: "invalid user_id", Details: map[string]string{"user_id": "must be a user id"}}
		}
		args = append(args, q.UserID)
		sql += ` AND user_id = $` + strconv.Itoa(len(args))
	}
	if q.Cursor != "" {
		after, err := decodeIDCursor(q.Cursor)
		if err != nil {
			return nil, "", err
		}
		args = append(args, after)
		sql += ` AND id < $` + strconv.Itoa(len(args))
	}
	if q.Unread {
		sql += ` AND read_at IS NULL`
	}
	sql += ` ORDER BY id DESC LIMIT $1`

	var out []domain.Notification
	err := db.InTenant(ctx, schemaName, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Notification, error) { return scanNotification(r) })
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list notifications: %w", err)
	}
	next := ""
	if len(out) > q.Limit {
		out = out[:q.Limit]
		next = encodeIDCursor(out[len(out)-1].ID)
	}
	return out, next, nil
}

// MarkNotificationRead sets read_at on a notification of userID and returns
// it. It is idempotent: a notification read before keeps its first read_at.
// Errors: ENOTFOUND when the notification does not exist or is another
// user's (the two are not told apart).
func (db *DB) MarkNotificationRead(ctx context.Context, schemaName, userID string, id int64) (domain.Notification, error) {
	if _, err := uuid.Parse(userID); err != nil {
		return domain.Notification{}, errNotificationNotFound
	}
	var n domain.Notification
	err := db.InTenant(ctx, schemaName, func(tx pgx.Tx) (err error) {
		n, err = scanNotification(tx.QueryRow(ctx,
			`UPDATE notifications SET read_at = coalesce(read_at, now())
			 WHERE id = $1 AND user_id = $2 RETURNING `+notificationColumns, id, userID))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Notification{}, errNotificationNotFound
	}
	if err != nil {
		return domain.Notification{}, fmt.Errorf("postgres: mark notification read: %w", err)
	}
	return n, nil
}

package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

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

// NotifyActiveStaff writes n for every active staff user of the tenant;
// see NotifyActiveStaffMany, of which it is the one-event case.
func (db *DB) NotifyActiveStaff(ctx context.Context, schemaName string, n EventNotification) ([]domain.Notification, error) {
	return db.NotifyActiveStaffMany(ctx, schemaName, []EventNotification{n})
}

// NotifyActiveStaffMany writes each of ns for every active staff user of
// the tenant, in one transaction and one statement, and returns every
// notification of those events in id order: the rows inserted now and,
// for an event an earlier delivery wrote, that delivery's rows, as stored
// (recipients are fixed when an event is first written). So a handler
// that crashed after the insert and before pushing pushes them all the
// next time. Ids follow the order of ns; an event id given twice is
// written once.
//
// Errors: ErrNoSchema when the tenant's schema is gone; EINVALID when an
// event id is not a UUID or a Data is not JSON; EUNAVAILABLE when the
// database is down, or when another writer of the tenant's notifications
// held the lock past the tenant's lock_timeout. Cost: one round trip: an
// INSERT ... SELECT over the users table per event, returning the new rows'
// keys (the rest is the caller's), with two index entries a row (the
// primary key and the user's listing index) and no foreign-key check;
// one notification_events row per event, probed first, its id range read
// back by primary key for the events written before; under a lock that
// serializes the tenant's notification writers.
func (db *DB) NotifyActiveStaffMany(ctx context.Context, schemaName string, ns []EventNotification) ([]domain.Notification, error) {
	var (
		ids, kinds, titles, datas []string
		byID                      = make(map[string]EventNotification, len(ns))
	)
	for _, n := range ns {
		u, err := uuid.Parse(n.EventID)
		if err != nil {
			return nil, &domain.Error{Code: domain.EINVALID, Message: "invalid event id", Details: map[string]string{"event_id": "must be a UUID"}}
		}
		if !json.Valid(n.Data) {
			return nil, &domain.Error{Code: domain.EINVALID, Message: "invalid notification data", Details: map[string]string{"data": "must be JSON"}}
		}
		// PostgreSQL spells a uuid one way; the rows come back that way.
		n.EventID = u.String()
		if _, dup := byID[n.EventID]; dup {
			continue
		}
		byID[n.EventID] = n
		ids, kinds, titles, datas = append(ids, n.EventID), append(kinds, n.Kind), append(titles, n.Title), append(datas, string(n.Data))
	}
	if len(ids) == 0 {
		return nil, nil
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
		// The statement's snapshot does not see what ins inserts, so seen
		// holds only the events of an earlier delivery (recorded with
		// their rows, under this lock, in one transaction), whose rows
		// come back by primary key as they are stored; the other events
		// get their rows now, each recorded in notification_events with
		// the range of its new ids. No other writer records an event, so
		// the record's primary key never conflicts; if it did, the
		// statement would fail rather than write an event twice. New rows
		// come back without the columns the caller gave (kind, title,
		// data), which it fills in.
		rows, err := tx.Query(ctx,
			`WITH e AS (
			   SELECT x.event_id::uuid AS event_id, x.kind, x.title, x.data::jsonb AS data, x.ord
			   FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS x(event_id, kind, title, data, ord)
			 ), seen AS (
			   SELECT ne.event_id, ne.first_id, ne.last_id FROM notification_events ne
			   WHERE ne.event_id IN (SELECT event_id FROM e)
			 ), fresh AS (
			   SELECT * FROM e WHERE event_id NOT IN (SELECT event_id FROM seen)
			 ), ins AS (
			   INSERT INTO notifications (event_id, user_id, kind, title, data)
			   SELECT f.event_id, u.id, f.kind, f.title, f.data FROM fresh f CROSS JOIN users u
			   WHERE u.is_staff AND u.is_active
			   ORDER BY f.ord, u.id
			   RETURNING id, event_id, user_id, created_at
			 ), rec AS (
			   INSERT INTO notification_events (event_id, first_id, last_id)
			   SELECT f.event_id, min(ins.id), max(ins.id) FROM fresh f LEFT JOIN ins ON ins.event_id = f.event_id
			   GROUP BY f.event_id
			 )
			 SELECT n.id, n.event_id, n.user_id, n.created_at, n.kind, n.title, n.data, n.read_at, true
			 FROM seen JOIN notifications n ON n.id BETWEEN seen.first_id AND seen.last_id AND n.event_id = seen.event_id
			 UNION ALL
			 SELECT id, event_id, user_id, created_at, NULL::text, NULL::text, NULL::jsonb, NULL::timestamptz, false FROM ins`,
			ids, kinds, titles, datas)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Notification, error) {
			var (
				n           domain.Notification
				kind, title *string
				data        []byte
				old         bool
			)
			if err := r.Scan(&n.ID, &n.EventID, &n.UserID, &n.CreatedAt, &kind, &title, &data, &n.ReadAt, &old); err != nil {
				return n, err
			}
			if old {
				n.Kind, n.Title, n.Data = *kind, *title, data
				return n, nil
			}
			ev := byID[n.EventID]
			n.Kind, n.Title, n.Data = ev.Kind, ev.Title, ev.Data
			return n, nil
		})
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
	slices.SortFunc(out, func(a, b domain.Notification) int { return cmp.Compare(a.ID, b.ID) })
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

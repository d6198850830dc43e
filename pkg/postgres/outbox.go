package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/domain"
)

// OutboxRecord is one row of a tenant's outbox as a use case built it. The
// store writes it as it is: what an event means (its type, its payload's
// shape) is the business of the use case and the events package, never of
// this one.
type OutboxRecord struct {
	EventID          string
	EventType        string
	AggregateID      string
	AggregateVersion int64
	Payload          []byte // JSON
	RequestID        string
	// Actor is who caused the event; a zero Actor is stored as NULL.
	Actor audit.Actor
}

// OutboxFunc builds the outbox row of a product change from the product as
// the change left it (for a delete, the row as it was), inside the change's
// transaction.
type OutboxFunc func(p domain.Product) (OutboxRecord, error)

// insertOutbox writes r into the outbox of the transaction's tenant. The
// outbox trigger then marks the tenant pending and notifies the relay.
func insertOutbox(ctx context.Context, tx pgx.Tx, r OutboxRecord) error {
	sql, args, err := outboxInsert(r)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("insert outbox: %w", err)
	}
	return nil
}

// outboxInsert returns the statement that writes r, for insertOutbox or a
// pipelined transaction's batch.
//
// The payload goes as json.RawMessage under a jsonb cast: a bare []byte
// would go as bytea wherever pgx does not ask the server for the column's
// type (PoolTransaction's exec mode), and reach the column as "\x7b...".
func outboxInsert(r OutboxRecord) (string, []any, error) {
	var actor *string // NULL, or JSON text under a jsonb cast (as the payload)
	if r.Actor != (audit.Actor{}) {
		b, err := json.Marshal(r.Actor)
		if err != nil {
			return "", nil, fmt.Errorf("encode outbox actor: %w", err)
		}
		s := string(b)
		actor = &s
	}
	return `INSERT INTO outbox (event_id, event_type, aggregate_id, aggregate_version, payload, request_id, actor)
		 VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7::jsonb)`,
		[]any{r.EventID, r.EventType, r.AggregateID, r.AggregateVersion, json.RawMessage(r.Payload), r.RequestID, actor}, nil
}

// writeOutbox builds the outbox row of p with build and writes it.
func writeOutbox(ctx context.Context, tx pgx.Tx, build OutboxFunc, p domain.Product) error {
	r, err := build(p)
	if err != nil {
		return fmt.Errorf("build outbox row: %w", err)
	}
	return insertOutbox(ctx, tx, r)
}

// OutboxChannel is the LISTEN/NOTIFY channel on which the commit of every
// outbox write names its tenant's schema (the trigger of the shared
// migrations sends it, with a marker row in public.outbox_pending).
//
// Marker and notification stay on the cluster that holds the tenant (see
// AttachClusters): DrainOutbox, ForgetPending and PendingTenants act on the
// cluster of the pool they are called on, never routed, so a relay calls
// them on each of Clusters() and listens on each cluster's DirectURL.
// OutboxBacklog and OldestPendingOutbox cover every cluster.
const OutboxChannel = "saas_outbox"

// OutboxRow is one pending row of a tenant's outbox, as DrainOutbox hands
// it over. ID is the tenant's write order; the other fields are the
// OutboxRecord the write stored, with the time it was written.
type OutboxRow struct {
	ID               int64
	EventID          string
	EventType        string
	AggregateID      string
	AggregateVersion int64
	Payload          []byte // JSON
	RequestID        string
	Actor            *audit.Actor // nil for a row written without one
	OccurredAt       time.Time
}

// ErrOutboxLocked is returned by DrainOutbox when another transaction holds
// the tenant's relay lock: another relay is draining that tenant.
var ErrOutboxLocked = errors.New("postgres: outbox drained by another relay")

// DrainOutbox takes one batch of a tenant's outbox on db's own cluster
// (not routed: the cluster whose marker was seen), in one transaction that
// holds the tenant's relay lock (a transaction-level advisory lock, so one
// caller at a time drains a tenant, and the lock goes with the commit or
// the rollback):
//
//  1. it reads the tenant's markers in public.outbox_pending first: each
//     belongs to a committed write whose outbox row step 2 is sure to see;
//  2. it reads up to limit outbox rows in id order (no cursor is kept: a
//     row that commits after one with a greater id is read all the same);
//  3. when there are rows, it calls publish with them, and only when
//     publish returns nil deletes them;
//  4. when fewer than limit rows were read, the outbox is now empty up to
//     the markers of step 1, and they are deleted too;
//
// then commits. It returns the number of rows read (and published). A
// failure of publish rolls everything back and comes back as it is, so
// the same rows are read again next time.
//
// Errors: ErrOutboxLocked when another transaction holds the tenant's
// lock; ErrNoSchema when the tenant's schema or outbox is gone (its
// markers are left to ForgetPending); EINVALID for a bad schema name;
// other database errors translated (see Translate). Cost: two index
// scans and, per batch, two deletes by id, in three round trips (begin
// with the lock and the markers, the rows, the deletes with commit).
func (db *DB) DrainOutbox(ctx context.Context, schemaName string, limit int, publish func([]OutboxRow) error) (int, error) {
	if err := domain.ValidateSchemaName(schemaName); err != nil {
		return 0, err
	}
	n, err := db.drainOutbox(ctx, schemaName, limit, publish)
	if cb := (*callbackError)(nil); errors.As(err, &cb) {
		return 0, cb.err
	}
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, ErrOutboxLocked):
		return 0, err
	case HasCode(err, "42P01") || HasCode(err, "3F000"): // undefined_table, invalid_schema_name
		return 0, fmt.Errorf("postgres: drain outbox of %s: %w: %w", schemaName, ErrNoSchema, err)
	}
	return 0, fmt.Errorf("postgres: drain outbox of %s: %w", schemaName, Translate(err))
}

// drainOutbox is DrainOutbox's transaction, pipelined: on a loaded
// machine each round trip waits for two processes to be scheduled, and the
// round trips, not the work, bound the relay. The statements still run one
// after the other, each with its own snapshot, so the markers are read
// before the rows. The transaction is begun and committed by statements of
// the pipelines, so a connection left in a transaction by a failure is
// rolled back here, or dropped by the pool on release.
func (db *DB) drainOutbox(ctx context.Context, schemaName string, limit int, publish func([]OutboxRow) error) (n int, err error) {
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	done := false
	defer func() {
		if !done && conn.Conn().PgConn().TxStatus() != 'I' {
			if _, rerr := conn.Exec(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
				// The pool drops a connection still in a transaction; this
				// one is closed for good measure.
				_ = conn.Conn().Close(context.WithoutCancel(ctx))
			}
		}
	}()

	var (
		locked  bool
		markers []int64
	)
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`SELECT pg_try_advisory_xact_lock(hashtextextended('saas.relay.' || $1, 0))`, schemaName).
		QueryRow(func(r pgx.Row) error { return r.Scan(&locked) })
	b.Queue(`SELECT id FROM public.outbox_pending WHERE schema_name = $1`, schemaName).
		Query(func(rows pgx.Rows) (err error) {
			markers, err = pgx.CollectRows(rows, pgx.RowTo[int64])
			return err
		})
	queueSearchPath(b, schemaName)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return 0, err
	}
	if !locked {
		return 0, ErrOutboxLocked
	}
	// The rows' statement goes on its own: a pipeline prepares every
	// statement before running the first, when search_path is not set yet.
	rows, err := conn.Query(ctx, `SELECT id, event_id, event_type, aggregate_id, aggregate_version, payload, request_id, actor, occurred_at
		FROM outbox ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return 0, err
	}
	batch, err := pgx.CollectRows(rows, scanOutboxRow)
	if err != nil {
		return 0, err
	}
	b = &pgx.Batch{}
	if len(batch) > 0 {
		if err := publish(batch); err != nil {
			return 0, &callbackError{err}
		}
		ids := make([]int64, len(batch))
		for i, x := range batch {
			ids[i] = x.ID
		}
		b.Queue(`DELETE FROM outbox WHERE id = ANY($1)`, ids)
	}
	if len(batch) < limit && len(markers) > 0 {
		b.Queue(`DELETE FROM public.outbox_pending WHERE id = ANY($1)`, markers)
	}
	b.Queue(`COMMIT`)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return 0, err
	}
	// Every statement succeeded: the transaction is over, or something is
	// badly wrong.
	if st := conn.Conn().PgConn().TxStatus(); st != 'I' {
		return 0, fmt.Errorf("transaction still open (status %c) after commit", st)
	}
	done = true
	return len(batch), nil
}

// scanOutboxRow reads a row of drainOutbox's select.
func scanOutboxRow(cr pgx.CollectableRow) (OutboxRow, error) {
	var (
		x     OutboxRow
		actor []byte
	)
	if err := cr.Scan(&x.ID, &x.EventID, &x.EventType, &x.AggregateID, &x.AggregateVersion, &x.Payload, &x.RequestID, &actor, &x.OccurredAt); err != nil {
		return x, err
	}
	if actor != nil {
		x.Actor = new(audit.Actor)
		if err := json.Unmarshal(actor, x.Actor); err != nil {
			return x, fmt.Errorf("decode actor of outbox row %d: %w", x.ID, err)
		}
	}
	return x, nil
}

// ForgetPending deletes every public.outbox_pending marker of schemaName on
// db's own cluster. The name is not checked: it is how a marker of a schema that is gone, or
// that was never a tenant's, is dropped.
func (db *DB) ForgetPending(ctx context.Context, schemaName string) error {
	if _, err := db.Pool.Exec(ctx, `DELETE FROM public.outbox_pending WHERE schema_name = $1`, schemaName); err != nil {
		return fmt.Errorf("postgres: forget pending outbox of %s: %w", schemaName, Translate(err))
	}
	return nil
}

// PendingTenants returns the schema names that have outbox_pending
// markers on db's own cluster: the tenants of that cluster with events not
// yet relayed, in no order. Cost:
// one scan of outbox_pending, which holds a row per write not yet relayed,
// whatever the number of tenants.
func (db *DB) PendingTenants(ctx context.Context) ([]string, error) {
	rows, err := db.Pool.Query(ctx, `SELECT DISTINCT schema_name FROM public.outbox_pending`)
	if err != nil {
		return nil, fmt.Errorf("postgres: pending tenants: %w", Translate(err))
	}
	schemas, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: pending tenants: %w", Translate(err))
	}
	return schemas, nil
}

// ListenOutbox holds a connection of its own to url (LISTEN needs a
// session, so never a pooled or pooler connection), listens on
// OutboxChannel, calls listening once it does, then calls notified with
// the schema name of each notification, until ctx is done or the
// connection fails; it returns what ended it (ctx's error included).
// Notifications sent while nothing listens are lost: listening is the
// caller's moment to catch up.
func ListenOutbox(ctx context.Context, url string, listening func(), notified func(schemaName string)) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+OutboxChannel); err != nil {
		return err
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		notified(n.Payload)
	}
}

// PendingCount is the number of a tenant's outbox writes not yet relayed.
type PendingCount struct {
	Schema  string
	Pending int64
}

// OutboxBacklog returns the limit tenants with the most outbox writes not
// yet relayed, most first, on every cluster (Clusters()). A tenant with
// markers on two clusters (a move's) is counted once, with their sum. A
// cluster that fails leaves the others' counts returned, with its error.
// Cost: one aggregate over each cluster's outbox_pending, which holds a
// row per write not yet relayed, whatever the number of tenants.
func (db *DB) OutboxBacklog(ctx context.Context, limit int) ([]PendingCount, error) {
	sums := map[string]int64{}
	var errs []error
	for _, c := range db.Clusters() {
		top, err := c.DB.clusterBacklog(ctx, limit)
		if err != nil {
			errs = append(errs, fmt.Errorf("postgres: outbox backlog of cluster %s: %w", c.Name, err))
		}
		for _, p := range top {
			sums[p.Schema] += p.Pending
		}
	}
	out := make([]PendingCount, 0, len(sums))
	for s, n := range sums {
		out = append(out, PendingCount{Schema: s, Pending: n})
	}
	slices.SortFunc(out, func(a, b PendingCount) int {
		if c := cmp.Compare(b.Pending, a.Pending); c != 0 {
			return c
		}
		return strings.Compare(a.Schema, b.Schema)
	})
	return out[:min(limit, len(out))], errors.Join(errs...)
}

// clusterBacklog is OutboxBacklog on db's own cluster.
func (db *DB) clusterBacklog(ctx context.Context, limit int) ([]PendingCount, error) {
	rows, err := db.Pool.Query(ctx, `SELECT schema_name, count(*) FROM public.outbox_pending
		GROUP BY schema_name ORDER BY count(*) DESC LIMIT $1`, limit)
	if err != nil {
		return nil, Translate(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PendingCount, error) {
		var c PendingCount
		return c, r.Scan(&c.Schema, &c.Pending)
	})
	if err != nil {
		return nil, Translate(err)
	}
	return out, nil
}

// OldestPendingOutbox returns how long the oldest outbox write not yet
// relayed, on any cluster, has waited; 0 when none waits. A cluster that
// fails leaves the others' oldest returned, with its error. Cost: one scan
// of each cluster's outbox_pending.
func (db *DB) OldestPendingOutbox(ctx context.Context) (time.Duration, error) {
	var (
		oldest time.Duration
		errs   []error
	)
	for _, c := range db.Clusters() {
		var age float64
		err := c.DB.Pool.QueryRow(ctx, `SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM public.outbox_pending`).Scan(&age)
		if err != nil {
			errs = append(errs, fmt.Errorf("postgres: oldest pending outbox of cluster %s: %w", c.Name, Translate(err)))
			continue
		}
		oldest = max(oldest, time.Duration(age*float64(time.Second)))
	}
	return oldest, errors.Join(errs...)
}

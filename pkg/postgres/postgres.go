// Package postgres owns the connection pool, transactions, tenant-scoped
// execution, the translation of PostgreSQL errors into domain errors, and
// all of the application's SQL: the outbox's too, written with product
// changes (outbox.go) and read, deleted and watched by the relay and the
// pipeline metrics. It makes no business decisions and knows nothing of
// events: an outbox row is opaque to it.
//
// Tenant isolation rests on one rule: a tenant's unqualified table names are
// only ever resolved inside InTenant, which sets search_path with SET LOCAL
// semantics, so the setting dies with the transaction and never follows a
// pooled connection to another tenant's request.
//
// The pool may sit behind a connection pooler in transaction mode (see
// PoolTransaction); what needs a session of its own (LISTEN, session
// advisory locks, migrations) then takes a connection made to PostgreSQL
// directly.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantworks/saas/pkg/domain"
)

// Config configures Open.
type Config struct {
	URL string
	// MaxConns caps the pool. 0 means the URL's pool_max_conns if it has
	// one, else DefaultMaxConns.
	MaxConns int32
	// PoolMode says what answers at URL: PostgreSQL or a pooler in session
	// mode (PoolSession, the default when empty), or a pooler in
	// transaction mode (PoolTransaction).
	PoolMode PoolMode
}

// DefaultMaxConns is the pool size when neither Config nor the URL sets one.
// pgxpool's own default, max(4, NumCPU), leaves concurrent requests queueing
// for a connection while PostgreSQL has idle capacity: with 32 writers the
// API reached 0.72 of pgbench at 4 connections and 0.79 at 32 (bench/api).
const DefaultMaxConns = 16

// DB is the application's handle on PostgreSQL.
type DB struct {
	Pool *pgxpool.Pool
	mode PoolMode
	// clusters, on the main cluster's DB, routes tenants to the cluster
	// that holds them (AttachClusters); nil: every tenant is here.
	clusters *clusters
}

// Open creates the pool and checks that the server answers. It returns an
// EUNAVAILABLE error when the server cannot be reached within 10 seconds,
// and an error naming the setting when cfg.PoolMode is unknown or the URL
// asks for a query mode that a transaction pooler breaks (see
// PoolTransaction).
func Open(ctx context.Context, cfg Config) (*DB, error) {
	mode, err := ParsePoolMode(string(cfg.PoolMode))
	if err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	switch {
	case cfg.MaxConns > 0:
		pc.MaxConns = cfg.MaxConns
	case !strings.Contains(cfg.URL, "pool_max_conns"):
		pc.MaxConns = DefaultMaxConns
	}
	if mode == PoolTransaction {
		if err := sessionFree(pc.ConnConfig, strings.Contains(cfg.URL, "default_query_exec_mode")); err != nil {
			return nil, err
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: new pool: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: ping %s: %w", pc.ConnConfig.Host, unavailable(err))
	}
	return &DB{Pool: pool, mode: mode}, nil
}

// PoolMode reports what Open was told answers at the URL: PoolSession or
// PoolTransaction. Work that needs a session of its own must not run on a
// DB in PoolTransaction mode.
func (db *DB) PoolMode() PoolMode {
	if db.mode == "" {
		return PoolSession
	}
	return db.mode
}

// Close closes the pool.
func (db *DB) Close() { db.Pool.Close() }

// Ping checks the server answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.Pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", unavailable(err))
	}
	return nil
}

// InTx runs fn in a transaction, committing when fn returns nil and rolling
// back otherwise. The error returned is translated (see Translate).
func (db *DB) InTx(ctx context.Context, fn func(pgx.Tx) error) error {
	err := pgx.BeginFunc(ctx, db.Pool, fn)
	return Translate(err)
}

// InTenant runs fn in a transaction whose search_path is the tenant's schema
// alone, so unqualified names resolve to that tenant's tables. The schema
// name is validated and quoted; the setting is transaction-local. The
// transaction runs on the cluster that holds the tenant (see
// AttachClusters). One that finds the schema gone because the tenant moved
// meanwhile (a write that waited on a move's pause, say) rolled back with
// nothing committed, and fn runs once more, on the tenant's new cluster: fn
// must therefore leave nothing behind outside its transaction that a
// second run would double (reset what it fills at its start). Should the
// second run be caught by yet another move, or the placement be unreadable,
// the error is EUNAVAILABLE with a Retry-After.
func (db *DB) InTenant(ctx context.Context, schema string, fn func(pgx.Tx) error) error {
	return db.inTenant(ctx, schema, func(tx pgx.Tx, _ string) error { return fn(tx) })
}

// inTenant is InTenant whose fn is told the cluster it runs on.
func (db *DB) inTenant(ctx context.Context, schema string, fn func(tx pgx.Tx, cluster string) error) error {
	if err := domain.ValidateSchemaName(schema); err != nil {
		return err
	}
	var err error
	for attempt := 0; ; attempt++ {
		on, cluster, ferr := db.ForTenant(ctx, schema)
		if ferr != nil {
			if err != nil { // the retry's lookup: the first failure says more
				return err
			}
			return ferr
		}
		fnDone := false
		err = on.InTx(ctx, func(tx pgx.Tx) error {
			if err := SetSearchPath(ctx, tx, schema); err != nil {
				return err
			}
			if err := fn(tx, cluster); err != nil {
				return err
			}
			fnDone = true
			return nil
		})
		if err == nil {
			return nil
		}
		var moved bool
		err, moved = db.checkMoved(ctx, schema, cluster, err)
		// Only a failure inside fn is known to have committed nothing: a
		// failed commit may have gone through.
		if !moved || fnDone || attempt > 0 {
			return err
		}
	}
}

// inTenantPipelined is InTenant for a transaction whose statements come in
// two steps, sent in two round trips rather than one per statement: the
// first sends BEGIN, SetSearchPath's statement and what first queues, and
// read reads the results of first's statements; the second sends what
// second queues (built from what read kept) and COMMIT. Any failure rolls
// the whole transaction back, as InTenant's does; errors are InTenant's.
//
// The settings are transaction-local as in InTenant: BEGIN is the batch's
// first statement, so set_config(..., true) lasts until the COMMIT or
// ROLLBACK and never follows the connection back into the pool.
func (db *DB) inTenantPipelined(ctx context.Context, schema string, first func(*pgx.Batch), read func(pgx.BatchResults) error, second func(*pgx.Batch) error) error {
	if err := domain.ValidateSchemaName(schema); err != nil {
		return err
	}
	// As InTenant: a transaction the tenant's move caught (its schema gone
	// from under a statement, so nothing committed) runs again, once, on
	// the tenant's new cluster.
	for attempt := 0; ; attempt++ {
		on, cluster, err := db.ForTenant(ctx, schema)
		if err != nil {
			return err
		}
		err = pipelinedOn(ctx, on, schema, first, read, second)
		if err == nil {
			return nil
		}
		var moved bool
		err, moved = db.checkMoved(ctx, schema, cluster, Translate(err))
		if !moved || attempt > 0 {
			return err
		}
	}
}

// pipelinedOn runs pipelined on a connection of on's pool.
func pipelinedOn(ctx context.Context, on *DB, schema string, first func(*pgx.Batch), read func(pgx.BatchResults) error, second func(*pgx.Batch) error) error {
	conn, err := on.Pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: acquire: %w", err)
	}
	// A connection still in a transaction (a failed ROLLBACK) is closed by
	// Release, never pooled: the server then aborts the transaction.
	defer conn.Release()
	err = pipelined(ctx, conn.Conn(), schema, first, read, second)
	if err != nil && conn.Conn().PgConn().TxStatus() != 'I' && !conn.Conn().IsClosed() {
		_, _ = conn.Exec(ctx, "ROLLBACK")
	}
	return err
}

// pipelined runs inTenantPipelined's two batches on conn.
func pipelined(ctx context.Context, conn *pgx.Conn, schema string, first func(*pgx.Batch), read func(pgx.BatchResults) error, second func(*pgx.Batch) error) error {
	begin := func(b *pgx.Batch) {
		b.Queue("BEGIN")
		b.Queue(searchPathSQL, pgx.Identifier{schema}.Sanitize(), TenantLockTimeout).Fn = func(br pgx.BatchResults) error {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("postgres: set search_path: %w", err)
			}
			return nil
		}
	}
	send := func(b *pgx.Batch, skip int) error {
		br := conn.SendBatch(ctx, b)
		for _, qq := range b.QueuedQueries[:skip] {
			if err := qq.Fn(br); err != nil {
				_ = br.Close()
				return err
			}
		}
		err := read(br)
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		return err
	}
	b := &pgx.Batch{}
	begin(b)
	b.QueuedQueries[0].Exec(func(pgconn.CommandTag) error { return nil })
	first(b)
	err := send(b, 2)
	if err != nil && !conn.IsClosed() && conn.PgConn().TxStatus() == 'I' {
		// Nothing ran, not even BEGIN: pgx prepares the statements of a
		// batch it has not seen on this connection before sending any of
		// it, and a tenant's tables resolve only once search_path is set.
		// So, once per connection and statement: open the transaction,
		// then send first's statements (a real error comes back again).
		b = &pgx.Batch{}
		begin(b)
		if err := conn.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		b = &pgx.Batch{}
		first(b)
		err = send(b, 0)
	}
	if err != nil {
		return err
	}
	b = &pgx.Batch{}
	if err := second(b); err != nil {
		return err
	}
	b.Queue("COMMIT").Exec(func(tag pgconn.CommandTag) error {
		// COMMIT of a transaction the server had aborted answers ROLLBACK.
		if tag.String() == "ROLLBACK" {
			return pgx.ErrTxCommitRollback
		}
		return nil
	})
	// Close reads every result in order and stops at the first error
	// (queueExec's, or COMMIT's); the server skipped what followed it.
	return conn.SendBatch(ctx, b).Close()
}

// queueExec adds a statement to b whose failure comes back from the
// batch's Close wrapped as what.
func queueExec(b *pgx.Batch, what, sql string, args ...any) {
	b.Queue(sql, args...).Fn = func(br pgx.BatchResults) error {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
}

// TenantLockTimeout is the lock_timeout of a tenant's transactions.
const TenantLockTimeout = "5s"

const searchPathSQL = "SELECT set_config('search_path', $1, true), set_config('lock_timeout', $2, true)"

// SetSearchPath sets the transaction-local search_path of tx to schema,
// and its lock_timeout to TenantLockTimeout.
func SetSearchPath(ctx context.Context, tx pgx.Tx, schema string) error {
	// set_config(..., true) is SET LOCAL with the value passed as a
	// parameter: no identifier is ever pasted into SQL text.
	// lock_timeout bounds how long a tenant's transaction waits for a
	// table lock, a move's write pause above all: past it the request is
	// answered 503 with a Retry-After (see Translate), not held.
	if _, err := tx.Exec(ctx, searchPathSQL, pgx.Identifier{schema}.Sanitize(), TenantLockTimeout); err != nil {
		return fmt.Errorf("postgres: set search_path: %w", err)
	}
	return nil
}

// queueSearchPath queues SetSearchPath's statement in b, to save it a round
// trip.
func queueSearchPath(b *pgx.Batch, schema string) {
	b.Queue(searchPathSQL, pgx.Identifier{schema}.Sanitize(), TenantLockTimeout)
}

// Translate maps PostgreSQL errors onto domain errors: unique violations
// become ECONFLICT, check and not-null violations EINVALID, connection
// failures EUNAVAILABLE. Other errors, and domain errors, pass through.
func Translate(err error) error {
	if err == nil {
		return nil
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %w", &domain.Error{Code: domain.ECONFLICT, Message: "already exists", Details: conflictDetails(pe)}, err)
		case "23514", "23502", "22001", "22003": // check, not null, too long, out of range
			return fmt.Errorf("%w: %w", domain.Errorf(domain.EINVALID, "invalid value"), err)
		case "57P01", "57P02", "57P03", "08000", "08003", "08006":
			return unavailable(err)
		case "55P03": // lock_not_available: a lock_timeout, as during a tenant's move
			return fmt.Errorf("%w: %w", &domain.Error{Code: domain.EUNAVAILABLE, Message: "the tenant is busy; try again",
				RetryAfter: time.Second}, err)
		}
		return err
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return unavailable(err)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return unavailable(err)
	}
	return err
}

func conflictDetails(pe *pgconn.PgError) map[string]string {
	if pe.ConstraintName == "" {
		return nil
	}
	return map[string]string{"constraint": pe.ConstraintName}
}

func unavailable(err error) error {
	return fmt.Errorf("%w: %w", domain.Errorf(domain.EUNAVAILABLE, "database unavailable"), err)
}

// IsUniqueViolation reports whether err is a unique violation of the named
// constraint (any constraint when name is "").
func IsUniqueViolation(err error, name string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && (name == "" || pe.ConstraintName == name)
}

// HasCode reports whether err carries a PostgreSQL error with the SQLSTATE code.
func HasCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

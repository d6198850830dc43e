package tenancy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
)

// A move and a tenant migration run exclude each other per tenant with an
// advisory lock on main keyed by the tenant's schema: a move holds it
// alone for its whole run (its own migrations of the schema included), a
// migration of the schema shares it with other migrations. Without it, a
// migration on the source during the copy would change a schema the
// target's copy no longer follows, and one on the target would meet the
// copy half way.
const tenantWorkKey = `hashtextextended('saas.tenant.' || $1, 0)`

// DefaultMoveWait is how long a migration waits for a move of its tenant
// to end, and a move for its tenant's migration, before giving up on that
// tenant.
const DefaultMoveWait = 30 * time.Second

// errBeingMoved fails a tenant's migration while the tenant is moved.
var errBeingMoved = &domain.Error{Code: domain.ECONFLICT,
	Message: "the tenant is being moved to another cluster; run saas migrate again once the move is done"}

// errBeingMigrated fails a move while its tenant's schema is migrated.
var errBeingMigrated = &domain.Error{Code: domain.ECONFLICT,
	Message: "the tenant's schema is being migrated (saas migrate); move it once that is done"}

// migrationLocks takes the tenants' shared lock for a migration run on a
// pool of direct connections to main of its own: each lock holds its
// connection while its tenant migrates, and the run's migrations and
// version records must not wait for a connection the locks hold.
type migrationLocks struct {
	pool *pgxpool.Pool
	wait time.Duration
}

func openMigrationLocks(ctx context.Context, mainURL string, conns int, wait time.Duration) (*migrationLocks, error) {
	cfg, err := pgxpool.ParseConfig(mainURL)
	if err != nil {
		return nil, fmt.Errorf("lock pool: parse url: %w", err)
	}
	cfg.MaxConns = int32(max(conns, 1))
	cfg.ConnConfig.RuntimeParams["application_name"] = "saas migrate"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("lock pool: %w", err)
	}
	return &migrationLocks{pool: pool, wait: wait}, nil
}

func (l *migrationLocks) close() { l.pool.Close() }

// lock takes the tenant's lock in share mode, waiting up to l.wait for a
// move of the tenant to end, as a session lock on a connection of the
// pool: a transaction left open while the tenant migrates would hold up
// what waits for every older transaction (CREATE INDEX CONCURRENTLY in a
// migration). Errors: errBeingMoved (ECONFLICT) when it did not; database
// errors.
func (l *migrationLocks) lock(ctx context.Context, schemaName string) (func(), error) {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("tenant lock: %w", postgres.Translate(err))
	}
	drop := func() { _ = conn.Conn().Close(context.WithoutCancel(ctx)); conn.Release() }
	if _, err := conn.Exec(ctx, `SELECT set_config('lock_timeout', $1, false)`, fmt.Sprintf("%dms", max(l.wait.Milliseconds(), 1))); err != nil {
		drop()
		return nil, fmt.Errorf("tenant lock: %w", postgres.Translate(err))
	}
	_, err = conn.Exec(ctx, `SELECT pg_advisory_lock_shared(`+tenantWorkKey+`)`, schemaName)
	if err != nil {
		drop()
		if postgres.HasCode(err, "55P03") { // lock_not_available: a move holds it
			return nil, errBeingMoved
		}
		return nil, fmt.Errorf("tenant lock: %w", postgres.Translate(err))
	}
	return func() {
		// A connection that cannot say it let go is closed: that lets go.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock_shared(`+tenantWorkKey+`)`, schemaName); err != nil {
			drop()
			return
		}
		conn.Release()
	}, nil
}

// lockAgainstMigrations takes the tenant's lock alone on the move's lock
// session, waiting up to wait for migrations of the tenant to end.
// Errors: errBeingMigrated (ECONFLICT) when they did not; database errors.
func lockAgainstMigrations(ctx context.Context, c *pgx.Conn, schemaName string, wait time.Duration) error {
	if _, err := c.Exec(ctx, `SELECT set_config('lock_timeout', $1, false)`, fmt.Sprintf("%dms", max(wait.Milliseconds(), 1))); err != nil {
		return fmt.Errorf("tenant lock: %w", postgres.Translate(err))
	}
	_, err := c.Exec(ctx, `SELECT pg_advisory_lock(`+tenantWorkKey+`)`, schemaName)
	if _, rerr := c.Exec(ctx, `RESET lock_timeout`); rerr != nil && err == nil {
		err = rerr
	}
	switch {
	case postgres.HasCode(err, "55P03"): // lock_not_available: a migration holds it
		return errBeingMigrated
	case err != nil && !errors.Is(err, context.Canceled):
		return fmt.Errorf("tenant lock: %w", postgres.Translate(err))
	}
	return err
}

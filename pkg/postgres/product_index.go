package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/domain"
)

// tenantGone maps "the tenant's tables are not there" (its schema was
// dropped) to ENOTFOUND; other errors are translated as usual.
func tenantGone(schemaName string, err error) error {
	// A schema missing because the tenant moved to another cluster
	// (InTenant says so with EUNAVAILABLE) is not a tenant that is gone:
	// an indexer told ENOTFOUND would drop its events.
	if domain.ErrorCode(err) == domain.EUNAVAILABLE {
		return err
	}
	if HasCode(err, "42P01") || HasCode(err, "3F000") { // undefined_table, invalid_schema_name
		return fmt.Errorf("%w: %w", domain.Errorf(domain.ENOTFOUND, "tenant %q not found", schemaName), err)
	}
	return Translate(err)
}

// ProductVersions returns, for those of ids that are products of an active
// tenant, their current version; a product that was deleted is absent from
// the map. It is one query for a tenant on the main cluster, two for one
// on another (the tenant's state is in public.tenants, on main). Errors:
// ENOTFOUND when the tenant does not exist or is not active (a tenant being
// deleted counts as gone), EINVALID for a bad schema name or an id that is
// not a UUID.
func (db *DB) ProductVersions(ctx context.Context, schemaName string, ids []string) (map[string]int64, error) {
	for _, id := range ids {
		if _, err := uuid.Parse(id); err != nil {
			return nil, &domain.Error{Code: domain.EINVALID, Message: "invalid product id", Details: map[string]string{"id": id + " is not a UUID"}}
		}
	}
	if err := domain.ValidateSchemaName(schemaName); err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(ids))
	found := false
	// Run again on another cluster when the tenant moved (see InTenant):
	// what it fills starts afresh, and its query is the new cluster's.
	err := db.inTenant(ctx, schemaName, func(tx pgx.Tx, cluster string) error {
		clear(out)
		found = false
		// On main, the tenant row comes along so that a tenant being
		// deleted reads as gone in the same query. Elsewhere
		// public.tenants is not beside the products: the state is read
		// first, from main, and the query gives it back with each
		// product.
		q, args := `SELECT t.state, p.id::text, p.version
			FROM public.tenants t LEFT JOIN products p ON p.id = ANY($2::uuid[])
			WHERE t.schema_name = $1`, []any{schemaName, ids}
		if cluster != MainCluster {
			var state string
			err := db.Pool.QueryRow(ctx, `SELECT state FROM public.tenants WHERE schema_name = $1`, schemaName).Scan(&state)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return Translate(err)
			}
			if !domain.TenantLive(state) {
				return domain.Errorf(domain.ENOTFOUND, "tenant %q not found", schemaName)
			}
			found = true // even with none of ids among its products
			q, args = `SELECT $1::text, p.id::text, p.version FROM products p WHERE p.id = ANY($2::uuid[])`, []any{state, ids}
		}
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		var state string
		var id *string
		var version *int64
		_, err = pgx.ForEachRow(rows, []any{&state, &id, &version}, func() error {
			found = domain.TenantLive(state)
			if id != nil && version != nil {
				out[*id] = *version
			}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: product versions: %w", tenantGone(schemaName, err))
	}
	if !found {
		return nil, domain.Errorf(domain.ENOTFOUND, "tenant %q not found", schemaName)
	}
	return out, nil
}

// ScanProducts reads every product of a tenant from one consistent
// snapshot (a REPEATABLE READ, read-only transaction), in id order, and
// calls fn with pages of up to batch products and the number of products
// in the snapshot. The transaction stays open until fn has seen the last
// page or returned an error, which ScanProducts returns. Errors: ENOTFOUND
// when the tenant's schema does not exist.
func (db *DB) ScanProducts(ctx context.Context, schemaName string, batch int, fn func(total int, page []domain.Product) error) error {
	if err := domain.ValidateSchemaName(schemaName); err != nil {
		return err
	}
	if batch <= 0 {
		batch = 500
	}
	on, cluster, err := db.ForTenant(ctx, schemaName)
	if err != nil {
		return err
	}
	err = pgx.BeginTxFunc(ctx, on.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := SetSearchPath(ctx, tx, schemaName); err != nil {
			return err
		}
		var total int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM products`).Scan(&total); err != nil {
			return err
		}
		var after *string
		for {
			rows, err := tx.Query(ctx,
				`SELECT `+productColumns+` FROM products WHERE $1::uuid IS NULL OR id > $1::uuid ORDER BY id LIMIT $2`, after, batch)
			if err != nil {
				return err
			}
			page, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Product, error) { return scanProduct(r) })
			if err != nil {
				return err
			}
			if len(page) == 0 {
				return nil
			}
			if err := fn(total, page); err != nil {
				return &callbackError{err}
			}
			if len(page) < batch {
				return nil
			}
			after = &page[len(page)-1].ID
		}
	})
	if cb := (*callbackError)(nil); errors.As(err, &cb) {
		return cb.err
	}
	if err != nil {
		// A tenant that moved meanwhile is a retry (see InTenant), not
		// a tenant that is gone.
		return fmt.Errorf("postgres: scan products: %w", tenantGone(schemaName, movedErr(db.checkMoved(ctx, schemaName, cluster, err))))
	}
	return nil
}

// callbackError carries a callback's error through a transaction untouched.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }
func (e *callbackError) Unwrap() error { return e.err }

// movedErr drops checkMoved's second result where no retry is possible.
func movedErr(err error, _ bool) error { return err }

// CountProducts returns the number of a tenant's products. Errors:
// EINVALID for a bad schema name; database errors translated (see
// Translate). Cost: one count over the products table.
func (db *DB) CountProducts(ctx context.Context, schemaName string) (int, error) {
	var n int
	err := db.InTenant(ctx, schemaName, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM products`).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: count products: %w", err)
	}
	return n, nil
}

// rebuildLockKey is the advisory lock key of a tenant's index rebuild, $1
// being the schema name.
const rebuildLockKey = `hashtextextended('saas.reindex.' || $1, 0)`

// TryRebuildLock takes the tenant's rebuild lock without waiting: a
// session advisory lock, held on a pooled connection set aside for it
// until the returned unlock runs, so that two rebuilds of one tenant, in
// any processes, never run at once. ok is false, and unlock nil, when
// another session holds the lock. unlock releases the lock and the
// connection; if the release fails, the connection is closed rather than
// returned to the pool, and the lock goes with it. Errors: database
// errors translated (see Translate).
func (db *DB) TryRebuildLock(ctx context.Context, schemaName string) (unlock func(), ok bool, err error) {
	// The lock is taken where it is asked for (the main cluster), wherever
	// the tenant lives, so every process agrees on one place.
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("postgres: rebuild lock: %w", Translate(err))
	}
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+rebuildLockKey+`)`, schemaName).Scan(&ok); err != nil {
		conn.Release()
		return nil, false, fmt.Errorf("postgres: rebuild lock: %w", Translate(err))
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock(`+rebuildLockKey+`)`, schemaName); err != nil {
			// A connection still holding the lock must not go back to the
			// pool; closed, it lets the lock go with it.
			_ = conn.Conn().Close(uctx)
		}
		conn.Release()
	}, true, nil
}

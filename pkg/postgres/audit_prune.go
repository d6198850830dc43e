package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// AuditPruneReport is what PruneAudit did.
type AuditPruneReport struct {
	Tenants int   // tenant schemas looked at
	Pruned  int   // tenant schemas (and the platform) that had old entries
	Deleted int64 // entries deleted, in every trail
}

// pruneProbeChunk is how many tenant schemas one probe query asks about.
const pruneProbeChunk = 200

// PruneAudit deletes the audit entries written before before, in every
// live tenant's trail and in the platform's, batch entries per transaction
// (default 1000), so no delete holds many locks or much WAL at once. Each
// tenant's trail is pruned on the cluster public.tenants places it on
// (see AttachClusters).
//
// Cost on many tenants: per cluster, one probe query per 200 of its
// tenants, each schema an index probe on audit_log.at (a tenant with
// nothing old costs that probe alone); then, per tenant with old entries,
// one delete per batch. A tenant that is gone, or not yet migrated to an
// audit_log, is skipped. Errors: the first failure on the platform's
// trail, with nothing done; else, a cluster that fails (or that this
// process does not know: ErrUnknownCluster) leaves the other clusters
// pruned, and the failures come back joined, with what was done.
func (db *DB) PruneAudit(ctx context.Context, before time.Time, batch int) (AuditPruneReport, error) {
	if batch <= 0 {
		batch = 1000
	}
	var rep AuditPruneReport
	n, err := pruneBatches(ctx, batch, func(ctx context.Context, q string, args ...any) (int64, error) {
		tag, err := db.Pool.Exec(ctx, strings.ReplaceAll(q, "{table}", "public.audit_log"), args...)
		return tag.RowsAffected(), err
	}, before)
	if err != nil {
		return rep, fmt.Errorf("postgres: prune platform audit: %w", Translate(err))
	}
	if n > 0 {
		rep.Pruned++
		rep.Deleted += n
	}
	rows, err := db.Pool.Query(ctx, `SELECT cluster, schema_name FROM public.tenants WHERE state IN ('active', 'suspended') ORDER BY id`)
	if err != nil {
		return rep, fmt.Errorf("postgres: prune audit: list tenants: %w", Translate(err))
	}
	type placed struct{ cluster, schema string }
	tenants, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (placed, error) {
		var t placed
		return t, r.Scan(&t.cluster, &t.schema)
	})
	if err != nil {
		return rep, fmt.Errorf("postgres: prune audit: list tenants: %w", Translate(err))
	}
	rep.Tenants = len(tenants)
	byCluster := map[string][]string{}
	var names []string // in the order first seen, for a stable order of work
	for _, t := range tenants {
		if byCluster[t.cluster] == nil {
			names = append(names, t.cluster)
		}
		byCluster[t.cluster] = append(byCluster[t.cluster], t.schema)
	}
	var errs []error
	for _, name := range names {
		on, ok := db.Cluster(name)
		if !ok {
			errs = append(errs, fmt.Errorf("postgres: prune audit: %w: %d tenants on %q", ErrUnknownCluster, len(byCluster[name]), name))
			continue
		}
		if err := db.pruneTenants(ctx, on, byCluster[name], before, batch, &rep); err != nil {
			errs = append(errs, fmt.Errorf("postgres: prune audit on cluster %s: %w", name, err))
		}
	}
	return rep, errors.Join(errs...)
}

// pruneTenants prunes the trails of schemas, all on the cluster of on,
// adding what it did to rep. It stops at the first failure.
func (db *DB) pruneTenants(ctx context.Context, on *DB, schemas []string, before time.Time, batch int, rep *AuditPruneReport) error {
	for start := 0; start < len(schemas); start += pruneProbeChunk {
		old, err := on.schemasWithAuditBefore(ctx, schemas[start:min(start+pruneProbeChunk, len(schemas))], before)
		if err != nil {
			return err
		}
		for _, s := range old {
			// Routed again, not run on on: a tenant moved since the list
			// was read is pruned where it now is.
			n, err := pruneBatches(ctx, batch, func(ctx context.Context, q string, args ...any) (n int64, err error) {
				err = db.InTenant(ctx, s, func(tx pgx.Tx) error {
					tag, err := tx.Exec(ctx, strings.ReplaceAll(q, "{table}", "audit_log"), args...)
					n = tag.RowsAffected()
					return err
				})
				return n, err
			}, before)
			if isMissing(err) {
				continue // deleted meanwhile
			}
			if err != nil {
				return fmt.Errorf("prune audit of %s: %w", s, err)
			}
			rep.Pruned++
			rep.Deleted += n
		}
	}
	return nil
}

// pruneBatches runs the batched delete through exec until a batch comes
// back short, and returns how many rows went.
func pruneBatches(ctx context.Context, batch int, exec func(ctx context.Context, q string, args ...any) (int64, error), before time.Time) (int64, error) {
	var total int64
	for {
		n, err := exec(ctx, `DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE at < $1 ORDER BY id LIMIT $2)`, before, batch)
		total += n
		if err != nil || n < int64(batch) {
			return total, err
		}
	}
}

// schemasWithAuditBefore returns those of schemas whose audit_log holds an
// entry older than before: one query for all of them, falling back to one
// per schema when one of them is gone or has no audit_log yet.
func (db *DB) schemasWithAuditBefore(ctx context.Context, schemas []string, before time.Time) ([]string, error) {
	if len(schemas) == 0 {
		return nil, nil
	}
	parts := make([]string, len(schemas))
	args := []any{before}
	for i, s := range schemas {
		args = append(args, s)
		// Each schema name is quoted as an identifier; its value comes back
		// as a parameter, never as text of the query.
		parts[i] = fmt.Sprintf(`SELECT $%d::text WHERE EXISTS (SELECT 1 FROM %s.audit_log WHERE at < $1)`, i+2, pgx.Identifier{s}.Sanitize())
	}
	rows, err := db.Pool.Query(ctx, strings.Join(parts, " UNION ALL "), args...)
	if err == nil {
		var out []string
		if out, err = pgx.CollectRows(rows, pgx.RowTo[string]); err == nil {
			return out, nil
		}
	}
	if !isMissing(err) || len(schemas) == 1 {
		if isMissing(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("postgres: probe old audit entries: %w", Translate(err))
	}
	var out []string
	for _, s := range schemas {
		old, err := db.schemasWithAuditBefore(ctx, []string{s}, before)
		if err != nil {
			return nil, err
		}
		out = append(out, old...)
	}
	return out, nil
}

// isMissing reports a schema or table that does not exist.
func isMissing(err error) bool {
	return err != nil && (HasCode(err, "42P01") || HasCode(err, "3F000") || errors.Is(err, ErrNoSchema))
}

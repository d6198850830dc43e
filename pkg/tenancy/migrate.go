package tenancy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/schema"
)

// MigrateOptions configures MigrateAll.
type MigrateOptions struct {
	// Width is how many schemas of one cluster migrate at once, each on a
	// direct connection of its own to that cluster; 0 means 8 (10,000
	// tenants on two cores busy with other work: 8 took 57% of the time 4
	// took, bench/tenants). Clusters migrate at the same time, each with
	// its own Width.
	Width int
	// Progress, when set, is called after each tenant with the counts so
	// far, of its cluster and of the whole run. It is called from one
	// goroutine at a time.
	Progress func(MigrateProgress)
	// MoveWait is how long a tenant being moved to another cluster is
	// waited for before it is reported failed (run saas migrate again
	// once the move is done) while the others go on; 0 means
	// DefaultMoveWait.
	MoveWait time.Duration
}

// MigrateProgress is how far MigrateAll is.
type MigrateProgress struct {
	Cluster     string // the cluster of the tenant just done
	Done, Total int    // that cluster's counts
	// The whole run's counts, every cluster's.
	AllDone, AllTotal int
}

// MigrateFailure is one tenant whose migration failed.
type MigrateFailure struct {
	Schema  string
	Cluster string
	Err     error
}

// ClusterMigrateReport is what MigrateAll did on one cluster.
type ClusterMigrateReport struct {
	Cluster  string
	Pending  int
	Migrated int
	Failed   int
}

// MigrateReport says what MigrateAll did.
type MigrateReport struct {
	Target   int64 // latest tenant migration version
	Pending  int   // tenants that had migrations to apply
	Migrated int   // of those, how many now are at Target
	Failed   []MigrateFailure
	// Clusters are the counts per cluster, in the order of
	// postgres.DB.Clusters (main first), then any cluster this process
	// does not know that public.tenants names (its tenants all failed).
	Clusters []ClusterMigrateReport
}

// MigrateAll brings every active tenant schema up to the latest tenant
// migration, each on the cluster that holds it, the clusters in parallel.
// The tenants with work to do are found with one indexed query on
// public.tenants (each tenant's applied version is recorded there), so a
// run with nothing pending costs one query whatever the number of tenants.
// Each tenant migrates in one transaction (schema.Runner.MigrateTenants):
// all of its pending migrations or none. On main its recorded version
// commits in that transaction; on another cluster it is recorded on main
// once the migration committed, so a crash between the two leaves the
// tenant pending, and the next run, with nothing to apply, records it.
// A tenant is not migrated while it is being moved (see Mover.Move): its
// migration waits opts.MoveWait for the move to end, then the tenant is
// reported failed with an ECONFLICT error. A failing tenant (one on a
// cluster this process does not know too) is
// reported in the MigrateReport and the others go on; the returned error
// is only for failures that stop the whole run.
func (m *Manager) MigrateAll(ctx context.Context, opts MigrateOptions) (MigrateReport, error) {
	width := opts.Width
	if width <= 0 {
		width = 8
	}
	rep := MigrateReport{Target: m.runner.TenantLatest()}
	rows, err := m.db.Pool.Query(ctx,
		`SELECT schema_name, cluster FROM public.tenants WHERE state IN ('active', 'suspended') AND schema_version < $1 ORDER BY id`, rep.Target)
	if err != nil {
		return rep, fmt.Errorf("tenancy: migrate: list pending: %w", err)
	}
	pending := map[string][]string{}
	var schemaName, cluster string
	if _, err := pgx.ForEachRow(rows, []any{&schemaName, &cluster}, func() error {
		pending[cluster] = append(pending[cluster], schemaName)
		rep.Pending++
		return nil
	}); err != nil {
		return rep, fmt.Errorf("tenancy: migrate: list pending: %w", err)
	}

	var (
		mu       sync.Mutex
		allDone  int
		clusters []postgres.Cluster
		known    = map[string]bool{}
	)
	for _, c := range m.db.Clusters() {
		known[c.Name] = true
		clusters = append(clusters, c)
		rep.Clusters = append(rep.Clusters, ClusterMigrateReport{Cluster: c.Name, Pending: len(pending[c.Name])})
	}
	for _, name := range slices.Sorted(maps.Keys(pending)) {
		schemas := pending[name]
		if known[name] {
			continue
		}
		cr := ClusterMigrateReport{Cluster: name, Pending: len(schemas), Failed: len(schemas)}
		for _, s := range schemas {
			rep.Failed = append(rep.Failed, MigrateFailure{Schema: s, Cluster: name,
				Err: fmt.Errorf("%w: %q", postgres.ErrUnknownCluster, name)})
		}
		allDone += len(schemas)
		rep.Clusters = append(rep.Clusters, cr)
	}
	if rep.Pending == 0 {
		return rep, nil
	}

	moveWait := opts.MoveWait
	if moveWait <= 0 {
		moveWait = DefaultMoveWait
	}
	mainURL := clusters[0].DirectURL
	if mainURL == "" {
		mainURL = m.runner.URL()
	}
	busy := 0
	for _, c := range clusters {
		busy += min(width, len(pending[c.Name]))
	}
	locks, err := openMigrationLocks(ctx, mainURL, busy, moveWait)
	if err != nil {
		return rep, fmt.Errorf("tenancy: migrate: %w", err)
	}
	defer locks.close()

	errs := make([]error, len(clusters))
	var wg sync.WaitGroup
	for i, c := range clusters {
		schemas := pending[c.Name]
		if len(schemas) == 0 {
			continue
		}
		cr := &rep.Clusters[i]
		wg.Go(func() {
			runner, err := m.runnerFor(c)
			if err != nil {
				errs[i] = err
				return
			}
			topts := schema.TenantsOptions{Width: width, Lock: locks.lock}
			done := 0
			if c.Name == postgres.MainCluster {
				// The tenant's recorded version commits with its migrations.
				topts.Record = func(ctx context.Context, tx pgx.Tx, schemaName string, v int64) error {
					return recordVersion(ctx, tx, schemaName, v)
				}
			}
			topts.Done = func(schemaName string, v int64, err error) {
				if err == nil && c.Name != postgres.MainCluster {
					// public is on main: the version goes there once the
					// cluster committed the migrations.
					if rerr := recordVersion(ctx, m.db.Pool, schemaName, v); rerr != nil {
						err = fmt.Errorf("record version %d: %w", v, rerr)
					}
				}
				mu.Lock()
				defer mu.Unlock()
				done++
				allDone++
				if err != nil {
					rep.Failed = append(rep.Failed, MigrateFailure{Schema: schemaName, Cluster: c.Name, Err: err})
					cr.Failed++
				} else {
					rep.Migrated++
					cr.Migrated++
				}
				if opts.Progress != nil {
					opts.Progress(MigrateProgress{Cluster: c.Name, Done: done, Total: len(schemas), AllDone: allDone, AllTotal: rep.Pending})
				}
			}
			if err := runner.MigrateTenants(ctx, schemas, topts); err != nil {
				errs[i] = fmt.Errorf("on %s: %w", c.Name, err)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return rep, fmt.Errorf("tenancy: migrate: %w", err)
		}
	}
	return rep, nil
}

// execer is a transaction or a pool.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// recordVersion records in public.tenants the tenant migration version a
// tenant's schema is at.
func recordVersion(ctx context.Context, db execer, schemaName string, v int64) error {
	_, err := db.Exec(ctx, `UPDATE public.tenants SET schema_version = $2, updated_at = now() WHERE schema_name = $1`, schemaName, v)
	return err
}

package tenancy

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/schema"
)

// cluster returns the named cluster of the Manager's database. Errors:
// postgres.ErrUnknownCluster when this process was not given it.
func (m *Manager) cluster(name string) (postgres.Cluster, error) {
	for _, c := range m.db.Clusters() {
		if c.Name == name {
			return c, nil
		}
	}
	return postgres.Cluster{}, fmt.Errorf("%w: %q", postgres.ErrUnknownCluster, name)
}

// runnerFor returns the migration runner of cluster c: the Manager's own
// for main, one with the same migration sets on c's direct URL for the
// others, made once.
func (m *Manager) runnerFor(c postgres.Cluster) (*schema.Runner, error) {
	if c.Name == postgres.MainCluster {
		return m.runner, nil
	}
	m.runnersMu.Lock()
	defer m.runnersMu.Unlock()
	if r, ok := m.runners[c.Name]; ok {
		return r, nil
	}
	r, err := m.runner.On(c.DirectURL)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	if m.runners == nil {
		m.runners = map[string]*schema.Runner{}
	}
	m.runners[c.Name] = r
	return r, nil
}

// checkCluster returns the EINVALID detail of a cluster name that is
// neither "" (the fewest tenants) nor one of clusters.
func checkCluster(name string, clusters []postgres.Cluster) (string, bool) {
	names := make([]string, len(clusters))
	for i, c := range clusters {
		if c.Name == name || name == "" {
			return "", true
		}
		names[i] = c.Name
	}
	return "is not one of: " + strings.Join(names, ", "), false
}

// placementLock is the key of the transaction lock that serializes the
// choice of a new tenant's cluster, so that tenants created at once are
// spread as if created one after the other.
var placementLock = func() int64 {
	h := fnv.New64a()
	h.Write([]byte("saas.tenant.place"))
	return int64(h.Sum64() >> 1)
}()

// fewest returns the cluster with the fewest tenants in public.tenants,
// the first in clusters' order on a tie. It takes placementLock for the
// rest of tx.
func fewest(ctx context.Context, tx pgx.Tx, clusters []postgres.Cluster) (string, error) {
	if len(clusters) == 1 {
		return clusters[0].Name, nil
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, placementLock); err != nil {
		return "", fmt.Errorf("placement lock: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT cluster, count(*) FROM public.tenants GROUP BY cluster`)
	if err != nil {
		return "", fmt.Errorf("count tenants per cluster: %w", err)
	}
	counts := map[string]int64{}
	var (
		name string
		n    int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&name, &n}, func() error { counts[name] = n; return nil }); err != nil {
		return "", fmt.Errorf("count tenants per cluster: %w", err)
	}
	best := clusters[0].Name
	for _, c := range clusters[1:] {
		if counts[c.Name] < counts[best] {
			best = c.Name
		}
	}
	return best, nil
}

// dropSchema drops a tenant's schema on cluster c, if it is there.
func dropSchema(ctx context.Context, c postgres.Cluster, schemaName string) error {
	if _, err := c.DB.Pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schemaName}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("drop schema on %s: %w", c.Name, postgres.Translate(err))
	}
	return nil
}

// SharedVersion is the shared schema's version on one cluster.
type SharedVersion struct {
	Cluster string
	Version int64
}

// MigrateShared applies the shared (public) migrations on every cluster,
// all at once: the catalog's on main, and on the others what tenant
// schemas there use (the outbox's notification function). It returns each
// cluster's version, main first. Errors: each failing cluster's, joined;
// the others are migrated all the same.
func (m *Manager) MigrateShared(ctx context.Context) ([]SharedVersion, error) {
	clusters := m.db.Clusters()
	out := make([]SharedVersion, len(clusters))
	errs := make([]error, len(clusters))
	var wg sync.WaitGroup
	for i, c := range clusters {
		out[i].Cluster = c.Name
		wg.Go(func() {
			r, err := m.runnerFor(c)
			if err == nil {
				out[i].Version, err = r.MigrateShared(ctx)
			}
			if err != nil {
				errs[i] = fmt.Errorf("tenancy: shared migrations on %s: %w", c.Name, err)
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// unknownCluster is the EINVALID error of a create asking for a cluster
// this process was not given.
func unknownCluster(detail string) error {
	return &domain.Error{Code: domain.EINVALID, Message: "invalid tenant", Details: map[string]string{"cluster": detail}}
}

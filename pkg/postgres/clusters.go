package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/domain"
)

// MainCluster is the name of the cluster that holds public, the catalog of
// tenants (DESIGN.md section 12).
const MainCluster = "main"

// Cluster is one PostgreSQL cluster that tenant schemas live on.
type Cluster struct {
	// Name is what public.tenants.cluster records.
	Name string
	// DB is the cluster's pool. For the main cluster it is the routing DB
	// itself.
	DB *DB
	// DirectURL reaches the cluster with sessions of its own: LISTEN,
	// session advisory locks, migrations, logical replication.
	DirectURL string
}

// clusters is the routing state of the main cluster's DB.
type clusters struct {
	order  []Cluster // main first
	byName map[string]*DB
	// placed caches schema -> cluster name as public.tenants records it. A
	// stale entry after a move is found by the first query that misses
	// the schema on the old cluster (see InTenant) and dropped.
	placed sync.Map
}

// AttachClusters makes db, the main cluster's pool, route every tenant's
// work (InTenant and the methods built on it) to the cluster public.tenants
// records for the tenant. mainDirectURL is the main cluster's direct URL;
// others are the other clusters, each with a pool of its own that the
// caller closes. Call it once, before db is used; with no others nothing
// changes and no lookup is ever made.
func (db *DB) AttachClusters(mainDirectURL string, others []Cluster) error {
	if len(others) == 0 {
		return nil
	}
	c := &clusters{byName: map[string]*DB{MainCluster: db}}
	c.order = append(c.order, Cluster{Name: MainCluster, DB: db, DirectURL: mainDirectURL})
	for _, o := range others {
		switch {
		case o.Name == MainCluster || o.Name == "":
			return fmt.Errorf("postgres: cluster name %q is reserved or empty", o.Name)
		case o.DB == nil:
			return fmt.Errorf("postgres: cluster %s has no pool", o.Name)
		case c.byName[o.Name] != nil:
			return fmt.Errorf("postgres: cluster %s given twice", o.Name)
		}
		c.byName[o.Name] = o.DB
		c.order = append(c.order, o)
	}
	db.clusters = c
	return nil
}

// Clusters returns every cluster tenants may live on, main first. Without
// AttachClusters it is main alone, whose DirectURL is "" (the caller knows
// it).
func (db *DB) Clusters() []Cluster {
	if db.clusters == nil {
		return []Cluster{{Name: MainCluster, DB: db}}
	}
	return append([]Cluster(nil), db.clusters.order...)
}

// Cluster returns the pool of the named cluster.
func (db *DB) Cluster(name string) (*DB, bool) {
	if name == MainCluster {
		return db, true
	}
	if db.clusters == nil {
		return nil, false
	}
	d, ok := db.clusters.byName[name]
	return d, ok
}

// ErrUnknownCluster is returned when public.tenants names a cluster this
// process was not given (TENANT_DATABASES differs between processes).
var ErrUnknownCluster = errors.New("postgres: tenant on a cluster this process does not know")

// ForTenant returns the pool of the cluster that holds the tenant's schema
// and the cluster's name. A schema public.tenants does not know (a test's,
// or one being created on main) is on main. Errors: ErrUnknownCluster;
// database errors translated.
func (db *DB) ForTenant(ctx context.Context, schemaName string) (*DB, string, error) {
	if db.clusters == nil {
		return db, MainCluster, nil
	}
	if v, ok := db.clusters.placed.Load(schemaName); ok {
		name := v.(string)
		return db.clusters.byName[name], name, nil
	}
	return db.lookupPlacement(ctx, schemaName, "")
}

// lookupPlacement reads the tenant's cluster, with the row lock lock
// ("" or "FOR SHARE") and caches it.
func (db *DB) lookupPlacement(ctx context.Context, schemaName, lock string) (*DB, string, error) {
	var name string
	err := db.Pool.QueryRow(ctx, `SELECT cluster FROM public.tenants WHERE schema_name = $1 `+lock, schemaName).Scan(&name)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return db, MainCluster, nil
	case err != nil:
		return nil, "", fmt.Errorf("postgres: placement of %s: %w", schemaName, Translate(err))
	}
	d, ok := db.clusters.byName[name]
	if !ok {
		return nil, "", fmt.Errorf("%w: %s is on %q", ErrUnknownCluster, schemaName, name)
	}
	db.clusters.placed.Store(schemaName, name)
	return d, name, nil
}

// ForgetPlacement drops what this process cached of the tenant's cluster;
// the next use reads public.tenants again. Tenant create, delete and move
// call it in the processes that run them.
func (db *DB) ForgetPlacement(schemaName string) {
	if db.clusters != nil {
		db.clusters.placed.Delete(schemaName)
	}
}

// ForgetPlacements drops every cached placement: what a process does when
// told that tenants changed (a move elsewhere).
func (db *DB) ForgetPlacements() {
	if db.clusters != nil {
		db.clusters.placed.Clear()
	}
}

// movedRetryAfter is what a request caught by a tenant's move is told to
// wait before trying again: the switch is over by then.
const movedRetryAfter = time.Second

// checkMoved is called when a tenant transaction on cluster failed with
// err. When the schema is missing there (a move switched the tenant and
// removed or fenced it) and public.tenants now places the tenant
// elsewhere, the cache is corrected, moved is true and an EUNAVAILABLE
// error with a Retry-After replaces err; otherwise err is returned as it
// is.
func (db *DB) checkMoved(ctx context.Context, schemaName, cluster string, err error) (_ error, moved bool) {
	if db.clusters == nil || !(HasCode(err, "42P01") || HasCode(err, "3F000")) { // undefined_table, invalid_schema_name
		return err, false
	}
	db.ForgetPlacement(schemaName)
	// With a share lock: a move from another cluster than main fences the
	// old copy, then commits the new placement, and a writer the fence
	// woke waits for that commit here.
	_, now, lerr := db.lookupPlacement(ctx, schemaName, "FOR SHARE")
	if lerr != nil || now == cluster {
		return err, false
	}
	return fmt.Errorf("%w: %w", &domain.Error{Code: domain.EUNAVAILABLE,
		Message: "tenant moved to another database; try again", RetryAfter: movedRetryAfter}, err), true
}

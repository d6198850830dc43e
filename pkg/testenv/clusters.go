package testenv

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/config"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/schema"
)

// TenantDatabasesEnv names the other PostgreSQL clusters of the tests
// (scripts/services.sh env exports pg2's), as the binary reads it.
const TenantDatabasesEnv = "TENANT_DATABASES"

// MustClusterDatabases is MustDatabase with a fresh database of the test's
// own on every other cluster of TENANT_DATABASES too (the shared
// migrations applied on each, as on main), attached to d.DB so that it
// routes each tenant to the cluster public.tenants records. d.Clusters
// lists them, main first, each with its direct URL, and d.TenantDatabases
// spells them as the binary's TENANT_DATABASES. Every database is dropped
// when the test ends. It fails tb when TENANT_DATABASES names no cluster.
func MustClusterDatabases(tb testing.TB) *Database {
	tb.Helper()
	others, err := config.ParseTenantDatabases(Get(tb).TenantDatabases, "postgres://unused")
	if err != nil {
		tb.Fatalf("testenv: %s: %v", TenantDatabasesEnv, err)
	}
	others = others[1:] // main is the test's own database
	if len(others) == 0 {
		tb.Fatalf("testenv: %s names no other cluster: start pg2 and load its URL with "+
			`scripts/services.sh up && eval "$(scripts/services.sh env)"`, TenantDatabasesEnv)
	}
	d := MustDatabase(tb)
	d.Clusters = []postgres.Cluster{{Name: postgres.MainCluster, DB: d.DB, DirectURL: d.URL}}
	var spelled []string
	for _, o := range others {
		c := mustClusterDatabase(tb, o.Name, o.URL)
		d.Clusters = append(d.Clusters, c)
		spelled = append(spelled, o.Name+"="+c.DirectURL)
	}
	d.TenantDatabases = strings.Join(spelled, ",")
	if err := d.DB.AttachClusters(d.URL, d.Clusters[1:]); err != nil {
		tb.Fatalf("testenv: attach clusters: %v", err)
	}
	return d
}

// mustClusterDatabase makes a fresh database on the cluster at serverURL,
// migrates its public schema, and opens a pool on it.
func mustClusterDatabase(tb testing.TB, name, serverURL string) postgres.Cluster {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dbName := "test_" + RandomName(10)
	admin, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		tb.Fatalf("testenv: connect to cluster %s at %s: %v (is it up? scripts/services.sh up)", name, redact(serverURL), err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{dbName}.Sanitize()); err != nil {
		tb.Fatalf("testenv: create database on %s: %v", name, err)
	}
	u := replaceDatabase(serverURL, dbName)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		c, err := pgx.Connect(ctx, serverURL)
		if err != nil {
			tb.Errorf("testenv: drop database %s on %s: %v", dbName, name, err)
			return
		}
		defer c.Close(ctx)
		// A move's subscription would keep the database in use.
		_, _ = c.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
			WHERE database = $1 AND NOT active`, dbName)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{dbName}.Sanitize()+" WITH (FORCE)"); err != nil {
			tb.Errorf("testenv: drop database %s on %s: %v", dbName, name, err)
		}
	})
	runner, err := schema.NewRunner(u, nil)
	if err != nil {
		tb.Fatalf("testenv: runner on %s: %v", name, err)
	}
	if _, err := runner.MigrateShared(ctx); err != nil {
		tb.Fatalf("testenv: shared migrations on %s: %v", name, err)
	}
	db, err := postgres.Open(ctx, postgres.Config{URL: u})
	if err != nil {
		tb.Fatalf("testenv: open %s: %v", name, err)
	}
	tb.Cleanup(db.Close)
	return postgres.Cluster{Name: name, DB: db, DirectURL: u}
}

// SchemaClusters lists the clusters of d (main first) whose database has
// the schema: where a tenant's schema is, and that it is nowhere else.
func (d *Database) SchemaClusters(tb testing.TB, schemaName string) []string {
	tb.Helper()
	var on []string
	for _, c := range d.Clusters {
		var n int
		if err := c.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, schemaName).Scan(&n); err != nil {
			tb.Fatalf("testenv: schemas of %s: %v", c.Name, err)
		}
		if n > 0 {
			on = append(on, c.Name)
		}
	}
	return on
}

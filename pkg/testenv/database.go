package testenv

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/schema"
)

// Database is a fresh PostgreSQL database of a test's own.
type Database struct {
	// URL reaches the database directly, a session per connection: what
	// DATABASE_DIRECT_URL is to the binary (migrations, the relay's
	// LISTEN, session locks).
	URL string
	// DB is the pool the code under test uses: what DATABASE_URL is to
	// the binary. It is opened on PoolURL in PoolMode: URL in session
	// mode, or PgBouncer in transaction mode (MustPooledDatabase).
	DB       *postgres.DB
	PoolURL  string
	PoolMode postgres.PoolMode
	// Clusters and TenantDatabases are set by MustClusterDatabases.
	Clusters        []postgres.Cluster
	TenantDatabases string
}

// MustDatabase creates an empty database for this test, with the shared
// migrations applied, and drops it when the test ends. With
// SAAS_TEST_POOLER=1 in the environment it is MustPooledDatabase.
func MustDatabase(tb testing.TB) *Database {
	tb.Helper()
	if os.Getenv(PoolerEnv) == "1" {
		return MustPooledDatabase(tb)
	}
	return mustDatabase(tb, "")
}

// MustPool opens another pool like d.DB, of at most maxConns connections,
// closed when the test ends.
func (d *Database) MustPool(tb testing.TB, maxConns int32) *postgres.DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := postgres.Open(ctx, postgres.Config{URL: d.PoolURL, PoolMode: d.PoolMode, MaxConns: maxConns})
	if err != nil {
		tb.Fatalf("testenv: open pool: %v", err)
	}
	tb.Cleanup(db.Close)
	return db
}

// mustDatabase makes the database; its pool goes through poolerURL in
// transaction mode when that is not "".
func mustDatabase(tb testing.TB, poolerURL string) *Database {
	tb.Helper()
	s := Get(tb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	name := "test_" + RandomName(10)
	admin, err := pgx.Connect(ctx, s.DatabaseURL)
	if err != nil {
		tb.Fatalf("testenv: connect to %s: %v (is PostgreSQL up? scripts/services.sh up)", redact(s.DatabaseURL), err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatalf("testenv: create database: %v", err)
	}
	url := replaceDatabase(s.DatabaseURL, name)
	poolURL, mode := url, postgres.PoolSession
	if poolerURL != "" {
		poolURL, mode = replaceDatabase(poolerURL, name), postgres.PoolTransaction
	}

	db, err := postgres.Open(ctx, postgres.Config{URL: poolURL, PoolMode: mode})
	if err != nil {
		tb.Fatalf("testenv: open test database %s: %v", redact(poolURL), err)
	}
	tb.Cleanup(func() {
		db.Close()
		// Dropping a database of thousands of schemas (the relay's idle
		// tenants test) removes tens of thousands of files and waits for a
		// checkpoint: over 30 seconds on a busy two-core machine.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		c, err := pgx.Connect(ctx, s.DatabaseURL)
		if err != nil {
			tb.Errorf("testenv: drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			tb.Errorf("testenv: drop database %s: %v", name, err)
		}
	})
	runner, err := schema.NewRunner(url, nil)
	if err != nil {
		tb.Fatalf("testenv: runner: %v", err)
	}
	if _, err := runner.MigrateShared(ctx); err != nil {
		tb.Fatalf("testenv: shared migrations: %v", err)
	}
	return &Database{URL: url, DB: db, PoolURL: poolURL, PoolMode: mode}
}

// RandomName returns n random lower-case letters: a valid suffix for
// schema, database and index names.
func RandomName(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	const letters = "abcdefghijklmnopqrstuvwxyz"
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}

// replaceDatabase points a PostgreSQL URL at another database.
func replaceDatabase(raw, name string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + name
	return u.String()
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

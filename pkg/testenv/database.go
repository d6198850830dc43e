package testenv

import (
	"context"
	"crypto/rand"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/schema"
)

// Database is a fresh PostgreSQL database of a test's own.
type Database struct {
	URL string
	DB  *postgres.DB
}

// MustDatabase creates an empty database for this test, with the shared
// migrations applied, and drops it when the test ends.
func MustDatabase(tb testing.TB) *Database {
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

	db, err := postgres.Open(ctx, postgres.Config{URL: url})
	if err != nil {
		tb.Fatalf("testenv: open test database: %v", err)
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
	return &Database{URL: url, DB: db}
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

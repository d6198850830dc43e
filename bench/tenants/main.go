// Command tenants benchmarks the tenant lifecycle over many tenants on a
// fresh database: tenant create (p50, p99), `saas migrate` with nothing
// pending, and `saas migrate` with one new migration that adds a column and
// an index. It drops its database at the end.
//
//	go run ./bench/tenants -n 1000 -width 4
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/bench/internal/benchenv"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/schema"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	n := flag.Int("n", 1000, "number of tenants")
	width := flag.Int("width", 4, "migrate width")
	flag.Parse()
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		base = "postgres://saas:saas@127.0.0.1:5432/saas?sslmode=disable"
	}

	name := "bench_" + rand.Text()[:8]
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return err
	}
	defer admin.Exec(context.Background(), "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)") //nolint:errcheck
	u, _ := url.Parse(base)
	u.Path = "/" + name
	dbURL := u.String()

	db, err := postgres.Open(ctx, postgres.Config{URL: dbURL})
	if err != nil {
		return err
	}
	defer db.Close()
	runner, err := schema.NewRunner(dbURL, nil)
	if err != nil {
		return err
	}
	if _, err := runner.MigrateShared(ctx); err != nil {
		return err
	}
	log := slog.New(slog.DiscardHandler)
	m := tenancy.NewManager(db, runner, log)

	fmt.Fprintf(os.Stderr, "load average at start: %s\n", benchenv.LoadAvg())
	lat := make([]time.Duration, 0, *n)
	start := time.Now()
	for i := range *n {
		s := fmt.Sprintf("t%05d", i)
		t0 := time.Now()
		if _, err := m.Create(ctx, tenancy.CreateParams{Schema: s, Name: s, Domain: s + ".bench.localhost"}); err != nil {
			return err
		}
		lat = append(lat, time.Since(t0))
		if (i+1)%100 == 0 {
			fmt.Fprintf(os.Stderr, "created %d tenants\n", i+1)
		}
	}
	createTotal := time.Since(start)
	// Does create slow down as tenants pile up? The first and the last
	// thousand, in creation order.
	k := min(1000, len(lat))
	first, last := slices.Sorted(slices.Values(lat[:k])), slices.Sorted(slices.Values(lat[len(lat)-k:]))
	slices.Sort(lat)

	t0 := time.Now()
	rep, err := m.MigrateAll(ctx, tenancy.MigrateOptions{Width: *width})
	if err != nil {
		return err
	}
	idle := time.Since(t0)
	if rep.Pending != 0 {
		return fmt.Errorf("expected nothing pending, got %+v", rep)
	}

	more, err := withExtraMigration()
	if err != nil {
		return err
	}
	runner2, err := schema.NewRunner(dbURL, more)
	if err != nil {
		return err
	}
	m2 := tenancy.NewManager(db, runner2, log)
	t0 = time.Now()
	rep, err = m2.MigrateAll(ctx, tenancy.MigrateOptions{Width: *width})
	if err != nil {
		return err
	}
	withOne := time.Since(t0)
	if rep.Migrated != *n || len(rep.Failed) != 0 {
		return fmt.Errorf("new migration: %+v", rep)
	}

	fmt.Printf("| tenants | create p50 | create p99 | create total | migrate, nothing pending | migrate, one new migration (width %d) |\n", *width)
	fmt.Printf("| --- | --- | --- | --- | --- | --- |\n")
	fmt.Printf("| %d | %s | %s | %s | %s | %s |\n", *n, pct(lat, 50), pct(lat, 99),
		createTotal.Round(time.Millisecond), idle.Round(time.Microsecond), withOne.Round(time.Millisecond))
	fmt.Printf("\ncreate, the first %d: p50 %s p99 %s; the last %d: p50 %s p99 %s; load average at the end: %s\n",
		k, pct(first, 50), pct(first, 99), k, pct(last, 50), pct(last, 99), benchenv.LoadAvg())
	return nil
}

func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p+99)/100 - 1
	return sorted[max(i, 0)].Round(100 * time.Microsecond)
}

func withExtraMigration() (fs.FS, error) {
	m := fstest.MapFS{}
	err := fs.WalkDir(schema.Tenant, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(schema.Tenant, p)
		m[p] = &fstest.MapFile{Data: b}
		return err
	})
	m["09999_bench_barcode.sql"] = &fstest.MapFile{Data: []byte(
		"-- +goose Up\nALTER TABLE products ADD COLUMN barcode text;\nCREATE INDEX products_barcode_idx ON products (barcode);\n")}
	return m, err
}

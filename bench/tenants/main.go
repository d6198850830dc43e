// Command tenants benchmarks the tenant lifecycle over many tenants on a
// fresh database: tenant create (p50, p99; -create-width at once), `saas
// migrate` with nothing pending, one new migration (a column and an index)
// the previous way (goose per tenant, -goose), and `saas migrate` with one
// more. It drops its database at the end, also when interrupted.
//
//	go run ./bench/tenants -n 1000 -width 4
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/tenantworks/saas/bench/internal/benchenv"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/schema"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	n := flag.Int("n", 1000, "number of tenants")
	width := flag.Int("width", 4, "migrate width")
	alsoWidth := flag.Int("also-width", 0, "then one more new migration at this width (0: none)")
	createWidth := flag.Int("create-width", 1, "tenants created at once (more than 1 makes the create latencies those of concurrent creates)")
	before := flag.Bool("goose", true, "also time the previous way first, each tenant through goose on two new connections, with a migration of its own")
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
	lat := make([]time.Duration, *n)
	start := time.Now()
	var created atomic.Int64
	cg, cctx := errgroup.WithContext(ctx)
	cg.SetLimit(max(*createWidth, 1))
	for i := range *n {
		cg.Go(func() error {
			s := fmt.Sprintf("t%05d", i)
			t0 := time.Now()
			if _, err := m.Create(cctx, tenancy.CreateParams{Schema: s, Name: s, Domain: s + ".bench.localhost"}); err != nil {
				return err
			}
			lat[i] = time.Since(t0)
			if c := created.Add(1); c%100 == 0 {
				fmt.Fprintf(os.Stderr, "%s created %d tenants\n", time.Now().Format("15:04:05"), c)
			}
			return nil
		})
	}
	if err := cg.Wait(); err != nil {
		return err
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

	var gooseTook time.Duration
	if *before {
		more, err := benchenv.TenantMigrationsPlus(9998)
		if err != nil {
			return err
		}
		runner1, err := schema.NewRunner(dbURL, more)
		if err != nil {
			return err
		}
		t0 = time.Now()
		if err := migrateWithGoose(ctx, db, runner1, *width); err != nil {
			return err
		}
		gooseTook = time.Since(t0)
		fmt.Fprintf(os.Stderr, "goose per tenant: %s\n", gooseTook.Round(time.Millisecond))
	}

	more, err := benchenv.TenantMigrationsPlus(9998, 9999)
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
	var alsoTook time.Duration
	if *alsoWidth > 0 {
		more, err := benchenv.TenantMigrationsPlus(9998, 9999, 10000)
		if err != nil {
			return err
		}
		runner3, err := schema.NewRunner(dbURL, more)
		if err != nil {
			return err
		}
		t0 = time.Now()
		rep, err = tenancy.NewManager(db, runner3, log).MigrateAll(ctx, tenancy.MigrateOptions{Width: *alsoWidth})
		if err != nil {
			return err
		}
		alsoTook = time.Since(t0)
		if rep.Migrated != *n || len(rep.Failed) != 0 {
			return fmt.Errorf("new migration at width %d: %+v", *alsoWidth, rep)
		}
	}

	fmt.Printf("| tenants | create p50 | create p99 | create total | migrate, nothing pending | migrate, one new migration (width %d) |\n", *width)
	fmt.Printf("| --- | --- | --- | --- | --- | --- |\n")
	fmt.Printf("| %d | %s | %s | %s | %s | %s |\n", *n, pct(lat, 50), pct(lat, 99),
		createTotal.Round(time.Millisecond), idle.Round(time.Microsecond), withOne.Round(time.Millisecond))
	if *before {
		fmt.Printf("\none new migration the previous way (goose per tenant, two new connections each, width %d): %s, %.2f ms a tenant; now %.2f ms a tenant\n",
			*width, gooseTook.Round(time.Millisecond), ms(gooseTook)/float64(*n), ms(withOne)/float64(*n))
	}
	if *alsoWidth > 0 {
		fmt.Printf("\none more new migration at width %d: %s, %.2f ms a tenant\n", *alsoWidth, alsoTook.Round(time.Millisecond), ms(alsoTook)/float64(*n))
	}
	fmt.Printf("\ncreate, the first %d: p50 %s p99 %s; the last %d: p50 %s p99 %s; load average at the end: %s\n",
		k, pct(first, 50), pct(first, 99), k, pct(last, 50), pct(last, 99), benchenv.LoadAvg())
	return nil
}

func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p+99)/100 - 1
	return sorted[max(i, 0)].Round(100 * time.Microsecond)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// migrateWithGoose is how MigrateAll migrated before it ran each tenant
// in one transaction on a shared pool: goose per tenant (a new *sql.DB,
// two connections: the session lock and the migration, a transaction and
// a WAL flush per migration), then the recorded version in its own
// statement.
func migrateWithGoose(ctx context.Context, db *postgres.DB, runner *schema.Runner, width int) error {
	rows, err := db.Pool.Query(ctx, `SELECT schema_name FROM public.tenants WHERE schema_version < $1 ORDER BY id`, runner.TenantLatest())
	if err != nil {
		return err
	}
	pending, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(width)
	for _, s := range pending {
		g.Go(func() error {
			v, err := runner.MigrateTenant(gctx, s)
			if err != nil {
				return err
			}
			_, err = db.Pool.Exec(gctx, `UPDATE public.tenants SET schema_version = $2, updated_at = now() WHERE schema_name = $1`, s, v)
			return err
		})
	}
	return g.Wait()
}

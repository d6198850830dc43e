// Command api benchmarks the tenant API against its own floor and ceiling,
// each pair measured side by side in one run on one machine:
//
//   - product create through the API (POST /api/catalog/products/, staff
//     token, a unique SKU per request) against pgbench running the same
//     transaction (search_path, product insert, audit entry, outbox
//     insert) at the same concurrency and duration on the same database;
//   - cached retrieve (GET /api/catalog/products/{id}/ of a product in the
//     Redis cache) against GET /api/_bench/fixed/, a fixed body of the same
//     size behind the same middleware (served with SAAS_BENCH_CEILING=1).
//
// It creates a fresh database (shared migrations, one tenant, one staff
// user), builds the saas binary and runs `saas api` as a separate process,
// drives the load over keep-alive connections, runs pgbench, prints a
// Markdown table (req/s, p50, p99) and cleans up after itself: the server is
// stopped, the database dropped and the tenant's Redis keys deleted, on
// error and on interrupt too.
//
// Each workload runs -rounds times (default 3), the two sides of a row
// alternating, each time for -duration after -warmup; the table pools the
// rounds and the per-round ratios are printed beneath it. Every phase is
// bounded by its duration and by -max-requests, and the whole run by
// -timeout.
//
//	go run ./bench/api                                   # 3 rounds of 10 s after 2 s warm-up
//	go run ./bench/api -duration 3s -warmup 1s -rounds 1 # a quick look
//	go run ./bench/api -profile /tmp/prof                # also CPU profiles of the server under each API workload
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

type options struct {
	duration       time.Duration
	warmup         time.Duration
	rounds         int
	createClients  int
	getClients     int
	pgbenchJobs    int
	maxRequests    int64
	timeout        time.Duration
	pgbench        string
	profileDir     string
	dbPoolMaxConns int
	saas           string
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured duration of each workload")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up before each measured window (not counted)")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each runs both sides of each row once, alternately, and the table pools them")
	flag.IntVar(&o.createClients, "create-clients", 32, "concurrent clients (and pgbench -c) of the create row")
	flag.IntVar(&o.getClients, "get-clients", 64, "concurrent clients of the retrieve row")
	flag.IntVar(&o.pgbenchJobs, "pgbench-jobs", 2, "pgbench -j (threads)")
	flag.Int64Var(&o.maxRequests, "max-requests", 2_000_000, "cap on requests per API workload (warm-up included)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "the whole run is abandoned (and cleaned up) after this")
	flag.StringVar(&o.pgbench, "pgbench", "", "pgbench binary (default: pgbench on PATH, else /usr/lib/postgresql/15/bin/pgbench)")
	flag.StringVar(&o.profileDir, "profile", "", "if set, capture a CPU profile of the server under each API workload into this directory (an extra run, not in the table)")
	flag.IntVar(&o.dbPoolMaxConns, "db-pool-max-conns", 0, "if > 0, run the server with pool_max_conns=N in DATABASE_URL (0: the server's default pool)")
	flag.StringVar(&o.saas, "saas", "", "a saas binary to measure (say, one built from another revision) instead of building ./cmd/saas; -profile needs the build")
	flag.Parse()

	if err := validate(o); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	err := run(ctx, o)
	cancel()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func validate(o options) error {
	var errs []error
	if o.duration < time.Second {
		errs = append(errs, errors.New("-duration must be at least 1s"))
	}
	if o.warmup < 0 {
		errs = append(errs, errors.New("-warmup must not be negative"))
	}
	if o.rounds < 1 {
		errs = append(errs, errors.New("-rounds must be at least 1"))
	}
	if o.createClients < 1 || o.getClients < 1 || o.pgbenchJobs < 1 {
		errs = append(errs, errors.New("-create-clients, -get-clients and -pgbench-jobs must be at least 1"))
	}
	if o.createClients%o.pgbenchJobs != 0 {
		errs = append(errs, errors.New("-create-clients must be a multiple of -pgbench-jobs (pgbench requires it)"))
	}
	if o.saas != "" && o.profileDir != "" {
		errs = append(errs, errors.New("-profile needs the saas binary this run builds: drop -saas"))
	}
	if o.maxRequests < 1 {
		errs = append(errs, errors.New("-max-requests must be at least 1"))
	}
	return errors.Join(errs...)
}

func run(ctx context.Context, o options) (err error) {
	pgb, err := findPgbench(o.pgbench)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "bench-api-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	ovl, err := writeOverlay(ctx, tmp)
	if err != nil {
		return err
	}
	env, err := setup(ctx, ovl, o.saas)
	if err != nil {
		return err
	}
	defer env.Close()
	logf("database %s, tenant %s (%s)", env.DatabaseName(), env.schema, env.host)

	logf("building saas")
	if _, err := env.Binary(ctx); err != nil {
		return err
	}
	srv, err := startServer(ctx, env, o)
	if err != nil {
		return err
	}
	defer srv.Stop()

	b := &bench{o: o, env: env, srv: srv, tmp: tmp, pgbench: pgb}
	rep, err := b.measure(ctx)
	if err != nil {
		return err
	}
	if o.profileDir != "" {
		if err := b.profile(ctx); err != nil {
			return err
		}
	}
	rep.print(os.Stdout, o, runtime.NumCPU())
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

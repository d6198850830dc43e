// Command clusters benchmarks many tenants spread over several PostgreSQL
// clusters against the same number on one cluster: tenant create (p50, p99,
// the first and the last 1,000), one new tenant migration (a column and an
// index) over all of them with tenancy.Manager.MigrateAll (the clusters in
// parallel), and the idle cost of `saas relay` (its process's and its
// PostgreSQL backends' CPU over a window without any write), which sweeps
// and listens on every cluster.
//
//	go run ./bench/clusters -n 3000 -clusters 3
//
// Each side runs on a private stack (bench/internal/stack): fresh databases
// on main and on the other clusters of $TENANT_DATABASES, and, for clusters
// the environment lacks, throw-away PostgreSQL servers (initdb in a temp
// dir, a free loopback port; as root they run as the postgres OS user).
// Everything is dropped, stopped and removed at the end, also on error or
// Ctrl-C. A side that measured nothing (no tenant created, a tenant not
// migrated, a cluster without tenants, no relay CPU readable) fails the
// run with exit status 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/bench/internal/benchenv"
	"github.com/tenantworks/saas/bench/internal/stack"
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

type options struct {
	n, width      int
	idle, settle  time.Duration
	quietLimit    time.Duration
	natsServer    string
	saas          string
	createWidth   int
	clusterCounts []int
}

func run(ctx context.Context) error {
	var o options
	flag.IntVar(&o.n, "n", 3000, "tenants on each side")
	k := flag.Int("clusters", 3, "clusters of the spread side; main, then $TENANT_DATABASES's, then throw-away servers")
	compare := flag.Bool("compare", true, "also run the same on one cluster (main alone), first")
	spreadFirst := flag.Bool("spread-first", false, "with -compare, run the one-cluster side second")
	flag.IntVar(&o.width, "width", 8, "MigrateAll width (per cluster)")
	flag.IntVar(&o.createWidth, "create-width", 1, "tenants created at once (more than 1 makes the create latencies those of concurrent creates)")
	flag.DurationVar(&o.idle, "idle", 60*time.Second, "relay idle window")
	flag.DurationVar(&o.settle, "settle", 10*time.Second, "wait after the relay starts, before waiting for its backends to go quiet")
	flag.DurationVar(&o.quietLimit, "quiet-limit", 15*time.Minute, "longest wait for the relay's start-up work (its first audit prune walks every tenant) to end before the idle window")
	flag.StringVar(&o.natsServer, "nats-server", "", "nats-server binary (default: PATH, then $SERVICES_DIR/bin)")
	timeout := flag.Duration("timeout", 45*time.Minute, "the whole run")
	flag.Parse()
	if o.n < 1 || *k < 1 {
		return errors.New("-n and -clusters must be at least 1")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	o.clusterCounts = []int{*k}
	if *compare && *k > 1 {
		o.clusterCounts = []int{1, *k}
		if *spreadFirst {
			o.clusterCounts = []int{*k, 1}
		}
	}

	// One build for both sides.
	dir, err := os.MkdirTemp("", "bench-clusters-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.saas, err = benchenv.BuildSaas(ctx, dir, ""); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "load average at start: %s\n", benchenv.LoadAvg())
	var results []result
	for _, c := range o.clusterCounts {
		r, err := side(ctx, o, c)
		if err != nil {
			return fmt.Errorf("%d cluster(s): %w", c, err)
		}
		results = append(results, r)
	}
	report(o, results)
	return nil
}

// result is what one side measured.
type result struct {
	clusters        int
	names           []string
	placed          map[string]int
	loadStart       string
	loadEnd         string
	create          []time.Duration // in creation order
	createOn        []string        // the cluster each tenant was placed on
	createTotal     time.Duration
	migrate         time.Duration
	migratePer      map[string]time.Duration // a cluster's last tenant done, from the start
	relayStart      time.Duration            // the relay's CPU from its start to the window
	startBackends   time.Duration            // its backends' CPU from its start to the window
	startWall       time.Duration            // from its start to the window
	relay, backends map[string]time.Duration // idle window; relay under "" (the process)
	window          time.Duration
}

// appName tags the relay's connections, so that its backends can be found
// on each cluster.
const appName = "bench_clusters_relay"

// side makes a stack with k clusters, creates o.n tenants, migrates them
// all, measures the relay idle, and removes the stack.
func side(ctx context.Context, o options, k int) (result, error) {
	r := result{clusters: k, placed: map[string]int{}, migratePer: map[string]time.Duration{}, loadStart: benchenv.LoadAvg()}
	fmt.Fprintf(os.Stderr, "%s %d cluster(s): starting the stack (load average %s)\n", now(), k, r.loadStart)
	st, err := stack.New(ctx, stack.Options{Name: "bench_clusters", Clusters: k, Streams: true, NATSServer: o.natsServer, Saas: o.saas})
	if err != nil {
		return r, err
	}
	defer st.Close()
	db := st.DB()
	for _, c := range db.Clusters() {
		r.names = append(r.names, c.Name)
	}
	if len(r.names) != k {
		return r, fmt.Errorf("asked for %d clusters, the stack has %d (%s)", k, len(r.names), strings.Join(r.names, ", "))
	}
	log := slog.New(slog.DiscardHandler)

	// Tenant create, each timed, the cluster left to tenancy's default
	// (the one with the fewest tenants).
	r.create = make([]time.Duration, o.n)
	r.createOn = make([]string, o.n)
	var mu sync.Mutex
	created := 0
	sem := make(chan struct{}, max(o.createWidth, 1))
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range o.n {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s := fmt.Sprintf("t%05d", i)
			t0 := time.Now()
			t, err := st.Manager().Create(ctx, tenancy.CreateParams{Schema: s, Name: s, Domain: s + ".bench.localhost"})
			if err != nil {
				select {
				case errc <- fmt.Errorf("create %s: %w", s, err):
				default:
				}
				return
			}
			d := time.Since(t0)
			mu.Lock()
			r.create[i] = d
			r.createOn[i] = t.Cluster
			created++
			if created%500 == 0 {
				fmt.Fprintf(os.Stderr, "%s created %d tenants\n", now(), created)
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	r.createTotal = time.Since(start)
	if err := ctx.Err(); err != nil {
		return r, fmt.Errorf("creating tenants: %w", err)
	}
	select {
	case err := <-errc:
		return r, err
	default:
	}
	if created != o.n {
		return r, fmt.Errorf("created %d tenants of %d", created, o.n)
	}
	rows, err := db.Pool.Query(ctx, `SELECT cluster, count(*) FROM public.tenants GROUP BY cluster`)
	if err != nil {
		return r, fmt.Errorf("tenants per cluster: %w", err)
	}
	var name string
	var count int
	if _, err := pgx.ForEachRow(rows, []any{&name, &count}, func() error { r.placed[name] = count; return nil }); err != nil {
		return r, fmt.Errorf("tenants per cluster: %w", err)
	}
	for _, c := range r.names {
		if r.placed[c] == 0 {
			return r, fmt.Errorf("no tenant was placed on cluster %s: %v", c, r.placed)
		}
	}

	// One new tenant migration over every tenant, every cluster at once.
	more, err := benchenv.TenantMigrationsPlus(9998)
	if err != nil {
		return r, err
	}
	runner, err := schema.NewRunner(st.DatabaseURL(), more)
	if err != nil {
		return r, err
	}
	fmt.Fprintf(os.Stderr, "%s migrating %d tenants (width %d per cluster)\n", now(), o.n, o.width)
	t0 := time.Now()
	rep, err := tenancy.NewManager(db, runner, log).MigrateAll(ctx, tenancy.MigrateOptions{Width: o.width,
		Progress: func(p tenancy.MigrateProgress) {
			if p.Done == p.Total {
				r.migratePer[p.Cluster] = time.Since(t0)
			}
		}})
	r.migrate = time.Since(t0)
	if err != nil {
		return r, err
	}
	if rep.Migrated != o.n || len(rep.Failed) != 0 {
		return r, fmt.Errorf("migrated %d tenants of %d (%d failed: %v)", rep.Migrated, o.n, len(rep.Failed), rep.Failed[:min(3, len(rep.Failed))])
	}
	var atTarget int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM public.tenants WHERE schema_version = $1`, rep.Target).Scan(&atTarget); err != nil {
		return r, err
	}
	if atTarget != o.n {
		return r, fmt.Errorf("%d tenants of %d record version %d", atTarget, o.n, rep.Target)
	}

	if err := relayIdle(ctx, o, st, &r); err != nil {
		return r, err
	}
	r.loadEnd = benchenv.LoadAvg()
	fmt.Fprintf(os.Stderr, "%s %d cluster(s) done; removing the stack\n", now(), k)
	return r, nil
}

// relayIdle starts `saas relay` on the stack, its connections tagged with
// appName on every cluster, lets it settle, and measures its CPU and its
// backends' over o.idle with no write anywhere.
func relayIdle(ctx context.Context, o options, st *stack.Stack, r *result) error {
	clusters := st.DB().Clusters()
	tag := func(raw string) (string, error) {
		u, err := url.Parse(raw)
		if err != nil {
			return "", err
		}
		q := u.Query()
		q.Set("application_name", appName)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	mainURL, err := tag(st.DatabaseURL())
	if err != nil {
		return err
	}
	var others []string
	for _, c := range clusters[1:] {
		u, err := tag(c.DirectURL)
		if err != nil {
			return err
		}
		others = append(others, c.Name+"="+u)
	}
	relayProc, err := st.Start(ctx, "relay", "DATABASE_URL="+mainURL, "TENANT_DATABASES="+strings.Join(others, ","), "METRICS_ADDR=off")
	if err != nil {
		return err
	}
	defer relayProc.Stop()
	started := time.Now()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(o.settle):
	}
	// The window must not measure the relay's start-up: its first audit
	// prune probes every tenant's trail (at 30,000 tenants, many seconds
	// of its backends' CPU, once an hour afterwards).
	fmt.Fprintf(os.Stderr, "%s waiting for the relay's backends to go quiet\n", now())
	if r.startBackends, err = waitQuiet(ctx, clusters, o.quietLimit); err != nil {
		return err
	}
	if err := relayProc.Exited(); err != nil {
		return err
	}
	pid := relayProc.PID()
	r.relayStart, r.startWall = benchenv.ProcessCPU(pid), time.Since(started)
	if r.relayStart == 0 {
		return fmt.Errorf("no CPU time readable for the relay (pid %d, /proc/%d/stat)", pid, pid)
	}
	before, err := backendsCPU(ctx, clusters)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s relay idle window, %s\n", now(), o.idle)
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(o.idle):
	}
	r.window = time.Since(t0)
	r.relay = map[string]time.Duration{"": benchenv.ProcessCPU(pid) - r.relayStart}
	after, err := backendsCPU(ctx, clusters)
	if err != nil {
		return err
	}
	if err := relayProc.Exited(); err != nil {
		return fmt.Errorf("during the idle window: %w", err)
	}
	r.backends = map[string]time.Duration{}
	for _, c := range clusters {
		if len(after[c.Name]) == 0 {
			return fmt.Errorf("the relay has no connection on cluster %s", c.Name)
		}
		for p, t := range after[c.Name] {
			r.backends[c.Name] += t - before[c.Name][p]
		}
	}
	if s := strings.TrimSpace(relayProc.LogTail(4096)); s != "" {
		fmt.Fprintf(os.Stderr, "relay log:\n%s\n", s)
	}
	return nil
}

// waitQuiet returns once the relay's backends, on every cluster together,
// used at most one /proc tick (10 ms) of CPU a second for three seconds in
// a row, with their CPU time so far; an error past limit.
func waitQuiet(ctx context.Context, clusters []postgres.Cluster, limit time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(limit)
	var prev time.Duration
	for calm := 0; ; {
		cpu, err := backendsCPU(ctx, clusters)
		if err != nil {
			return 0, err
		}
		var total time.Duration
		for _, byPID := range cpu {
			for _, t := range byPID {
				total += t
			}
		}
		if total-prev <= 10*time.Millisecond {
			calm++
		} else {
			calm = 0
		}
		prev = total
		if calm >= 3 {
			return total, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("the relay's backends were still busy %s after the settle", limit)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// backendsCPU is the CPU time of each of the relay's backends, by cluster
// and pid. Every cluster runs on this machine, so /proc has them all.
func backendsCPU(ctx context.Context, clusters []postgres.Cluster) (map[string]map[int]time.Duration, error) {
	out := map[string]map[int]time.Duration{}
	for _, c := range clusters {
		rows, err := c.DB.Pool.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, appName)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		out[c.Name] = map[int]time.Duration{}
		for _, p := range pids {
			out[c.Name][int(p)] = benchenv.ProcessCPU(int(p))
		}
	}
	return out, nil
}

func report(o options, results []result) {
	fmt.Printf("%d tenants a side, created %d at a time; MigrateAll width %d per cluster; relay idle window %s once its backends were quiet (after at least %s)\n\n",
		o.n, max(o.createWidth, 1), o.width, o.idle, o.settle)
	fmt.Println("| clusters (tenants each) | load avg (start; end) | create p50 | create p99 | first 1,000 p50 / p99 | last 1,000 p50 / p99 | create total | one new migration, all tenants (per cluster) | relay idle CPU: process + backends (share of one core) |")
	fmt.Println("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range results {
		var placed, per, backs []string
		var bsum time.Duration
		for _, c := range r.names {
			placed = append(placed, fmt.Sprintf("%s %d", c, r.placed[c]))
			per = append(per, fmt.Sprintf("%s %s", c, fmtD(r.migratePer[c])))
			backs = append(backs, fmt.Sprintf("%s %s", c, r.backends[c]))
			bsum += r.backends[c]
		}
		k := min(1000, len(r.create))
		first := slices.Sorted(slices.Values(r.create[:k]))
		last := slices.Sorted(slices.Values(r.create[len(r.create)-k:]))
		all := slices.Sorted(slices.Values(r.create))
		relay := r.relay[""]
		fmt.Printf("| %d (%s) | %s; %s | %s | %s | %s / %s | %s / %s | %s | **%s** (%s) | %s + %s (%s) = %.3f%% |\n",
			r.clusters, strings.Join(placed, ", "), r.loadStart, r.loadEnd,
			pct(all, 50), pct(all, 99), pct(first, 50), pct(first, 99), pct(last, 50), pct(last, 99),
			fmtD(r.createTotal), fmtD(r.migrate), strings.Join(per, ", "),
			relay, bsum, strings.Join(backs, ", "), 100*float64(relay+bsum)/float64(r.window))
	}
	for _, r := range results {
		if r.clusters < 2 {
			continue
		}
		fmt.Printf("\ncreate by the cluster the tenant was placed on, %d clusters:", r.clusters)
		for _, c := range r.names {
			var on []time.Duration
			for i, d := range r.create {
				if r.createOn[i] == c {
					on = append(on, d)
				}
			}
			slices.Sort(on)
			fmt.Printf(" %s p50 %s p99 %s;", c, pct(on, 50), pct(on, 99))
		}
		fmt.Println()
	}
	fmt.Printf("\nrelay from its start to the window (start-up, first sweeps, the first audit prune over every tenant), process + backends CPU over the time:")
	for _, r := range results {
		fmt.Printf(" %d cluster(s) %s + %s over %s;", r.clusters, r.relayStart, r.startBackends, fmtD(r.startWall))
	}
	fmt.Printf(" CPU times are in /proc's 10 ms ticks. Load average at the end: %s\n", benchenv.LoadAvg())
}

func pct(sorted []time.Duration, p float64) time.Duration {
	return benchenv.Percentile(sorted, p).Round(100 * time.Microsecond)
}

func fmtD(d time.Duration) string {
	if d >= time.Minute {
		return d.Round(time.Second).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

func now() string { return time.Now().UTC().Format("15:04:05") }

// Command relay measures the outbox relay's throughput: events pre-loaded in
// the outboxes of several tenants, from relay start to every event
// acknowledged by the stream, side by side with `nats bench` publishing the
// same number of messages of the same size, in batches of the relay's size
// with every ack awaited, against the same private nats-server.
//
//	go run ./bench/relay -tenants 10 -events 5000
//
// With -mode idle it measures instead `saas relay` (built and run as its
// own process) among many idle tenants and a few active ones: its CPU, and
// that of its PostgreSQL backends, over a window without any write, then
// commit-to-publish latency and CPU while the active tenants write:
//
//	go run ./bench/relay -mode idle -idle-tenants 10000 -active 10
//
// It needs the nats-server binary (scripts/services.sh installs it) and the
// nats CLI (go install github.com/nats-io/natscli/nats@v0.3.0; later versions
// need a newer server than the pinned 2.12.2) on PATH or
// given with -nats-server and -nats-cli. It creates and drops its own
// database and runs its own nats-server on a free loopback port.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/bench/internal/benchenv"
	"github.com/tenantworks/saas/bench/internal/stack"
	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/workers/relay"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run() error {
	nTenants := flag.Int("tenants", 10, "tenants with pre-loaded outboxes")
	perTenant := flag.Int("events", 5000, "events per tenant")
	batch := flag.Int("batch", 500, "relay batch (events per transaction) and nats bench batch")
	workers := flag.Int("workers", 4, "relay workers (tenants drained at once)")
	nClusters := flag.Int("clusters", 0, "PostgreSQL clusters the tenants are spread over: 0 main and every one of $TENANT_DATABASES, 1 main alone")
	natsServer := flag.String("nats-server", "", "nats-server binary (default: PATH, then /var/lib/saas-services/bin)")
	natsCLI := flag.String("nats-cli", "nats", "nats CLI binary")
	mode := flag.String("mode", "throughput", "throughput, or idle (see the command's doc)")
	var idle idleOptions
	flag.IntVar(&idle.idle, "idle-tenants", 10000, "idle mode: tenants that never write")
	flag.IntVar(&idle.active, "active", 10, "idle mode: tenants that write")
	flag.Float64Var(&idle.rate, "rate", 10, "idle mode: writes a second per active tenant")
	flag.IntVar(&idle.width, "create-width", 8, "idle mode: tenants created at once")
	flag.DurationVar(&idle.idleWindow, "idle-window", time.Minute, "idle mode: length of the window without writes")
	flag.DurationVar(&idle.window, "active-window", time.Minute, "idle mode: length of the window with writes")
	flag.DurationVar(&idle.settle, "settle", 10*time.Second, "idle mode: wait after the relay started before measuring")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the relay's run (throughput mode) to this file")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	switch *mode {
	case "idle":
		if idle.active < 1 || idle.rate <= 0 || idle.idle < 0 {
			return errors.New("idle mode needs -active >= 1, -rate > 0 and -idle-tenants >= 0")
		}
		return runIdle(ctx, idle, *natsServer)
	case "throughput":
	default:
		return fmt.Errorf("-mode must be throughput or idle, not %q", *mode)
	}

	if *nTenants < 1 || *perTenant < 1 || *batch < 1 || *workers < 1 {
		return errors.New("-tenants, -events, -batch and -workers must be at least 1")
	}
	fmt.Fprintf(os.Stderr, "load average at start: %s\n", benchenv.LoadAvg())
	// The tenants are spread over the clusters as `saas tenant create`
	// places them, and the relay drains every one, as `saas relay` does.
	st, err := stack.New(ctx, stack.Options{Name: "bench_relay", NATSServer: *natsServer, Clusters: *nClusters})
	if err != nil {
		return err
	}
	defer st.Close()
	natsURL, db, mgr := st.NATSURL(), st.DB(), st.Manager()
	// The relay's warnings (failed drains, retried) go to stderr: a run
	// that stalls says why.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var names []string
	for i := range *nTenants {
		s := fmt.Sprintf("relay%03d", i)
		if _, err := mgr.Create(ctx, tenancy.CreateParams{Schema: s, Name: s, Domain: s + ".bench.localhost"}); err != nil {
			return err
		}
		names = append(names, s)
	}
	fmt.Fprintf(os.Stderr, "created %d tenants\n", len(names))
	// Pre-load: product-shaped payloads, one statement per tenant (so one
	// outbox_pending marker each, as a burst of writes leaves many).
	for _, s := range names {
		err := db.InTenant(ctx, s, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO outbox (event_id, event_type, aggregate_id, aggregate_version, payload, request_id)
				SELECT gen_random_uuid(), 'product.created', gen_random_uuid(), 1,
				       jsonb_build_object('id', gen_random_uuid(), 'sku', 'SKU-' || g, 'name', 'Product number ' || g,
				         'description', 'A product pre-loaded for the relay benchmark', 'price', '19.99', 'currency', 'EUR',
				         'stock', 10, 'version', 1, 'created_at', now(), 'updated_at', now()),
				       'bench-request-' || g
				FROM generate_series(1, $1) g`, *perTenant)
			return err
		})
		if err != nil {
			return err
		}
	}
	total := *nTenants * *perTenant
	fmt.Fprintf(os.Stderr, "pre-loaded %d events\n", total)
	var size int
	if err := db.InTenant(ctx, names[0], func(tx pgx.Tx) error {
		// The published envelope is the payload plus about 250 bytes of fields.
		return tx.QueryRow(ctx, `SELECT avg(length(payload::text))::int + 250 FROM outbox`).Scan(&size)
	}); err != nil {
		return err
	}

	nc, err := events.Connect(natsURL, "bench-relay")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if err := events.EnsureStreams(ctx, js, events.StreamConfig{}); err != nil {
		return err
	}
	stream, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		return err
	}

	clusters := relay.ClustersOf(db.Clusters())
	if clusters[0].ListenURL == "" { // main alone: no clusters attached
		clusters[0].ListenURL = st.DatabaseURL()
	}
	rl, err := relay.New(relay.Config{Batch: *batch, Workers: *workers},
		relay.Deps{Clusters: clusters, JS: js, Log: log})
	if err != nil {
		return err
	}
	rctx, stopRelay := context.WithCancel(ctx)
	defer stopRelay()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		_ = rl.Run(rctx)
	})
	for {
		info, err := stream.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs >= uint64(total) {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("relay published %d of %d before the deadline", info.State.Msgs, total)
		}
		// Not more often: each look is a JetStream API request that the
		// server (and this process) would serve at the relay's expense on a
		// busy machine. The end is known to within 50 ms.
		time.Sleep(50 * time.Millisecond)
	}
	relayDur := time.Since(start)
	stopRelay()
	wg.Wait()
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	relayRate := float64(total) / relayDur.Seconds()
	fmt.Fprintf(os.Stderr, "relay: %d events in %s, load average %s\n", total, relayDur.Round(time.Millisecond), benchenv.LoadAvg())

	// nats bench: the same count, size and batch, acks awaited per batch,
	// into a stream of its own on the same server.
	out, err := exec.CommandContext(ctx, *natsCLI, "bench", "js", "pub", "async", "bench.relay", "--dedup",
		"--server", natsURL, "--msgs", strconv.Itoa(total), "--size", strconv.Itoa(size),
		"--batch", strconv.Itoa(*batch), "--clients", "1", "--create", "--storage", "file",
		"--stream", "BENCH", "--purge", "--no-progress").CombinedOutput()
	if err != nil {
		return fmt.Errorf("nats bench: %w\n%s", err, out)
	}
	benchRate, err := parseRate(string(out))
	if err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	// A rate that is not a positive number measured nothing: fail rather
	// than print a ratio of it.
	for _, r := range []struct {
		what string
		v    float64
	}{{"relay", relayRate}, {"nats bench", benchRate}} {
		if !(r.v > 0) || math.IsInf(r.v, 0) {
			return fmt.Errorf("%s rate %v: nothing measured\n%s", r.what, r.v, out)
		}
	}

	fmt.Printf("| what | events | size | batch | time | events/s |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
	fmt.Printf("| relay, outbox to acknowledged in the stream (%d tenants, %d workers) | %d | ~%d B | %d | %s | %.0f |\n",
		*nTenants, *workers, total, size, *batch, relayDur.Round(time.Millisecond), relayRate)
	fmt.Printf("| `nats bench js pub async --dedup`, same server | %d | %d B | %d | | %.0f |\n", total, size, *batch, benchRate)
	fmt.Printf("| **ratio relay / nats bench** | | | | | **%.2f** |\n", relayRate/benchRate)
	fmt.Printf("\nload average at the end: %s\n", benchenv.LoadAvg())
	return nil
}

var rateRE = regexp.MustCompile(`([\d,]+(?:\.\d+)?) msgs/sec`)

func parseRate(out string) (float64, error) {
	m := rateRE.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		return 0, errors.New("no msgs/sec in nats bench output")
	}
	// The summary (last) line is the aggregate.
	r, err := strconv.ParseFloat(strings.ReplaceAll(m[len(m)-1][1], ",", ""), 64)
	if err != nil {
		return 0, fmt.Errorf("nats bench rate %q: %w", m[len(m)-1][1], err)
	}
	if !(r > 0) || math.IsInf(r, 0) {
		return 0, fmt.Errorf("nats bench rate %q: not a positive number", m[len(m)-1][1])
	}
	return r, nil
}

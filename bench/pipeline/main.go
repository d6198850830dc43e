// Command pipeline measures the event pipeline end to end on one fresh
// stack: a product written through the API, to its live notification on a
// staff user's WebSocket and to the first search that finds it; then the
// indexer's throughput on a 10,000-product backlog.
//
//	go tool task bench:pipeline            # = go run ./bench/pipeline
//	go run ./bench/pipeline -rate 200 -duration 20s -backlog 10000
//
// It builds ./cmd/saas, makes a fresh database (dropped at the end), runs a
// private nats-server (the nats-server binary, as bench/relay does; killed
// at the end), uses a random ELASTICSEARCH_INDEX_PREFIX (its indices deleted
// at the end) and Redis db -redis-db (13; must be empty, FLUSHDB at the
// end). Everything listens on loopback; the whole run is bounded by
// -timeout and stops by itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/tenantworks/saas/bench/internal/benchenv"
)

type options struct {
	rate           float64
	duration       time.Duration
	warmup         time.Duration
	drain          time.Duration
	poll           time.Duration
	maxInflight    int
	backlog        int
	backlogWorkers int
	tenants        int
	tenantDocs     int
	tenantWorkers  int
	redisDB        int
	natsServer     string
	timeout        time.Duration
	buildOverlay   string
}

func main() {
	var o options
	flag.Float64Var(&o.rate, "rate", 200, "product writes per second (part 1)")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "measured window of paced writes (part 1)")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "paced writes before the measured window, not counted")
	flag.DurationVar(&o.drain, "drain", 15*time.Second, "after the last write, longest wait for the last notifications and searches")
	flag.DurationVar(&o.poll, "poll", 10*time.Millisecond, "search poller interval")
	flag.IntVar(&o.maxInflight, "max-inflight", 64, "most writes in flight; a write due when they are all busy is skipped and counted")
	flag.IntVar(&o.backlog, "backlog", 10000, "products in the indexer backlog (part 2)")
	flag.IntVar(&o.backlogWorkers, "backlog-workers", 8, "goroutines writing the backlog")
	flag.IntVar(&o.tenants, "tenants", 1000, "extra tenants on the shared search indices during the run, each with its alias (tenancy.Manager and the search hook)")
	flag.IntVar(&o.tenantDocs, "tenant-docs", 20, "documents written into each extra tenant's alias")
	flag.IntVar(&o.tenantWorkers, "tenant-workers", 4, "extra tenants created at a time")
	flag.IntVar(&o.redisDB, "redis-db", 13, "Redis db number for the stack (must be empty; flushed at the end)")
	flag.StringVar(&o.natsServer, "nats-server", "", "nats-server binary (default: PATH, then $SERVICES_DIR/bin)")
	flag.StringVar(&o.buildOverlay, "build-overlay", "", "go build -overlay file for the saas binary (try a change without editing the tree; default none)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "bound on the whole run")
	flag.Parse()
	if o.rate <= 0 || o.duration <= 0 || o.backlog <= 0 || o.backlogWorkers <= 0 || o.maxInflight <= 0 || o.poll <= 0 || o.tenantWorkers <= 0 {
		fmt.Fprintln(os.Stderr, "error: -rate, -duration, -backlog, -backlog-workers, -max-inflight, -poll and -tenant-workers must be positive")
		os.Exit(2)
	}
	if o.tenants < 0 || o.tenantDocs < 0 {
		fmt.Fprintln(os.Stderr, "error: -tenants and -tenant-docs must not be negative")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	loadStart := benchenv.LoadAvg()
	logf("load average at start: %s", loadStart)
	logf("building saas, creating the database, tenants and private nats-server")
	s, err := setup(ctx, o)
	if err != nil {
		return err
	}
	defer s.Close()

	logf("%d extra tenants with %d documents each, %d at a time", o.tenants, o.tenantDocs, o.tenantWorkers)
	cr, err := crowd(ctx, s, o)
	if err != nil {
		return err
	}
	if o.tenants > 0 {
		logf("extra tenants made in %s: %d aliases under the prefix, %d documents in the shared indices", cr.took.Round(time.Millisecond), cr.aliases, cr.sharedDocs)
	}

	refresh, err := s.refreshInterval(ctx, s.live.schema)
	if err != nil {
		return fmt.Errorf("refresh interval: %w", err)
	}

	// Part 1: saas dev, every role in one process.
	dev, err := s.Start(ctx, "dev")
	if err != nil {
		return err
	}
	base := dev.URL()
	logf("saas dev up; part 1: %.0f writes/s for %s after %s warm-up", o.rate, o.duration, o.warmup)
	lat, err := runLatency(ctx, s, base, o)
	if err != nil {
		return err
	}
	if err := dev.Exited(); err != nil {
		return err
	}
	dev.Stop()
	if st, err := readStages(ctx, s, lat.indexBase, lat.indexPoints); err != nil {
		logf("stage timings not read: %v", err)
	} else {
		lat.splitStages(st)
	}
	// A row of zeros is never a result: it is the bench not seeing what
	// the stack did (as when it searched raw product ids while documents
	// are <schema>:<id>).
	// Both, when the WebSocket closed early: it explains missing notifications.
	err = errors.Join(lat.check(), lat.wsErr)
	if err != nil {
		report(os.Stdout, o, refresh, cr, lat, backlogResult{}, loadStart, benchenv.LoadAvg())
		return err
	}

	// Part 1's results now: part 2 may yet fail or time out.
	report(os.Stdout, o, refresh, cr, lat, backlogResult{}, loadStart, benchenv.LoadAvg())

	logf("part 2: %d products into the backlog tenant, then the relay alone, then saas worker indexer alone", o.backlog)
	bl, err := runBacklog(ctx, s, o)
	if err != nil {
		return err
	}
	loadEnd := benchenv.LoadAvg()

	fmt.Printf("\nload average at the end %s\n", loadEnd)
	reportBacklog(os.Stdout, o, bl)
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// at is the percentile p of ds as ms, or "none" when there is no sample:
// an empty measurement is never shown as 0 ms.
func at(ds []time.Duration, p float64) string {
	if len(ds) == 0 {
		return "none"
	}
	return ms(pct(ds, p))
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

func report(w *os.File, o options, refresh string, cr crowdResult, lat latencyResult, bl backlogResult, loadStart, loadEnd string) {
	refreshDur, err := time.ParseDuration(strings.Fields(refresh)[0])
	if err != nil {
		refreshDur = time.Second
	}
	searchTarget := refreshDur + 100*time.Millisecond
	fmt.Fprintf(w, "\nbench/pipeline: %s, GOMAXPROCS %d, load average %s at start, %s at the end\n",
		runtime.Version(), runtime.GOMAXPROCS(0), loadStart, loadEnd)
	if o.buildOverlay != "" {
		fmt.Fprintf(w, "saas built with -overlay %s (not the tree as it is)\n", o.buildOverlay)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Tenants: the two measured and %d more (created by tenancy.Manager with the search hook, %d at a time, in %s), %d documents each written through their aliases; during the run %d aliases under the prefix, %d documents in the shared indices\n\n",
		cr.tenants, o.tenantWorkers, cr.took.Round(time.Second), o.tenantDocs, cr.aliases, cr.sharedDocs)
	fmt.Fprintf(w, "Part 1: `saas dev`, %.0f writes/s offered for %s (after %s warm-up): %d products measured (%.1f/s achieved), %d write errors, %d writes skipped (%d already in flight), %d WebSocket messages; index refresh_interval %s; %d searches (p50 %s)\n\n",
		o.rate, o.duration, o.warmup, lat.measured, lat.writeRate, lat.errors, lat.skipped, o.maxInflight, lat.wsMessages, refresh, lat.searches, at(lat.searchTime, 50))
	fmt.Fprintf(w, "| measurement | n | missing | p50 | p99 | max | target | |\n| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |\n")
	fmt.Fprintf(w, "| write: `POST /api/catalog/products/` until its 201 (t0) | %d | | %s | %s | %s | | |\n",
		len(lat.post), at(lat.post, 50), at(lat.post, 99), at(lat.post, 100))
	noteP99 := pct(lat.note, 99)
	fmt.Fprintf(w, "| notification: WebSocket message with data.product_id, after t0 | %d | %d | %s | %s | %s | p99 < 50 ms | %s |\n",
		len(lat.note), lat.noteMissing, at(lat.note, 50), at(lat.note, 99), at(lat.note, 100), met(len(lat.note) > 0 && noteP99 < 50*time.Millisecond && lat.noteMissing == 0))
	searchP99 := pct(lat.search, 99)
	fmt.Fprintf(w, "| searchable: first `_search` (ids, every %s) that finds it, after t0 | %d | %d | %s | %s | %s | p99 < %s | %s |\n",
		o.poll, len(lat.search), lat.searchMissing, at(lat.search, 50), at(lat.search, 99), at(lat.search, 100),
		ms(searchTarget), met(len(lat.search) > 0 && searchP99 < searchTarget && lat.searchMissing == 0))
	if st := lat.stages; st.n > 0 {
		fmt.Fprintf(w, "\nSearchable, by stage (%d of the products found; the stream's timestamp of each event, the index's index_total counter polled every poll interval):\n\n", st.n)
		fmt.Fprintf(w, "| stage | p50 | p99 | max |\n| --- | ---: | ---: | ---: |\n")
		for _, r := range []struct {
			what string
			ds   []time.Duration
		}{
			{"201 to the event stored in the stream (relay)", st.publish},
			{"stream to the document received by Elasticsearch (indexer: fetch, database check, bulk)", st.bulk},
			{"document received to the first search that finds it (refresh, poll)", st.refresh},
			{"201 to found (the same products)", st.all},
		} {
			fmt.Fprintf(w, "| %s | %s | %s | %s |\n", r.what, at(r.ds, 50), at(r.ds, 99), at(r.ds, 100))
		}
	}
	if lat.negativeNote > 0 {
		fmt.Fprintf(w, "\n(%d notifications arrived before their 201 was read: counted as negative latencies.)\n", lat.negativeNote)
	}
}

// reportBacklog prints part 2.
func reportBacklog(w *os.File, o options, bl backlogResult) {
	fmt.Fprintf(w, "\nPart 2: indexer backlog of %d products in one tenant (written in %s with postgres.DB.CreateProduct, %d goroutines; the relay alone (run in the bench process) put them in the stream in %s; the indexer consumer had %d pending)\n\n",
		bl.n, bl.insertTime.Round(time.Millisecond), o.backlogWorkers, bl.relayTime.Round(time.Millisecond), bl.pendingAtStart)
	fmt.Fprintf(w, "| measurement | documents | time | documents/s |\n| --- | ---: | ---: | ---: |\n")
	fmt.Fprintf(w, "| `saas worker indexer` alone: process start to `_count` = %d after `_refresh` | %d | %s | %.0f |\n",
		bl.n, bl.n, bl.searchableTime.Round(time.Millisecond), bl.docsPerSecond)
	fmt.Fprintf(w, "| same, process start to every event acknowledged (consumer `indexer`) | %d | %s | %.0f |\n",
		bl.n, bl.ackedTime.Round(time.Millisecond), bl.docsPerSecondAcks)
}

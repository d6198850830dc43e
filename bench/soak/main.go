//go:build linux

// Command soak runs the whole stack under load while it injects faults,
// then checks that nothing was lost, duplicated or leaked, and prints a
// report. It exits 1 on any finding, 2 on bad flags.
//
//	go tool task soak          # the short run (about 2 minutes), part of `task test`
//	go tool task soak:long     # the long run: longer outages, a 3-node NATS cluster
//
// It builds ./cmd/saas and runs each role (api, push, relay, indexer, cache,
// notifier) as its own process, with a private redis-server and private
// nats-server nodes on free loopback ports, a fresh database on the shared
// PostgreSQL (dropped at the end) and a random Elasticsearch index prefix
// (deleted at the end). Faults, each -repeat times, one after the other:
// kill -9 and restart of every role; a nats-server restart (a kill -9 of one
// node of the cluster); Redis stopped for -outage; Elasticsearch stopped
// (SIGSTOP) for -outage; every PostgreSQL connection of the database ended
// with pg_terminate_backend; when TENANT_DATABASES names another cluster
// (the stack then has a fresh database on it too), two tenants moved to
// the other cluster, in turn, so that each goes back and forth over the
// run. Elasticsearch is the shared one: run the soak alone on the machine.
//
//	go tool task soak:moves    # moves only, 40 of them, under 10 minutes of load
//
// With -pooler (or SAAS_SOAK_POOLER=1) every role reaches the database
// through PgBouncer in transaction mode ($DATABASE_POOLER_URL, pointed at
// the fresh database, DATABASE_POOL_MODE=transaction) and does its session
// work (the relay's LISTEN, migrations, rebuild locks) on
// DATABASE_DIRECT_URL, as production behind a pooler runs; the
// pg_terminate_backend fault then also ends PgBouncer's server connections,
// and fails unless it ended at least one of them.
//
//	go tool task soak:pooler   # the short run through PgBouncer
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

type options struct {
	tenants      int
	staff        int
	duration     time.Duration
	rate         float64
	readRate     float64
	inflight     int
	repeat       int
	outage       time.Duration
	natsNodes    int
	skip         string
	catchUpLimit time.Duration
	drainLimit   time.Duration
	maxRSS       int64
	grace        time.Duration
	report       string
	keep         bool
	pooler       bool
	timeout      time.Duration
	clusters     int // PostgreSQL clusters of the stack (TENANT_DATABASES and main): moves need two
}

func main() {
	var o options
	var maxRSSMiB int64
	flag.IntVar(&o.tenants, "tenants", 20, "tenants")
	flag.IntVar(&o.staff, "staff", 2, "staff users per tenant, each with a WebSocket listener")
	flag.DurationVar(&o.duration, "duration", 2*time.Minute, "how long the load runs; faults are spread over its middle 80%")
	flag.Float64Var(&o.rate, "rate", 20, "product writes per second (half creates, updates, deletes)")
	flag.Float64Var(&o.readRate, "read-rate", 40, "reads per second (lists, retrieves, searches)")
	flag.IntVar(&o.inflight, "inflight", 64, "most requests in flight per kind (writes, reads)")
	flag.IntVar(&o.repeat, "repeat", 2, "how many times each fault is injected")
	flag.DurationVar(&o.outage, "outage", 8*time.Second, "how long Redis and Elasticsearch stay down")
	flag.IntVar(&o.natsNodes, "nats-nodes", 1, "nats-server nodes: 1, or 3 for a cluster (streams with 3 replicas)")
	flag.StringVar(&o.skip, "skip", "", "faults to leave out, comma-separated: relay,indexer,cache,notifier,push,api,nats,elasticsearch,redis,postgres,move (moves run when TENANT_DATABASES names another cluster)")
	flag.DurationVar(&o.catchUpLimit, "catch-up-limit", 3*time.Minute, "longest wait for the pipeline to catch up after a fault")
	flag.DurationVar(&o.drainLimit, "drain-limit", 3*time.Minute, "longest wait for the pipeline to drain after the load")
	flag.Int64Var(&maxRSSMiB, "max-rss", 400, "resident memory bound of every role process, MiB")
	flag.DurationVar(&o.grace, "grace", 15*time.Second, "after a dependency is back, how long a 503 still counts as its fault")
	flag.StringVar(&o.report, "report", "", "also write the report to this file")
	flag.BoolVar(&o.keep, "keep", false, "keep the database, indices and temp dir (logs) for a look afterwards")
	flag.BoolVar(&o.pooler, "pooler", os.Getenv("SAAS_SOAK_POOLER") == "1",
		"every role's DATABASE_URL through PgBouncer in transaction mode (DATABASE_POOLER_URL), DATABASE_DIRECT_URL direct; default $SAAS_SOAK_POOLER=1")
	flag.DurationVar(&o.timeout, "timeout", 0, "bound on the whole run (default: duration + 15 minutes)")
	flag.Parse()
	o.maxRSS = maxRSSMiB << 20
	if o.tenants <= 0 || o.staff <= 0 || o.duration <= 0 || o.rate <= 0 || o.readRate <= 0 || o.inflight <= 0 ||
		o.repeat < 0 || o.outage <= 0 || (o.natsNodes != 1 && o.natsNodes != 3) || maxRSSMiB <= 0 {
		fmt.Fprintln(os.Stderr, "soak: -tenants, -staff, -duration, -rate, -read-rate, -inflight, -outage and -max-rss must be positive, -repeat not negative, -nats-nodes 1 or 3")
		os.Exit(2)
	}
	if o.timeout <= 0 {
		o.timeout = o.duration + 15*time.Minute
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	rep, err := run(ctx, o)
	if rep != nil {
		rep.err = err
	}
	cancel()
	stop()
	if rep != nil {
		text := rep.String()
		fmt.Print(text)
		if o.report != "" {
			if werr := os.WriteFile(o.report, []byte(text), 0o644); werr != nil {
				fmt.Fprintln(os.Stderr, "soak: write report:", werr)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak: error:", err)
		os.Exit(1)
	}
	if len(rep.findings.problems) > 0 {
		os.Exit(1)
	}
}

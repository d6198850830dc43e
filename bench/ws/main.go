//go:build linux

// Command ws measures the WebSocket push node (`saas push`) at WebSocket
// server scale, side by side with Centrifugo on the same machine and run:
//
//   - idle connections: N connections opened at once from client processes
//     (this binary in "client" mode, at most -per-client connections each
//     so that none passes the open-file limit), then the server's resident
//     memory growth per connection (RSS delta / N, -settle after the last
//     is up) and the connect rate (N / time from the first dial to the
//     last connection up). For the push node a connection is up once
//     upgraded (its token and user checked); for Centrifugo once its
//     connect command is answered, the user subscribed to its personal
//     channel by the server. Each server runs as its own fresh process.
//   - fan-out: the whole pipeline (api, relay, notifier, push), one tenant
//     with -fanout-users staff users connected, -rate product creates a
//     second through the API for -duration; every user must receive every
//     notification once; latency is from each 201 to each receipt.
//
// Everything is on loopback. Exits 1 when a part measured nothing (no
// connection, no notification) or lost or duplicated a notification.
//
//	go tool task bench:ws -- -n 19000
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tenantworks/saas/bench/internal/benchenv"
	"github.com/tenantworks/saas/bench/internal/stack"
	"github.com/tenantworks/saas/pkg/tenancy"
)

type options struct {
	n, perClient, concurrency int
	settle                    time.Duration
	sources                   []string
	fanoutUsers               int
	rate                      float64
	duration, drain           time.Duration
	skipPush, skipCentrifugo  bool
	skipFanout                bool
	centrifugo, saas          string
	natsServer                string
	profileDir                string
	timeout                   time.Duration
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench/ws: "+format+"\n", args...)
}

func loadAvg() string { return benchenv.LoadAvg() }

func main() {
	if len(os.Args) > 1 && os.Args[1] == "client" {
		if err := runClient(); err != nil {
			fmt.Fprintln(os.Stderr, "bench/ws client:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	var sources string
	flag.IntVar(&o.n, "n", 10000, "idle connections per server")
	flag.IntVar(&o.perClient, "per-client", 9500, "most connections per client process (each holds one file per connection; the hard limit here is 20,000)")
	flag.IntVar(&o.concurrency, "concurrency", 50, "dials in flight per client process")
	flag.DurationVar(&o.settle, "settle", 10*time.Second, "wait after the last connection before reading the server's memory")
	flag.StringVar(&sources, "sources", "127.0.0.2,127.0.0.3,127.0.0.4", "loopback source addresses of the push node's first and second rounds of connections and of Centrifugo's (each has its own ephemeral ports; use others on a rerun within a minute, while the last run's ports are in TIME_WAIT)")
	flag.IntVar(&o.fanoutUsers, "fanout-users", 1000, "staff users connected in the fan-out part")
	flag.Float64Var(&o.rate, "rate", 10, "product creates a second in the fan-out part")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "fan-out creates for this long")
	flag.DurationVar(&o.drain, "drain", 30*time.Second, "after the last create, longest wait for the last notifications")
	flag.BoolVar(&o.skipPush, "skip-push", false, "skip the push node's idle part")
	flag.BoolVar(&o.skipCentrifugo, "skip-centrifugo", false, "skip Centrifugo's idle part")
	flag.BoolVar(&o.skipFanout, "skip-fanout", false, "skip the fan-out part")
	flag.StringVar(&o.centrifugo, "centrifugo", "", "centrifugo binary (default: $SERVICES_DIR/tools/centrifugo-"+centrifugoVersion+"/centrifugo, built there with go install when missing)")
	flag.StringVar(&o.saas, "saas", "", "saas binary to measure (default: ./cmd/saas built with a pprof listener)")
	flag.StringVar(&o.natsServer, "nats-server", "", "nats-server binary (default: PATH, then $SERVICES_DIR/bin)")
	flag.StringVar(&o.profileDir, "profile", "", "write the push node's heap profile and goroutines at N connections into this directory")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Minute, "bound on the whole run")
	flag.Parse()
	o.sources = strings.Split(sources, ",")
	if len(o.sources) != 3 || o.n <= 0 || o.perClient <= 0 {
		logf("-sources needs three addresses, -n and -per-client must be positive")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		logf("FAILED: %v", err)
		os.Exit(1)
	}
}

// pprofOverlay is compiled into the saas binary the benchmark builds (go
// build -overlay; nothing is added to cmd/saas): with
// SAAS_BENCH_PPROF_ADDR set, the process serves net/http/pprof there.
const pprofOverlay = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("SAAS_BENCH_PPROF_ADDR"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
`

func writeOverlay(ctx context.Context, dir string) (string, error) {
	root, err := benchenv.ModuleRoot(ctx)
	if err != nil {
		return "", err
	}
	src := filepath.Join(dir, "bench_pprof.go")
	if err := os.WriteFile(src, []byte(pprofOverlay), 0o600); err != nil {
		return "", err
	}
	b, _ := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(root, "cmd", "saas", "zz_bench_pprof.go"): src}})
	ovl := filepath.Join(dir, "overlay.json")
	return ovl, os.WriteFile(ovl, b, 0o600)
}

func run(ctx context.Context, o options) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "bench-ws-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
	}
	overlay := ""
	if o.saas == "" {
		if overlay, err = writeOverlay(ctx, tmp); err != nil {
			return err
		}
	}
	var cbin string
	if !o.skipCentrifugo {
		if cbin, err = centrifugoBinary(ctx, o.centrifugo); err != nil {
			return err
		}
	}
	st, err := stack.New(ctx, stack.Options{Name: "bench_ws", NATSServer: o.natsServer, Saas: o.saas, Overlay: overlay, Logf: logf})
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Binary(ctx); err != nil {
		return err
	}
	logf("load average at start: %s; GOMAXPROCS %d; %s", loadAvg(), runtime.GOMAXPROCS(0), runtime.Version())

	var results []idleResult
	if !o.skipPush {
		r, err := idlePush(ctx, st, self, o)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	if !o.skipCentrifugo {
		r, err := idleCentrifugo(ctx, cbin, tmp, self, o)
		if err != nil {
			printIdle(results)
			return err
		}
		results = append(results, r)
	}
	printIdle(results)
	if !o.skipFanout {
		r, err := fanout(ctx, st, o)
		printFanout(r)
		if err != nil {
			return err
		}
	}
	for _, r := range results {
		if r.failed > 0 {
			return fmt.Errorf("%s: %d connections failed", r.name, r.failed)
		}
	}
	return nil
}

// idlePush holds o.n idle connections, one user each, on a fresh push node.
func idlePush(ctx context.Context, st *stack.Stack, self string, o options) (idleResult, error) {
	sfx := strings.ToLower(rand.Text()[:8])
	schema, host := "bwsi_"+sfx, "bwsi-"+sfx+".bench.localhost"
	if _, err := st.Manager().Create(ctx, tenancy.CreateParams{Schema: schema, Name: "ws idle benchmark", Domain: host}); err != nil {
		return idleResult{}, fmt.Errorf("create tenant: %w", err)
	}
	tokens, err := makeUsers(ctx, st, schema, host, o.n, false)
	if err != nil {
		return idleResult{}, err
	}
	pprofAddr, err := benchenv.FreeAddr()
	if err != nil {
		return idleResult{}, err
	}
	p, err := st.Start(ctx, "push", "SAAS_BENCH_PPROF_ADDR="+pprofAddr, fmt.Sprintf("WS_MAX_PER_NODE=%d", o.n+1000))
	if err != nil {
		return idleResult{}, err
	}
	defer p.Stop()
	time.Sleep(2 * time.Second) // its start-up allocations settle
	t := idleTarget{name: "saas push", kind: "push", url: strings.Replace(p.URL(), "http://", "ws://", 1) + "/ws/notifications/",
		host: host, pid: p.PID(), source: o.sources[0], tokens: tokens, pprof: pprofAddr}
	res, err := measureIdle(ctx, self, t, o)
	if err != nil {
		return res, err
	}
	// Every user's first connect read its user from PostgreSQL (and cached
	// it in Redis); a second round, as after a node restart or a network
	// blip, finds them all cached. Its connect rate only is kept.
	t.source, t.profileAs = o.sources[1], "cached-connect"
	warm := o
	warm.settle = 0
	again, err := measureIdle(ctx, self, t, warm)
	if err != nil {
		return res, fmt.Errorf("second round: %w", err)
	}
	res.warmSeconds = again.connectSeconds
	return res, nil
}

// idleCentrifugo holds o.n idle connections, one user each subscribed to
// its personal channel, on a fresh Centrifugo.
func idleCentrifugo(ctx context.Context, bin, dir, self string, o options) (idleResult, error) {
	c, err := startCentrifugo(ctx, bin, dir)
	if err != nil {
		return idleResult{}, err
	}
	defer c.stop()
	tokens := make([]string, o.n)
	for i := range tokens {
		if tokens[i], err = c.token(fmt.Sprintf("user-%06d", i)); err != nil {
			return idleResult{}, err
		}
	}
	time.Sleep(2 * time.Second)
	return measureIdle(ctx, self, idleTarget{name: "Centrifugo " + centrifugoVersion, kind: "centrifugo", url: c.url(),
		pid: c.pid(), source: o.sources[2], tokens: tokens}, o)
}

// makeUsers creates n users of the tenant (8 at a time) and returns their
// tokens.
func makeUsers(ctx context.Context, st *stack.Stack, schema, host string, n int, staff bool) ([]string, error) {
	start := time.Now()
	tokens := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || firstErr.Load() != nil {
					return
				}
				u, err := st.NewUser(ctx, schema, fmt.Sprintf("user%06d@%s", i, host), staff)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				tokens[i] = u.Token
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return nil, err
	}
	logf("%d users created in %s in %.1f s", n, schema, time.Since(start).Seconds())
	return tokens, nil
}

func printIdle(rs []idleResult) {
	if len(rs) == 0 {
		return
	}
	fmt.Printf("\nIdle connections (RSS read %s after the last connection is up)\n\n", rs[0].settle)
	fmt.Println("| server | connections (failed) | client processes | connect time | connections/s | second round (users cached) | RSS before | RSS after | per connection | threads | load avg (start, end) |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
	for _, r := range rs {
		second := "-"
		if r.warmSeconds > 0 {
			second = fmt.Sprintf("%.2f s, %.0f/s", r.warmSeconds, float64(r.conns)/r.warmSeconds)
		}
		fmt.Printf("| %s | %d (%d) | %d | %.2f s | %.0f | %s | %.1f MiB | %.1f MiB | %.1f KiB | %d -> %d | %s; %s |\n", r.name, r.conns, r.failed, r.clients, r.connectSeconds, r.rate(), second,
			float64(r.rssBeforeKiB)/1024, float64(r.rssAfterKiB)/1024, r.perConnKiB(), r.threadsBefore, r.threadsAfter, r.loadBefore, r.loadEnd)
	}
	for _, r := range rs {
		fmt.Printf("\n%s at 100,000 connections, from these figures: %.0f MiB (%.1f MiB at rest + 100,000 x %.1f KiB)", r.name,
			float64(r.rssBeforeKiB)/1024+100000*r.perConnKiB()/1024, float64(r.rssBeforeKiB)/1024, r.perConnKiB())
		if r.heapProfile != "" {
			fmt.Printf("; heap profile %s", r.heapProfile)
		}
	}
	fmt.Println()
}

func printFanout(r fanoutResult) {
	if r.users == 0 {
		return
	}
	fmt.Printf("\nFan-out: %d staff users of one tenant connected, %.0f creates/s through the API for %s\n\n", r.users, r.rate, r.duration)
	fmt.Println("| products created | failed creates | notifications expected | received | duplicates | p50 | p99 | max | load avg (start, end) |")
	fmt.Println("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
	fmt.Printf("| %d | %d | %d | %d | %d | %s | %s | %s | %s; %s |\n", r.created, r.errors, r.want, r.got, r.dup,
		r.p50.Round(100*time.Microsecond), r.p99.Round(100*time.Microsecond), r.max.Round(100*time.Microsecond), r.loadBefore, r.loadEnd)
	fmt.Printf("\nCPU time of each role from the first measured create to the last receipt: %s\n", strings.Join(r.cpu, ", "))
	if len(r.stages) > 0 {
		fmt.Println("\nStages, from each product's 201:\n\n| stage | products | p50 | p99 |\n| --- | ---: | ---: | ---: |")
		for _, s := range r.stages {
			fmt.Printf("| %s | %d | %s | %s |\n", s.name, s.n, s.p50.Round(100*time.Microsecond), s.p99.Round(100*time.Microsecond))
		}
		fmt.Printf("| received by the users (the table above) | %d | %s | %s |\n", r.created, r.p50.Round(100*time.Microsecond), r.p99.Round(100*time.Microsecond))
	}
}

// Command pooler measures the tenant API behind PgBouncer in transaction
// mode against the same API talking to PostgreSQL directly, with the same
// number of PostgreSQL server connections on both sides:
//
//   - direct: `saas api` with a pool of -server-conns connections straight
//     to PostgreSQL (DATABASE_POOL_MODE=session, pgx's cached prepared
//     statements);
//   - pooler: `saas api` with a pool of one connection per client to
//     PgBouncer (DATABASE_POOLER_URL, pool_mode = transaction), which serves
//     them on its server connections (default_pool_size, 20 in the local
//     stack) with DATABASE_POOL_MODE=transaction (pgx's exec mode: every
//     statement one round trip, unnamed, values in text);
//   - pooler, small pool: the same with the API's pool as small as the
//     server side, to tell the cost of the exec mode and the extra hop from
//     that of queueing.
//
// Workloads, each with -clients concurrent clients over keep-alive
// connections: product create (POST /api/catalog/products/, a product and
// an outbox row in one transaction) and cached retrieve (GET
// /api/catalog/products/{id}/ of a product in Redis: token check and the
// user-flags lookup, no PostgreSQL on the hot path once cached).
//
// It makes a fresh database (shared migrations, one tenant, one staff user)
// and builds the saas binary; each round starts `saas api` once per setup
// on a free loopback port and measures both workloads, and the
// transactions PostgreSQL ran per request (pg_stat_database, read 11 s
// after each phase, once every backend has published its counts). At the
// end it drops the database and the tenant's Redis keys, also on error and
// on interrupt.
//
//	go tool task bench:pooler                      # 3 rounds of 10 s after 2 s warm-up
//	go run ./bench/pooler -duration 3s -rounds 1   # a quick look
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/tenantworks/saas/bench/internal/benchenv"
	"github.com/tenantworks/saas/pkg/auth"
	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/schema"
)

type options struct {
	duration, warmup time.Duration
	rounds           int
	clients          int
	serverConns      int
	timeout          time.Duration
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured window of each workload")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up before each window (not counted)")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each runs every setup once, one after another, starting with the next one each round")
	flag.IntVar(&o.clients, "clients", 64, "concurrent clients of each workload")
	flag.IntVar(&o.serverConns, "server-conns", 20, "PostgreSQL connections of the direct setup; match PgBouncer's default_pool_size")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "the whole run is abandoned (and cleaned up) after this")
	flag.Parse()
	if o.duration < time.Second || o.warmup < 0 || o.rounds < 1 || o.clients < 1 || o.serverConns < 1 {
		fmt.Fprintln(os.Stderr, "error: -duration >= 1s, -warmup >= 0, and -rounds, -clients, -server-conns >= 1")
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

// setupKind is one way of reaching PostgreSQL from the API.
type setupKind struct {
	name string
	env  func(e *env) []string
}

func setups(o options) []setupKind {
	return []setupKind{
		{fmt.Sprintf("direct, API pool %d", o.serverConns), func(e *env) []string {
			return []string{"DATABASE_URL=" + withPoolSize(e.directURL, o.serverConns), "DATABASE_POOL_MODE=session"}
		}},
		{fmt.Sprintf("PgBouncer, API pool %d", o.clients), func(e *env) []string {
			return []string{"DATABASE_URL=" + withPoolSize(e.poolerURL, o.clients), "DATABASE_POOL_MODE=transaction", "DATABASE_DIRECT_URL=" + e.directURL}
		}},
		{fmt.Sprintf("PgBouncer, API pool %d", o.serverConns), func(e *env) []string {
			return []string{"DATABASE_URL=" + withPoolSize(e.poolerURL, o.serverConns), "DATABASE_POOL_MODE=transaction", "DATABASE_DIRECT_URL=" + e.directURL}
		}},
	}
}

func run(ctx context.Context, o options) error {
	if os.Getenv("DATABASE_POOLER_URL") == "" {
		return errors.New(`DATABASE_POOLER_URL is not set: eval "$(bash scripts/services.sh env)" (scripts/services.sh up starts PgBouncer)`)
	}
	tmp, err := os.MkdirTemp("", "bench-pooler-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	logf("building saas")
	bin, err := benchenv.BuildSaas(ctx, tmp, "")
	if err != nil {
		return err
	}
	e, err := newEnv(ctx)
	if err != nil {
		return err
	}
	defer e.cleanup()
	logf("database %s, tenant %s; load average %s", e.dbName, e.schema, benchenv.LoadAvg())

	loadStart := benchenv.LoadAvg()
	results := map[string][]result{}
	var order []string
	all := setups(o)
	for round := range o.rounds {
		// Each round starts with the next setup, so that none always
		// runs first (or after the same one) while the machine's load moves.
		for i := range all {
			s := all[(round+i)%len(all)]
			srv, err := startServer(ctx, bin, tmp, e, s.env(e))
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			for _, w := range []struct {
				name string
				do   func(int) request
			}{{"product create", e.create(srv)}, {"cached retrieve", e.retrieve(srv)}} {
				if w.name == "product create" {
					if err := e.truncate(ctx); err != nil {
						srv.stop()
						return err
					}
				} else if err := e.warmCache(ctx, srv); err != nil {
					srv.stop()
					return fmt.Errorf("%s: %w", s.name, err)
				}
				logf("round %d, %s: %s", round+1, s.name, w.name)
				before, err := e.xacts(ctx)
				if err != nil {
					srv.stop()
					return err
				}
				r := drive(ctx, o.clients, o.warmup, o.duration, w.do)
				// A backend that goes idle publishes its counts within 10 s
				// (PostgreSQL 15's PGSTAT_IDLE_INTERVAL).
				time.Sleep(11 * time.Second)
				after, err := e.xacts(ctx)
				if err != nil {
					srv.stop()
					return err
				}
				r.xacts = after - before
				key := s.name + "|" + w.name
				if !slices.Contains(order, key) {
					order = append(order, key)
				}
				results[key] = append(results[key], r)
				logf("  %.0f req/s, p50 %s, p99 %s, %d errors, %.2f PostgreSQL transactions a request", r.rps(), r.pct(50), r.pct(99), r.errors, r.xactsPerRequest())
			}
			srv.stop()
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	fmt.Printf("\n%d clients, %d PostgreSQL server connections on each side; %d round(s) of %s after %s warm-up; load average %s at the start, %s at the end\n\n",
		o.clients, o.serverConns, o.rounds, o.duration, o.warmup, loadStart, benchenv.LoadAvg())
	fmt.Println("| setup | workload | req/s | p50 | p99 | errors | PostgreSQL transactions a request |")
	fmt.Println("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
	for _, key := range order {
		r := merge(results[key])
		s, w, _ := strings.Cut(key, "|")
		fmt.Printf("| %s | %s | %.0f | %s | %s | %d | %.2f |\n", s, w, r.rps(), ms(r.pct(50)), ms(r.pct(99)), r.errors, r.xactsPerRequest())
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func withPoolSize(raw string, n int) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Set("pool_max_conns", strconv.Itoa(n))
	u.RawQuery = q.Encode()
	return u.String()
}

// env is the fresh database, its tenant, a staff token and a product.
type env struct {
	dbName, directURL, poolerURL string
	redisURL, jwtSecret          string
	schema, host, token          string
	productID                    string

	db       *postgres.DB // direct, for set-up and truncation
	rdb      redis.UniversalClient
	seq      atomic.Int64
	cleanups []func()
}

func newEnv(ctx context.Context) (_ *env, err error) {
	e := &env{redisURL: benchenv.Getenv("REDIS_URL", "redis://127.0.0.1:6379/0"), jwtSecret: rand.Text() + rand.Text()}
	defer func() {
		if err != nil {
			e.cleanup()
		}
	}()
	direct, drop, err := benchenv.FreshDatabase(ctx, "bench_pooler")
	if err != nil {
		return nil, err
	}
	e.cleanups = append(e.cleanups, drop)
	e.directURL = direct
	u, _ := url.Parse(direct)
	e.dbName = strings.TrimPrefix(u.Path, "/")
	p, err := url.Parse(os.Getenv("DATABASE_POOLER_URL"))
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_POOLER_URL: %w", err)
	}
	p.Path = u.Path
	e.poolerURL = p.String()

	suffix := strings.ToLower(rand.Text()[:8])
	e.schema, e.host = "bpool_"+suffix, "bpool-"+suffix+".bench.localhost"
	if e.db, err = postgres.Open(ctx, postgres.Config{URL: direct, MaxConns: 4}); err != nil {
		return nil, err
	}
	e.cleanups = append(e.cleanups, e.db.Close)
	runner, err := schema.NewRunner(direct, nil)
	if err != nil {
		return nil, err
	}
	if _, err := runner.MigrateShared(ctx); err != nil {
		return nil, err
	}
	if _, err := tenancy.NewManager(e.db, runner, slog.New(slog.DiscardHandler)).Create(ctx,
		tenancy.CreateParams{Schema: e.schema, Name: "Pooler benchmark", Domain: e.host}); err != nil {
		return nil, err
	}
	if e.rdb, err = cache.Open(e.redisURL); err != nil {
		return nil, err
	}
	e.cleanups = append(e.cleanups, func() { _ = e.rdb.Close() }, e.dropRedisKeys)
	hash, err := auth.HashPassword(rand.Text())
	if err != nil {
		return nil, err
	}
	user, err := e.db.CreateUser(ctx, e.schema, postgres.NewUser{Email: "staff@" + e.host, PasswordHash: hash, IsStaff: true})
	if err != nil {
		return nil, err
	}
	if e.token, _, err = auth.NewTokens(e.jwtSecret, 2*time.Hour).Issue(e.schema, user.ID, true); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *env) cleanup() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
	e.cleanups = nil
}

// dropRedisKeys deletes the tenant's cache keys, whatever prefix they
// carry before {<schema>}:.
func (e *env) dropRedisKeys() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var keys []string
	iter := e.rdb.Scan(ctx, 0, "*{"+e.schema+"}:*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if len(keys) > 0 {
		_ = e.rdb.Del(ctx, keys...).Err()
	}
}

// xacts is the number of transactions committed and rolled back in the
// bench database so far, every client's.
func (e *env) xacts(ctx context.Context) (int64, error) {
	var n int64
	err := e.db.Pool.QueryRow(ctx, `SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("transaction count: %w", err)
	}
	return n, nil
}

// truncate empties what the create workload fills, so that every setup
// starts from the same tables.
func (e *env) truncate(ctx context.Context) error {
	err := e.db.InTenant(ctx, e.schema, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "TRUNCATE products, outbox, public.outbox_pending")
		return err
	})
	if err != nil {
		return fmt.Errorf("truncate: %w", err)
	}
	e.productID = ""
	return nil
}

func (e *env) send(srv *server, client *http.Client, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, srv.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Host = e.host
	req.Header.Set("Authorization", "Bearer "+e.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// request performs one request and reports whether the answer was right.
type request func() bool

func (e *env) create(srv *server) func(int) request {
	return func(clients int) request {
		client := newClient(clients)
		return func() bool {
			body := fmt.Sprintf(`{"sku":"B-%d","name":"Bench product","price":"12.50","currency":"EUR","stock":5}`, e.seq.Add(1))
			code, _, err := e.send(srv, client, http.MethodPost, "/api/catalog/products/", []byte(body))
			return err == nil && code == http.StatusCreated
		}
	}
}

func (e *env) retrieve(srv *server) func(int) request {
	return func(clients int) request {
		client := newClient(clients)
		return func() bool {
			code, _, err := e.send(srv, client, http.MethodGet, "/api/catalog/products/"+e.productID+"/", nil)
			return err == nil && code == http.StatusOK
		}
	}
}

// warmCache creates the product the retrieve workload reads (once per
// truncation) and reads it through the server, which caches it.
func (e *env) warmCache(ctx context.Context, srv *server) error {
	client := newClient(1)
	if e.productID == "" {
		code, b, err := e.send(srv, client, http.MethodPost, "/api/catalog/products/",
			[]byte(`{"sku":"CACHED","name":"Cached product","price":"9.99","currency":"EUR","stock":1}`))
		var p struct{ ID string }
		if err != nil || code != http.StatusCreated || json.Unmarshal(b, &p) != nil {
			return fmt.Errorf("create the cached product: %d %s %v", code, b, err)
		}
		e.productID = p.ID
	}
	for range 2 {
		if code, b, err := e.send(srv, client, http.MethodGet, "/api/catalog/products/"+e.productID+"/", nil); err != nil || code != http.StatusOK {
			return fmt.Errorf("read the cached product: %d %s %v", code, b, err)
		}
	}
	return ctx.Err()
}

func newClient(clients int) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy: nil, MaxIdleConns: 2 * clients, MaxIdleConnsPerHost: 2 * clients,
		DialContext:        (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		DisableCompression: true,
	}}
}

// result is one measured window: the latencies of the requests answered
// right inside it, and the others counted.
type result struct {
	window time.Duration
	lat    []time.Duration
	errors int
	// Over the whole phase, warm-up included: requests completed, and
	// transactions PostgreSQL ran in the bench database meanwhile.
	completed, xacts int64
}

func (r result) rps() float64 { return float64(len(r.lat)) / r.window.Seconds() }

func (r result) xactsPerRequest() float64 {
	if r.completed == 0 {
		return 0
	}
	return float64(r.xacts) / float64(r.completed)
}

func (r result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(float64(len(r.lat))*p/100+0.999999) - 1
	return r.lat[min(max(i, 0), len(r.lat)-1)]
}

func merge(rs []result) result {
	var m result
	for _, r := range rs {
		m.window += r.window
		m.lat = append(m.lat, r.lat...)
		m.errors += r.errors
		m.completed += r.completed
		m.xacts += r.xacts
	}
	slices.Sort(m.lat)
	return m
}

// drive runs clients workers back to back for warmup + window and keeps
// the requests that completed inside the window.
func drive(ctx context.Context, clients int, warmup, window time.Duration, mk func(int) request) result {
	do := mk(clients)
	start := time.Now()
	from, to := start.Add(warmup), start.Add(warmup+window)
	var (
		mu        sync.Mutex
		out       = result{window: window}
		wg        sync.WaitGroup
		completed atomic.Int64
	)
	for range clients {
		wg.Go(func() {
			var lat []time.Duration
			errs := 0
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(to) {
					break
				}
				ok := do()
				t1 := time.Now()
				completed.Add(1)
				if t1.Before(from) || !t1.Before(to) {
					continue
				}
				if ok {
					lat = append(lat, t1.Sub(t0))
				} else {
					errs++
				}
			}
			mu.Lock()
			out.lat = append(out.lat, lat...)
			out.errors += errs
			mu.Unlock()
		})
	}
	wg.Wait()
	out.completed = completed.Load()
	slices.Sort(out.lat)
	return out
}

// server is one `saas api` process.
type server struct {
	cmd  *exec.Cmd
	done chan error
	base string
	once sync.Once
}

func startServer(ctx context.Context, bin, dir string, e *env, dbEnv []string) (*server, error) {
	addr, err := benchenv.FreeAddr()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "server.log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, "api")
	cmd.Env = append(os.Environ(), "REDIS_URL="+e.redisURL, "HTTP_ADDR="+addr, "PUBLIC_DOMAIN=localhost",
		"JWT_SECRET="+e.jwtSecret, "APP_ENV=development", "LOG_LEVEL=warn", "LOG_FORMAT=text")
	cmd.Env = append(cmd.Env, dbEnv...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = childAttrs()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start saas api: %w", err)
	}
	s := &server{cmd: cmd, done: make(chan error, 1), base: "http://" + addr}
	go func() { s.done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/health/", nil)
		req.Host = "localhost"
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case err := <-s.done:
			b, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("saas api exited: %v\n%s", err, b)
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, errors.New("saas api not healthy within 30s")
		}
	}
}

func (s *server) stop() {
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
}

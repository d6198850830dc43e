package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/tenantworks/saas/bench/internal/benchenv"
	"github.com/tenantworks/saas/pkg/cache"
)

// The product every create writes (the SKU aside), on both sides.
const (
	productName        = "Benchmark product"
	productDescription = "A product written by the API benchmark: one row in products and one in the outbox, in one transaction."
	productPrice       = "19.99"
	productCurrency    = "EUR"
	productStock       = 100
)

// bench runs the workloads against one server and database.
type bench struct {
	o       options
	env     *benchEnv
	srv     *server
	tmp     string
	pgbench string
}

type report struct {
	create, pgbench   result
	pgbenchTPS        []string // pgbench's own figure for each whole run
	createRatios      []float64
	retrieveRatios    []float64
	retrieve, ceiling result
	retrieveBytes     int
	ceilingBytes      int
	pgVersion         string
	loadBefore        string // load averages when measuring began and ended
	loadAfter         string
	// What each create side left in the database, to show both wrote the same.
	apiRows, pgbenchRows rowStats
}

func (b *bench) newRequest(ctx context.Context, method, path string, body []byte) *http.Request {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.srv.base+path, rd)
	if err != nil {
		panic(err) // only constant, valid URLs are built here
	}
	req.Host = b.env.host
	req.Header.Set("Authorization", "Bearer "+b.env.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

func createBody(sku, description string) []byte {
	b, _ := json.Marshal(map[string]any{
		"sku": sku, "name": productName, "description": description,
		"price": productPrice, "currency": productCurrency, "stock": productStock,
	})
	return b
}

// createRequest posts a product with a fresh time-ordered SKU and expects
// 201. The body is spliced from a template: the load generator shares the
// CPU with the server, so it does as little as it can.
func (b *bench) createRequest(client *http.Client) request {
	const marker = "00000000-0000-0000-0000-000000000000"
	before, after, _ := bytes.Cut(createBody(marker, productDescription), []byte(marker))
	return func(ctx context.Context) bool {
		body := make([]byte, 0, len(before)+len(marker)+len(after))
		body = append(append(append(body, before...), uuid.Must(uuid.NewV7()).String()...), after...)
		res, err := client.Do(b.newRequest(ctx, http.MethodPost, "/api/catalog/products/", body))
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode == http.StatusCreated
	}
}

// getRequest fetches path and expects 200 with a body of size bytes.
func (b *bench) getRequest(client *http.Client, path string, size int) request {
	return func(ctx context.Context) bool {
		res, err := client.Do(b.newRequest(ctx, http.MethodGet, path, nil))
		if err != nil {
			return false
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode == http.StatusOK && int(n) == size
	}
}

// once does one request and returns its status and body.
func (b *bench) once(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	client := newClient(1)
	defer client.CloseIdleConnections()
	res, err := client.Do(b.newRequest(ctx, method, path, body))
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	return res.StatusCode, out, err
}

// cachedProduct creates a product whose API body is exactly as long as the
// ceiling's, reads it once so that it is in the Redis cache, and checks it
// is. It returns the product's path and the body size.
func (b *bench) cachedProduct(ctx context.Context) (string, int, error) {
	status, fixed, err := b.once(ctx, http.MethodGet, "/api/_bench/fixed/", nil)
	if err != nil || status != http.StatusOK {
		return "", 0, fmt.Errorf("ceiling route: status %d, %v (does saas serve it with SAAS_BENCH_CEILING=1?)", status, err)
	}
	// The body's length varies with the timestamps (trailing zeros of the
	// fraction are dropped), so create until one fits.
	desc := len(productDescription)
	for range 20 {
		d := strings.Repeat("d", desc)
		status, body, err := b.once(ctx, http.MethodPost, "/api/catalog/products/", createBody(uuid.Must(uuid.NewV7()).String(), d))
		if err != nil || status != http.StatusCreated {
			return "", 0, fmt.Errorf("create product: status %d, %v: %s", status, err, body)
		}
		if diff := len(fixed) - len(body); diff != 0 {
			desc += diff
			if desc < 0 {
				return "", 0, fmt.Errorf("ceiling body (%d bytes) is shorter than a product with no description", len(fixed))
			}
			continue
		}
		var p struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			return "", 0, err
		}
		path := "/api/catalog/products/" + p.ID + "/"
		for range 2 { // a miss that fills the cache, then a hit
			status, got, err := b.once(ctx, http.MethodGet, path, nil)
			if err != nil || status != http.StatusOK || len(got) != len(fixed) {
				return "", 0, fmt.Errorf("get product: status %d, %d bytes, %v", status, len(got), err)
			}
		}
		n, err := b.env.rdb.Exists(ctx, cache.Keys{}.Product(b.env.schema, p.ID)).Result()
		if err != nil || n != 1 {
			return "", 0, fmt.Errorf("product %s is not in the Redis cache (%d, %v)", p.ID, n, err)
		}
		return path, len(fixed), nil
	}
	return "", 0, fmt.Errorf("could not size a product like the ceiling body (%d bytes)", len(fixed))
}

// drive runs one API workload (see drive) and records the CPU it cost.
func (b *bench) drive(ctx context.Context, name string, clients int, warmup, window time.Duration, do request) result {
	pid := b.srv.PID()
	before := sampleCPU(pid)
	r := drive(ctx, name, clients, warmup, window, b.o.maxRequests, do)
	r.cpu = before.until(sampleCPU(pid))
	return r
}

// measure runs the rounds: in each, create via the API then via pgbench
// (each from empty tables), then cached retrieve then the ceiling.
// Alternating the two sides of a row round after round keeps a change in
// the machine's background load from landing on one side only.
func (b *bench) measure(ctx context.Context) (*report, error) {
	o := b.o
	rep := &report{}
	_ = b.env.DB().Pool.QueryRow(ctx, "SHOW server_version").Scan(&rep.pgVersion)
	rep.loadBefore = benchenv.LoadAvg()
	defer func() { rep.loadAfter = benchenv.LoadAvg() }()

	var creates, pgbenches, retrieves, ceilings []result
	var err error
	for round := 1; round <= o.rounds; round++ {
		if err := b.env.truncate(ctx); err != nil {
			return nil, err
		}
		logf("round %d/%d: create via API, %d clients, %s warm-up + %s", round, o.rounds, o.createClients, o.warmup, o.duration)
		client := newClient(o.createClients)
		r := b.drive(ctx, "create via API", o.createClients, o.warmup, o.duration, b.createRequest(client))
		client.CloseIdleConnections()
		if err := b.check(ctx, r); err != nil {
			return nil, err
		}
		creates = append(creates, r)
		if rep.apiRows, err = b.env.rowStats(ctx); err != nil {
			return nil, err
		}
		if err := b.env.truncate(ctx); err != nil {
			return nil, err
		}
		logf("round %d/%d: create via pgbench, -c %d -j %d, %s warm-up + %s", round, o.rounds, o.createClients, o.pgbenchJobs, o.warmup, o.duration)
		r, tps, err := b.runPgbench(ctx)
		if err != nil {
			return nil, err
		}
		pgbenches = append(pgbenches, r)
		rep.pgbenchTPS = append(rep.pgbenchTPS, tps)
		if rep.pgbenchRows, err = b.env.rowStats(ctx); err != nil {
			return nil, err
		}
	}

	path, size, err := b.cachedProduct(ctx)
	if err != nil {
		return nil, err
	}
	rep.retrieveBytes, rep.ceilingBytes = size, size
	client := newClient(o.getClients)
	defer client.CloseIdleConnections()
	for round := 1; round <= o.rounds; round++ {
		logf("round %d/%d: cached retrieve, %d clients, %s warm-up + %s, %d-byte body", round, o.rounds, o.getClients, o.warmup, o.duration, size)
		r := b.drive(ctx, "cached retrieve", o.getClients, o.warmup, o.duration, b.getRequest(client, path, size))
		if err := b.check(ctx, r); err != nil {
			return nil, err
		}
		retrieves = append(retrieves, r)
		logf("round %d/%d: ceiling, %d clients, %s warm-up + %s", round, o.rounds, o.getClients, o.warmup, o.duration)
		r = b.drive(ctx, "ceiling (fixed body)", o.getClients, o.warmup, o.duration, b.getRequest(client, "/api/_bench/fixed/", size))
		if err := b.check(ctx, r); err != nil {
			return nil, err
		}
		ceilings = append(ceilings, r)
	}
	for i := range o.rounds {
		rep.createRatios = append(rep.createRatios, creates[i].rps()/pgbenches[i].rps())
		rep.retrieveRatios = append(rep.retrieveRatios, retrieves[i].rps()/ceilings[i].rps())
	}
	rep.create, rep.pgbench = merge(creates), merge(pgbenches)
	rep.retrieve, rep.ceiling = merge(retrieves), merge(ceilings)
	return rep, nil
}

// check fails the run when it was interrupted, the server died, or nothing
// succeeded.
func (b *bench) check(ctx context.Context, r result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.srv.Exited(); err != nil {
		return err
	}
	if r.ok == 0 {
		return fmt.Errorf("%s: no successful request (%d errors)\n%s", r.name, r.errors, b.srv.LogTail(4000))
	}
	return nil
}

// profile runs each API workload once more while the server records a CPU
// profile, and writes <dir>/api-<workload>.pprof. These runs are not part of
// the table: profiling costs the server some CPU.
func (b *bench) profile(ctx context.Context) error {
	dir := b.o.profileDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path, size, err := b.cachedProduct(ctx)
	if err != nil {
		return err
	}
	secs := int(b.o.duration / time.Second)
	workloads := []struct {
		name    string
		clients int
		do      func(*http.Client) request
	}{
		{"create", b.o.createClients, b.createRequest},
		{"retrieve", b.o.getClients, func(c *http.Client) request { return b.getRequest(c, path, size) }},
		{"ceiling", b.o.getClients, func(c *http.Client) request { return b.getRequest(c, "/api/_bench/fixed/", size) }},
	}
	for _, w := range workloads {
		logf("profiling %s: %d clients, %ds", w.name, w.clients, secs)
		client := newClient(w.clients)
		type fetched struct {
			b   []byte
			err error
		}
		cpu, stacks := make(chan fetched, 1), make(chan fetched, 1)
		go func() {
			time.Sleep(time.Second) // let the load ramp up
			b, err := b.fetchPprof(ctx, fmt.Sprintf("profile?seconds=%d", secs), time.Duration(secs+30)*time.Second)
			cpu <- fetched{b, err}
		}()
		go func() {
			time.Sleep(time.Second + b.o.duration/2)
			b, err := b.fetchPprof(ctx, "goroutine?debug=1", 30*time.Second)
			stacks <- fetched{b, err}
		}()
		r := b.drive(ctx, w.name, w.clients, 0, time.Duration(secs+2)*time.Second, w.do(client))
		client.CloseIdleConnections()
		for _, f := range []struct {
			ch   chan fetched
			file string
		}{{cpu, "api-" + w.name + ".pprof"}, {stacks, "api-" + w.name + ".goroutines.txt"}} {
			got := <-f.ch
			if got.err != nil {
				return fmt.Errorf("profile %s: %w", w.name, got.err)
			}
			if err := os.WriteFile(filepath.Join(dir, f.file), got.b, 0o644); err != nil {
				return err
			}
		}
		out := filepath.Join(dir, "api-"+w.name+".pprof")
		logf("wrote %s and the goroutines half way (%.0f req/s while profiling); read it with: go tool pprof -top %s", out, r.rps(), out)
	}
	return nil
}

// fetchPprof GETs /debug/pprof/<what> from the server's pprof listener.
func (b *bench) fetchPprof(ctx context.Context, what string, timeout time.Duration) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.srv.pprofAddr+"/debug/pprof/"+what, nil)
	if err != nil {
		return nil, err
	}
	res, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err == nil && res.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d: %s", res.StatusCode, body)
	}
	return body, err
}

//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"

	"github.com/tenantworks/saas/bench/internal/benchenv"
	"github.com/tenantworks/saas/bench/internal/stack"
	"github.com/tenantworks/saas/pkg/tenancy"
)

// fanoutResult is the fan-out part's numbers.
type fanoutResult struct {
	users, created, errors int
	want, got, dup         int
	p50, p99, max          time.Duration
	loadBefore, loadEnd    string
	duration               time.Duration
	rate                   float64
	cpu                    []string // CPU time of each role over the run
	// Stages, per product, from its 201: the notifier's transaction
	// start (the rows' created_at), the first and the last of its pushes
	// on NATS (as a subscriber of push.> next to the push node hears
	// them). Receipts are the table's p50 and p99.
	stages []stage
}

// stage is one stage's latency from the 201, over the products.
type stage struct {
	name     string
	p50, p99 time.Duration
	n        int
}

// tap hears the notifier's pushes on NATS, as the push node does, and
// keeps per product when the first and the last arrived and the rows'
// created_at (the notifier's transaction start).
type tap struct {
	mu          sync.Mutex
	first, last map[string]time.Time
	inserted    map[string]time.Time
}

func (t *tap) hear(m *nats.Msg) {
	at := time.Now()
	var p struct {
		CreatedAt time.Time `json:"created_at"`
		Data      struct {
			ProductID string `json:"product_id"`
		} `json:"data"`
	}
	if json.Unmarshal(m.Data, &p) != nil || p.Data.ProductID == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.first[p.Data.ProductID]; !ok {
		t.first[p.Data.ProductID] = at
		t.inserted[p.Data.ProductID] = p.CreatedAt
	}
	t.last[p.Data.ProductID] = at
}

// stageOf returns the percentiles of at[product] - created[product].
func stageOf(name string, at, created map[string]time.Time) stage {
	var lat []time.Duration
	for pid, t201 := range created {
		if t, ok := at[pid]; ok {
			lat = append(lat, t.Sub(t201))
		}
	}
	if len(lat) == 0 {
		return stage{name: name}
	}
	slices.Sort(lat)
	return stage{name: name, p50: benchenv.Percentile(lat, 50), p99: benchenv.Percentile(lat, 99), n: len(lat)}
}

// receiver is one staff user's connection: when each product's
// notification arrived.
type receiver struct {
	conn *websocket.Conn
	mu   sync.Mutex
	got  map[string][]time.Time // product id -> arrivals
}

func (r *receiver) read(total *atomic.Int64) {
	for {
		_, b, err := r.conn.Read(context.Background())
		if err != nil {
			return
		}
		at := time.Now()
		var m struct {
			Data struct {
				ProductID string `json:"product_id"`
			} `json:"data"`
		}
		if json.Unmarshal(b, &m) != nil || m.Data.ProductID == "" {
			continue
		}
		r.mu.Lock()
		r.got[m.Data.ProductID] = append(r.got[m.Data.ProductID], at)
		r.mu.Unlock()
		total.Add(1)
	}
}

// fanout runs the whole pipeline (api, relay, notifier, push) for one
// tenant with o.fanoutUsers staff users connected, creates products at
// o.rate for o.duration through the API, and measures from each 201 to
// each user's receipt of that product's notification.
func fanout(ctx context.Context, st *stack.Stack, o options) (fanoutResult, error) {
	res := fanoutResult{users: o.fanoutUsers, rate: o.rate, duration: o.duration}
	sfx := strings.ToLower(rand.Text()[:8])
	schema, host := "bwsf_"+sfx, "bwsf-"+sfx+".bench.localhost"
	if _, err := st.Manager().Create(ctx, tenancy.CreateParams{Schema: schema, Name: "ws fan-out benchmark", Domain: host}); err != nil {
		return res, fmt.Errorf("create tenant: %w", err)
	}
	tokens, err := makeUsers(ctx, st, schema, host, o.fanoutUsers, true)
	if err != nil {
		return res, err
	}
	var api, push *stack.Proc
	var procs []*stack.Proc
	pprofAddr, err := benchenv.FreeAddr()
	if err != nil {
		return res, err
	}
	notifierPprof, err := benchenv.FreeAddr()
	if err != nil {
		return res, err
	}
	for _, role := range []string{"relay", "notifier", "api", "push"} {
		var env []string
		switch role {
		case "push":
			env = append(env, "SAAS_BENCH_PPROF_ADDR="+pprofAddr)
		case "notifier":
			env = append(env, "SAAS_BENCH_PPROF_ADDR="+notifierPprof)
		}
		p, err := st.Start(ctx, role, env...)
		if err != nil {
			return res, fmt.Errorf("start %s: %w", role, err)
		}
		procs = append(procs, p)
		switch role {
		case "api":
			api = p
		case "push":
			push = p
		}
	}
	nc, err := nats.Connect(st.NATSURL())
	if err != nil {
		return res, fmt.Errorf("fan-out: connect to NATS: %w", err)
	}
	defer nc.Close()
	tp := &tap{first: map[string]time.Time{}, last: map[string]time.Time{}, inserted: map[string]time.Time{}}
	if _, err := nc.Subscribe("push.>", tp.hear); err != nil {
		return res, fmt.Errorf("fan-out: subscribe to the pushes: %w", err)
	}
	if err := nc.Flush(); err != nil {
		return res, fmt.Errorf("fan-out: subscribe to the pushes: %w", err)
	}
	var total atomic.Int64
	recv := make([]*receiver, len(tokens))
	defer func() {
		for _, r := range recv {
			if r != nil {
				_ = r.conn.CloseNow()
			}
		}
	}()
	wsURL := strings.Replace(push.URL(), "http://", "ws://", 1) + "/ws/notifications/"
	var dialErr atomic.Value
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i, tok := range tokens {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			conn, _, err := websocket.Dial(dctx, wsURL, &websocket.DialOptions{Host: host,
				HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
			if err != nil {
				dialErr.CompareAndSwap(nil, err)
				return
			}
			conn.SetReadLimit(1 << 20)
			recv[i] = &receiver{conn: conn, got: map[string][]time.Time{}}
			go recv[i].read(&total)
		}()
	}
	wg.Wait()
	if err, ok := dialErr.Load().(error); ok {
		return res, fmt.Errorf("fan-out: connect the staff users: %w", err)
	}
	logf("fan-out: %d staff users connected to the push node", len(recv))

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	// One product first, not measured: every role has warmed up once it
	// has reached every user.
	if _, _, err := createProduct(ctx, client, api.URL(), host, tokens[0]); err != nil {
		return res, fmt.Errorf("fan-out warm-up: %w", err)
	}
	if err := waitFor(ctx, 60*time.Second, func() bool { return total.Load() >= int64(len(recv)) }); err != nil {
		return res, fmt.Errorf("fan-out warm-up: %d of %d users got the first notification: %w", total.Load(), len(recv), err)
	}
	total.Store(0)
	for _, r := range recv {
		r.mu.Lock()
		clear(r.got)
		r.mu.Unlock()
	}

	res.loadBefore = loadAvg()
	cpu0 := map[string]time.Duration{}
	for _, p := range procs {
		cpu0[p.Name()] = benchenv.ProcessCPU(p.PID())
	}
	var (
		mu      sync.Mutex
		created = map[string]time.Time{}
		errs    atomic.Int64
		cwg     sync.WaitGroup
	)
	if o.profileDir != "" {
		// The push node's CPU while the notifications flow.
		go func() {
			out := filepath.Join(o.profileDir, "push-fanout.cpu.pprof")
			if err := fetch(ctx, "http://"+pprofAddr+"/debug/pprof/profile?seconds=5", out); err != nil {
				logf("cpu profile: %v", err)
			}
		}()
		go func() {
			out := filepath.Join(o.profileDir, "notifier-fanout.cpu.pprof")
			if err := fetch(ctx, "http://"+notifierPprof+"/debug/pprof/profile?seconds=5", out); err != nil {
				logf("cpu profile: %v", err)
			}
		}()
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / o.rate))
	end := time.Now().Add(o.duration)
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-tick.C:
		}
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			id, at, err := createProduct(ctx, client, api.URL(), host, tokens[0])
			if err != nil {
				errs.Add(1)
				logf("fan-out create: %v", err)
				return
			}
			mu.Lock()
			created[id] = at
			mu.Unlock()
		}()
	}
	tick.Stop()
	cwg.Wait()
	res.created, res.errors = len(created), int(errs.Load())
	res.want = res.created * len(recv)
	_ = waitFor(ctx, o.drain, func() bool { return total.Load() >= int64(res.want) })
	time.Sleep(500 * time.Millisecond) // a duplicate would come now
	res.loadEnd = loadAvg()
	for _, p := range procs {
		res.cpu = append(res.cpu, fmt.Sprintf("%s %.1f s", p.Name(), (benchenv.ProcessCPU(p.PID())-cpu0[p.Name()]).Seconds()))
	}

	tp.mu.Lock()
	res.stages = []stage{
		stageOf("notifier transaction start (rows' created_at)", tp.inserted, created),
		stageOf("first push of the product on NATS", tp.first, created),
		stageOf("last push of the product on NATS", tp.last, created),
	}
	tp.mu.Unlock()
	var lat []time.Duration
	for _, r := range recv {
		r.mu.Lock()
		for pid, ats := range r.got {
			t201, ok := created[pid]
			if !ok {
				continue
			}
			res.got++
			res.dup += len(ats) - 1
			lat = append(lat, ats[0].Sub(t201))
		}
		r.mu.Unlock()
	}
	if res.created == 0 || res.got == 0 {
		return res, fmt.Errorf("fan-out measured nothing: %d products created, %d notifications received", res.created, res.got)
	}
	slices.Sort(lat)
	res.p50, res.p99, res.max = benchenv.Percentile(lat, 50), benchenv.Percentile(lat, 99), lat[len(lat)-1]
	if res.got != res.want || res.dup != 0 || res.errors != 0 {
		return res, fmt.Errorf("fan-out: %d of %d notifications received, %d duplicates, %d failed creates", res.got, res.want, res.dup, res.errors)
	}
	return res, nil
}

// createProduct creates one product through the API and returns its id
// and when the 201 arrived.
func createProduct(ctx context.Context, client *http.Client, base, host, token string) (string, time.Time, error) {
	body, _ := json.Marshal(map[string]any{
		"sku": "WSF-" + rand.Text(), "name": "Fan-out benchmark product", "description": "Written by bench/ws",
		"price": "19.99", "currency": "EUR", "stock": 10,
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/catalog/products/", bytes.NewReader(body))
	if err != nil {
		return "", time.Time{}, err
	}
	req.Host = host
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	at := time.Now()
	if err != nil {
		return "", at, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return "", at, fmt.Errorf("POST products: %s: %.200s", resp.Status, b)
	}
	var p struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &p); err != nil || p.ID == "" {
		return "", at, fmt.Errorf("POST products: no id in %.200s", b)
	}
	return p.ID, at, nil
}

// waitFor polls cond until it holds or limit passes.
func waitFor(ctx context.Context, limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/tenantworks/saas/bench/internal/stack"
)

// answer is one HTTP answer the load got.
type answer struct {
	op     string
	status int
	at     time.Time
	body   string // 5xx only
}

// load drives the writers, readers and WebSocket listeners, and keeps
// what they saw.
type load struct {
	s      *soak
	client *http.Client

	mu        sync.Mutex
	statuses  map[string]map[int]int // op -> status -> count
	fivexx    []answer
	transport map[string]int             // op -> requests without an answer
	silent    []answer                   // the requests without an answer
	live      map[string]map[string]bool // schema -> ids believed alive
	skipped   atomic.Int64

	listeners []*listener
}

func newLoad(s *soak) *load {
	l := &load{
		s: s,
		client: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: 128, IdleConnTimeout: 30 * time.Second,
		}},
		statuses:  map[string]map[int]int{},
		transport: map[string]int{},
		live:      map[string]map[string]bool{},
	}
	for _, t := range s.tenants {
		l.live[t.schema] = map[string]bool{}
		for _, u := range t.staff {
			l.listeners = append(l.listeners, &listener{t: t, u: u, got: map[int64]int{}})
		}
	}
	return l
}

func (l *load) record(op string, status int, body []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.statuses[op]
	if m == nil {
		m = map[int]int{}
		l.statuses[op] = m
	}
	m[status]++
	if status >= 500 {
		b := string(body)
		if len(b) > 300 {
			b = b[:300]
		}
		l.fivexx = append(l.fivexx, answer{op: op, status: status, at: time.Now(), body: b})
	}
}

func (l *load) noAnswer(op string, err error) {
	l.mu.Lock()
	l.transport[op]++
	l.silent = append(l.silent, answer{op: op, at: time.Now(), body: err.Error()})
	l.mu.Unlock()
}

// do sends one request as the tenant's first staff user and records the
// answer; it returns the status (0 without an answer) and the body.
func (l *load) do(ctx context.Context, op string, t *tenant, method, path string, body any) (int, []byte) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, l.s.api+path, rd)
	if err != nil {
		return 0, nil
	}
	req.Host = t.host
	req.Header.Set("Authorization", "Bearer "+t.staff[0].Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := l.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			l.noAnswer(op, err)
		}
		return 0, nil
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		if ctx.Err() == nil {
			l.noAnswer(op, err)
		}
		return 0, nil
	}
	l.record(op, res.StatusCode, b)
	return res.StatusCode, b
}

// pick returns a random id believed alive in t, or "".
func (l *load) pick(t *tenant) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := l.live[t.schema]
	if len(ids) == 0 {
		return ""
	}
	n := rand.IntN(len(ids))
	for id := range ids {
		if n == 0 {
			return id
		}
		n--
	}
	return ""
}

func (l *load) setLive(t *tenant, id string, alive bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if alive {
		l.live[t.schema][id] = true
	} else {
		delete(l.live[t.schema], id)
	}
}

// write does one random write: create (half), update or delete.
func (l *load) write(ctx context.Context) {
	t := l.s.tenants[rand.IntN(len(l.s.tenants))]
	id := l.pick(t)
	r := rand.Float64()
	switch {
	case id == "" || r < 0.5:
		status, b := l.do(ctx, "create", t, http.MethodPost, "/api/catalog/products/", map[string]any{
			"sku": "SOAK-" + strconv.FormatUint(rand.Uint64(), 36), "name": "soak product " + word(),
			"description": "written by the soak " + word() + " " + word(), "price": fmt.Sprintf("%d.%02d", rand.IntN(500), rand.IntN(100)),
			"currency": "EUR", "stock": rand.IntN(1000),
		})
		if status == http.StatusCreated {
			var p struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(b, &p) == nil && p.ID != "" {
				l.setLive(t, p.ID, true)
			}
		}
	case r < 0.8:
		status, _ := l.do(ctx, "update", t, http.MethodPatch, "/api/catalog/products/"+id+"/",
			map[string]any{"stock": rand.IntN(1000), "name": "soak product " + word()})
		if status == http.StatusNotFound {
			l.setLive(t, id, false)
		}
	default:
		status, _ := l.do(ctx, "delete", t, http.MethodDelete, "/api/catalog/products/"+id+"/", nil)
		if status == http.StatusNoContent || status == http.StatusNotFound {
			l.setLive(t, id, false)
		}
	}
}

// read does one random read: list, retrieve or search.
func (l *load) read(ctx context.Context) {
	t := l.s.tenants[rand.IntN(len(l.s.tenants))]
	switch r := rand.Float64(); {
	case r < 0.35:
		order := []string{"created_at", "-created_at", "name", "-price"}[rand.IntN(4)]
		l.do(ctx, "list", t, http.MethodGet, "/api/catalog/products/?limit=20&ordering="+order, nil)
	case r < 0.75:
		if id := l.pick(t); id != "" {
			l.do(ctx, "retrieve", t, http.MethodGet, "/api/catalog/products/"+id+"/", nil)
		}
	default:
		l.do(ctx, "search", t, http.MethodGet, "/api/catalog/products/search/?q="+url.QueryEscape(word()), nil)
	}
}

var words = []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"}

func word() string { return words[rand.IntN(len(words))] }

// paced calls f rate times a second until ctx ends, at most inflight at
// once; a tick that finds them all busy is skipped and counted.
func (l *load) paced(ctx context.Context, rate float64, inflight int, f func(context.Context)) {
	sem := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			l.skipped.Add(1)
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			f(ctx)
		})
	}
}

// listener is one staff user's WebSocket client on the push node. Like
// the web client, each connection asks for ?since=<highest id seen>.
type listener struct {
	t *tenant
	u stack.User

	mu       sync.Mutex
	got      map[int64]int // notification id -> times received
	last     int64
	connects int
	refused  map[int]int // HTTP status of refused upgrades
}

func (w *listener) run(ctx context.Context, base string) {
	for ctx.Err() == nil {
		w.once(ctx, base)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(200+rand.IntN(600)) * time.Millisecond):
		}
	}
}

func (w *listener) once(ctx context.Context, base string) {
	w.mu.Lock()
	since := w.last
	w.mu.Unlock()
	u := "ws" + base[len("http"):] + "/ws/notifications/?since=" + strconv.FormatInt(since, 10)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, res, err := websocket.Dial(dctx, u, &websocket.DialOptions{
		Host:       w.t.host,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + w.u.Token}},
	})
	cancel()
	if err != nil {
		if res != nil {
			w.mu.Lock()
			if w.refused == nil {
				w.refused = map[int]int{}
			}
			w.refused[res.StatusCode]++
			w.mu.Unlock()
		}
		return
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	w.mu.Lock()
	w.connects++
	w.mu.Unlock()
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			return
		}
		var n struct {
			Type string `json:"type"`
			ID   int64  `json:"id"`
		}
		if json.Unmarshal(b, &n) != nil || n.ID == 0 {
			continue
		}
		w.mu.Lock()
		w.got[n.ID]++
		w.last = max(w.last, n.ID)
		w.mu.Unlock()
	}
}

// statusTable renders op -> status -> count, sorted.
func (l *load) statusTable() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ops := make([]string, 0, len(l.statuses))
	for op := range l.statuses {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	var b bytes.Buffer
	for _, op := range ops {
		codes := make([]int, 0, len(l.statuses[op]))
		for c := range l.statuses[op] {
			codes = append(codes, c)
		}
		sort.Ints(codes)
		fmt.Fprintf(&b, "  %-9s", op)
		for _, c := range codes {
			fmt.Fprintf(&b, " %d×%d", c, l.statuses[op][c])
		}
		if n := l.transport[op]; n > 0 {
			fmt.Fprintf(&b, " no-answer×%d", n)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

package main

import (
	"context"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tenantworks/saas/bench/internal/benchenv"
)

// result is one measured workload: the requests that completed inside the
// measured window, and their latencies.
type result struct {
	name    string
	clients int
	window  time.Duration
	ok      int
	errors  int
	lat     []time.Duration // sorted, successful requests only
	// Over the whole phase, warm-up included: requests completed and the
	// CPU they cost.
	total int
	cpu   cpuUse
}

// merge pools the rounds of one workload.
func merge(rs []result) result {
	m := result{name: rs[0].name, clients: rs[0].clients}
	for _, r := range rs {
		m.window += r.window
		m.ok += r.ok
		m.errors += r.errors
		m.lat = append(m.lat, r.lat...)
		m.total += r.total
		m.cpu.server += r.cpu.server
		m.cpu.client += r.cpu.client
		m.cpu.machineBusy += r.cpu.machineBusy / float64(len(rs))
	}
	slices.Sort(m.lat)
	return m
}

// perRequest is CPU time per completed request over the whole phase.
func (r result) perRequest(d time.Duration) time.Duration {
	if r.total == 0 {
		return 0
	}
	return d / time.Duration(r.total)
}

func (r result) rps() float64 { return float64(r.ok) / r.window.Seconds() }

// pct returns the p-th percentile (nearest rank) of the latencies.
func (r result) pct(p float64) time.Duration { return benchenv.Percentile(r.lat, p) }

// newClient returns an HTTP client that keeps one connection per worker
// alive, never uses a proxy and does not ask for compression.
func newClient(clients int) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        2 * clients,
			MaxIdleConnsPerHost: 2 * clients,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
	}
}

// request performs one request of a workload and reports whether the
// answer was the expected one.
type request func(ctx context.Context) bool

// drive runs clients workers doing do back to back for warmup + window
// (or until maxRequests were started, or ctx is done), and keeps the
// requests that completed inside the window [start+warmup, start+warmup+window).
func drive(ctx context.Context, name string, clients int, warmup, window time.Duration, maxRequests int64, do request) result {
	start := time.Now()
	from, to := start.Add(warmup), start.Add(warmup+window)
	ctx, cancel := context.WithDeadline(ctx, to.Add(15*time.Second)) // a hung request cannot hold the run
	defer cancel()

	var started atomic.Int64
	type part struct {
		lat    []time.Duration
		errors int
	}
	parts := make([]part, clients)
	var completed atomic.Int64
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &parts[w]
			p.lat = make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				if started.Add(1) > maxRequests {
					return
				}
				t0 := time.Now()
				if !t0.Before(to) {
					return
				}
				ok := do(ctx)
				t1 := time.Now()
				completed.Add(1)
				if t1.Before(from) || !t1.Before(to) {
					continue
				}
				if ok {
					p.lat = append(p.lat, t1.Sub(t0))
				} else {
					p.errors++
				}
			}
		}()
	}
	wg.Wait()

	r := result{name: name, clients: clients, window: window, total: int(completed.Load())}
	for _, p := range parts {
		r.lat = append(r.lat, p.lat...)
		r.errors += p.errors
	}
	r.ok = len(r.lat)
	// The window was cut short (request cap, cancellation): rate over what ran.
	if end := time.Now(); end.Before(to) {
		r.window = max(end.Sub(from), time.Millisecond)
	}
	slices.Sort(r.lat)
	return r
}

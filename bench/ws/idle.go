//go:build linux

package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// idleTarget is a server to hold N idle connections on.
type idleTarget struct {
	name   string // for the report
	kind   string // "push" or "centrifugo"
	url    string
	host   string
	pid    int
	source string // loopback source address of its connections
	tokens []string
	pprof  string // host:port of a net/http/pprof listener, if any
	// profileAs names the CPU profile of the connects, <kind>-<N>.<profileAs>.cpu.pprof;
	// "" means "connect".
	profileAs string
}

// idleResult is what holding them cost.
type idleResult struct {
	name                string
	conns               int
	failed              int
	clients             int
	connectSeconds      float64
	rssBeforeKiB        int64
	rssAfterKiB         int64
	threadsBefore       int
	threadsAfter        int
	heapProfile         string
	settle              time.Duration
	warmSeconds         float64 // the second round's connect time (push node: users cached)
	loadBefore, loadEnd string
}

func (r idleResult) perConnKiB() float64 {
	return float64(r.rssAfterKiB-r.rssBeforeKiB) / float64(r.conns)
}

func (r idleResult) rate() float64 { return float64(r.conns) / r.connectSeconds }

// measureIdle opens len(t.tokens) connections to t from client processes
// of at most perClient connections each, all at once, and measures the
// server's resident memory before and settle after the last is up.
func measureIdle(ctx context.Context, self string, t idleTarget, o options) (idleResult, error) {
	res := idleResult{name: t.name, settle: o.settle, loadBefore: loadAvg()}
	var err error
	if res.rssBeforeKiB, err = rssKiB(t.pid); err != nil {
		return res, err
	}
	res.threadsBefore = threads(t.pid)
	var procs []*clientProc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	var jobs []clientJob
	for i := 0; i < len(t.tokens); i += o.perClient {
		jobs = append(jobs, clientJob{Kind: t.kind, URL: t.url, Host: t.host, Source: t.source, Concurrency: o.concurrency,
			Tokens: t.tokens[i:min(i+o.perClient, len(t.tokens))]})
	}
	for range jobs {
		p, err := startClient(self)
		if err != nil {
			return res, err
		}
		procs = append(procs, p)
	}
	res.clients = len(procs)
	reports := make([]clientReport, len(jobs))
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	if t.pprof != "" && o.profileDir != "" {
		// A CPU profile of the server while the connections come in.
		wg.Add(1)
		go func() {
			defer wg.Done()
			as := cmp.Or(t.profileAs, "connect")
			out := filepath.Join(o.profileDir, fmt.Sprintf("%s-%d.%s.cpu.pprof", t.kind, len(t.tokens), as))
			if err := fetch(ctx, "http://"+t.pprof+"/debug/pprof/profile?seconds=5", out); err != nil {
				logf("cpu profile: %v", err)
			}
		}()
	}
	start := time.Now()
	done := make(chan struct{}, len(jobs))
	for i, j := range jobs {
		go func() {
			reports[i], errs[i] = procs[i].run(j)
			done <- struct{}{}
		}()
	}
	for range jobs {
		<-done
	}
	res.connectSeconds = time.Since(start).Seconds()
	wg.Wait()
	failed, firstErr := 0, ""
	for i, r := range reports {
		if errs[i] != nil {
			return res, errs[i]
		}
		res.conns += r.Connected
		failed += r.Failed
		if firstErr == "" {
			firstErr = r.FirstErr
		}
	}
	res.failed = failed
	if res.conns == 0 {
		return res, fmt.Errorf("%s: no connection up; %d failed (first: %s)", t.name, failed, firstErr)
	}
	if failed > 0 {
		// Reported in the table, and the run exits 1 at the end.
		logf("%s: %d of %d connections failed (first: %s)", t.name, failed, len(t.tokens), firstErr)
	}
	logf("%s: %d connections up in %.2f s from %d client processes; settling %s", t.name, res.conns, res.connectSeconds, len(procs), o.settle)
	if o.settle == 0 {
		return res, nil // the connect rate only
	}
	select {
	case <-time.After(o.settle):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	if res.rssAfterKiB, err = rssKiB(t.pid); err != nil {
		return res, err
	}
	res.threadsAfter = threads(t.pid)
	res.loadEnd = loadAvg()
	if t.pprof != "" && o.profileDir != "" {
		res.heapProfile = filepath.Join(o.profileDir, fmt.Sprintf("%s-%d.heap.pprof", t.kind, res.conns))
		if err := fetch(ctx, "http://"+t.pprof+"/debug/pprof/heap", res.heapProfile); err != nil {
			return res, err
		}
		_ = fetch(ctx, "http://"+t.pprof+"/debug/pprof/goroutine?debug=1", filepath.Join(o.profileDir, fmt.Sprintf("%s-%d.goroutines.txt", t.kind, res.conns)))
	}
	return res, nil
}

// fetch GETs u into the file path.
func fetch(ctx context.Context, u, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

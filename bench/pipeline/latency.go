package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/tenantworks/saas/bench/internal/benchenv"
)

// sample is one product written by the paced writer.
type sample struct {
	id       string
	measured bool      // written after the warm-up
	t0       time.Time // the 201 arrived
	note     time.Time // its WebSocket notification arrived
	found    time.Time // the first search that found it answered
}

// latencyResult is what part 1 measured.
type latencyResult struct {
	ticks, written, measured, errors, skipped int
	wsMessages                                int
	writeRate                                 float64
	post, note, search                        []time.Duration // measured samples only
	noteMissing, searchMissing                int
	searches                                  int
	searchTime                                []time.Duration
	negativeNote                              int
	samples                                   []sample     // measured, found by a search
	wsErr                                     error        // the WebSocket failed before the end
	indexBase                                 int64        // index_total before the first write
	indexPoints                               []indexPoint // index_total, polled
	stages                                    stageResult
}

// stageResult splits searchable latency of the measured products (those
// with every time known) into its stages.
type stageResult struct {
	n                           int
	publish, bulk, refresh, all []time.Duration
}

// splitStages fills r.stages from the stream's and the index's times.
func (r *latencyResult) splitStages(st stageTimes) {
	for _, sm := range r.samples {
		pub, ok1 := st.published[sm.id]
		ix, ok2 := st.indexed[sm.id]
		if !ok1 || !ok2 {
			continue
		}
		r.stages.n++
		r.stages.publish = append(r.stages.publish, pub.Sub(sm.t0))
		r.stages.bulk = append(r.stages.bulk, ix.Sub(pub))
		r.stages.refresh = append(r.stages.refresh, sm.found.Sub(ix))
		r.stages.all = append(r.stages.all, sm.found.Sub(sm.t0))
	}
}

type tracker struct {
	mu      sync.Mutex
	byID    map[string]*sample
	pending map[string]*sample // not yet found by a search
	early   map[string]time.Time
}

// runLatency writes products at o.rate for o.warmup+o.duration, with a
// staff WebSocket client and one search poller watching.
func runLatency(ctx context.Context, s *pipeline, base string, o options) (latencyResult, error) {
	var res latencyResult
	tr := &tracker{byID: map[string]*sample{}, pending: map[string]*sample{}, early: map[string]time.Time{}}

	// The WebSocket client of the staff user, on the tenant's host.
	wctx, stopWS := context.WithCancel(ctx)
	defer stopWS()
	wsURL := "ws" + base[len("http"):] + "/ws/notifications/?token=" + s.live.token
	conn, resp, err := websocket.Dial(wctx, wsURL, &websocket.DialOptions{Host: s.live.host})
	if err != nil {
		if resp != nil {
			return res, fmt.Errorf("websocket dial: %w (HTTP %s)", err, resp.Status)
		}
		return res, fmt.Errorf("websocket dial: %w", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	var wsErr atomic.Value
	var closing atomic.Bool
	var wsWG sync.WaitGroup
	wsWG.Go(func() {
		for {
			_, b, err := conn.Read(wctx)
			at := time.Now()
			if err != nil {
				if wctx.Err() == nil && !closing.Load() {
					wsErr.Store(err)
				}
				return
			}
			var m struct {
				Type string `json:"type"`
				Data struct {
					ProductID string `json:"product_id"`
				} `json:"data"`
			}
			if json.Unmarshal(b, &m) != nil || m.Data.ProductID == "" {
				continue
			}
			tr.mu.Lock()
			res.wsMessages++
			if sm, ok := tr.byID[m.Data.ProductID]; ok {
				if sm.note.IsZero() {
					sm.note = at
				}
			} else if _, ok := tr.early[m.Data.ProductID]; !ok {
				tr.early[m.Data.ProductID] = at // before its 201 was read
			}
			tr.mu.Unlock()
		}
	})

	// One search poller for every pending product.
	pctx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	var pollWG sync.WaitGroup
	var pollErr atomic.Value
	searchURL := s.ElasticsearchURL() + "/" + s.Search().Alias(s.live.schema) + "/_search?filter_path=hits.hits._id"
	// A document's _id is tenant-qualified, <schema>:<product id>, as
	// pkg/search stores it (tenants share indices).
	idPrefix := s.live.schema + ":"
	pollWG.Go(func() {
		t := time.NewTicker(o.poll)
		defer t.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-t.C:
			}
			tr.mu.Lock()
			ids := make([]string, 0, len(tr.pending))
			for id := range tr.pending {
				ids = append(ids, idPrefix+id)
			}
			tr.mu.Unlock()
			if len(ids) == 0 {
				continue
			}
			var out struct {
				Hits struct {
					Hits []struct {
						ID string `json:"_id"`
					} `json:"hits"`
				} `json:"hits"`
			}
			sent := time.Now()
			err := esJSON(pctx, http.MethodPost, searchURL, map[string]any{
				"query": map[string]any{"ids": map[string]any{"values": ids}}, "size": len(ids), "_source": false,
			}, &out)
			at := time.Now()
			if err != nil {
				if pctx.Err() == nil {
					pollErr.Store(err)
				}
				return
			}
			tr.mu.Lock()
			res.searches++
			res.searchTime = append(res.searchTime, at.Sub(sent))
			for _, h := range out.Hits.Hits {
				id := strings.TrimPrefix(h.ID, idPrefix)
				if sm, ok := tr.pending[id]; ok {
					sm.found = at
					delete(tr.pending, id)
				}
			}
			tr.mu.Unlock()
		}
	})

	// The index's indexing counter, for the stage timings.
	if res.indexBase, err = indexTotal(ctx, s); err != nil {
		return res, fmt.Errorf("index stats: %w", err)
	}
	var statsWG sync.WaitGroup
	statsWG.Go(func() {
		t := time.NewTicker(o.poll)
		defer t.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-t.C:
			}
			n, err := indexTotal(pctx, s)
			if err != nil {
				continue // a stage timing is missing, not the run
			}
			res.indexPoints = append(res.indexPoints, indexPoint{at: time.Now(), total: n})
		}
	})

	// The paced writer: open loop, one POST every 1/rate, at most
	// o.maxInflight in flight (a write due when they are all busy is
	// skipped and counted).
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.maxInflight}}
	var postWG sync.WaitGroup
	var inflight, errs, skipped atomic.Int64
	var firstErr atomic.Value
	interval := time.Duration(float64(time.Second) / o.rate)
	start := time.Now()
	measureFrom := start.Add(o.warmup)
	end := measureFrom.Add(o.duration)
	// Writes are due at start + k*interval; each wake-up issues every write
	// due by then, so a late wake-up (a busy machine) does not lower the
	// offered rate.
	tick := time.NewTicker(interval)
	for now := start; now.Before(end) && ctx.Err() == nil; now = <-tick.C {
		due := int(now.Sub(start)/interval) + 1
		for ; res.ticks < due; res.ticks++ {
			at := start.Add(time.Duration(res.ticks) * interval)
			if !at.Before(end) {
				break
			}
			if inflight.Load() >= int64(o.maxInflight) {
				skipped.Add(1)
				continue
			}
			inflight.Add(1)
			measured := !at.Before(measureFrom)
			postWG.Go(func() {
				defer inflight.Add(-1)
				sent := time.Now()
				id, t0, err := postProduct(ctx, client, base, s.live)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err)
					return
				}
				tr.mu.Lock()
				sm := &sample{id: id, measured: measured, t0: t0}
				if early, ok := tr.early[id]; ok {
					sm.note = early
				}
				tr.byID[id] = sm
				tr.pending[id] = sm
				if measured {
					res.post = append(res.post, t0.Sub(sent))
				}
				tr.mu.Unlock()
			})
		}
	}
	tick.Stop()
	postWG.Wait()
	res.errors, res.skipped = int(errs.Load()), int(skipped.Load())
	if v := firstErr.Load(); v != nil {
		logf("first write error: %v", v)
	}

	// Drain: until every product was notified and found, or o.drain.
	deadline := time.Now().Add(o.drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		tr.mu.Lock()
		done := len(tr.pending) == 0
		for _, sm := range tr.byID {
			if sm.note.IsZero() {
				done = false
				break
			}
		}
		tr.mu.Unlock()
		// A WebSocket the server closed leaves the notifications missing,
		// not the searches: those are still waited for.
		if wsErr.Load() != nil {
			tr.mu.Lock()
			done = len(tr.pending) == 0
			tr.mu.Unlock()
		}
		if done || pollErr.Load() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopPoll()
	pollWG.Wait()
	statsWG.Wait()
	closing.Store(true)
	conn.Close(websocket.StatusNormalClosure, "bench done")
	stopWS()
	wsWG.Wait()
	if v := wsErr.Load(); v != nil {
		// Reported with what was measured; the run still fails.
		res.wsErr = fmt.Errorf("websocket: %v (after %d notifications; the rest count as missing)", v, res.wsMessages)
	}
	if v := pollErr.Load(); v != nil {
		return res, fmt.Errorf("search poller: %v", v)
	}

	tr.mu.Lock()
	defer tr.mu.Unlock()
	res.written = len(tr.byID)
	for _, sm := range tr.byID {
		if !sm.measured {
			continue
		}
		res.measured++
		if sm.note.IsZero() {
			res.noteMissing++
		} else {
			d := sm.note.Sub(sm.t0)
			if d < 0 {
				res.negativeNote++
			}
			res.note = append(res.note, d)
		}
		if sm.found.IsZero() {
			res.searchMissing++
		} else {
			res.search = append(res.search, sm.found.Sub(sm.t0))
			res.samples = append(res.samples, *sm)
		}
	}
	res.writeRate = float64(res.measured) / o.duration.Seconds()
	return res, nil
}

// check fails a run that measured nothing: no product written, or none
// of them notified or found by a search.
func (r latencyResult) check() error {
	switch {
	case r.measured == 0:
		return fmt.Errorf("no product was written in the measured window (%d write errors)", r.errors)
	case len(r.note) == 0:
		return fmt.Errorf("notifications: none of the %d products measured reached the WebSocket", r.measured)
	case len(r.search) == 0:
		return fmt.Errorf("searchable: none of the %d products measured was found by %d searches (does the ids query match the documents' _id?)", r.measured, r.searches)
	}
	return nil
}

// postProduct creates one product; t0 is when the 201 arrived.
func postProduct(ctx context.Context, client *http.Client, base string, t tenantInfo) (string, time.Time, error) {
	body, _ := json.Marshal(map[string]any{
		"sku": "PIPE-" + rand.Text(), "name": "Pipeline benchmark product", "description": "Written by bench/pipeline",
		"price": "19.99", "currency": "EUR", "stock": 10,
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/catalog/products/", bytes.NewReader(body))
	if err != nil {
		return "", time.Time{}, err
	}
	req.Host = t.host
	req.Header.Set("Authorization", "Bearer "+t.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	t0 := time.Now()
	if err != nil {
		return "", t0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return "", t0, err
	}
	if res.StatusCode != http.StatusCreated {
		return "", t0, fmt.Errorf("POST product: %s: %.200s", res.Status, b)
	}
	var p struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &p); err != nil || p.ID == "" {
		return "", t0, errors.New("POST product: no id in the answer")
	}
	return p.ID, t0, nil
}

// pct sorts ds and returns its nearest-rank percentile p (in percent).
func pct(ds []time.Duration, p float64) time.Duration {
	slices.Sort(ds)
	return benchenv.Percentile(ds, p)
}

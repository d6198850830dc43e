package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/events"
)

// Stage timings split a product's 201-to-searchable into the relay's
// publish (the stream's own timestamp of the event), the indexer's bulk
// request and the wait for the refresh that made it searchable. This
// Elasticsearch has no ingest processors to stamp documents, so the bulk
// time is read from the index's indexing counter, polled as often as the
// searches: the k-th of the tenant's events in stream order (the indexer
// takes them in that order) is in the index at the first poll whose
// index_total is k past the count before the first write. Only the live
// tenant writes to its shared index during part 1. All clocks are this
// machine's.

// indexPoint is one reading of the index's indexing counter.
type indexPoint struct {
	at    time.Time
	total int64
}

// indexTotal reads index_total of the index behind the live tenant's alias.
func indexTotal(ctx context.Context, s *pipeline) (int64, error) {
	var out struct {
		All struct {
			Primaries struct {
				Indexing struct {
					IndexTotal int64 `json:"index_total"`
				} `json:"indexing"`
			} `json:"primaries"`
		} `json:"_all"`
	}
	u := s.ElasticsearchURL() + "/" + s.Search().Alias(s.live.schema) + "/_stats/indexing?filter_path=_all.primaries.indexing.index_total"
	if err := esJSON(ctx, http.MethodGet, u, nil, &out); err != nil {
		return 0, err
	}
	return out.All.Primaries.Indexing.IndexTotal, nil
}

// stageTimes are, per product id, when its event was stored in the stream
// and when Elasticsearch received its document.
type stageTimes struct {
	published, indexed map[string]time.Time
}

// indexedTimes assigns the ids, in stream order, their times from the
// counter's readings (base is the count before the first write).
func indexedTimes(order []string, base int64, points []indexPoint) map[string]time.Time {
	out := map[string]time.Time{}
	j := 0
	for k, id := range order {
		for j < len(points) && points[j].total-base < int64(k+1) {
			j++
		}
		if j == len(points) {
			break
		}
		out[id] = points[j].at
	}
	return out
}

// readStages reads the live tenant's events from the stream and gives
// each its time in the index from the counter's readings.
func readStages(ctx context.Context, s *pipeline, base int64, points []indexPoint) (stageTimes, error) {
	st := stageTimes{published: map[string]time.Time{}}
	nc, err := events.Connect(s.NATSURL(), "bench-pipeline-stages")
	if err != nil {
		return st, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return st, err
	}
	c, err := js.OrderedConsumer(ctx, events.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.TenantSubjects(s.live.schema)},
	})
	if err != nil {
		return st, fmt.Errorf("stream %s: %w", events.StreamName, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return st, err
	}
	var order []string
	left := int(info.NumPending)
	for left > 0 {
		batch, err := c.Fetch(min(left, 500), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return st, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return st, err
			}
			var ev events.Envelope
			if json.Unmarshal(m.Data(), &ev) == nil && ev.Type == events.ProductCreated {
				st.published[ev.AggregateID] = md.Timestamp
				order = append(order, ev.AggregateID)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return st, err
		}
		if got == 0 {
			break
		}
		left -= got
	}
	st.indexed = indexedTimes(order, base, points)
	return st, nil
}

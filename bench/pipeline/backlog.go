package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/catalog"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/workers/relay"
)

// backlogResult is what part 2 measured.
type backlogResult struct {
	n                 int
	insertTime        time.Duration // writing the products and outbox rows
	relayTime         time.Duration // saas relay start to every event in the stream
	pendingAtStart    uint64        // the indexer consumer's pending count before the indexer started
	ackedTime         time.Duration // indexer start to every event acknowledged
	searchableTime    time.Duration // indexer start to _count == n after a _refresh
	docsPerSecond     float64
	docsPerSecondAcks float64
}

// runBacklog: with no role running, write n products of the backlog
// tenant (postgres.DB.CreateProduct, product and outbox row in one
// transaction, as the API does), drain the outbox into the stream with
// the relay alone, stop it, then time `saas worker indexer` alone.
func runBacklog(ctx context.Context, s *pipeline, o options) (backlogResult, error) {
	r := backlogResult{n: o.backlog}
	t := s.backlog.schema

	// 1. The products, with o.backlogWorkers goroutines.
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	desc, price, cur, stock, name := "Written by bench/pipeline for the indexer backlog", "19.99", "EUR", int64(10), "Backlog product"
	cat, err := catalog.New(catalog.Deps{Store: s.DB()})
	if err != nil {
		return backlogResult{}, err
	}
	for range o.backlogWorkers {
		wg.Go(func() {
			for ctx.Err() == nil && firstErr.Load() == nil {
				i := next.Add(1)
				if i > int64(o.backlog) {
					return
				}
				sku := fmt.Sprintf("BACKLOG-%06d", i)
				_, err := cat.Create(ctx, t, domain.ProductPatch{SKU: &sku, Name: &name, Description: &desc, Price: &price, Currency: &cur, Stock: &stock},
					catalog.Meta{RequestID: fmt.Sprintf("bench-pipeline-backlog-%06d", i)})
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	wg.Wait()
	if v := firstErr.Load(); v != nil {
		return r, fmt.Errorf("backlog insert: %v", v)
	}
	if err := ctx.Err(); err != nil {
		return r, err
	}
	r.insertTime = time.Since(start)

	nc, err := events.Connect(s.NATSURL(), "bench-pipeline")
	if err != nil {
		return r, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return r, err
	}
	stream, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		return r, fmt.Errorf("stream %s (saas dev should have made it): %w", events.StreamName, err)
	}
	inStream := func() (uint64, error) {
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter(events.TenantSubjects(t)))
		if err != nil {
			return 0, err
		}
		var n uint64
		for _, c := range info.State.Subjects {
			n += c
		}
		return n, nil
	}

	// 2. The relay alone, until the tenant's outbox is empty and its
	// events are all in the stream. The code `saas relay` runs (runRelay:
	// relay.New(...).Run on DATABASE_URL) runs in this process, on its
	// own pool, as it did when the CLI did not register `saas relay` yet
	// and the results below were measured; it is stopped before the
	// indexer starts.
	rdb, err := postgres.Open(ctx, postgres.Config{URL: s.DatabaseURL()})
	if err != nil {
		return r, err
	}
	defer rdb.Close()
	rctx, stopRelay := context.WithCancel(ctx)
	defer stopRelay()
	var relayWG sync.WaitGroup
	var relayErr atomic.Value
	rl, err := relay.New(relay.Config{}, relay.Deps{Clusters: []relay.Cluster{{Name: postgres.MainCluster, Outbox: rdb, ListenURL: s.DatabaseURL()}}, JS: js, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return r, err
	}
	relayStart := time.Now()
	relayWG.Go(func() {
		if err := rl.Run(rctx); err != nil && rctx.Err() == nil {
			relayErr.Store(err)
		}
	})
	for {
		n, err := inStream()
		if err != nil {
			return r, err
		}
		if n >= uint64(o.backlog) {
			var left int64
			if err := s.DB().InTenant(ctx, t, func(tx pgx.Tx) error {
				return tx.QueryRow(ctx, "SELECT count(*) FROM outbox").Scan(&left)
			}); err != nil {
				return r, err
			}
			if left == 0 {
				break
			}
		}
		if v := relayErr.Load(); v != nil {
			return r, fmt.Errorf("relay: %v", v)
		}
		if ctx.Err() != nil {
			return r, fmt.Errorf("relay: %d of %d events in the stream at the deadline", n, o.backlog)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.relayTime = time.Since(relayStart)
	stopRelay()
	relayWG.Wait()

	cons, err := js.Consumer(ctx, events.StreamName, events.ConsumerIndexer)
	if err != nil {
		return r, fmt.Errorf("consumer %s (saas dev should have made it): %w", events.ConsumerIndexer, err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return r, err
	}
	r.pendingAtStart = ci.NumPending
	if ci.NumAckPending != 0 {
		return r, fmt.Errorf("consumer %s has %d unacknowledged events before the indexer starts", events.ConsumerIndexer, ci.NumAckPending)
	}

	// 3. saas worker indexer alone, from process start until the alias
	// counts every product after a _refresh.
	alias := s.ElasticsearchURL() + "/" + s.Search().Alias(t)
	ix, err := s.Start(ctx, "indexer")
	if err != nil {
		return r, err
	}
	defer ix.Stop()
	for {
		if err := ix.Exited(); err != nil {
			return r, err
		}
		if ctx.Err() != nil {
			return r, fmt.Errorf("indexer did not finish before the deadline")
		}
		if r.ackedTime == 0 {
			ci, err := cons.Info(ctx)
			if err != nil {
				return r, err
			}
			if ci.NumPending == 0 && ci.NumAckPending == 0 {
				r.ackedTime = time.Since(ix.Started())
			}
		}
		if r.ackedTime != 0 {
			if err := esJSON(ctx, http.MethodPost, alias+"/_refresh", nil, nil); err != nil {
				return r, err
			}
			var c struct {
				Count int `json:"count"`
			}
			if err := esJSON(ctx, http.MethodGet, alias+"/_count", nil, &c); err != nil {
				return r, err
			}
			if c.Count >= o.backlog {
				r.searchableTime = time.Since(ix.Started())
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	ix.Stop()
	r.docsPerSecond = float64(o.backlog) / r.searchableTime.Seconds()
	r.docsPerSecondAcks = float64(o.backlog) / r.ackedTime.Seconds()
	return r, nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/search"
	"github.com/tenantworks/saas/pkg/tenancy"
)

// crowdResult is what the extra tenants' setup did.
type crowdResult struct {
	tenants, docs int
	took          time.Duration
	aliases       int // aliases under the stack's prefix afterwards
	sharedDocs    int // documents in the shared indices afterwards
}

// crowd creates o.tenants extra tenants, each with tenancy.Manager and the
// search hook (its alias on its shared index) exactly as the measured two,
// and writes o.tenantDocs documents into each through its alias with the
// indexer's client call (search.Client.Apply), so that the shared indices
// and the cluster state carry them during the measurement. o.tenantWorkers
// tenants are made at a time. Any failure is the run's.
func crowd(ctx context.Context, s *pipeline, o options) (crowdResult, error) {
	res := crowdResult{tenants: o.tenants}
	if o.tenants == 0 {
		return res, nil
	}
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var done atomic.Int64
	var firstErr error
	var once sync.Once
	fail := func(err error) {
		once.Do(func() { firstErr = err; cancel() })
	}
	var wg sync.WaitGroup
	for range o.tenantWorkers {
		wg.Go(func() {
			for i := range next {
				if err := crowdTenant(ctx, s, i, o.tenantDocs); err != nil {
					fail(err)
					return
				}
				if n := done.Add(1); n%100 == 0 || int(n) == o.tenants {
					logf("extra tenants: %d of %d created with %d documents each (%s)", n, o.tenants, o.tenantDocs, time.Since(start).Round(time.Second))
				}
			}
		})
	}
feed:
	for i := range o.tenants {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return res, fmt.Errorf("extra tenants: %d of %d made before a failure: %w", done.Load(), o.tenants, firstErr)
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("extra tenants: %w", err)
	}
	res.took = time.Since(start)
	res.docs = o.tenants * o.tenantDocs

	// What the shared indices hold now: a setup that silently made fewer
	// aliases or documents than asked for is a failure, not a result.
	prefix := s.IndexPrefix()
	var aliases map[string]struct {
		Aliases map[string]struct{} `json:"aliases"`
	}
	if err := esJSON(ctx, http.MethodGet, s.ElasticsearchURL()+"/"+prefix+"_*/_alias", nil, &aliases); err != nil {
		return res, fmt.Errorf("extra tenants: list aliases: %w", err)
	}
	for _, ix := range aliases {
		res.aliases += len(ix.Aliases)
	}
	if err := esJSON(ctx, http.MethodPost, s.ElasticsearchURL()+"/"+prefix+"_shared_*/_refresh", nil, nil); err != nil {
		return res, fmt.Errorf("extra tenants: refresh: %w", err)
	}
	var count struct {
		Count int `json:"count"`
	}
	if err := esJSON(ctx, http.MethodGet, s.ElasticsearchURL()+"/"+prefix+"_shared_*/_count", nil, &count); err != nil {
		return res, fmt.Errorf("extra tenants: count: %w", err)
	}
	res.sharedDocs = count.Count
	if want := o.tenants + 2; res.aliases < want {
		return res, fmt.Errorf("extra tenants: %d aliases under %s_*, want at least %d", res.aliases, prefix, want)
	}
	if res.sharedDocs < res.docs {
		return res, fmt.Errorf("extra tenants: %d documents in the shared indices, want at least %d", res.sharedDocs, res.docs)
	}
	return res, nil
}

// crowdTenant makes extra tenant i and its documents.
func crowdTenant(ctx context.Context, s *pipeline, i, docs int) error {
	schema := fmt.Sprintf("bpx_%s_%05d", s.sfx, i)
	host := fmt.Sprintf("bpx-%s-%05d.bench.localhost", s.sfx, i)
	if _, err := s.Manager().Create(ctx, tenancy.CreateParams{Schema: schema, Name: "pipeline benchmark extra " + schema, Domain: host}); err != nil {
		return fmt.Errorf("create tenant %s: %w", schema, err)
	}
	if docs == 0 {
		return nil
	}
	t := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ops := make([]search.Op, docs)
	for k := range ops {
		ops[k] = search.IndexOp(search.DocFromProduct(domain.Product{
			ID: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, k), SKU: fmt.Sprintf("X-%05d-%04d", i, k),
			Name: fmt.Sprintf("Extra product %d", k), Description: "Written by bench/pipeline for " + schema,
			Price: "9.99", Currency: "EUR", Stock: 3, Version: 1, CreatedAt: t, UpdatedAt: t,
		}))
	}
	itemErrs, err := s.Search().Apply(ctx, schema, ops)
	if err == nil {
		err = errors.Join(itemErrs...)
	}
	if err != nil {
		return fmt.Errorf("documents of tenant %s: %w", schema, err)
	}
	return nil
}

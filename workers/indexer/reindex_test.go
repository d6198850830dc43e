package indexer_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/search"
	"github.com/tenantworks/saas/workers/indexer"
)

// searcher searches the tenant's index every 20ms until stopped, counting
// searches and the ones that failed or found nothing.
type searcher struct {
	done, failed atomic.Int64
	firstErr     atomic.Value
	stop         func()
}

func (h *harness) searchContinuously(q string) *searcher {
	s := &searcher{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			_, total, err := h.es.Search(context.Background(), h.schema, q, 0, 5)
			if err == nil && total == 0 {
				err = fmt.Errorf("search %q found nothing", q)
			}
			if err != nil {
				s.failed.Add(1)
				s.firstErr.CompareAndSwap(nil, err)
			}
			s.done.Add(1)
		}
	})
	s.stop = func() { cancel(); wg.Wait() }
	h.t.Cleanup(s.stop)
	return s
}

// waitSearches blocks until the searcher has answered n more searches.
func (s *searcher) waitSearches(t *testing.T, n int64) {
	t.Helper()
	target := s.done.Load() + n
	deadline := time.Now().Add(10 * time.Second)
	for s.done.Load() < target {
		if time.Now().After(deadline) {
			t.Error("the searcher stalled")
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReindexFromTheDatabaseWhileSearching(t *testing.T) {
	t.Parallel()
	h := newHarness(t, search.Config{})
	ctx := context.Background()
	products := make([]domain.Product, 200)
	ops := make([]search.Op, len(products))
	for i := range products {
		products[i] = h.create(fmt.Sprintf("Widget %03d", i))
		ops[i] = search.IndexOp(search.DocFromProduct(products[i]))
	}
	// The index as the indexer left it.
	if _, err := h.es.Apply(ctx, h.schema, ops); err != nil {
		t.Fatal(err)
	}
	if err := h.es.Refresh(ctx, h.schema); err != nil {
		t.Fatal(err)
	}
	before, err := h.es.Indices(ctx, h.schema)
	if err != nil {
		t.Fatal(err)
	}

	s := h.searchContinuously("widget")
	var once sync.Once
	var created []domain.Product
	progress := func(done, total int) {
		s.waitSearches(t, 2) // searches interleave with every page of the build
		if done < 100 {
			return
		}
		// Half way through the build, and so after its snapshot: changes
		// the new index cannot hold until the reconciliation.
		once.Do(func() {
			for _, i := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 150, 151, 152, 153, 154, 155, 156, 157, 158, 159} {
				h.rename(products[i], fmt.Sprintf("Widget %03d renamed", i))
			}
			for _, i := range []int{10, 11, 12, 13, 14, 160, 161, 162, 163, 164} {
				h.remove(products[i])
			}
			for i := range 5 {
				created = append(created, h.create(fmt.Sprintf("Widget new %d", i)))
			}
		})
	}
	// 200 products against a threshold of 100: the rebuild promotes the
	// tenant from its shared index to an index of its own.
	r := h.reindexer(indexer.ReindexerConfig{Batch: 50, DedicatedAt: 100})
	start := time.Now()
	rep, err := r.Reindex(ctx, h.schema, indexer.FromDB, progress)
	if err != nil {
		t.Fatal(err)
	}
	s.waitSearches(t, 2)
	s.stop()
	t.Logf("%s (%s); %d searches meanwhile", rep, time.Since(start).Round(time.Millisecond), s.done.Load())

	if n := s.failed.Load(); n > 0 {
		t.Fatalf("%d of %d searches failed during the rebuild, first: %v", n, s.done.Load(), s.firstErr.Load())
	}
	if rep.Read != 200 || rep.Written.Applied != 200 || rep.Reconciled.Indexed != 25 || rep.Reconciled.Deleted != 10 {
		t.Fatalf("report %+v: want 200 read and written, then 25 indexed (20 renamed, 5 created) and 10 deleted by the reconciliation", rep)
	}
	if got, want := h.indexed(), h.stored(); !maps.Equal(got, want) {
		t.Fatalf("the index (%d documents) differs from the database (%d products)", len(got), len(want))
	}
	after, err := h.es.Indices(ctx, h.schema)
	if err != nil || !rep.Own || !slices.Equal(after, []string{rep.Index}) || h.es.IsShared(rep.Index) || !h.es.IsShared(before[0]) {
		t.Fatalf("the alias points to %v (%v), want only the new index %s of its own instead of %v", after, err, rep.Index, before)
	}
	if n, err := h.es.SharedCounts(ctx, []string{h.schema}); err != nil || n[h.schema] != 0 {
		t.Fatalf("%d documents (%v) left in the shared index %s, want none", n[h.schema], err, before[0])
	}
}

func TestReindexFromTheStream(t *testing.T) {
	t.Parallel()
	h := newHarness(t, search.Config{})
	ctx := context.Background()
	var evs []events.Envelope
	var products []domain.Product
	for i := range 30 {
		p := h.create(fmt.Sprintf("Lantern %02d", i))
		products = append(products, p)
		evs = append(evs, h.envelope(events.ProductCreated, p, 1))
	}
	for _, p := range products[:10] {
		evs = append(evs, h.envelope(events.ProductUpdated, h.rename(p, p.Name+" deluxe"), 2))
	}
	for _, p := range products[10:15] {
		evs = append(evs, h.envelope(events.ProductDeleted, p, h.remove(p)))
	}
	// A late update of a deleted product, and another tenant's event.
	evs = append(evs, h.envelope(events.ProductUpdated, products[10], 1))
	other := h.in(t)
	other.schema = h.schema + "_other"
	h.publish(evs...)
	h.publish(other.envelope(events.ProductCreated, products[20], 1))
	// Something that is not an envelope at all.
	if _, err := h.JS.PublishMsg(ctx, &nats.Msg{Subject: events.Subject(h.schema, events.ProductUpdated), Data: []byte("garbage")}); err != nil {
		t.Fatal(err)
	}

	var last [2]int
	r := h.reindexer(indexer.ReindexerConfig{Batch: 20})
	rep, err := r.Reindex(ctx, h.schema, indexer.FromStream, func(done, total int) { last = [2]int{done, total} })
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep)
	// 30 created + 10 updated + 5 deleted + 1 late update + 1 garbage.
	if rep.Read != 47 || last != [2]int{47, 47} {
		t.Fatalf("read %d, last progress %v; want 47 of 47", rep.Read, last)
	}
	// The created events of the 5 deleted products, the late update, the garbage.
	if rep.Skipped != 7 {
		t.Fatalf("skipped %d, want 7", rep.Skipped)
	}
	// The stream alone rebuilt the index exactly: nothing to reconcile.
	if rep.Reconciled.Indexed != 0 || rep.Reconciled.Deleted != 0 {
		t.Fatalf("reconciled %+v, want nothing left to fix after the replay", rep.Reconciled)
	}
	if got, want := h.indexed(), h.stored(); !maps.Equal(got, want) || len(got) != 25 {
		t.Fatalf("the index %v differs from the database %v", got, want)
	}
}

func TestReindexOfAnUnknownTenantCreatesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, search.Config{})
	r := h.reindexer(indexer.ReindexerConfig{})
	if _, err := r.Reindex(context.Background(), "nobody_here", indexer.FromDB, nil); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("got %v, want ENOTFOUND", err)
	}
	if got, err := h.es.Indices(context.Background(), "nobody_here"); err != nil || len(got) != 0 {
		t.Fatalf("indices %v (%v)", got, err)
	}
	if _, err := r.Reindex(context.Background(), h.schema, "elsewhere", nil); domain.ErrorCode(err) != domain.EINVALID {
		t.Fatalf("an unknown source: %v, want EINVALID", err)
	}
}

func TestAFailedReindexLeavesTheOldIndexServing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, search.Config{})
	p := h.create("Steady widget")
	if _, err := h.es.Apply(context.Background(), h.schema, []search.Op{search.IndexOp(search.DocFromProduct(p))}); err != nil {
		t.Fatal(err)
	}
	before, err := h.es.Indices(context.Background(), h.schema)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// A threshold of 1: the rebuild is a promotion into a new index.
	r := h.reindexer(indexer.ReindexerConfig{DedicatedAt: 1})
	rep, err := r.Reindex(ctx, h.schema, indexer.FromDB, func(int, int) { cancel() }) // interrupted half way
	if err == nil {
		t.Fatal("an interrupted rebuild succeeded")
	}
	after, err := h.es.Indices(context.Background(), h.schema)
	if err != nil || !slices.Equal(after, before) {
		t.Fatalf("the alias points to %v (%v), want the old %v", after, err, before)
	}
	if _, _, err := h.es.ApplyToIndex(context.Background(), h.schema, rep.Index, nil); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("the unfinished index %s: %v, want it deleted", rep.Index, err)
	}
	if _, found := h.get(p.ID); !found {
		t.Fatal("the old index lost its document")
	}
}

func TestReindexPlacesATenantBySize(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// index puts the tenant's products in its index as the indexer would.
	index := func(h *harness) {
		h.t.Helper()
		var ops []search.Op
		for _, p := range h.products() {
			ops = append(ops, search.IndexOp(search.DocFromProduct(p)))
		}
		if errs, err := h.es.Apply(ctx, h.schema, ops); err != nil || errors.Join(errs...) != nil {
			h.t.Fatal(err, errs)
		}
		if err := h.es.Refresh(ctx, h.schema); err != nil {
			h.t.Fatal(err)
		}
	}
	// rebuild runs a rebuild from the database with a threshold of 10
	// while searching, and checks that the index then matches the database.
	rebuild := func(h *harness, source string) indexer.Report {
		h.t.Helper()
		s := h.searchContinuously("widget")
		r := h.reindexer(indexer.ReindexerConfig{DedicatedAt: 10, Batch: 3})
		rep, err := r.Reindex(ctx, h.schema, source, func(int, int) { s.waitSearches(h.t, 1) })
		if err != nil {
			h.t.Fatal(err)
		}
		s.waitSearches(h.t, 2)
		s.stop()
		if n := s.failed.Load(); n > 0 {
			h.t.Fatalf("%d of %d searches failed during the rebuild, first: %v", n, s.done.Load(), s.firstErr.Load())
		}
		if got, want := h.indexed(), h.stored(); !maps.Equal(got, want) {
			h.t.Fatalf("after %s the index %v differs from the database %v", rep, got, want)
		}
		if got, err := h.es.Indices(ctx, h.schema); err != nil || !slices.Equal(got, []string{rep.Index}) {
			h.t.Fatalf("the alias points to %v (%v), want [%s]", got, err, rep.Index)
		}
		if rep.Own == h.es.IsShared(rep.Index) {
			h.t.Fatalf("report says own=%v for index %s", rep.Own, rep.Index)
		}
		return rep
	}

	t.Run("a small tenant is rebuilt in place on its shared index", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, search.Config{})
		for i := range 5 {
			h.create(fmt.Sprintf("Widget %d", i))
		}
		index(h)
		before, _ := h.es.Indices(ctx, h.schema)
		// A document wrong at its own version: only a rebuild mends it.
		p := h.products()[0]
		bad := search.DocFromProduct(p)
		bad.Name = "Widget garbled"
		if _, _, err := h.es.ApplyToIndex(ctx, h.schema, before[0], []search.Op{search.IndexOp(bad)}); err != nil {
			t.Fatal(err)
		}
		rep := rebuild(h, indexer.FromDB)
		if rep.Own || rep.Index != before[0] || rep.Written.Applied != 5 {
			t.Fatalf("%s: want the 5 products rewritten in place on %s", rep, before[0])
		}
		if d, _ := h.get(p.ID); d.Name != p.Name {
			t.Fatalf("the garbled document reads %q after the rebuild, want %q", d.Name, p.Name)
		}
	})

	t.Run("a tenant of its own that shrank goes back to a shared index, and one in between stays", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, search.Config{})
		for i := range 12 {
			h.create(fmt.Sprintf("Widget %d", i))
		}
		index(h)
		own := rebuild(h, indexer.FromDB)
		if !own.Own {
			t.Fatalf("%s: want 12 products of 10 on an index of their own", own)
		}
		ps := h.products()
		for _, p := range ps[:5] { // 7 left: between 5 and 10
			h.remove(p)
		}
		again := rebuild(h, indexer.FromDB)
		if !again.Own || again.Index == own.Index {
			t.Fatalf("%s: want a new index of its own in between the thresholds", again)
		}
		for _, p := range ps[5:9] { // 3 left: below 5
			h.remove(p)
		}
		back := rebuild(h, indexer.FromDB)
		if back.Own {
			t.Fatalf("%s: want 3 products back on a shared index", back)
		}
		if _, _, err := h.es.ApplyToIndex(ctx, h.schema, again.Index, nil); domain.ErrorCode(err) != domain.ENOTFOUND {
			t.Fatalf("the index of its own %s: %v, want it deleted", again.Index, err)
		}
	})

	t.Run("from the stream too", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, search.Config{})
		var evs []events.Envelope
		for i := range 12 {
			evs = append(evs, h.envelope(events.ProductCreated, h.create(fmt.Sprintf("Widget %d", i)), 1))
		}
		h.publish(evs...)
		index(h)
		if rep := rebuild(h, indexer.FromStream); !rep.Own || rep.Read != 12 {
			t.Fatalf("%s: want 12 events read into an index of its own", rep)
		}
	})
}

func TestTwoRebuildsOfOneTenantNeverRunAtOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, search.Config{})
	ctx := context.Background()
	for i := range 4 {
		h.create(fmt.Sprintf("Widget %d", i))
	}
	r := h.reindexer(indexer.ReindexerConfig{Batch: 2})
	var second error
	var once sync.Once
	if _, err := r.Reindex(ctx, h.schema, indexer.FromDB, func(int, int) {
		once.Do(func() { _, second = r.Reindex(ctx, h.schema, indexer.FromDB, nil) })
	}); err != nil {
		t.Fatal(err)
	}
	if domain.ErrorCode(second) != domain.ECONFLICT {
		t.Fatalf("a rebuild during another of the same tenant: %v, want ECONFLICT", second)
	}
	if _, err := r.Reindex(ctx, h.schema, indexer.FromDB, nil); err != nil {
		t.Fatalf("a rebuild after the first ended: %v", err)
	}
}

func TestAFailedMoveBackToASharedIndexLeavesNothingThere(t *testing.T) {
	t.Parallel()
	h := newHarness(t, search.Config{})
	ctx := context.Background()
	for i := range 3 {
		h.create(fmt.Sprintf("Widget %d", i))
	}
	own, err := h.reindexer(indexer.ReindexerConfig{DedicatedAt: 1}).Reindex(ctx, h.schema, indexer.FromDB, nil)
	if err != nil || !own.Own {
		t.Fatalf("%s (%v): want an index of its own", own, err)
	}
	// Back to a shared index (3 products of a threshold of 100), cut off
	// after the first page.
	cctx, cancel := context.WithCancel(ctx)
	r := h.reindexer(indexer.ReindexerConfig{DedicatedAt: 100, Batch: 1})
	rep, err := r.Reindex(cctx, h.schema, indexer.FromDB, func(int, int) { cancel() })
	if err == nil || rep.Own || !h.es.IsShared(rep.Index) {
		t.Fatalf("%s (%v): want an interrupted move to a shared index", rep, err)
	}
	if got, err := h.es.Indices(ctx, h.schema); err != nil || !slices.Equal(got, []string{own.Index}) {
		t.Fatalf("the alias points to %v (%v), want its own index %s still", got, err, own.Index)
	}
	if n, err := h.es.SharedCounts(ctx, []string{h.schema}); err != nil || n[h.schema] != 0 {
		t.Fatalf("%d documents (%v) of the interrupted move left in %s", n[h.schema], err, rep.Index)
	}
	if got, want := h.indexed(), h.stored(); !maps.Equal(got, want) {
		t.Fatalf("the index %v differs from the database %v", got, want)
	}
}

package indexer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/search"
	"github.com/tenantworks/saas/workers/indexer"
	"github.com/tenantworks/saas/workers/runner"
)

func TestProductEventsBecomeSearchable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, search.Config{})
	a, b := h.create("Blue widget"), h.create("Brass lantern")
	b2 := h.rename(b, "Brass lantern deluxe")
	name, cc := h.consumer()
	h.start(name, cc, h.es)
	h.publish(h.envelope(events.ProductCreated, a, 1), h.envelope(events.ProductCreated, b, 1), h.envelope(events.ProductUpdated, b2, 2))

	ctx := context.Background()
	find := func(q, id string, version int64) func() bool {
		return func() bool {
			docs, _, err := h.es.Search(ctx, h.schema, q, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			return len(docs) == 1 && docs[0].ID == id && docs[0].Version == version
		}
	}
	h.eventually("a typo finds the widget at version 1", find("widgit", a.ID, 1))
	h.eventually("the lantern is found at version 2", find("deluxe", b.ID, 2))
}

func TestAnOlderEventNeverOverwritesANewerOne(t *testing.T) {
	t.Parallel()
	h := newHarness(t, search.Config{})
	p := h.create("First name")
	v2 := h.rename(p, "Second name")
	v3 := h.rename(v2, "Third name")
	name, cc := h.consumer()
	h.start(name, cc, h.es)
	h.publish(h.envelope(events.ProductUpdated, v3, 3), h.envelope(events.ProductUpdated, v2, 2))
	h.drained(name)
	if d, found := h.get(p.ID); !found || d.Version != 3 || d.Name != "Third name" {
		t.Fatalf("after v3 then v2 the index holds %+v (found %v), want version 3", d, found)
	}
}

// TestADeletedProductStaysDeleted replays an old update after
// Elasticsearch has forgotten the delete (index.gc_deletes of 0s): only the
// indexer's database check keeps the product deleted.
func TestADeletedProductStaysDeleted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, search.Config{GCDeletes: "0s"})
	p := h.create("Doomed widget")
	v2 := h.rename(p, "Doomed widget v2")
	name, cc := h.consumer()
	h.start(name, cc, h.es)
	h.publish(h.envelope(events.ProductCreated, p, 1), h.envelope(events.ProductUpdated, v2, 2))
	h.eventually("version 2 is indexed", func() bool { d, found := h.get(p.ID); return found && d.Version == 2 })

	del := h.remove(v2)
	h.publish(h.envelope(events.ProductDeleted, v2, del))
	h.eventually("the product is gone from the index", func() bool { _, found := h.get(p.ID); return !found })

	// Wait until Elasticsearch has forgotten delete versions: a control
	// document deleted after the product comes back from an old write.
	ctrl := search.IndexOp(search.Doc{ID: "control", Name: "control", Version: 5})
	apply := func(ops ...search.Op) {
		if errs, err := h.es.Apply(context.Background(), h.schema, ops); err != nil || errors.Join(errs...) != nil {
			t.Fatal(err, errs)
		}
	}
	apply(ctrl, search.DeleteOp("control", 6))
	h.eventually("Elasticsearch forgot the deletes", func() bool {
		apply(ctrl)
		_, found := h.get("control")
		return found
	})
	apply(search.DeleteOp("control", 7))

	// The old update again, as a replay or a re-drive would deliver it.
	h.publish(h.envelope(events.ProductUpdated, v2, 2))
	h.drained(name)
	if d, found := h.get(p.ID); found {
		t.Fatalf("a replayed update brought the deleted product back: %+v", d)
	}
}

func TestSearchDownIsRetriedAndNothingIsLost(t *testing.T) {
	t.Parallel()
	h := newHarness(t, search.Config{})
	down, err := search.New(search.Config{URL: "http://127.0.0.1:1", IndexPrefix: "down"})
	if err != nil {
		t.Fatal(err)
	}
	p := h.create("Patient widget")
	ev := h.envelope(events.ProductCreated, p, 1)
	ctx := context.Background()

	// The handler says "retry", never "give up".
	ix, err := indexer.New(indexer.Config{}, indexer.Deps{DB: h.DB, Search: down, JS: h.JS, Log: h.Log})
	if err != nil {
		t.Fatal(err)
	}
	errs := ix.Handle(ctx, []events.Envelope{ev})
	if errs[0] == nil || runner.IsPermanent(errs[0]) || domain.ErrorCode(errs[0]) != domain.EUNAVAILABLE {
		t.Fatalf("the handler returned %v, want a retryable EUNAVAILABLE error", errs[0])
	}

	// The worker acknowledges nothing while search is down...
	name, cc := h.consumer()
	// A worker stopped mid-batch leaves its events to the ack wait; keep
	// it short so the second worker below gets them soon.
	cc.AckWait = 2 * time.Second
	stop := h.start(name, cc, down)
	h.publish(ev)
	h.eventually("the event was delivered again after a nak", func() bool {
		c, err := h.JS.Consumer(ctx, events.StreamName, name)
		return err == nil && c.CachedInfo().NumRedelivered > 0
	})
	stop()
	c, err := h.JS.Consumer(ctx, events.StreamName, name)
	if err != nil {
		t.Fatal(err)
	}
	if info := c.CachedInfo(); info.AckFloor.Stream != 0 || info.NumAckPending != 1 {
		t.Fatalf("ack floor %d, %d awaiting ack; want nothing acknowledged while search was down", info.AckFloor.Stream, info.NumAckPending)
	}
	if _, found := h.get(p.ID); found {
		t.Fatal("indexed while search was down?")
	}

	// ...and nothing is lost: once search is back, the event is indexed.
	h.start(name, cc, h.es)
	h.eventually("the event is indexed", func() bool { _, found := h.get(p.ID); return found })
	h.drained(name)
}

// counting wraps the real database and index, counting calls.
type counting struct {
	indexer.Versions
	indexer.Searcher
	queries, bulks atomic.Int64
}

func (c *counting) ProductVersions(ctx context.Context, schemaName string, ids []string) (map[string]int64, error) {
	c.queries.Add(1)
	return c.Versions.ProductVersions(ctx, schemaName, ids)
}

func (c *counting) Apply(ctx context.Context, schema string, ops []search.Op) ([]error, error) {
	c.bulks.Add(1)
	return c.Searcher.Apply(ctx, schema, ops)
}

func TestHandle(t *testing.T) {
	t.Parallel()
	h := newHarness(t, search.Config{})
	ctx := context.Background()
	c := &counting{Versions: h.DB, Searcher: h.es}
	ix, err := indexer.New(indexer.Config{}, indexer.Deps{DB: c, Search: c, JS: h.JS, Log: h.Log})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("one query and one bulk per tenant per batch", func(t *testing.T) {
		h := h.in(t)
		other := h.schema + "_b"
		h.MustTenant(t, other)
		t.Cleanup(func() { _ = h.es.DeleteTenant(context.Background(), other) })
		var evs []events.Envelope
		for range 3 {
			evs = append(evs, h.envelope(events.ProductCreated, h.create("Widget"), 1))
		}
		hb := h.in(t)
		hb.schema = other
		for range 3 {
			evs = append(evs, hb.envelope(events.ProductCreated, hb.create("Widget"), 1))
		}
		c.queries.Store(0)
		c.bulks.Store(0)
		if err := errors.Join(ix.Handle(ctx, evs)...); err != nil {
			t.Fatal(err)
		}
		if q, b := c.queries.Load(), c.bulks.Load(); q != 2 || b != 2 {
			t.Fatalf("%d queries and %d bulks for 2 tenants", q, b)
		}
	})

	t.Run("an event of a deleted product is dropped without a write", func(t *testing.T) {
		h := h.in(t)
		p := h.create("Gone")
		h.remove(p)
		c.bulks.Store(0)
		if errs := ix.Handle(ctx, []events.Envelope{h.envelope(events.ProductCreated, p, 1)}); errs[0] != nil {
			t.Fatal(errs[0])
		}
		if c.bulks.Load() != 0 {
			t.Fatal("a bulk was sent for a product that no longer exists")
		}
	})

	bad := func(mutate func(*events.Envelope)) events.Envelope {
		ev := h.envelope(events.ProductUpdated, domain.Product{ID: "0197a0a0-0000-7000-8000-000000000001", Name: "x", Price: "1.00"}, 2)
		mutate(&ev)
		return ev
	}
	for _, tc := range []struct {
		name string
		ev   events.Envelope
	}{
		{"an undecodable payload", bad(func(ev *events.Envelope) { ev.Payload = json.RawMessage(`"not a product"`) })},
		{"a product id that is not a UUID", bad(func(ev *events.Envelope) { ev.AggregateID = "nope" })},
		{"a payload of another product than the envelope's", bad(func(ev *events.Envelope) { ev.AggregateID = "0197a0a0-0000-7000-8000-000000000002" })},
		{"a version below 1", bad(func(ev *events.Envelope) { ev.Version = -1 })},
		{"a tenant that is not a schema name", bad(func(ev *events.Envelope) { ev.Tenant = "Bad-Tenant" })},
	} {
		t.Run(tc.name+" is permanent", func(t *testing.T) {
			if errs := ix.Handle(ctx, []events.Envelope{tc.ev}); !runner.IsPermanent(errs[0]) {
				t.Fatalf("got %v, want a permanent error", errs[0])
			}
		})
	}

	t.Run("an event type the index does not know is acknowledged", func(t *testing.T) {
		if errs := ix.Handle(ctx, []events.Envelope{bad(func(ev *events.Envelope) { ev.Type = "product.archived" })}); errs[0] != nil {
			t.Fatal(errs[0])
		}
	})
}

func TestEventsOfADeletedTenantAreDropped(t *testing.T) {
	t.Parallel()
	h := newHarness(t, search.Config{})
	ctx := context.Background()
	p := h.create("Orphan")
	ix, err := indexer.New(indexer.Config{}, indexer.Deps{DB: h.DB, Search: h.es, JS: h.JS, Log: h.Log})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Manager.Delete(ctx, h.schema); err != nil {
		t.Fatal(err)
	}
	evs := []events.Envelope{h.envelope(events.ProductCreated, p, 1), h.envelope(events.ProductDeleted, p, 2)}
	for i, err := range ix.Handle(ctx, evs) {
		if err != nil {
			t.Fatalf("event %d: %v, want it acknowledged and dropped", i, err)
		}
	}
	if got, err := h.es.Indices(ctx, h.schema); err != nil || len(got) != 0 {
		t.Fatalf("the deleted tenant has indices %v (%v) again", got, err)
	}
}

func TestNewNamesTheMissingDependency(t *testing.T) {
	t.Parallel()
	c := &counting{}
	js := struct{ jetstream.JetStream }{} // never called
	tests := []struct {
		name    string
		deps    indexer.Deps
		missing string // "" when New must succeed
	}{
		{"no database is refused", indexer.Deps{Search: c, JS: js}, "Deps.DB"},
		{"no search is refused", indexer.Deps{DB: c, JS: js}, "Deps.Search"},
		{"no stream is refused", indexer.Deps{DB: c, Search: c}, "Deps.JS"},
		{"no logger takes the default", indexer.Deps{DB: c, Search: c, JS: js}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix, err := indexer.New(indexer.Config{}, tt.deps)
			checkMissing(t, ix != nil, err, tt.missing)
		})
	}
}

func TestNewReindexerNamesTheMissingDependency(t *testing.T) {
	t.Parallel()
	db, es := &postgres.DB{}, &search.Client{}
	tests := []struct {
		name    string
		deps    indexer.ReindexerDeps
		missing string
	}{
		{"no database is refused", indexer.ReindexerDeps{Search: es}, "ReindexerDeps.DB"},
		{"no search is refused", indexer.ReindexerDeps{DB: db}, "ReindexerDeps.Search"},
		{"no stream nor logger is fine", indexer.ReindexerDeps{DB: db, Search: es}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := indexer.NewReindexer(indexer.ReindexerConfig{}, tt.deps)
			checkMissing(t, r != nil, err, tt.missing)
		})
	}
}

// checkMissing checks what a constructor returned: an ErrMissingDependency
// naming missing, or, when missing is "", a value and no error.
func checkMissing(t *testing.T, built bool, err error, missing string) {
	t.Helper()
	if missing == "" {
		if err != nil || !built {
			t.Fatalf("error %v, want none", err)
		}
		return
	}
	if !errors.Is(err, indexer.ErrMissingDependency) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("error %v, want ErrMissingDependency naming %s", err, missing)
	}
	if built {
		t.Fatal("a value came back with the error")
	}
}

// TestTheIndexerPromotesATenantThatGrows runs the worker with a promoter:
// once the tenant's documents in its shared index pass the threshold, it
// gets an index of its own, searches never stop answering, and later
// events land in the new index.
func TestTheIndexerPromotesATenantThatGrows(t *testing.T) {
	t.Parallel()
	h := newHarness(t, search.Config{})
	ctx := context.Background()
	name, cc := h.consumer()
	r := h.reindexer(indexer.ReindexerConfig{DedicatedAt: 30})
	ix, err := indexer.New(indexer.Config{Consumer: name, ConsumerConfig: cc, PromoteEvery: time.Second},
		indexer.Deps{DB: h.DB, Search: h.es, JS: h.JS, Log: h.Log, Promoter: r})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ix.Run(rctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("indexer: %v", err)
		}
	})

	publish := func(n int) {
		var evs []events.Envelope
		for i := range n {
			evs = append(evs, h.envelope(events.ProductCreated, h.create(fmt.Sprintf("Widget %d", i)), 1))
		}
		h.publish(evs...)
	}
	publish(10)
	h.eventually("the first products are searchable", func() bool {
		_, total, err := h.es.Search(ctx, h.schema, "widget", 0, 1)
		return err == nil && total == 10
	})
	s := h.searchContinuously("widget")
	publish(25) // 35: past the threshold
	h.eventually("the tenant is on an index of its own", func() bool {
		got, err := h.es.Indices(ctx, h.schema)
		return err == nil && len(got) == 1 && !h.es.IsShared(got[0])
	})
	publish(5)
	h.drained(name)
	h.eventually("the index holds every product", func() bool { return maps.Equal(h.indexed(), h.stored()) })
	s.stop()
	if n := s.failed.Load(); n > 0 {
		t.Fatalf("%d of %d searches failed during the promotion, first: %v", n, s.done.Load(), s.firstErr.Load())
	}
	// The alias moves before the shared copies are purged, so the purge
	// may still be running when the new index already answers.
	h.eventually("the shared index holds none of the tenant's documents", func() bool {
		n, err := h.es.SharedCounts(ctx, []string{h.schema})
		return err == nil && n[h.schema] == 0
	})
}

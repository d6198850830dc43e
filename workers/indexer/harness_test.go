package indexer_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/catalog"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/search"
	"github.com/tenantworks/saas/pkg/testenv"
	"github.com/tenantworks/saas/workers/indexer"
)

// harness is one tenant, created through tenancy with the search hook (so
// its index exists), in a world of the test's own (a fresh database and a
// private JetStream server), on an index prefix of the test's own.
type harness struct {
	*testenv.World
	t      *testing.T
	es     *search.Client
	schema string
}

func newHarness(t *testing.T, cfg search.Config) *harness {
	t.Helper()
	cfg.URL = testenv.Get(t).ElasticsearchURL
	cfg.IndexPrefix = "t" + testenv.RandomName(8)
	es, err := search.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Runs after every tenant's clean-up: the prefix's shared indices go.
	t.Cleanup(func() {
		if err := es.DeleteSharedIndices(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	h := &harness{World: testenv.MustWorld(t, testenv.WithHooks(search.NewHook(es)), testenv.WithNATS()),
		t: t, es: es, schema: "ix_" + testenv.RandomName(8)}
	h.MustTenant(t, h.schema)
	t.Cleanup(func() {
		if err := es.DeleteTenant(context.Background(), h.schema); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return h
}

// in returns a copy of h that reports to t, for use in a subtest.
func (h *harness) in(t *testing.T) *harness {
	c := *h
	c.t = t
	return &c
}

// consumer returns a durable of the test's own, filtered to its tenant.
func (h *harness) consumer() (string, *jetstream.ConsumerConfig) {
	name := "indexer_test_" + testenv.RandomName(8)
	cc := events.ConsumerConfig(name)
	cc.FilterSubject = events.Subject(h.schema, "product.*")
	return name, &cc
}

// start runs an indexer on the consumer with es until the test ends or
// stop is called.
func (h *harness) start(name string, cc *jetstream.ConsumerConfig, es indexer.Searcher) (stop func()) {
	h.t.Helper()
	ix, err := indexer.New(indexer.Config{Consumer: name, ConsumerConfig: cc}, indexer.Deps{DB: h.DB, Search: es, JS: h.JS, Log: h.Log})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := ix.Run(ctx); err != nil {
			h.t.Errorf("indexer: %v", err)
		}
	})
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	h.t.Cleanup(stop)
	return stop
}

// catalog writes products as the API does (no cache in front).
func (h *harness) catalog() *catalog.Service {
	h.t.Helper()
	c, err := catalog.New(catalog.Deps{Store: h.DB})
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// create makes a product in the database (which also writes its outbox row,
// unused here: the tests publish the events themselves).
func (h *harness) create(name string) domain.Product {
	h.t.Helper()
	sku := strings.ToUpper(testenv.RandomName(6))
	price, cur := "9.99", "EUR"
	p, err := h.catalog().Create(context.Background(), h.schema,
		domain.ProductPatch{SKU: &sku, Name: &name, Price: &price, Currency: &cur}, catalog.Meta{})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) rename(p domain.Product, name string) domain.Product {
	h.t.Helper()
	u, err := h.catalog().Patch(context.Background(), h.schema, p.ID, domain.ProductPatch{Name: &name}, nil, catalog.Meta{})
	if err != nil {
		h.t.Fatal(err)
	}
	return u
}

// remove deletes a product and returns its delete's version.
func (h *harness) remove(p domain.Product) int64 {
	h.t.Helper()
	cur, err := h.DB.GetProduct(context.Background(), h.schema, p.ID)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.catalog().Delete(context.Background(), h.schema, p.ID, nil, catalog.Meta{}); err != nil {
		h.t.Fatal(err)
	}
	return cur.Version + 1
}

// envelope is the event the relay would publish for p at version.
func (h *harness) envelope(typ string, p domain.Product, version int64) events.Envelope {
	p.Version = version
	payload, _ := json.Marshal(events.ProductFromDomain(p))
	return events.Envelope{ID: uuid.NewString(), Type: typ, Tenant: h.schema, AggregateID: p.ID, Version: version,
		OccurredAt: time.Now().UTC(), Payload: payload}
}

// publish puts envelopes on the stream, in order, as the relay does.
func (h *harness) publish(evs ...events.Envelope) {
	h.t.Helper()
	for _, ev := range evs {
		b, err := json.Marshal(ev)
		if err != nil {
			h.t.Fatal(err)
		}
		m := nats.NewMsg(events.Subject(ev.Tenant, ev.Type))
		m.Data = b
		m.Header.Set(nats.MsgIdHdr, ev.ID)
		if _, err := h.JS.PublishMsg(context.Background(), m); err != nil {
			h.t.Fatal(err)
		}
	}
}

// eventually polls cond every 50ms until it holds or 20 seconds pass.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// get reads a product's document (real-time: no refresh needed).
func (h *harness) get(id string) (search.Doc, bool) {
	h.t.Helper()
	d, found, err := h.es.Get(context.Background(), h.schema, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return d, found
}

// drained waits until the consumer has acknowledged every event published
// to it: nothing pending, nothing awaiting an ack.
func (h *harness) drained(name string) {
	h.t.Helper()
	h.eventually("consumer "+name+" acknowledged everything", func() bool {
		info, err := h.JS.Consumer(context.Background(), events.StreamName, name)
		if err != nil {
			return false
		}
		return info.CachedInfo().NumPending == 0 && info.CachedInfo().NumAckPending == 0 && info.CachedInfo().Delivered.Consumer > 0
	})
}

// indexed returns every document of the tenant's index: id -> version.
func (h *harness) indexed() map[string]int64 {
	h.t.Helper()
	ctx := context.Background()
	if err := h.es.Refresh(ctx, h.schema); err != nil {
		h.t.Fatal(err)
	}
	out := map[string]int64{}
	err := h.es.EachVersion(ctx, h.schema, func(ids []string, versions []int64) error {
		for i, id := range ids {
			out[id] = versions[i]
		}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// stored returns every product of the tenant's database: id -> version.
func (h *harness) stored() map[string]int64 {
	h.t.Helper()
	out := map[string]int64{}
	err := h.DB.ScanProducts(context.Background(), h.schema, 100, func(_ int, page []domain.Product) error {
		for _, p := range page {
			out[p.ID] = p.Version
		}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// products returns every product of the tenant's database, in id order.
func (h *harness) products() []domain.Product {
	h.t.Helper()
	var out []domain.Product
	err := h.DB.ScanProducts(context.Background(), h.schema, 100, func(_ int, page []domain.Product) error {
		out = append(out, page...)
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// reindexer returns a Reindexer on the harness's database, search and
// stream.
func (h *harness) reindexer(cfg indexer.ReindexerConfig) *indexer.Reindexer {
	h.t.Helper()
	r, err := indexer.NewReindexer(cfg, indexer.ReindexerDeps{DB: h.DB, Search: h.es, JS: h.JS, Log: h.Log})
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

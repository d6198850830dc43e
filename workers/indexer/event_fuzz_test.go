package indexer

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/search"
	"github.com/tenantworks/saas/workers/runner"
)

// FuzzIndexerEvent decodes arbitrary bytes as an envelope the way the
// runner does (json.Unmarshal; id and tenant not empty) and hands it to
// Handle with a database and an index that record what reaches them. Run
// it with
//
//	go test -run '^$' -fuzz '^FuzzIndexerEvent$' -fuzztime 10s ./workers/indexer
//
// Properties: no panic; nothing reaches the database or the index for an
// event other than product.*, nor for a tenant that is not a valid schema
// name; every id that does is a UUID in the form the database writes
// (p.id::text, which Live compares it to), at a version of 1 or more, and
// the envelope's aggregate id when it names one; an event that cannot be
// indexed is a permanent error (the fakes never fail, so no error is
// retryable).
func FuzzIndexerEvent(f *testing.F) {
	const pid = "0190a7e4-1111-7000-8000-000000000001"
	env := func(typ, tenant, agg string, version int64, payload string) []byte {
		b, _ := json.Marshal(events.Envelope{ID: "0190a7e4-2222-7000-8000-000000000001", Type: typ, Tenant: tenant, AggregateID: agg,
			Version: version, OccurredAt: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), Payload: json.RawMessage(payload)})
		return b
	}
	product := `{"id":"` + pid + `","sku":"SKU-1","name":"Widget","price":"12.50","currency":"EUR","stock":3,"version":2}`
	for _, b := range [][]byte{
		env(events.ProductCreated, "acme", pid, 1, product),
		env(events.ProductUpdated, "acme", "", 0, product),
		env(events.ProductDeleted, "acme", pid, 4, `{}`),
		env(events.ProductDeleted, "acme", "", 4, product),
		env(events.ProductCreated, "ACME", pid, 1, product),
		env(events.ProductCreated, "acme.x", pid, 1, product),
		env(events.ProductCreated, "acme", "0190a7e4-1111-7000-8000-000000000002", 1, product),
		env(events.ProductCreated, "acme", pid, 0, `{"id":"`+pid+`"}`),
		env(events.ProductCreated, "acme", pid, -1, product),
		env(events.ProductCreated, "acme", pid, 1, `[]`),
		env(events.ProductCreated, "acme", pid, 1, `{"price":1}`),
		env(events.ProductCreated, "acme", "", 1, `{"id":"not-a-uuid"}`),
		env(events.ProductDeleted, "acme", "", 1, `null`),
		env("tenant.created", "acme", pid, 1, `{}`),
		// Ids uuid.Parse takes that are not the form the database
		// writes: the index and the existence check would disagree.
		env(events.ProductCreated, "acme", "urn:uuid:"+pid, 1, `{}`),
		env(events.ProductCreated, "acme", "{"+pid+"}", 1, `{}`),
		env(events.ProductDeleted, "acme", "("+pid+")", 1, `{}`),
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev events.Envelope
		if err := json.Unmarshal(data, &ev); err != nil || ev.ID == "" || ev.Tenant == "" {
			return // the runner dead-letters it (FuzzEnvelope)
		}
		db, idx := &recordingDB{t: t}, &recordingIndex{t: t}
		ix := &Indexer{deps: Deps{DB: db, Search: idx, Log: slog.New(slog.DiscardHandler)}}
		errs := ix.Handle(t.Context(), []events.Envelope{ev})
		if len(errs) != 1 {
			t.Fatalf("%d results for one event", len(errs))
		}
		product := ev.Type == events.ProductCreated || ev.Type == events.ProductUpdated || ev.Type == events.ProductDeleted
		reached := db.calls > 0 || len(idx.ops) > 0
		if reached && (!product || domain.ValidateSchemaName(ev.Tenant) != nil) {
			t.Fatalf("event %s of tenant %q reached the database or the index", ev.Type, ev.Tenant)
		}
		if err := errs[0]; err != nil && !runner.IsPermanent(err) {
			t.Fatalf("event %q: retryable error %v with stores that never fail", data, err)
		}
		if !product && errs[0] != nil {
			t.Fatalf("event of type %q (none of the index's): %v", ev.Type, errs[0])
		}
		if product && errs[0] == nil && len(idx.ops) != 1 {
			t.Fatalf("product event %q accepted but %d writes reached the index", data, len(idx.ops))
		}
		for _, op := range idx.ops {
			if ev.AggregateID != "" && op.ID != ev.AggregateID {
				t.Fatalf("event for %q wrote document %q", ev.AggregateID, op.ID)
			}
			if op.Delete != (ev.Type == events.ProductDeleted) || (!op.Delete && (op.Doc.ID != op.ID || op.Doc.Version != op.Version)) {
				t.Fatalf("event %s became op %+v", ev.Type, op)
			}
		}
	})
}

// canonicalUUID reports whether s is a UUID as PostgreSQL writes it.
func canonicalUUID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

// recordingDB says every product exists.
type recordingDB struct {
	t     *testing.T
	calls int
}

func (d *recordingDB) ProductVersions(_ context.Context, schema string, ids []string) (map[string]int64, error) {
	d.calls++
	if err := domain.ValidateSchemaName(schema); err != nil {
		d.t.Fatalf("ProductVersions for schema %q: %v", schema, err)
	}
	out := map[string]int64{}
	for _, id := range ids {
		if !canonicalUUID(id) {
			d.t.Fatalf("ProductVersions for id %q, not a UUID as the database writes it", id)
		}
		out[id] = 1
	}
	return out, nil
}

type recordingIndex struct {
	t   *testing.T
	ops []search.Op
}

func (x *recordingIndex) Apply(_ context.Context, schema string, ops []search.Op) ([]error, error) {
	if err := domain.ValidateSchemaName(schema); err != nil {
		x.t.Fatalf("Apply for schema %q: %v", schema, err)
	}
	for _, op := range ops {
		if !canonicalUUID(op.ID) || op.Version < 1 {
			x.t.Fatalf("Apply of %+v: id not a canonical UUID or version below 1", op)
		}
	}
	x.ops = append(x.ops, ops...)
	return make([]error, len(ops)), nil
}

var (
	_ Versions = (*recordingDB)(nil)
	_ Searcher = (*recordingIndex)(nil)
)

package catalog_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"testing"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/catalog"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/testenv"
)

// invalidations records what the service invalidated.
type invalidations struct {
	mu  sync.Mutex
	ids []string
	err error
}

var _ catalog.Invalidator = (*invalidations)(nil)

func (i *invalidations) Invalidate(_ context.Context, schemaName, id string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.ids = append(i.ids, schemaName+"/"+id)
	return i.err
}

func (i *invalidations) got() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]string(nil), i.ids...)
}

// world is one tenant in a world of the test's own, and the catalog
// service on its database.
type world struct {
	*testenv.World
	svc    *catalog.Service
	inv    *invalidations
	schema string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{World: testenv.MustWorld(t), inv: &invalidations{}, schema: "cat" + testenv.RandomName(6)}
	w.MustTenant(t, w.schema)
	svc, err := catalog.New(catalog.Deps{Store: w.DB, Invalidator: w.inv, Log: w.Log})
	if err != nil {
		t.Fatal(err)
	}
	w.svc = svc
	return w
}

type outboxRow struct {
	Type    string
	ID      string
	Version int64
	Payload events.Product
	Request string
}

func (w *world) outbox(t *testing.T) []outboxRow {
	t.Helper()
	rows, err := w.DB.Pool.Query(t.Context(), `SELECT event_type, aggregate_id, aggregate_version, payload, request_id
		FROM `+w.schema+`.outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		var payload []byte
		if err := rows.Scan(&r.Type, &r.ID, &r.Version, &payload, &r.Request); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(payload, &r.Payload); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func TestEveryWriteCommitsItsEventAndThenInvalidates(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := t.Context()
	p, err := w.svc.Create(ctx, w.schema, domain.ProductPatch{SKU: ptr("A-1"), Name: ptr("Lamp"), Price: ptr("5"), Currency: ptr("EUR")},
		catalog.Meta{RequestID: "req-1"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Price != "5.00" || p.Description != "" || p.Stock != 0 || p.Version != 1 {
		t.Fatalf("created %+v: want price 5.00, empty description, stock 0, version 1", p)
	}
	u, err := w.svc.Patch(ctx, w.schema, p.ID, domain.ProductPatch{Name: ptr("Desk lamp")}, ptr(int64(1)), catalog.Meta{RequestID: "req-2"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.svc.Delete(ctx, w.schema, p.ID, &u.Version, catalog.Meta{RequestID: "req-3"}); err != nil {
		t.Fatal(err)
	}

	got := w.outbox(t)
	want := []struct {
		typ     string
		version int64
		name    string
		req     string
	}{
		{events.ProductCreated, 1, "Lamp", "req-1"},
		{events.ProductUpdated, 2, "Desk lamp", "req-2"},
		{events.ProductDeleted, 3, "Desk lamp", "req-3"}, // one past the last version
	}
	if len(got) != len(want) {
		t.Fatalf("outbox has %d rows, want %d: %+v", len(got), len(want), got)
	}
	for i, wt := range want {
		g := got[i]
		if g.Type != wt.typ || g.ID != p.ID || g.Version != wt.version || g.Payload.Version != wt.version || g.Payload.Name != wt.name || g.Request != wt.req {
			t.Errorf("outbox row %d = %+v, want %s of %s at version %d named %q from %s", i, g, wt.typ, p.ID, wt.version, wt.name, wt.req)
		}
	}
	key := w.schema + "/" + p.ID
	if inv := w.inv.got(); len(inv) != 3 || inv[0] != key || inv[1] != key || inv[2] != key {
		t.Fatalf("invalidated %v, want %s after each of the three writes", inv, key)
	}
}

func TestAFailedWriteLeavesNothingAndInvalidatesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := t.Context()
	full := domain.ProductPatch{SKU: ptr("B-1"), Name: ptr("Chair"), Price: ptr("10.00"), Currency: ptr("EUR")}
	p, err := w.svc.Create(ctx, w.schema, full, catalog.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	before := len(w.inv.got())
	cases := []struct {
		name string
		do   func() error
		code string
	}{
		{"a create without a name is invalid", func() error {
			_, err := w.svc.Create(ctx, w.schema, domain.ProductPatch{SKU: ptr("B-2"), Price: ptr("1"), Currency: ptr("EUR")}, catalog.Meta{})
			return err
		}, domain.EINVALID},
		{"a taken sku is a conflict", func() error {
			_, err := w.svc.Create(ctx, w.schema, full, catalog.Meta{})
			return err
		}, domain.ECONFLICT},
		{"a replace without a price is invalid", func() error {
			_, err := w.svc.Replace(ctx, w.schema, p.ID, domain.ProductPatch{SKU: ptr("B-1"), Name: ptr("x"), Currency: ptr("EUR")}, nil, catalog.Meta{})
			return err
		}, domain.EINVALID},
		{"a stale version is a conflict", func() error {
			_, err := w.svc.Patch(ctx, w.schema, p.ID, domain.ProductPatch{Name: ptr("x")}, ptr(int64(7)), catalog.Meta{})
			return err
		}, domain.ECONFLICT},
		{"an unknown id is not found", func() error {
			return w.svc.Delete(ctx, w.schema, "0197a000-0000-7000-8000-000000000000", nil, catalog.Meta{})
		}, domain.ENOTFOUND},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.do(); domain.ErrorCode(err) != c.code {
				t.Fatalf("error %v (code %q), want code %q", err, domain.ErrorCode(err), c.code)
			}
		})
	}
	if n := len(w.outbox(t)); n != 1 {
		t.Fatalf("outbox has %d rows, want only the first create's", n)
	}
	if after := len(w.inv.got()); after != before {
		t.Fatalf("failed writes invalidated %d times, want none", after-before)
	}
}

func TestReplaceResetsWhatItLeavesOut(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := t.Context()
	p, err := w.svc.Create(ctx, w.schema, domain.ProductPatch{SKU: ptr("C-1"), Name: ptr("Shelf"), Price: ptr("3.50"), Currency: ptr("EUR"),
		Description: ptr("Oak"), Stock: ptr(int64(4))}, catalog.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := w.svc.Replace(ctx, w.schema, p.ID, domain.ProductPatch{SKU: ptr("C-1"), Name: ptr("Shelf"), Price: ptr("3.50"), Currency: ptr("EUR")}, nil, catalog.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Description != "" || r.Stock != 0 {
		t.Fatalf("replaced = %+v, want the description emptied and the stock 0", r)
	}
	pa, err := w.svc.Patch(ctx, w.schema, p.ID, domain.ProductPatch{Stock: ptr(int64(9))}, nil, catalog.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if pa.Name != "Shelf" || pa.Stock != 9 || pa.Version != 3 {
		t.Fatalf("patched = %+v, want only the stock changed, version 3", pa)
	}
}

func TestAFailedInvalidationDoesNotFailTheWrite(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.inv.err = errors.New("redis down")
	if _, err := w.svc.Create(t.Context(), w.schema, domain.ProductPatch{SKU: ptr("D-1"), Name: ptr("Rug"), Price: ptr("1"), Currency: ptr("EUR")}, catalog.Meta{}); err != nil {
		t.Fatalf("create with the cache down = %v, want success (the write is committed)", err)
	}
	if n := len(w.outbox(t)); n != 1 {
		t.Fatalf("outbox has %d rows, want 1", n)
	}
}

func TestNewNeedsAStore(t *testing.T) {
	t.Parallel()
	if _, err := catalog.New(catalog.Deps{}); !errors.Is(err, catalog.ErrNoStore) {
		t.Fatalf("New without a store = %v, want ErrNoStore", err)
	}
}

func TestEveryCommittedWriteLeavesItsAuditEntryAndAFailedOneNone(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ann := audit.Actor{Kind: audit.KindUser, ID: "0197a000-0000-7000-8000-0000000000aa", Email: "ann@acme.test"}
	as := func(req string) context.Context {
		return audit.WithCause(t.Context(), audit.Cause{Actor: ann, RequestID: req})
	}
	full := domain.ProductPatch{SKU: ptr("C-1"), Name: ptr("Lamp"), Price: ptr("5"), Currency: ptr("EUR")}
	p, err := w.svc.Create(as("req-create"), w.schema, full, catalog.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	u, err := w.svc.Patch(as("req-update"), w.schema, p.ID, domain.ProductPatch{Name: ptr("Desk lamp"), Stock: ptr(int64(3))}, &p.Version, catalog.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Create(as("req-dup"), w.schema, full, catalog.Meta{}); domain.ErrorCode(err) != domain.ECONFLICT {
		t.Fatalf("duplicate create = %v, want a conflict", err)
	}
	if _, err := w.svc.Patch(as("req-stale"), w.schema, p.ID, domain.ProductPatch{Name: ptr("x")}, &p.Version, catalog.Meta{}); domain.ErrorCode(err) != domain.ECONFLICT {
		t.Fatalf("stale patch = %v, want a conflict", err)
	}
	if err := w.svc.Delete(as("req-delete"), w.schema, p.ID, &u.Version, catalog.Meta{}); err != nil {
		t.Fatal(err)
	}

	got, _, err := w.DB.ListTenantAudit(t.Context(), w.schema, postgres.AuditFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		action, req string
		changes     audit.Changes
	}{ // newest first
		{"product.delete", "req-delete", audit.Changes{"sku": {"C-1", nil}, "name": {"Desk lamp", nil}, "description": {"", nil},
			"price": {"5.00", nil}, "currency": {"EUR", nil}, "stock": {float64(3), nil}}},
		{"product.update", "req-update", audit.Changes{"name": {"Lamp", "Desk lamp"}, "stock": {float64(0), float64(3)}}},
		{"product.create", "req-create", audit.Changes{"sku": {nil, "C-1"}, "name": {nil, "Lamp"}, "description": {nil, ""},
			"price": {nil, "5.00"}, "currency": {nil, "EUR"}, "stock": {nil, float64(0)}}},
	}
	if len(got) != len(want) {
		t.Fatalf("audit has %d entries, want %d (none for the failed writes): %+v", len(got), len(want), got)
	}
	for i, wt := range want {
		g := got[i]
		if g.Action != wt.action || g.RequestID != wt.req || g.Actor != ann || g.Target != (audit.Target{Type: "product", ID: p.ID}) {
			t.Errorf("entry %d = %+v, want %s by %v in %s on product %s", i, g, wt.action, ann, wt.req, p.ID)
		}
		if !reflect.DeepEqual(g.Changes, wt.changes) {
			t.Errorf("entry %d changes = %v, want %v", i, g.Changes, wt.changes)
		}
	}
}

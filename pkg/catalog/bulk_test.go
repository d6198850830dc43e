package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/catalog"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
)

func (w *world) products(t *testing.T, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		p, err := w.svc.Create(t.Context(), w.schema, domain.ProductPatch{SKU: ptr(fmt.Sprintf("BULK-%d", i)), Name: ptr("Item"),
			Price: ptr("1"), Currency: ptr("EUR")}, catalog.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = p.ID
	}
	return ids
}

func TestBulkDeleteWritesOneEventAndOneEntryPerProductInOneTransaction(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ids := w.products(t, 4)
	created := len(w.outbox(t))
	ctx := audit.WithCause(t.Context(), audit.Cause{Actor: audit.Actor{Kind: audit.KindUser, ID: "staff-1"}, RequestID: "req-bulk"})
	missing := "0197a000-0000-7000-8000-000000000000"
	invBefore := len(w.inv.got())

	res, err := w.svc.BulkDelete(ctx, w.schema, []string{ids[2], missing, ids[0], ids[1], ids[0]}, catalog.Meta{RequestID: "req-bulk"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != 3 || !slices.Equal(res.NotFound, []string{missing}) {
		t.Fatalf("result = %+v, want 3 deleted and %s not found", res, missing)
	}
	rows := w.outbox(t)[created:]
	if len(rows) != 3 {
		t.Fatalf("%d events, want one per deleted product", len(rows))
	}
	for i, id := range []string{ids[2], ids[0], ids[1]} {
		r := rows[i]
		if r.Type != events.ProductDeleted || r.ID != id || r.Version != 2 || r.Payload.Version != 2 || r.Request != "req-bulk" {
			t.Errorf("event %d = %+v, want %s of %s at version 2 (one past the last)", i, r, events.ProductDeleted, id)
		}
	}
	if n := w.count(t, `SELECT count(DISTINCT xmin::text) FROM `+w.schema+`.outbox WHERE event_type = '`+events.ProductDeleted+`'`); n != 1 {
		t.Errorf("the events were written by %d transactions, want 1", n)
	}
	if n := w.count(t, `SELECT count(*) FROM `+w.schema+`.audit_log WHERE action = 'product.delete' AND actor_id = 'staff-1'
		AND request_id = 'req-bulk' AND changes ? 'sku' AND xmin = (SELECT xmin FROM `+w.schema+`.outbox WHERE event_type = '`+events.ProductDeleted+`' LIMIT 1)`); n != 3 {
		t.Errorf("%d product.delete entries in the events' transaction, want 3", n)
	}
	if n := w.count(t, `SELECT count(*) FROM `+w.schema+`.products`); n != 1 {
		t.Errorf("%d products left, want 1", n)
	}
	if got := w.inv.got()[invBefore:]; len(got) != 3 {
		t.Errorf("invalidated %v, want each deleted product once", got)
	}
}

// failing is the database with a bulk delete whose outbox row fails to
// build for the product at position failAt: the failure comes mid-way,
// after earlier rows were written.
type failing struct {
	*postgres.DB
	failAt int32
}

func (f *failing) DeleteProducts(ctx context.Context, schemaName string, ids []string, outbox postgres.OutboxFunc, a postgres.AuditFunc[domain.Product]) ([]string, []string, error) {
	var n atomic.Int32
	return f.DB.DeleteProducts(ctx, schemaName, ids, func(p domain.Product) (postgres.OutboxRecord, error) {
		if n.Add(1) == f.failAt {
			return postgres.OutboxRecord{}, errors.New("payload cannot be built")
		}
		return outbox(p)
	}, a)
}

func TestABulkDeleteThatFailsMidwayLeavesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ids := w.products(t, 5)
	created := len(w.outbox(t))
	svc, err := catalog.New(catalog.Deps{Store: &failing{DB: w.DB, failAt: 3}, Invalidator: w.inv, Log: w.Log})
	if err != nil {
		t.Fatal(err)
	}
	invBefore := len(w.inv.got())
	if _, err := svc.BulkDelete(t.Context(), w.schema, ids, catalog.Meta{}); err == nil {
		t.Fatal("the bulk delete succeeded, want the build failure")
	}
	if n := len(w.outbox(t)); n != created {
		t.Errorf("outbox has %d rows, want the %d of the creations alone", n, created)
	}
	if n := w.count(t, `SELECT count(*) FROM `+w.schema+`.products`); n != 5 {
		t.Errorf("%d products left, want all 5", n)
	}
	if n := w.count(t, `SELECT count(*) FROM `+w.schema+`.audit_log WHERE action = 'product.delete'`); n != 0 {
		t.Errorf("%d product.delete entries, want none", n)
	}
	if n := len(w.inv.got()) - invBefore; n != 0 {
		t.Errorf("%d invalidations, want none", n)
	}
}

func TestBulkDeleteRefusesBadIDs(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ids := w.products(t, 1)
	many := make([]string, 501)
	for i := range many {
		many[i] = fmt.Sprintf("0197a000-0000-7000-8000-%012d", i)
	}
	for _, c := range []struct {
		name string
		ids  []string
	}{
		{"no ids", nil},
		{"501 ids", many},
		{"an upper-case id", []string{ids[0], "0197A000-0000-7000-8000-000000000000"}},
		{"not an id", []string{"x"}},
	} {
		t.Run(c.name+" is invalid", func(t *testing.T) {
			_, err := w.svc.BulkDelete(t.Context(), w.schema, c.ids, catalog.Meta{})
			if domain.ErrorCode(err) != domain.EINVALID || domain.ErrorDetails(err)["ids"] == "" {
				t.Fatalf("err = %v, want invalid naming ids", err)
			}
		})
	}
	if n := w.count(t, `SELECT count(*) FROM `+w.schema+`.products`); n != 1 {
		t.Fatalf("%d products, want the one untouched", n)
	}
}

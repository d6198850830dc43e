package catalog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/catalog"
	"github.com/tenantworks/saas/pkg/domain"
)

func (w *world) mustImport(t *testing.T, csv string) catalog.ImportResult {
	t.Helper()
	res, err := w.svc.Import(t.Context(), w.schema, strings.NewReader(csv), catalog.ImportOptions{Meta: catalog.Meta{RequestID: "req-import"}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (w *world) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := w.DB.Pool.QueryRow(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (w *world) product(t *testing.T, sku string) domain.Product {
	t.Helper()
	var p domain.Product
	err := w.DB.Pool.QueryRow(t.Context(), `SELECT id, name, description, price::text, stock, version FROM `+w.schema+`.products WHERE sku = $1`, sku).
		Scan(&p.ID, &p.Name, &p.Description, &p.Price, &p.Stock, &p.Version)
	if err != nil {
		t.Fatalf("product %s: %v", sku, err)
	}
	p.SKU = sku
	return p
}

func TestImportCreatesUpdatesAndLeavesEqualProductsAlone(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := audit.WithCause(t.Context(), audit.Cause{Actor: audit.Actor{Kind: audit.KindUser, ID: "u-1", Email: "staff@example.com"}, RequestID: "req-import"})
	keep, err := w.svc.Create(ctx, w.schema, domain.ProductPatch{SKU: ptr("K-1"), Name: ptr("Kept"), Price: ptr("1"), Currency: ptr("EUR")}, catalog.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	change, err := w.svc.Create(ctx, w.schema, domain.ProductPatch{SKU: ptr("C-1"), Name: ptr("Changed"), Price: ptr("1"), Currency: ptr("EUR")}, catalog.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	before := len(w.outbox(t))
	invBefore := len(w.inv.got())

	res, err := w.svc.Import(ctx, w.schema, strings.NewReader(header+
		"N-1,New one,,2.5,USD,4\n"+
		"K-1,Kept,,1.00,EUR,0\n"+
		"C-1,Changed,now with a description,1,EUR,0\n"+
		"N-2,New two,\"quoted \"\"words\"\", a comma\nand a line\",0,EUR,0\n"),
		catalog.ImportOptions{Meta: catalog.Meta{RequestID: "req-import"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Created != 2 || res.Updated != 1 || res.Unchanged != 1 || res.ID == "" {
		t.Fatalf("result %+v, want 2 created, 1 updated, 1 unchanged and an id", res)
	}
	if p := w.product(t, "K-1"); p.Version != keep.Version {
		t.Fatalf("unchanged product at version %d, want %d", p.Version, keep.Version)
	}
	if p := w.product(t, "C-1"); p.Version != change.Version+1 || p.Description != "now with a description" {
		t.Fatalf("updated product %+v, want version %d and the new description", p, change.Version+1)
	}
	n2 := w.product(t, "N-2")
	if n2.Description != "quoted \"words\", a comma\nand a line" || n2.Price != "0.00" || n2.Version != 1 {
		t.Fatalf("created product %+v", n2)
	}

	// One event per product created or changed, of the right type and
	// version, with the product's values and the import's request.
	got := w.outbox(t)[before:]
	want := map[string]struct {
		typ     string
		version int64
	}{"N-1": {events.ProductCreated, 1}, "N-2": {events.ProductCreated, 1}, "C-1": {events.ProductUpdated, change.Version + 1}}
	if len(got) != len(want) {
		t.Fatalf("import wrote %d outbox rows, want %d: %+v", len(got), len(want), got)
	}
	for _, g := range got {
		wt, ok := want[g.Payload.SKU]
		if !ok || g.Type != wt.typ || g.Version != wt.version || g.Payload.Version != wt.version || g.Request != "req-import" {
			t.Errorf("outbox row %+v, want %s at version %d from req-import", g, wt.typ, wt.version)
		}
		delete(want, g.Payload.SKU)
	}
	// The statement trigger marked the tenant pending for the relay.
	if n := w.count(t, `SELECT count(*) FROM public.outbox_pending WHERE schema_name = $1`, w.schema); n != 3 {
		t.Fatalf("%d outbox_pending markers, want the two creates' and the import's", n)
	}

	// One audit entry for the import.
	var actor, target, request string
	var changes []byte
	if err := w.DB.Pool.QueryRow(t.Context(), `SELECT actor_kind || ':' || actor_id, target_type || ':' || target_id, changes, request_id
		FROM `+w.schema+`.audit_log WHERE action = 'product.import'`).Scan(&actor, &target, &changes, &request); err != nil {
		t.Fatalf("audit entry product.import: %v", err)
	}
	var ch map[string][2]any
	if err := json.Unmarshal(changes, &ch); err != nil {
		t.Fatal(err)
	}
	if actor != "user:u-1" || target != "import:"+res.ID || request != "req-import" ||
		ch["created"] != [2]any{nil, float64(2)} || ch["updated"] != [2]any{nil, float64(1)} {
		t.Fatalf("audit entry %s %s %s %s", actor, target, changes, request)
	}

	// The list pages were dropped, and the updated product's entry.
	inv := w.inv.got()[invBefore:]
	if len(inv) != 1 || inv[0] != w.schema+"/"+change.ID {
		t.Fatalf("invalidated %v, want the updated product (which drops the list pages too)", inv)
	}
}

func TestImportWithOneBadRowWritesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	var b strings.Builder
	b.WriteString(header)
	for i := range 1000 {
		price := "9.99"
		if i == 500 {
			price = "-1"
		}
		fmt.Fprintf(&b, "S-%04d,Product %d,,%s,EUR,%d\n", i, i, price, i)
	}
	_, err := w.svc.Import(t.Context(), w.schema, strings.NewReader(b.String()), catalog.ImportOptions{})
	mustBadLines(t, err, map[string]string{"line 502": "price: must be a non-negative decimal"})
	if msg := domain.ErrorMessage(err); msg != "1 of 1000 rows are invalid; nothing was imported" {
		t.Fatalf("message %q", msg)
	}
	if n := w.count(t, `SELECT count(*) FROM `+w.schema+`.products`); n != 0 {
		t.Fatalf("%d products written", n)
	}
	if n := len(w.outbox(t)); n != 0 {
		t.Fatalf("%d outbox rows written", n)
	}
	if n := w.count(t, `SELECT count(*) FROM `+w.schema+`.audit_log`); n != 0 {
		t.Fatalf("%d audit entries written", n)
	}
	if inv := w.inv.got(); len(inv) != 0 {
		t.Fatalf("invalidated %v after a refused import", inv)
	}
}

func TestExportThenImportChangesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	// More than one export batch, with values that need quoting.
	var b strings.Builder
	b.WriteString(header)
	for i := range 2500 {
		fmt.Fprintf(&b, "R-%05d,\"Name, %d\",\"say \"\"hi\"\"\n\ttwice\",%d.%02d,EUR,%d\n", 2500-i, i, i, i%100, i)
	}
	if res := w.mustImport(t, b.String()); res.Created != 2500 {
		t.Fatalf("first import %+v, want 2500 created", res)
	}
	outboxBefore := len(w.outbox(t))

	var out bytes.Buffer
	n, err := w.svc.Export(t.Context(), w.schema, &out, catalog.ExportOptions{})
	if err != nil || n != 2500 {
		t.Fatalf("export wrote %d rows, %v; want 2500", n, err)
	}
	lines := strings.SplitN(out.String(), "\n", 3)
	if lines[0] != strings.TrimSuffix(header, "\n") || !strings.HasPrefix(lines[1], `R-00001,"Name, 2499","say ""hi""`) {
		t.Fatalf("export starts %q, want the header then R-00001", lines[:2])
	}
	if !strings.Contains(out.String(), "\nR-00400,\"Name, 2100\",\"say \"\"hi\"\"\n\ttwice\",2100.00,EUR,2100\n") {
		t.Fatal("export lacks R-00400 with its price in two places")
	}

	res := w.mustImport(t, out.String())
	if res.Created != 0 || res.Updated != 0 || res.Unchanged != 2500 {
		t.Fatalf("re-import of the export %+v, want all 2500 unchanged", res)
	}
	if n := len(w.outbox(t)); n != outboxBefore {
		t.Fatalf("re-import wrote %d outbox rows, want none", n-outboxBefore)
	}
}

func TestExportOfNoProductsIsTheHeader(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	var out bytes.Buffer
	if n, err := w.svc.Export(t.Context(), w.schema, &out, catalog.ExportOptions{}); err != nil || n != 0 || out.String() != header {
		t.Fatalf("export %q, %d, %v; want the header alone", out.String(), n, err)
	}
}

func TestImportReportsItsProgress(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	var b strings.Builder
	b.WriteString(header)
	for i := range 2500 {
		fmt.Fprintf(&b, "P-%d,Lamp,,1,EUR,1\n", i)
	}
	var last, calls int
	_, err := w.svc.Import(context.WithoutCancel(t.Context()), w.schema, strings.NewReader(b.String()), catalog.ImportOptions{
		Written: func(done, total int) {
			if total != 2500 || done < last {
				t.Errorf("progress %d of %d after %d", done, total, last)
			}
			last, calls = done, calls+1
		}})
	if err != nil {
		t.Fatal(err)
	}
	if last != 2500 || calls < 3 {
		t.Fatalf("progress ended at %d after %d calls, want 2500 after several", last, calls)
	}
}

package search_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/search"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/pkg/testenv"
)

var _ tenancy.Hook = search.Hook{}

// newClient returns a client with an index prefix of this test's own.
func newClient(t *testing.T, cfg search.Config) *search.Client {
	t.Helper()
	cfg.URL = testenv.Get(t).ElasticsearchURL
	if cfg.IndexPrefix == "" {
		cfg.IndexPrefix = "t" + testenv.RandomName(8)
	}
	c, err := search.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Registered before any tenant's clean-up, so it runs after them all:
	// the shared indices of the test's prefix go too.
	t.Cleanup(func() {
		if err := c.DeleteSharedIndices(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return c
}

// tenant returns a random schema name whose indices are deleted when the
// test ends.
func tenant(t *testing.T, c *search.Client) string {
	t.Helper()
	s := "s_" + testenv.RandomName(8)
	t.Cleanup(func() {
		if err := c.DeleteTenant(context.Background(), s); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return s
}

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 123456000, time.UTC)

// descriptions holds a few words per product name that appear nowhere else.
var descriptions = map[string]string{"Blue widget": "Carved from walnut", "Brass lantern": "Burns oil all night", "Green teapot": "Holds six cups"}

func doc(id, sku, name string, version int64) search.Doc {
	return search.DocFromProduct(domain.Product{ID: id, SKU: sku, Name: name, Description: descriptions[name],
		Price: "12.50", Currency: "EUR", Stock: 3, Version: version, CreatedAt: t0, UpdatedAt: t0.Add(time.Duration(version) * time.Second)})
}

func apply(t *testing.T, c *search.Client, schema string, ops ...search.Op) {
	t.Helper()
	errs, err := c.Apply(context.Background(), schema, ops)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if e != nil {
			t.Fatalf("op %d: %v", i, e)
		}
	}
}

func TestEnsureIndexIsIdempotentUnderConcurrentCallers(t *testing.T) {
	t.Parallel()
	c := newClient(t, search.Config{})
	s := tenant(t, c)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = c.EnsureIndex(ctx, s) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureIndex(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, err := c.Indices(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !c.IsShared(got[0]) {
		t.Fatalf("alias %s points to %v, want one shared index", c.Alias(s), got)
	}
}

func TestApplyNeverLetsAnOlderVersionWin(t *testing.T) {
	t.Parallel()
	c := newClient(t, search.Config{})
	ctx := context.Background()
	cases := []struct {
		name        string
		ops         []search.Op
		wantFound   bool
		wantVersion int64
		wantName    string
	}{
		{"an older index after a newer one leaves the newer", []search.Op{
			search.IndexOp(doc("p1", "SKU-1", "Version three", 3)), search.IndexOp(doc("p1", "SKU-1", "Version two", 2))},
			true, 3, "Version three"},
		{"an index older than a delete does not bring the document back", []search.Op{
			search.IndexOp(doc("p1", "SKU-1", "Version three", 3)), search.DeleteOp("p1", 4), search.IndexOp(doc("p1", "SKU-1", "Version three", 3))},
			false, 0, ""},
		{"a delete older than the document is ignored", []search.Op{
			search.IndexOp(doc("p1", "SKU-1", "Version five", 5)), search.DeleteOp("p1", 4)},
			true, 5, "Version five"},
		{"a delete of a document never indexed still wins over its older versions", []search.Op{
			search.DeleteOp("p1", 2), search.IndexOp(doc("p1", "SKU-1", "Version one", 1))},
			false, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := tenant(t, c)
			// One bulk per op, in order, as events arrive one by one.
			for _, op := range tc.ops {
				apply(t, c, s, op)
			}
			d, found, err := c.Get(ctx, s, "p1")
			if err != nil {
				t.Fatal(err)
			}
			if found != tc.wantFound || d.Version != tc.wantVersion || d.Name != tc.wantName {
				t.Fatalf("got found=%v version=%d name=%q, want found=%v version=%d name=%q",
					found, d.Version, d.Name, tc.wantFound, tc.wantVersion, tc.wantName)
			}
		})
	}
}

func TestApplyCountsAndReportsPerItem(t *testing.T) {
	t.Parallel()
	c := newClient(t, search.Config{})
	s := tenant(t, c)
	bad := doc("p2", "SKU-2", "Too much stock", 1)
	bad.Stock = 1 << 40 // does not fit the mapping's integer
	ops := []search.Op{search.IndexOp(doc("p1", "SKU-1", "One", 2)), search.IndexOp(bad), search.IndexOp(doc("p1", "SKU-1", "One", 1))}
	out, errs, err := c.ApplyOutcome(context.Background(), s, ops)
	if err != nil {
		t.Fatal(err)
	}
	if out != (search.Outcome{Applied: 1, Stale: 1, Failed: 1}) {
		t.Fatalf("outcome = %+v, want 1 applied, 1 stale, 1 failed", out)
	}
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("errors = %v, want only the second op to fail", errs)
	}
	if domain.ErrorCode(errs[1]) != domain.EINVALID {
		t.Fatalf("a rejected document: %v, want an EINVALID error", errs[1])
	}
}

func TestApplyCreatesAMissingIndex(t *testing.T) {
	t.Parallel()
	c := newClient(t, search.Config{})
	cases := []struct {
		name  string
		first search.Op
	}{
		{"when the first write indexes", search.IndexOp(doc("p1", "SKU-1", "One", 1))},
		// Elasticsearch auto-creates the target of an external delete even
		// with require_alias; Apply must still end with a real alias.
		{"when the first write deletes", search.DeleteOp("p1", 2)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := tenant(t, c)
			ctx := context.Background()
			apply(t, c, s, tc.first)
			apply(t, c, s, search.IndexOp(doc("p2", "SKU-2", "Two", 1)))
			got, err := c.Indices(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || !c.IsShared(got[0]) {
				t.Fatalf("alias points to %v, want one shared index", got)
			}
			if _, found, err := c.Get(ctx, s, "p2"); err != nil || !found {
				t.Fatalf("p2 found=%v err=%v", found, err)
			}
		})
	}
}

func TestSearch(t *testing.T) {
	t.Parallel()
	c := newClient(t, search.Config{})
	ctx := context.Background()
	acme, beta := tenant(t, c), tenant(t, c)
	// The same products in two tenants, under different ids.
	for _, s := range []string{acme, beta} {
		apply(t, c, s,
			search.IndexOp(doc(s+"-1", "WID-001", "Blue widget", 1)),
			search.IndexOp(doc(s+"-2", "LAN-7", "Brass lantern", 2)),
			search.IndexOp(doc(s+"-3", "TEA-42", "Green teapot", 1)),
		)
		if err := c.Refresh(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name, q string
		want    []string // ids, best first
	}{
		{"a typo in the name still finds it", "widgit", []string{acme + "-1"}},
		{"a word of the description finds it", "walnut", []string{acme + "-1"}},
		{"an exact sku finds it", "TEA-42", []string{acme + "-3"}},
		{"an exact sku in another case finds it", "lan-7", []string{acme + "-2"}},
		{"nothing like it finds nothing", "zebra", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			docs, total, err := c.Search(ctx, acme, tc.q, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range docs {
				if !strings.HasPrefix(d.ID, acme+"-") {
					t.Fatalf("search in %s returned %s of another tenant", acme, d.ID)
				}
				got = append(got, d.ID)
			}
			if !slices.Equal(got, tc.want) || total != len(tc.want) {
				t.Fatalf("search %q = %v (total %d), want %v", tc.q, got, total, tc.want)
			}
		})
	}
	t.Run("a document comes back as it went in", func(t *testing.T) {
		docs, _, err := c.Search(ctx, beta, "lantern", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if want := doc(beta+"-2", "LAN-7", "Brass lantern", 2); len(docs) != 1 || docs[0] != want {
			t.Fatalf("got %+v, want %+v", docs, want)
		}
	})
	t.Run("pages do not overlap", func(t *testing.T) {
		var seen []string
		for from := 0; from < 3; from++ {
			docs, total, err := c.Search(ctx, acme, "widget lantern teapot", from, 1)
			if err != nil {
				t.Fatal(err)
			}
			if total != 3 || len(docs) != 1 || slices.Contains(seen, docs[0].ID) {
				t.Fatalf("page %d: %v of %d after %v", from, docs, total, seen)
			}
			seen = append(seen, docs[0].ID)
		}
	})
	t.Run("a window past the limit is invalid", func(t *testing.T) {
		if _, _, err := c.Search(ctx, acme, "x", search.MaxWindow, 1); domain.ErrorCode(err) != domain.EINVALID {
			t.Fatalf("got %v, want EINVALID", err)
		}
	})
	t.Run("a tenant without index finds nothing", func(t *testing.T) {
		docs, total, err := c.Search(ctx, "s_"+testenv.RandomName(8), "widget", 0, 10)
		if err != nil || len(docs) != 0 || total != 0 {
			t.Fatalf("got %v %d %v, want no match", docs, total, err)
		}
	})
}

func TestEveryCallIsUnavailableWhenElasticsearchIsDown(t *testing.T) {
	t.Parallel()
	c, err := search.New(search.Config{URL: "http://127.0.0.1:1", IndexPrefix: "down"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	calls := map[string]func() error{
		"ping":         func() error { return c.Ping(ctx) },
		"ensure index": func() error { return c.EnsureIndex(ctx, "acme") },
		"apply":        func() error { _, err := c.Apply(ctx, "acme", []search.Op{search.DeleteOp("p1", 2)}); return err },
		"search":       func() error { _, _, err := c.Search(ctx, "acme", "widget", 0, 10); return err },
		"delete":       func() error { return c.DeleteTenant(ctx, "acme") },
		"swap":         func() error { return c.SwapAlias(ctx, "acme", c.Alias("acme")+"_2") },
	}
	for name, call := range calls {
		if err := call(); domain.ErrorCode(err) != domain.EUNAVAILABLE {
			t.Errorf("%s: got %v, want an EUNAVAILABLE error", name, err)
		}
	}
}

func TestSwapAliasMovesSearchesToTheNewIndex(t *testing.T) {
	t.Parallel()
	c := newClient(t, search.Config{})
	s := tenant(t, c)
	ctx := context.Background()
	apply(t, c, s, search.IndexOp(doc("old", "OLD-1", "Old widget", 1)))
	idx, err := c.NewPhysicalIndex(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	out, errs, err := c.ApplyToIndex(ctx, s, idx, []search.Op{search.IndexOp(doc("new", "NEW-1", "New widget", 1))})
	if err != nil || errors.Join(errs...) != nil || out.Applied != 1 {
		t.Fatalf("bulk into %s: %v %v %+v", idx, err, errs, out)
	}
	if err := c.SwapAlias(ctx, s, idx); err != nil {
		t.Fatal(err)
	}
	got, err := c.Indices(ctx, s)
	if err != nil || !slices.Equal(got, []string{idx}) {
		t.Fatalf("alias points to %v (%v), want [%s]", got, err, idx)
	}
	docs, _, err := c.Search(ctx, s, "widget", 0, 10)
	if err != nil || len(docs) != 1 || docs[0].ID != "new" {
		t.Fatalf("after the swap search found %v (%v), want only the new index's document", docs, err)
	}
	if n := sharedCount(t, c, s); n != 0 {
		t.Fatalf("the shared index still holds %d documents of the tenant, want none", n)
	}
	// And back: a rebuild into its index of its own again drops the first.
	idx2, err := c.NewPhysicalIndex(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SwapAlias(ctx, s, idx2); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ApplyToIndex(ctx, s, idx, []search.Op{search.DeleteOp("new", 2)}); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("the old index: %v, want it deleted (ENOTFOUND)", err)
	}
	if err := c.SwapAlias(ctx, s, "other_index"); domain.ErrorCode(err) != domain.EINVALID {
		t.Fatalf("swapping to a foreign index: %v, want EINVALID", err)
	}
}

func TestDeleteTenantDropsEveryIndexOfItsOwn(t *testing.T) {
	t.Parallel()
	c := newClient(t, search.Config{})
	ctx := context.Background()
	s := tenant(t, c)
	// A tenant whose alias starts like s's physical indices must survive.
	neighbour := s + "_products"
	t.Cleanup(func() { _ = c.DeleteTenant(context.Background(), neighbour) })
	for _, x := range []string{s, neighbour} {
		if err := c.EnsureIndex(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.NewPhysicalIndex(ctx, s); err != nil { // a rebuild left half way
		t.Fatal(err)
	}
	for i := range 2 {
		if err := c.DeleteTenant(ctx, s); err != nil {
			t.Fatalf("delete %d: %v", i+1, err)
		}
	}
	if got, err := c.Indices(ctx, s); err != nil || len(got) != 0 {
		t.Fatalf("after delete the alias points to %v (%v)", got, err)
	}
	if err := c.EnsureIndex(ctx, s); err != nil { // nothing of the old one is in the way
		t.Fatal(err)
	}
	if got, err := c.Indices(ctx, neighbour); err != nil || len(got) != 1 {
		t.Fatalf("the neighbour's alias points to %v (%v), want its index kept", got, err)
	}
}

// TestElasticsearchAloneForgetsDeletes shows why the indexer checks the
// database: once index.gc_deletes has passed, an old write brings a deleted
// document back.
func TestElasticsearchAloneForgetsDeletes(t *testing.T) {
	t.Parallel()
	c := newClient(t, search.Config{GCDeletes: "0s"})
	s := tenant(t, c)
	ctx := context.Background()
	apply(t, c, s, search.IndexOp(doc("p1", "SKU-1", "One", 3)), search.DeleteOp("p1", 4))
	deadline := time.Now().Add(30 * time.Second)
	for {
		apply(t, c, s, search.IndexOp(doc("p1", "SKU-1", "One", 3)))
		_, found, err := c.Get(ctx, s, "p1")
		if err != nil {
			t.Fatal(err)
		}
		if found {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the delete's version was never forgotten; is index.gc_deletes applied?")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func ExampleClient_Alias() {
	c, _ := search.New(search.Config{URL: "http://127.0.0.1:9200", IndexPrefix: "saas"})
	fmt.Println(c.Alias("acme"))
	// Output: saas_acme_products
}

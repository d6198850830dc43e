package search_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/search"
	"github.com/tenantworks/saas/pkg/testenv"
)

// esJSON sends one request straight to Elasticsearch, past the client, and
// decodes the answer into out (when not nil).
func esJSON(t *testing.T, method, path string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, testenv.Get(t).ElasticsearchURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
}

// prefixOf is the index prefix of c.
func prefixOf(c *search.Client) string { return strings.TrimSuffix(c.Alias("x"), "_x_products") }

// sharedCount refreshes c's shared indices and returns how many documents
// schema has in them.
func sharedCount(t *testing.T, c *search.Client, schema string) int {
	t.Helper()
	esJSON(t, http.MethodPost, "/"+prefixOf(c)+"_shared_*/_refresh?allow_no_indices=true", nil, nil)
	n, err := c.SharedCounts(context.Background(), []string{schema})
	if err != nil {
		t.Fatal(err)
	}
	return n[schema]
}

// rawHits searches the alias of schema directly with body, as any reader
// naming the alias would, without the client's own tenant filter.
func rawHits(t *testing.T, c *search.Client, schema string, body any) []map[string]any {
	t.Helper()
	var res struct {
		Hits struct {
			Hits []struct {
				ID     string         `json:"_id"`
				Source map[string]any `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	esJSON(t, http.MethodPost, "/"+c.Alias(schema)+"/_search", body, &res)
	var out []map[string]any
	for _, h := range res.Hits.Hits {
		h.Source["_id"] = h.ID
		out = append(out, h.Source)
	}
	return out
}

// TestTenantsSharingAnIndexNeverMeet puts two tenants on one shared index
// with the same product ids, and shows that no write, read, search, count
// or delete of one reaches the other.
func TestTenantsSharingAnIndexNeverMeet(t *testing.T) {
	t.Parallel()
	c := newClient(t, search.Config{SharedIndices: 1})
	ctx := context.Background()
	a, b := tenant(t, c), tenant(t, c)
	for _, s := range []string{a, b} {
		if err := c.EnsureIndex(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	ia, _ := c.Indices(ctx, a)
	ib, _ := c.Indices(ctx, b)
	if len(ia) != 1 || !slices.Equal(ia, ib) || !c.IsShared(ia[0]) {
		t.Fatalf("indices %v and %v, want both tenants on one shared index", ia, ib)
	}

	// The same id in both, A far ahead in versions.
	apply(t, c, a, search.IndexOp(doc("p1", "WID-001", "Blue widget", 5)), search.IndexOp(doc("p2", "LAN-7", "Brass lantern", 1)))
	out, errs, err := c.ApplyOutcome(ctx, b, []search.Op{search.IndexOp(doc("p1", "TEA-42", "Green teapot", 1))})
	if err != nil || errors.Join(errs...) != nil || out.Applied != 1 {
		t.Fatalf("B's version 1 of p1 after A's version 5: %+v %v %v, want it applied", out, errs, err)
	}
	get := func(s, id string) (search.Doc, bool) {
		t.Helper()
		d, found, err := c.Get(ctx, s, id)
		if err != nil {
			t.Fatal(err)
		}
		return d, found
	}
	if d, _ := get(a, "p1"); d.Version != 5 || d.Name != "Blue widget" {
		t.Fatalf("A's p1 is %+v, want its own version 5", d)
	}
	if d, _ := get(b, "p1"); d.Version != 1 || d.Name != "Green teapot" {
		t.Fatalf("B's p1 is %+v, want its own version 1", d)
	}
	if _, found := get(b, "p2"); found {
		t.Fatal("a get in B found A's p2: a get ignores alias filters, the _id must not")
	}

	for _, s := range []string{a, b} {
		if err := c.Refresh(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("a search in one never finds the other's documents", func(t *testing.T) {
		for q, want := range map[string][]string{"widget": {"p1"}, "teapot": nil, "TEA-42": nil, "lantern": {"p2"}} {
			docs, total, err := c.Search(ctx, a, q, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range docs {
				got = append(got, d.ID)
			}
			if !slices.Equal(got, want) || total != len(want) {
				t.Errorf("search %q in A = %v (total %d), want %v", q, got, total, want)
			}
		}
	})
	t.Run("the alias alone filters, for any reader that names it", func(t *testing.T) {
		hits := rawHits(t, c, b, map[string]any{"query": map[string]any{"match_all": map[string]any{}}, "size": 100})
		if len(hits) != 1 || hits[0]["tenant"] != b || hits[0]["_id"] != b+":p1" {
			t.Fatalf("match_all on B's alias = %v, want only B's p1", hits)
		}
		var count struct {
			Count int `json:"count"`
		}
		esJSON(t, http.MethodPost, "/"+c.Alias(a)+"/_count", nil, &count)
		if count.Count != 2 {
			t.Fatalf("_count on A's alias = %d, want A's 2", count.Count)
		}
	})
	t.Run("listing a tenant lists only its own", func(t *testing.T) {
		var ids []string
		err := c.EachVersion(ctx, b, func(page []string, _ []int64) error { ids = append(ids, page...); return nil })
		if err != nil || !slices.Equal(ids, []string{"p1"}) {
			t.Fatalf("B lists %v (%v), want [p1]", ids, err)
		}
	})

	// A delete in B at a version below A's: B's goes, A's stays.
	apply(t, c, b, search.DeleteOp("p1", 2))
	if _, found := get(b, "p1"); found {
		t.Fatal("B's p1 survived its delete")
	}
	if d, found := get(a, "p1"); !found || d.Version != 5 {
		t.Fatalf("B's delete reached A's p1: %+v %v", d, found)
	}
	// B's delete marker is B's alone: A writes p1 at a version below it.
	apply(t, c, a, search.IndexOp(doc("p1", "WID-001", "Blue widget", 6)))
	out, _, err = c.ApplyOutcome(ctx, a, []search.Op{search.DeleteOp("p1", 3)})
	if err != nil || out.Stale != 1 {
		t.Fatalf("A's delete at 3 under its version 6: %+v %v, want stale", out, err)
	}

	// Deleting B leaves A whole.
	if err := c.DeleteTenant(ctx, b); err != nil {
		t.Fatal(err)
	}
	if n := sharedCount(t, c, b); n != 0 {
		t.Fatalf("B's documents left in the shared index after its delete: %d", n)
	}
	if n := sharedCount(t, c, a); n != 2 {
		t.Fatalf("A has %d documents after B's delete, want 2", n)
	}
	if got, _ := c.Indices(ctx, b); len(got) != 0 {
		t.Fatalf("B's alias still points to %v", got)
	}
}

// TestPromotionMovesATenantToAnIndexOfItsOwn fills a shared index with a
// big tenant (more than one scroll page) and a small neighbour, moves the
// big one out, and back again at once, well inside index.gc_deletes.
func TestPromotionMovesATenantToAnIndexOfItsOwn(t *testing.T) {
	t.Parallel()
	c := newClient(t, search.Config{SharedIndices: 1})
	ctx := context.Background()
	big, small := tenant(t, c), tenant(t, c)
	const n = 2500
	ops := make([]search.Op, n)
	for i := range ops {
		ops[i] = search.IndexOp(doc(fmt.Sprintf("p%04d", i), fmt.Sprintf("SKU-%04d", i), "Blue widget", 3))
	}
	apply(t, c, big, ops...)
	apply(t, c, small, ops[:10]...) // the same ids
	if got := sharedCount(t, c, big); got != n {
		t.Fatalf("big has %d documents in the shared index, want %d", got, n)
	}
	shared, _ := c.Indices(ctx, big)

	// Promotion: build its own index (as a rebuild from the database does),
	// swap, and the shared index is cleared of it.
	own, err := c.NewPhysicalIndex(ctx, big)
	if err != nil {
		t.Fatal(err)
	}
	if out, errs, err := c.ApplyToIndex(ctx, big, own, ops); err != nil || errors.Join(errs...) != nil || out.Applied != n {
		t.Fatalf("build: %+v %v %v", out, errs, err)
	}
	if err := c.SwapAlias(ctx, big, own); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Indices(ctx, big); !slices.Equal(got, []string{own}) {
		t.Fatalf("big's alias points to %v, want [%s]", got, own)
	}
	if got := sharedCount(t, c, big); got != 0 {
		t.Fatalf("%d of big's documents left in the shared index", got)
	}
	if got := sharedCount(t, c, small); got != 10 {
		t.Fatalf("small has %d documents after big left, want 10", got)
	}
	if _, total, err := c.Search(ctx, big, "widget", 0, 1); err != nil || total != n {
		t.Fatalf("search in big's own index: %d (%v), want %d", total, err, n)
	}

	// Back to the shared index at once: the delete markers the clean-up
	// left there must not make the same versions stale.
	target, err := c.SharedTarget(ctx, big)
	if err != nil || target != shared[0] {
		t.Fatalf("shared target %q (%v), want %s", target, err, shared[0])
	}
	if out, errs, err := c.ApplyToIndex(ctx, big, target, ops); err != nil || errors.Join(errs...) != nil || out.Applied != n {
		t.Fatalf("moving back: %+v %v %v, want all %d applied", out, errs, err, n)
	}
	if err := c.SwapAlias(ctx, big, target); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ApplyToIndex(ctx, big, own, nil); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("big's own index %s survived the move back", own)
	}
	if got := sharedCount(t, c, big); got != n {
		t.Fatalf("big has %d documents back in the shared index, want %d", got, n)
	}
	hits := rawHits(t, c, small, map[string]any{"size": 100})
	if len(hits) != 10 {
		t.Fatalf("small's alias shows %d documents, want its 10", len(hits))
	}
}

func TestManyTenantsCreatedAtOnceEachGetTheirFilteredAlias(t *testing.T) {
	t.Parallel()
	c := newClient(t, search.Config{SharedIndices: 3})
	ctx := context.Background()
	schemas := make([]string, 24)
	for i := range schemas {
		schemas[i] = tenant(t, c)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(schemas)*2)
	for i := range errs { // every tenant twice, all at once
		wg.Go(func() { errs[i] = c.EnsureIndex(ctx, schemas[i%len(schemas)]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, s := range schemas {
		apply(t, c, s, search.IndexOp(doc("same-id", "SKU-1", "Blue widget", 1)))
		got, err := c.Indices(ctx, s)
		if err != nil || len(got) != 1 || !c.IsShared(got[0]) {
			t.Fatalf("%s on %v (%v), want one shared index", s, got, err)
		}
		used[got[0]] = true
	}
	if len(used) > 3 {
		t.Fatalf("tenants spread over %d shared indices, want at most 3", len(used))
	}
	esJSON(t, http.MethodPost, "/"+prefixOf(c)+"_shared_*/_refresh", nil, nil)
	counts, err := c.SharedCounts(ctx, schemas)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range schemas {
		if counts[s] != 1 {
			t.Fatalf("%s counts %d documents, want 1 (all counts %v)", s, counts[s], counts)
		}
		if d, found, err := c.Get(ctx, s, "same-id"); err != nil || !found || d.ID != "same-id" {
			t.Fatalf("%s: get = %+v %v %v", s, d, found, err)
		}
	}
}

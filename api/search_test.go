package api_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/tenantworks/saas/api"
	"github.com/tenantworks/saas/pkg/search"
	"github.com/tenantworks/saas/pkg/testenv"
)

// withSearch gives the server a search client.
func withSearch(s api.ProductSearcher) envOption {
	return func(w *wiring) { w.Search = s }
}

// newSearchClient returns a client on an index prefix of the test's own.
func newSearchClient(t *testing.T, url string) *search.Client {
	t.Helper()
	c, err := search.New(search.Config{URL: url, IndexPrefix: "t" + testenv.RandomName(8)})
	if err != nil {
		t.Fatal(err)
	}
	// Registered before the tenants' clean-ups, so it runs after them.
	t.Cleanup(func() { _ = c.DeleteSharedIndices(context.Background()) })
	return c
}

// indexProducts creates products through the API as f's staff and puts
// them in the tenant's index, as the indexer would; it returns their ids.
func (e *env) indexProducts(es *search.Client, f fixture, names ...string) []string {
	e.t.Helper()
	ctx := context.Background()
	e.t.Cleanup(func() { _ = es.DeleteTenant(context.Background(), f.Schema) })
	var ids []string
	var ops []search.Op
	for _, n := range names {
		r := e.do(req{method: "POST", host: f.Host, path: "/api/catalog/products/", token: f.StaffToken,
			body: map[string]any{"sku": strings.ToUpper(testenv.RandomName(8)), "name": n, "price": "4.20", "currency": "EUR"}})
		if r.Code != 201 {
			e.t.Fatalf("create %q: %d %s", n, r.Code, r.Raw)
		}
		id, _ := r.JSON["id"].(string)
		p, err := e.db.DB.GetProduct(ctx, f.Schema, id)
		if err != nil {
			e.t.Fatal(err)
		}
		ids = append(ids, id)
		ops = append(ops, search.IndexOp(search.DocFromProduct(p)))
	}
	if _, err := es.Apply(ctx, f.Schema, ops); err != nil {
		e.t.Fatal(err)
	}
	if err := es.Refresh(ctx, f.Schema); err != nil {
		e.t.Fatal(err)
	}
	return ids
}

func resultIDs(r response) []string {
	var ids []string
	rs, _ := r.JSON["results"].([]any)
	for _, x := range rs {
		m, _ := x.(map[string]any)
		id, _ := m["id"].(string)
		ids = append(ids, id)
	}
	return ids
}

func TestSearchProducts(t *testing.T) {
	t.Parallel()
	es := newSearchClient(t, testenv.Get(t).ElasticsearchURL)
	e := newEnv(t, withSearch(es))
	d := newDocChecker(t)
	a, b := e.tenant("sra"), e.tenant("srb")
	aw := e.indexProducts(es, a, "Blue widget", "Brass lamp one", "Brass lamp two", "Brass lamp three")
	bw := e.indexProducts(es, b, "Blue widget")
	const path = "/api/catalog/products/search/"
	get := func(query string, token string) req {
		return req{method: "GET", host: a.Host, path: path + query, token: token}
	}

	t.Run("a misspelt name finds the product, shaped as in the product list", func(t *testing.T) {
		r := d.exchange(t, e, get("?q=widgit", a.UserToken), conforms)
		if r.Code != 200 || len(resultIDs(r)) != 1 || resultIDs(r)[0] != aw[0] || r.JSON["next"] != nil {
			t.Fatalf("%d %s, want only %s and no next page", r.Code, r.Raw, aw[0])
		}
		one := e.do(req{method: "GET", host: a.Host, path: "/api/catalog/products/" + aw[0] + "/", token: a.UserToken})
		got, _ := json.Marshal(r.JSON["results"].([]any)[0])
		want, _ := json.Marshal(one.JSON)
		if string(got) != string(want) {
			t.Fatalf("search result %s\nproduct         %s", got, want)
		}
	})
	t.Run("another tenant's product of the same name is never found", func(t *testing.T) {
		for _, id := range resultIDs(e.do(get("?q=blue+widget", a.UserToken))) {
			if id == bw[0] {
				t.Fatalf("tenant %s found tenant %s's product", a.Schema, b.Schema)
			}
		}
	})
	t.Run("query syntax is searched as text and never reaches another tenant", func(t *testing.T) {
		own := map[string]bool{}
		for _, id := range aw {
			own[id] = true
		}
		for _, q := range []string{"*", "blue*", "name:*", "_index:*", `{"match_all":{}}`, "widget OR lamp",
			`\"`, "(", "_id:" + bw[0], bw[0], b.Schema, "sku:*|*"} {
			r := e.do(get("?q="+url.QueryEscape(q), a.UserToken))
			if r.Code != 200 {
				t.Fatalf("q=%q: %d %s, want 200", q, r.Code, r.Raw)
			}
			for _, id := range resultIDs(r) {
				if !own[id] {
					t.Fatalf("q=%q found %s, not a product of %s", q, id, a.Schema)
				}
			}
		}
	})
	t.Run("pages follow next to the end", func(t *testing.T) {
		var seen []string
		r := d.exchange(t, e, get("?q=lamp&limit=2", a.UserToken), conforms)
		for {
			if r.Code != 200 {
				t.Fatalf("%d %s", r.Code, r.Raw)
			}
			seen = append(seen, resultIDs(r)...)
			next, _ := r.JSON["next"].(string)
			if next == "" {
				break
			}
			u, err := url.Parse(next)
			if err != nil || u.Host != a.Host || u.Query().Get("q") != "lamp" {
				t.Fatalf("next = %q", next)
			}
			r = d.exchange(t, e, get("?"+u.RawQuery, a.UserToken), conforms)
		}
		if len(seen) != 3 {
			t.Fatalf("pages held %v, want the three lamps once each", seen)
		}
	})
	for _, tc := range []struct {
		name, query string
		field       string
		conform     conformance
	}{
		{"a missing q is a 422 naming q", "", "q", violates},
		{"an empty q is a 422 naming q", "?q=", "q", violates},
		{"a blank q is a 422 naming q", "?q=%20%20", "q", violates},
		{"a q of 201 characters is a 422 naming q", "?q=" + strings.Repeat("x", 201), "q", violates},
		{"limit 0 is a 422", "?q=lamp&limit=0", "limit", violates},
		{"a cursor of nothing is a 422", "?q=lamp&cursor=bogus", "cursor", conforms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := d.exchange(t, e, get(tc.query, a.UserToken), tc.conform)
			if r.Code != 422 || r.errorDetails()[tc.field] == nil {
				t.Fatalf("%d %s, want 422 naming %s", r.Code, r.Raw, tc.field)
			}
		})
	}
	t.Run("no token is a 401", func(t *testing.T) {
		if r := d.exchange(t, e, get("?q=lamp", ""), violates); r.Code != 401 {
			t.Fatalf("%d %s", r.Code, r.Raw)
		}
	})
	t.Run("another tenant's token is a 401", func(t *testing.T) {
		if r := d.exchange(t, e, get("?q=lamp", b.UserToken), conforms); r.Code != 401 {
			t.Fatalf("%d %s", r.Code, r.Raw)
		}
	})

	down := newEnv(t, withSearch(newSearchClient(t, "http://127.0.0.1:1")))
	none := newEnv(t)
	for name, on := range map[string]*env{"search is down": down, "no search is configured": none} {
		t.Run("a 503 with a JSON error when "+name, func(t *testing.T) {
			f := on.tenant("srd")
			r := d.exchange(t, on, req{method: "GET", host: f.Host, path: path + "?q=lamp", token: f.UserToken}, conforms)
			if r.Code != 503 || r.errorCode() != "unavailable" {
				t.Fatalf("%d %s, want 503 unavailable", r.Code, r.Raw)
			}
		})
	}
}

package api_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenantworks/saas/api"
	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/catalog"
)

// secondNode is another API node on the same database and Redis, with
// caches of its own, as a second process behind a load balancer would be.
func (e *env) secondNode(t *testing.T) http.Handler {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	products := cache.NewProducts(e.rdb, cache.Keys{}, e.db.DB, time.Minute, log)
	cat, err := catalog.New(catalog.Deps{Store: e.db.DB, Reader: products, Invalidator: products, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	deps := e.deps
	deps.Catalog = cat
	deps.Users = cache.NewUsers(e.rdb, cache.Keys{}, e.db.DB, time.Minute, log)
	return api.New(e.cfg, deps).Handler()
}

// TestReadYourWritesOnEveryNode: with no cache worker running at all, a
// write answered 2xx on one node is what the next read shows, on that node
// and on another, item and list alike, while other clients keep reading
// (and so refilling the cache) all along.
func TestReadYourWritesOnEveryNode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.tenant("ryw")
	nodes := []http.Handler{e.handler, e.secondNode(t)}
	base := "/api/catalog/products/"
	const writers, pairs = 4, 250 // 1,000 write-then-read pairs in all
	ids := make([]string, writers)
	for w := range writers {
		r := e.do(req{method: "POST", host: a.Host, path: base, token: a.StaffToken, body: newProduct(fmt.Sprintf("RYW-%d", w))})
		if r.Code != http.StatusCreated {
			t.Fatalf("create = %d %s", r.Code, r.Raw)
		}
		ids[w] = r.JSON["id"].(string)
	}

	ctx, stop := context.WithCancel(t.Context())
	var readers sync.WaitGroup
	var background atomic.Int64
	for i := range 4 { // readers racing the writes, on both nodes
		readers.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				path := base + ids[n%writers] + "/"
				if n%3 == 0 {
					path = base + "?limit=10"
				}
				if _, err := send(nodes[(i+n)%2], req{method: "GET", host: a.Host, path: path, token: a.UserToken}); err == nil {
					background.Add(1)
				}
			}
		})
	}

	var stale, checked atomic.Int64
	var failures sync.Map
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			id := ids[w]
			for i := range pairs {
				name := fmt.Sprintf("name %d-%d", w, i)
				write := nodes[i%2]
				r, err := send(write, req{method: "PATCH", host: a.Host, path: base + id + "/", token: a.StaffToken, body: map[string]any{"name": name}})
				if err != nil || r.Code != http.StatusOK {
					failures.Store(fmt.Sprintf("PATCH %s #%d", id, i), fmt.Sprintf("%d %s %v", r.Code, r.Raw, err))
					return
				}
				version := r.JSON["version"]
				for _, node := range nodes { // the writer's node, then the other
					g, _ := send(node, req{method: "GET", host: a.Host, path: base + id + "/", token: a.UserToken})
					checked.Add(1)
					if g.Code != http.StatusOK || g.JSON["name"] != name || g.JSON["version"] != version {
						stale.Add(1)
						failures.Store(fmt.Sprintf("GET %s after write %d", id, i), string(g.Raw))
					}
					l, _ := send(node, req{method: "GET", host: a.Host, path: base + "?limit=10", token: a.UserToken})
					checked.Add(1)
					if !listHas(l, id, name) {
						stale.Add(1)
						failures.Store(fmt.Sprintf("list after write %d of %s", i, id), string(l.Raw))
					}
				}
			}
		})
	}
	wg.Wait()
	stop()
	readers.Wait()
	failures.Range(func(k, v any) bool {
		t.Errorf("%s: %s", k, v)
		return true
	})
	if stale.Load() != 0 || checked.Load() != writers*pairs*4 {
		t.Fatalf("%d of %d reads after a write were stale (want 0 of %d)", stale.Load(), checked.Load(), writers*pairs*4)
	}
	t.Logf("%d reads checked after %d writes, with %d concurrent reads", checked.Load(), writers*pairs, background.Load())
}

func listHas(r response, id, name string) bool {
	if r.Code != http.StatusOK {
		return false
	}
	res, _ := r.JSON["results"].([]any)
	for _, x := range res {
		if p, _ := x.(map[string]any); p["id"] == id {
			return p["name"] == name
		}
	}
	return false
}

// TestAnIDHasOneSpelling: PostgreSQL takes upper case, braces, no hyphens
// and urn:uuid:, and each once named a product of its own in the cache
// (still readable after a delete). Only the canonical spelling names a
// product; no other reaches the database or a cache key.
func TestAnIDHasOneSpelling(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.tenant("spell")
	base := "/api/catalog/products/"
	r := e.do(req{method: "POST", host: a.Host, path: base, token: a.StaffToken, body: newProduct("SPELL-1")})
	if r.Code != http.StatusCreated {
		t.Fatalf("create = %d %s", r.Code, r.Raw)
	}
	id := r.JSON["id"].(string)
	others := map[string]string{
		"upper case": strings.ToUpper(id),
		"braces":     "{" + id + "}",
		"no hyphens": strings.ReplaceAll(id, "-", ""),
		"urn":        "urn:uuid:" + id,
	}
	check := func(when string) {
		for name, spelled := range others {
			for _, m := range []string{"GET", "PATCH", "PUT", "DELETE"} {
				var body any
				if m == "PATCH" || m == "PUT" {
					body = newProduct("SPELL-1")
				}
				if r := e.do(req{method: m, host: a.Host, path: base + url.PathEscape(spelled) + "/", token: a.StaffToken, body: body}); r.Code != http.StatusNotFound {
					t.Errorf("%s: %s with the id in %s = %d %s, want 404", when, m, name, r.Code, r.Raw)
				}
			}
		}
	}
	if r := e.do(req{method: "GET", host: a.Host, path: base + id + "/", token: a.UserToken}); r.Code != http.StatusOK {
		t.Fatalf("GET canonical = %d", r.Code)
	}
	check("while it exists")
	if r := e.do(req{method: "DELETE", host: a.Host, path: base + id + "/", token: a.StaffToken}); r.Code != http.StatusNoContent {
		t.Fatalf("DELETE = %d %s", r.Code, r.Raw)
	}
	if r := e.do(req{method: "GET", host: a.Host, path: base + id + "/", token: a.UserToken}); r.Code != http.StatusNotFound {
		t.Fatalf("GET canonical after delete = %d, want 404", r.Code)
	}
	check("after the delete")
	if n := e.count(a.Schema, `SELECT count(*) FROM products`); n != 0 {
		t.Fatalf("%d products left, want 0", n)
	}
	keys := e.redisKeys(t, "*"+a.Schema+"*")
	for _, k := range keys {
		for _, spelled := range others {
			if strings.Contains(k, spelled) {
				t.Errorf("cache key %q holds a non-canonical id", k)
			}
		}
	}
}

// TestCursorsAreTheServers: a cursor is sealed for its tenant and list; a
// made-up one is a 422 and never becomes a cache key.
func TestCursorsAreTheServers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.tenant("cura"), e.tenant("curb")
	base := "/api/catalog/products/"
	for i := range 3 {
		for _, f := range []fixture{a, b} {
			if r := e.do(req{method: "POST", host: f.Host, path: base, token: f.StaffToken, body: newProduct(fmt.Sprintf("CUR-%d", i))}); r.Code != http.StatusCreated {
				t.Fatalf("create = %d %s", r.Code, r.Raw)
			}
		}
	}
	first := e.do(req{method: "GET", host: a.Host, path: base + "?limit=1&ordering=name", token: a.UserToken})
	next, _ := first.JSON["next"].(string)
	u, err := url.Parse(next)
	if err != nil || next == "" {
		t.Fatalf("first page next = %q", next)
	}
	sealed := u.Query().Get("cursor")
	if r := e.do(req{method: "GET", host: a.Host, path: u.RequestURI(), token: a.UserToken}); r.Code != http.StatusOK {
		t.Fatalf("the server's own next page = %d %s", r.Code, r.Raw)
	}
	raw := sealed[:strings.LastIndexByte(sealed, '.')]
	minted := base64.RawURLEncoding.EncodeToString([]byte(`{"o":"name","v":"zzz","id":"0197a000-0000-7000-8000-000000000000"}`))
	cases := []struct{ name, host, token, path string }{
		{"a made-up cursor", a.Host, a.UserToken, base + "?ordering=name&cursor=" + minted},
		{"a cursor without its seal", a.Host, a.UserToken, base + "?ordering=name&cursor=" + raw},
		{"a cursor with a forged seal", a.Host, a.UserToken, base + "?ordering=name&cursor=" + raw + ".AAAAAAAAAAAAAAAAAAAAAA"},
		{"another tenant's cursor", b.Host, b.UserToken, base + "?ordering=name&cursor=" + sealed},
		{"another list's cursor", a.Host, a.StaffToken, "/api/admin/products/?ordering=name&cursor=" + sealed},
		{"a users page cursor", a.Host, a.StaffToken, "/api/admin/users/?cursor=" + sealed},
	}
	for _, c := range cases {
		t.Run(c.name+" is refused", func(t *testing.T) {
			r := e.do(req{method: "GET", host: c.host, path: c.path, token: c.token})
			if r.Code != http.StatusUnprocessableEntity || r.errorDetails()["cursor"] == nil {
				t.Fatalf("= %d %s, want 422 naming cursor", r.Code, r.Raw)
			}
		})
	}
	before := e.redisKeys(t, "*"+a.Schema+"*")
	for i := range 50 {
		c := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"o":"name","v":"n%d","id":"0197a000-0000-7000-8000-000000000000"}`, i))
		e.do(req{method: "GET", host: a.Host, path: base + "?ordering=name&cursor=" + c + ".x", token: a.UserToken})
	}
	after := e.redisKeys(t, "*"+a.Schema+"*")
	if len(after) != len(before) {
		t.Fatalf("50 made-up cursors grew the tenant's cache keys from %d to %d", len(before), len(after))
	}
}

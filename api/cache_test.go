package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tenantworks/saas/pkg/testenv"
)

func TestReadsAreCached(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.tenant("cached")
	base := "/api/catalog/products/"
	id := e.do(req{method: "POST", host: a.Host, path: base, token: a.StaffToken, body: newProduct("C-1")}).JSON["id"].(string)

	for range 3 {
		if r := e.do(req{method: "GET", host: a.Host, path: base + id + "/", token: a.UserToken}); r.Code != http.StatusOK {
			t.Fatalf("retrieve = %d", r.Code)
		}
		if r := e.do(req{method: "GET", host: a.Host, path: base, token: a.UserToken}); r.Code != http.StatusOK {
			t.Fatalf("list = %d", r.Code)
		}
	}
	if g, l := e.reads.gets.Load(), e.reads.lists.Load(); g != 1 || l != 1 {
		t.Fatalf("database reads: %d retrieves, %d lists; want 1 each (then hits)", g, l)
	}

	// The write invalidates once committed (no cache worker runs here):
	// the writer's next reads of the item and the list are read afresh.
	e.do(req{method: "PATCH", host: a.Host, path: base + id + "/", token: a.StaffToken, body: map[string]any{"name": "Renamed"}})
	r := e.do(req{method: "GET", host: a.Host, path: base + id + "/", token: a.UserToken})
	if r.JSON["name"] != "Renamed" || r.JSON["version"] != float64(2) {
		t.Fatalf("after invalidation = %s, want version 2", r.Raw)
	}
	r = e.do(req{method: "GET", host: a.Host, path: base, token: a.UserToken})
	if res := r.JSON["results"].([]any); res[0].(map[string]any)["name"] != "Renamed" {
		t.Fatalf("list after invalidation = %s", r.Raw)
	}
	if g, l := e.reads.gets.Load(), e.reads.lists.Load(); g != 2 || l != 2 {
		t.Fatalf("database reads: %d retrieves, %d lists; want 2 each", g, l)
	}
}

func TestACachedRetrieveIsOneRedisRoundTrip(t *testing.T) {
	t.Parallel()
	var cmds testenv.RedisCommands
	e := newEnv(t, func(w *wiring) { w.Redis.AddHook(&cmds) })
	a := e.tenant("oneread")
	base := "/api/catalog/products/"
	id := e.do(req{method: "POST", host: a.Host, path: base, token: a.StaffToken, body: newProduct("O-1")}).JSON["id"].(string)
	if r := e.do(req{method: "GET", host: a.Host, path: base + id + "/", token: a.UserToken}); r.Code != http.StatusOK { // fills
		t.Fatalf("retrieve = %d %s", r.Code, r.Raw)
	}
	cmds.Take()
	r := e.do(req{method: "GET", host: a.Host, path: base + id + "/", token: a.UserToken})
	if r.Code != http.StatusOK || r.JSON["id"] != id || r.JSON["sku"] != "O-1" {
		t.Fatalf("cached retrieve = %d %s", r.Code, r.Raw)
	}
	if got := cmds.Take(); !slices.Equal(got, []string{"mget"}) {
		t.Fatalf("a cached retrieve sent %v to Redis, want one MGET (the user's flags and the product)", got)
	}
	if g := e.reads.gets.Load(); g != 1 {
		t.Fatalf("database reads of the product: %d, want 1", g)
	}
	// Another spelling of the id reads nothing ahead and is not found.
	if r := e.do(req{method: "GET", host: a.Host, path: base + strings.ToUpper(id) + "/", token: a.UserToken}); r.Code != http.StatusNotFound {
		t.Fatalf("retrieve by an upper-case id = %d %s, want 404", r.Code, r.Raw)
	}
	if got := cmds.Take(); slices.Contains(got, "mget") {
		t.Fatalf("a retrieve by a non-canonical id sent %v, want no read ahead", got)
	}
}

func TestReadsSurviveRedisDown(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1: every Redis call fails at once.
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = dead.Close() })
	e := newEnv(t, func(w *wiring) {
		w.Redis = dead
	})
	a := e.tenant("noredis")
	base := "/api/catalog/products/"
	r := e.do(req{method: "POST", host: a.Host, path: base, token: a.StaffToken, body: newProduct("D-1")})
	if r.Code != http.StatusCreated {
		t.Fatalf("create = %d %s", r.Code, r.Raw)
	}
	id := r.JSON["id"].(string)
	for _, p := range []string{base, base + id + "/"} {
		if r := e.do(req{method: "GET", host: a.Host, path: p, token: a.UserToken}); r.Code != http.StatusOK {
			t.Fatalf("GET %s with Redis down = %d %s, want 200", p, r.Code, r.Raw)
		}
	}
	r = e.do(req{method: "POST", host: a.Host, path: "/api/auth/token", body: map[string]string{"email": a.UserEmail, "password": testPassword}})
	if r.Code != http.StatusOK {
		t.Fatalf("sign in with Redis down = %d %s, want 200", r.Code, r.Raw)
	}
}

func TestPaginationWalksEveryProductOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.tenant("pages")
	base := "/api/catalog/products/"
	const n = 23
	for i := range n {
		p := newProduct(fmt.Sprintf("P-%02d", i))
		p["name"] = fmt.Sprintf("Item %d", i%5)               // ties, broken by id
		p["price"] = fmt.Sprintf("%d.%02d", (i%7)*(i%7)*7, i) // 0 to 252: text order is not number order
		p["stock"] = i % 4
		if r := e.do(req{method: "POST", host: a.Host, path: base, token: a.StaffToken, body: p}); r.Code != http.StatusCreated {
			t.Fatal(r.Code, string(r.Raw))
		}
	}
	for _, ordering := range []string{"", "created_at", "-created_at", "name", "-name", "price", "-price", "sku", "-sku", "stock", "-stock", "updated_at"} {
		t.Run("ordering "+ordering, func(t *testing.T) {
			seen := map[string]bool{}
			var keys []string
			path := base + "?limit=5&ordering=" + ordering
			pages := 0
			for path != "" {
				r := e.do(req{method: "GET", host: a.Host, path: path, token: a.UserToken})
				if r.Code != http.StatusOK {
					t.Fatalf("GET %s = %d %s", path, r.Code, r.Raw)
				}
				for _, x := range r.JSON["results"].([]any) {
					p := x.(map[string]any)
					if seen[p["id"].(string)] {
						t.Fatalf("product %v listed twice", p["sku"])
					}
					seen[p["id"].(string)] = true
					keys = append(keys, sortKey(ordering, p))
				}
				path = ""
				if next, ok := r.JSON["next"].(string); ok {
					u, err := url.Parse(next)
					if err != nil || u.Host != a.Host {
						t.Fatalf("next = %q, want a URL on the tenant host", next)
					}
					path = u.RequestURI()
				}
				pages++
			}
			if len(seen) != n || pages != 5 {
				t.Fatalf("saw %d products in %d pages, want %d in 5", len(seen), pages, n)
			}
			desc := strings.HasPrefix(ordering, "-") || ordering == ""
			if !sort.SliceIsSorted(keys, func(i, j int) bool {
				if desc {
					return keys[i] > keys[j]
				}
				return keys[i] < keys[j]
			}) {
				t.Fatalf("order %q not kept: %v", ordering, keys)
			}
		})
	}
}

// sortKey renders the ordering field so that string order is field order.
func sortKey(ordering string, p map[string]any) string {
	switch strings.TrimPrefix(ordering, "-") {
	case "", "created_at":
		return fixedTime(p["created_at"].(string))
	case "updated_at":
		return fixedTime(p["updated_at"].(string))
	case "name":
		return p["name"].(string)
	case "sku":
		return p["sku"].(string)
	case "price":
		return fmt.Sprintf("%012s", p["price"])
	case "stock":
		return fmt.Sprintf("%06.0f", p["stock"])
	}
	return ""
}

// fixedTime re-renders an RFC 3339 time with a fixed number of fraction
// digits, so that string order is time order.
func fixedTime(s string) string {
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return "bad time " + s
	}
	return tm.UTC().Format("2006-01-02T15:04:05.000000000")
}

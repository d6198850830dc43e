package api_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
)

func newProduct(sku string) map[string]any {
	return map[string]any{"sku": sku, "name": "Widget " + sku, "description": "A widget", "price": "9.50", "currency": "EUR", "stock": 3}
}

func TestProductCRUD(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.tenant("crud")
	base := "/api/catalog/products/"

	r := e.do(req{method: "POST", host: a.Host, path: base, token: a.StaffToken, body: newProduct("W-1")})
	if r.Code != http.StatusCreated {
		t.Fatalf("create = %d %s", r.Code, r.Raw)
	}
	id := r.JSON["id"].(string)
	if r.JSON["price"] != "9.50" || r.JSON["version"] != float64(1) || r.Header.Get("ETag") != `"v1"` {
		t.Fatalf("created = %s, ETag %q", r.Raw, r.Header.Get("ETag"))
	}
	if n := e.count(a.Schema, `SELECT count(*) FROM outbox WHERE aggregate_id = $1 AND event_type = 'product.created' AND aggregate_version = 1`, id); n != 1 {
		t.Fatalf("outbox rows for the create = %d, want 1", n)
	}

	r = e.do(req{method: "GET", host: a.Host, path: base + id + "/", token: a.UserToken})
	if r.Code != http.StatusOK || r.JSON["sku"] != "W-1" || r.Header.Get("ETag") != `"v1"` {
		t.Fatalf("retrieve = %d %s", r.Code, r.Raw)
	}
	r = e.do(req{method: "GET", host: a.Host, path: base + id + "/", token: a.UserToken, header: map[string]string{"If-None-Match": `"v1"`}})
	if r.Code != http.StatusNotModified {
		t.Fatalf("retrieve with a matching If-None-Match = %d, want 304", r.Code)
	}

	r = e.do(req{method: "PATCH", host: a.Host, path: base + id + "/", token: a.StaffToken,
		body: map[string]any{"price": "10"}, header: map[string]string{"If-Match": `"v1"`}})
	if r.Code != http.StatusOK || r.JSON["price"] != "10.00" || r.JSON["version"] != float64(2) || r.JSON["name"] != "Widget W-1" {
		t.Fatalf("patch = %d %s", r.Code, r.Raw)
	}
	r = e.do(req{method: "PUT", host: a.Host, path: base + id + "/", token: a.StaffToken,
		body: map[string]any{"sku": "W-1", "name": "Gadget", "price": "1.00", "currency": "USD"}})
	if r.Code != http.StatusOK || r.JSON["description"] != "" || r.JSON["stock"] != float64(0) || r.JSON["version"] != float64(3) {
		t.Fatalf("put = %d %s", r.Code, r.Raw)
	}
	r = e.do(req{method: "PATCH", host: a.Host, path: base + id + "/", token: a.StaffToken,
		body: map[string]any{"stock": 1}, header: map[string]string{"If-Match": `"v1"`}})
	if r.Code != http.StatusConflict {
		t.Fatalf("patch with a stale If-Match = %d %s, want 409", r.Code, r.Raw)
	}
	r = e.do(req{method: "DELETE", host: a.Host, path: base + id + "/", token: a.StaffToken})
	if r.Code != http.StatusNoContent {
		t.Fatalf("delete = %d %s", r.Code, r.Raw)
	}
	if n := e.count(a.Schema, `SELECT count(*) FROM outbox WHERE aggregate_id = $1 AND event_type = 'product.deleted' AND aggregate_version = 4`, id); n != 1 {
		t.Fatalf("outbox rows for the delete at version 4 = %d, want 1", n)
	}
	if r := e.do(req{method: "DELETE", host: a.Host, path: base + id + "/", token: a.StaffToken}); r.Code != http.StatusNotFound {
		t.Fatalf("second delete = %d, want 404", r.Code)
	}
	if n := e.count(a.Schema, `SELECT count(*) FROM outbox`); n != 4 {
		t.Fatalf("outbox rows = %d, want 4 (create, patch, put, delete)", n)
	}
}

func TestConcurrentWritersWithIfMatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.tenant("race")
	r := e.do(req{method: "POST", host: a.Host, path: "/api/catalog/products/", token: a.StaffToken, body: newProduct("R-1")})
	id := r.JSON["id"].(string)
	const writers, rounds = 8, 5
	for round := 1; round <= rounds; round++ {
		var wg sync.WaitGroup
		codes := make(chan int, writers)
		for w := range writers {
			wg.Go(func() {
				r := e.do(req{method: "PATCH", host: a.Host, path: "/api/catalog/products/" + id + "/", token: a.StaffToken,
					body: map[string]any{"name": fmt.Sprintf("writer %d round %d", w, round)}, header: map[string]string{"If-Match": fmt.Sprintf(`"v%d"`, round)}})
				codes <- r.Code
			})
		}
		wg.Wait()
		close(codes)
		won, lost := 0, 0
		for c := range codes {
			switch c {
			case http.StatusOK:
				won++
			case http.StatusConflict:
				lost++
			default:
				t.Fatalf("round %d: unexpected status %d", round, c)
			}
		}
		if won != 1 || lost != writers-1 {
			t.Fatalf("round %d: %d won and %d lost, want exactly one winner", round, won, lost)
		}
	}
	if n := e.count(a.Schema, `SELECT version FROM products WHERE id = $1`, id); n != rounds+1 {
		t.Fatalf("version = %d, want %d", n, rounds+1)
	}
	if n := e.count(a.Schema, `SELECT count(*) FROM outbox WHERE event_type = 'product.updated'`); n != rounds {
		t.Fatalf("update events = %d, want %d", n, rounds)
	}
}

package api_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestFuzzFindings replays, through the real router and stores, the inputs
// the fuzz targets (input_fuzz_test.go, pkg/postgres/cursor_fuzz_test.go,
// pkg/domain/domain_fuzz_test.go) found answered wrongly: most were 500s,
// PostgreSQL refusing a value the API had let through.
func TestFuzzFindings(t *testing.T) {
	e := newEnv(t)
	a := e.tenant("fuzz")
	const id = "0190a7e4-1111-7000-8000-000000000001"
	products := "/api/catalog/products/"
	cursor := func(ordering, value, id string) string {
		b, _ := json.Marshal(map[string]string{"o": ordering, "v": value, "id": id})
		return url.QueryEscape(base64.RawURLEncoding.EncodeToString(b))
	}
	created := e.do(req{method: "POST", host: a.Host, path: products, token: a.StaffToken,
		body: map[string]any{"sku": "FUZZ-1", "name": "Widget", "price": "1", "currency": "EUR"}})
	if created.Code != http.StatusCreated {
		t.Fatalf("create = %d %s", created.Code, created.Raw)
	}
	pid := created.JSON["id"].(string)

	t.Run("ids PostgreSQL would refuse are not found (404)", func(t *testing.T) {
		for _, r := range []req{
			{method: "GET", path: products + "urn:uuid:" + id + "/"},
			{method: "GET", path: products + "(" + id + ")/"},
			{method: "PATCH", path: products + "urn:uuid:" + pid + "/", body: map[string]any{}},
			{method: "DELETE", path: products + "x" + pid + "x/"},
			{method: "GET", path: "/api/admin/users/urn:uuid:" + a.UserID + "/"},
			{method: "PATCH", path: "/api/admin/users/(" + a.UserID + ")/", body: map[string]any{"is_active": true}},
		} {
			r.host, r.token = a.Host, a.StaffToken
			if got := e.do(r); got.Code != http.StatusNotFound {
				t.Errorf("%s %s = %d %s, want 404", r.method, r.path, got.Code, got.Raw)
			}
		}
	})

	t.Run("values PostgreSQL would refuse are invalid (422) naming the field", func(t *testing.T) {
		for _, c := range []struct {
			r     req
			field string
		}{
			{req{method: "GET", path: products + "?ordering=price&cursor=" + cursor("price", ".", id)}, "cursor"},
			{req{method: "GET", path: products + "?ordering=stock&cursor=" + cursor("stock", "9999999999", id)}, "cursor"},
			{req{method: "GET", path: products + "?ordering=created_at&cursor=" + cursor("created_at", "0000-01-01T00:00:00Z", id)}, "cursor"},
			{req{method: "GET", path: products + "?ordering=created_at&cursor=" + cursor("created_at", "2024-05-01T10:11:12+16:00", id)}, "cursor"},
			{req{method: "GET", path: products + "?ordering=created_at&cursor=" + cursor("created_at", "2024-05-01T10:11:12,5Z", id)}, "cursor"},
			{req{method: "GET", path: products + "?ordering=name&cursor=" + cursor("name", "a\x00b", id)}, "cursor"},
			{req{method: "GET", path: products + "?ordering=name&cursor=" + cursor("name", "a", "urn:uuid:"+id)}, "cursor"},
			{req{method: "GET", path: "/api/admin/users/?cursor=" + base64.RawURLEncoding.EncodeToString([]byte("a\x00"))}, "cursor"},
			{req{method: "GET", path: "/api/admin/notifications/?user_id=urn:uuid:" + a.UserID}, "user_id"},
			{req{method: "POST", path: products, body: `{"sku":"FUZZ-2","name":"a\u0000b","price":"1","currency":"EUR"}`}, "name"},
			{req{method: "PATCH", path: products + pid + "/", body: `{"description":"\u0000"}`}, "description"},
		} {
			c.r.host, c.r.token = a.Host, a.StaffToken
			if got := e.do(c.r); got.Code != http.StatusUnprocessableEntity || got.errorDetails()[c.field] == nil {
				t.Errorf("%s %s = %d %s, want 422 naming %s", c.r.method, c.r.path, got.Code, got.Raw, c.field)
			}
		}
	})

	t.Run("a body that is not a JSON object is a bad request (400)", func(t *testing.T) {
		for _, body := range []string{"null", " null\n"} {
			if got := e.do(req{method: "PATCH", host: a.Host, path: products + pid + "/", token: a.StaffToken, body: body}); got.Code != http.StatusBadRequest {
				t.Errorf("PATCH with body %q = %d %s, want 400", body, got.Code, got.Raw)
			}
		}
	})

	t.Run("an If-Match that is none of our ETags never matches (409)", func(t *testing.T) {
		cur := e.do(req{method: "GET", host: a.Host, path: products + pid + "/", token: a.StaffToken})
		v := strings.TrimSuffix(strings.TrimPrefix(cur.Header.Get("ETag"), `"v`), `"`)
		for _, tag := range []string{`"v` + v, `"v0` + v + `"`, `"v+` + v + `"`, `W/"v+` + v + `"`} {
			r := req{method: "PATCH", host: a.Host, path: products + pid + "/", token: a.StaffToken, body: map[string]any{},
				header: map[string]string{"If-Match": tag}}
			if got := e.do(r); got.Code != http.StatusConflict {
				t.Errorf("PATCH with If-Match %s = %d %s, want 409", tag, got.Code, got.Raw)
			}
		}
	})

	t.Run("the pages of a list ordered by a name JSON escapes are all reachable", func(t *testing.T) {
		for _, sku := range []string{"FUZZ-LT-1", "FUZZ-LT-2"} {
			r := e.do(req{method: "POST", host: a.Host, path: products, token: a.StaffToken,
				body: map[string]any{"sku": sku, "name": strings.Repeat("<", 199) + sku[len(sku)-1:], "price": "1", "currency": "EUR"}})
			if r.Code != http.StatusCreated {
				t.Fatalf("create = %d %s", r.Code, r.Raw)
			}
		}
		path, pages := products+"?limit=1&ordering=name", 0
		for ; path != ""; pages++ {
			r := e.do(req{method: "GET", host: a.Host, path: path, token: a.UserToken})
			if r.Code != http.StatusOK {
				t.Fatalf("page %d: GET %s = %d %s", pages+1, path, r.Code, r.Raw)
			}
			path = ""
			if next, ok := r.JSON["next"].(string); ok {
				u, _ := url.Parse(next)
				path = u.RequestURI()
			}
		}
		if pages != 3 {
			t.Fatalf("%d pages of one product, want 3", pages)
		}
	})
}

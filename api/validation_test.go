package api_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestBadProductInputIsRefusedAndWritesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.tenant("valid")
	base := "/api/catalog/products/"
	r := e.do(req{method: "POST", host: a.Host, path: base, token: a.StaffToken, body: newProduct("EXISTING")})
	if r.Code != http.StatusCreated {
		t.Fatalf("seed product = %d %s", r.Code, r.Raw)
	}
	id := r.JSON["id"].(string)

	with := func(field string, v any) map[string]any {
		p := newProduct("NEW-1")
		if v == nil {
			delete(p, field)
		} else {
			p[field] = v
		}
		return p
	}
	cases := []struct {
		name  string
		body  any
		field string
	}{
		{"an empty name", with("name", ""), "name"},
		{"a blank name", with("name", "   "), "name"},
		{"a 201-character name", with("name", strings.Repeat("n", 201)), "name"},
		{"a missing name", with("name", nil), "name"},
		{"a negative price", with("price", "-1.00"), "price"},
		{"a non-numeric price", with("price", "ten"), "price"},
		{"a price with 3 decimals", with("price", "1.999"), "price"},
		{"a price given as a number", with("price", 9.5), "price"},
		{"a price in exponent form", with("price", "1e3"), "price"},
		{"a missing price", with("price", nil), "price"},
		{"a lower-case currency", with("currency", "eur"), "currency"},
		{"an unknown currency", with("currency", "ABC"), "currency"},
		{"a 4-letter currency", with("currency", "EURO"), "currency"},
		{"a negative stock", with("stock", -1), "stock"},
		{"a fractional stock", with("stock", 1.5), "stock"},
		{"a stock given as a string", with("stock", "3"), "stock"},
		{"an empty sku", with("sku", ""), "sku"},
		{"a sku with spaces inside", with("sku", "A B"), "sku"},
		{"an unknown field", with("colour", "red"), "colour"},
		{"a read-only field", with("version", 7), "version"},
	}
	for _, c := range cases {
		t.Run(c.name+" is 422 naming "+c.field, func(t *testing.T) {
			r := e.do(req{method: "POST", host: a.Host, path: base, token: a.StaffToken, body: c.body})
			if r.Code != http.StatusUnprocessableEntity || r.errorDetails()[c.field] == nil {
				t.Fatalf("create = %d %s, want 422 naming %s", r.Code, r.Raw, c.field)
			}
			v, present := c.body.(map[string]any)[c.field]
			if !present {
				return // a patch may leave any field out
			}
			r = e.do(req{method: "PATCH", host: a.Host, path: base + id + "/", token: a.StaffToken, body: map[string]any{c.field: v}})
			if r.Code != http.StatusUnprocessableEntity || r.errorDetails()[c.field] == nil {
				t.Fatalf("patch = %d %s, want 422 naming %s", r.Code, r.Raw, c.field)
			}
		})
	}
	for _, c := range []struct {
		name string
		body any
		code int
	}{
		{"malformed JSON", `{"sku": "A",`, http.StatusBadRequest},
		{"two JSON values", `{"sku":"A"} {}`, http.StatusBadRequest},
		{"a JSON array", `[1,2]`, http.StatusBadRequest},
		{"an empty body", ``, http.StatusBadRequest},
		{"a 2 MiB body", `{"sku":"A","name":"` + strings.Repeat("x", 2<<20) + `"}`, http.StatusRequestEntityTooLarge},
	} {
		t.Run(c.name+" is refused", func(t *testing.T) {
			r := e.do(req{method: "POST", host: a.Host, path: base, token: a.StaffToken, body: c.body})
			if r.Code != c.code || r.errorCode() == "" {
				t.Fatalf("= %d %s, want %d with a JSON error", r.Code, r.Raw[:min(len(r.Raw), 200)], c.code)
			}
		})
	}
	t.Run("a duplicate sku is 409", func(t *testing.T) {
		r := e.do(req{method: "POST", host: a.Host, path: base, token: a.StaffToken, body: newProduct("EXISTING")})
		if r.Code != http.StatusConflict || r.errorDetails()["sku"] == nil {
			t.Fatalf("= %d %s, want 409 naming sku", r.Code, r.Raw)
		}
	})
	t.Run("bad list parameters are 422", func(t *testing.T) {
		for q, field := range map[string]string{"limit=0": "limit", "limit=101": "limit", "limit=x": "limit",
			"ordering=password_hash": "ordering", "ordering=name%3Bdrop": "ordering", "cursor=abc": "cursor", "cursor=%00": "cursor"} {
			r := e.do(req{method: "GET", host: a.Host, path: base + "?" + q, token: a.UserToken})
			if r.Code != http.StatusUnprocessableEntity || r.errorDetails()[field] == nil {
				t.Errorf("?%s = %d %s, want 422 naming %s", q, r.Code, r.Raw, field)
			}
		}
	})
	t.Run("an id that is not a UUID is 404", func(t *testing.T) {
		for _, m := range []string{"GET", "PATCH", "DELETE"} {
			r := e.do(req{method: m, host: a.Host, path: base + "1%27%20OR%201=1/", token: a.StaffToken, body: map[string]any{"name": "x"}})
			if r.Code != http.StatusNotFound {
				t.Errorf("%s = %d %s, want 404", m, r.Code, r.Raw)
			}
		}
	})
	if n := e.count(a.Schema, `SELECT count(*) FROM products`); n != 1 {
		t.Fatalf("products = %d, want only the seed", n)
	}
	if n := e.count(a.Schema, `SELECT count(*) FROM outbox`); n != 1 {
		t.Fatalf("outbox rows = %d, want only the seed's", n)
	}
	if n := e.count(a.Schema, `SELECT version FROM products WHERE id = $1`, id); n != 1 {
		t.Fatalf("seed version = %d, want 1 (no refused patch may change it)", n)
	}
}

func TestProductAndOutboxCommitTogether(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.tenant("atomic")
	base := "/api/catalog/products/"
	r := e.do(req{method: "POST", host: a.Host, path: base, token: a.StaffToken, body: newProduct("KEEP")})
	id := r.JSON["id"].(string)
	// From now on every outbox insert fails.
	if _, err := e.db.DB.Pool.Exec(t.Context(), `ALTER TABLE "`+a.Schema+`".outbox ADD CONSTRAINT no_more_events CHECK (false) NOT VALID`); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]req{
		"create": {method: "POST", host: a.Host, path: base, token: a.StaffToken, body: newProduct("LOST")},
		"update": {method: "PATCH", host: a.Host, path: base + id + "/", token: a.StaffToken, body: map[string]any{"name": "changed"}},
		"delete": {method: "DELETE", host: a.Host, path: base + id + "/", token: a.StaffToken},
	} {
		t.Run("a failed outbox insert undoes the "+name, func(t *testing.T) {
			if res := e.do(r); res.Code < 400 {
				t.Fatalf("= %d %s, want a failure", res.Code, res.Raw)
			}
		})
	}
	if n := e.count(a.Schema, `SELECT count(*) FROM products WHERE sku = 'LOST'`); n != 0 {
		t.Fatal("a product was stored without its event")
	}
	if n := e.count(a.Schema, `SELECT count(*) FROM products WHERE id = $1 AND name = 'Widget KEEP' AND version = 1`, id); n != 1 {
		t.Fatal("the product was changed or deleted without its event")
	}
}

package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/tenantworks/saas/pkg/testenv"
)

// waitForMove reads the tenant's latest move until it has ended, and
// returns it.
func waitForMove(t *testing.T, e *env, schemaName, token string) response {
	t.Helper()
	for {
		r := e.do(req{method: "GET", host: publicDomain, path: "/api/platform/tenants/" + schemaName + "/move", token: token})
		if r.Code != http.StatusOK {
			t.Fatalf("GET the move = %d %s", r.Code, r.Raw)
		}
		if r.JSON["finished_at"] != nil {
			return r
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("the move did not end: %s", r.Raw)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestPlatformMovesATenantThatKeepsServing(t *testing.T) {
	t.Parallel()
	e := newAdminEnvOn(t, testenv.MustClusterDatabases(t))
	a := e.tenant("mvapi")
	_, su := e.superuser("root@platform.test")
	other := e.db.Clusters[1].Name
	products := "/api/catalog/products/"
	product := map[string]any{"sku": "M-1", "name": "Moved lamp", "price": "10.00", "currency": "EUR"}
	if r := e.do(req{method: "POST", host: a.Host, path: products, token: a.StaffToken, body: product}); r.Code != http.StatusCreated {
		t.Fatalf("create before the move = %d %s", r.Code, r.Raw)
	}
	move := func(to, token string) response {
		return e.do(req{method: "POST", host: publicDomain, path: "/api/platform/tenants/" + a.Schema + "/move", token: token, body: map[string]any{"to": to}})
	}

	cases := []struct {
		name, to, token string
		code            int
	}{
		{"no token is a 401", other, "", http.StatusUnauthorized},
		{"a tenant's token is a 401", other, a.StaffToken, http.StatusUnauthorized},
		{"an unknown cluster is a 422", "nowhere", su, http.StatusUnprocessableEntity},
		{"no cluster is a 422", "", su, http.StatusUnprocessableEntity},
		{"the cluster the tenant is on is a 409", "main", su, http.StatusConflict},
	}
	for _, c := range cases {
		if r := move(c.to, c.token); r.Code != c.code {
			t.Fatalf("%s: %d %s", c.name, r.Code, r.Raw)
		}
	}
	if r := e.do(req{method: "POST", host: a.Host, path: "/api/platform/tenants/" + a.Schema + "/move", token: su, body: map[string]any{"to": other}}); r.Code != http.StatusNotFound {
		t.Fatalf("a move asked on a tenant's domain = %d %s, want 404", r.Code, r.Raw)
	}

	movePath := "/api/platform/tenants/" + a.Schema + "/move"
	if r := e.do(req{method: "GET", host: publicDomain, path: movePath, token: su}); r.Code != http.StatusNotFound {
		t.Fatalf("the move of a tenant never moved = %d %s, want 404", r.Code, r.Raw)
	}
	r := move(other, su)
	if r.Code != http.StatusAccepted || r.JSON["from"] != "main" || r.JSON["to"] != other || r.JSON["schema"] != a.Schema ||
		r.JSON["state"] != "pending" || r.JSON["finished_at"] != nil {
		t.Fatalf("move = %d %s, want 202 with the move pending", r.Code, r.Raw)
	}
	if loc := r.Header.Get("Location"); loc != movePath {
		t.Fatalf("Location %q, want %q", loc, movePath)
	}
	// The first holds the tenant until it ends.
	if r := move(other, su); r.Code != http.StatusConflict {
		t.Fatalf("a second move while one runs = %d %s, want 409", r.Code, r.Raw)
	}
	if r := e.do(req{method: "GET", host: publicDomain, path: movePath, token: a.StaffToken}); r.Code != http.StatusUnauthorized {
		t.Fatalf("the move read with a tenant's token = %d %s, want 401", r.Code, r.Raw)
	}
	r = waitForMove(t, e, a.Schema, su)
	if r.JSON["state"] != "done" || r.JSON["error"] != nil || r.JSON["to"] != other {
		t.Fatalf("the move ended %s, want done", r.Raw)
	}
	if pause, ok := r.JSON["pause_ms"].(float64); !ok || pause <= 0 {
		t.Fatalf("pause_ms = %v, want a positive number", r.JSON["pause_ms"])
	}
	// Its audit entry names the superuser who asked.
	var actor string
	if err := e.db.DB.Pool.QueryRow(t.Context(), `SELECT actor_email FROM public.audit_log WHERE action = 'tenant.move' AND target_id = $1`,
		a.Schema).Scan(&actor); err != nil || actor != "root@platform.test" {
		t.Fatalf("tenant.move entry by %q (%v), want root@platform.test", actor, err)
	}
	if r := e.do(req{method: "GET", host: publicDomain, path: "/api/platform/tenants/" + a.Schema + "/", token: su}); r.JSON["cluster"] != other {
		t.Fatalf("the tenant after the move: %s", r.Raw)
	}
	// The tenant serves from its new cluster: what it had, and new writes.
	if r := e.do(req{method: "GET", host: a.Host, path: products, token: a.StaffToken}); r.Code != http.StatusOK || len(r.JSON["results"].([]any)) != 1 {
		t.Fatalf("list after the move = %d %s, want the one product", r.Code, r.Raw)
	}
	product["sku"] = "M-2"
	if r := e.do(req{method: "POST", host: a.Host, path: products, token: a.StaffToken, body: product}); r.Code != http.StatusCreated {
		t.Fatalf("create after the move = %d %s", r.Code, r.Raw)
	}
	var n int
	if err := e.db.Clusters[1].DB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM `+a.Schema+`.products`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("products on %s: %d (%v), want 2", other, n, err)
	}
}

// movesATenant moves a tenant between the clusters of an env of its own
// (the others have one cluster).
func (o *openAPIExchanges) movesATenant(t *testing.T) {
	ce := newAdminEnvOn(t, testenv.MustClusterDatabases(t))
	a := ce.tenant("oamove")
	_, su := ce.superuser("root@oa.test")
	oversized, step := o.oversized, o.step
	other := ce.db.Clusters[1].Name
	path := "/api/platform/tenants/" + a.Schema + "/move"
	to := func(name string) map[string]any { return map[string]any{"to": name} }
	step(t, "a tenant never moved has no move", ce, req{method: "GET", host: publicDomain, path: path, token: su}, 404, conforms)
	step(t, "a superuser moves a tenant to another cluster", ce, req{method: "POST", host: publicDomain, path: path, token: su, body: to(other)}, 202, conforms)
	step(t, "a second move while one runs is a 409", ce, req{method: "POST", host: publicDomain, path: path, token: su, body: to(other)}, 409, conforms)
	waitForMove(t, ce, a.Schema, su)
	step(t, "a superuser reads the tenant's move", ce, req{method: "GET", host: publicDomain, path: path, token: su}, 200, conforms)
	step(t, "reading a move without a token is a 401", ce, req{method: "GET", host: publicDomain, path: path}, 401, violates)
	step(t, "and back", ce, req{method: "POST", host: publicDomain, path: path, token: su, body: to("main")}, 202, conforms)
	waitForMove(t, ce, a.Schema, su)
	step(t, "a move to where the tenant is is a 409", ce, req{method: "POST", host: publicDomain, path: path, token: su, body: to("main")}, 409, conforms)
	step(t, "an unknown cluster is a 422", ce, req{method: "POST", host: publicDomain, path: path, token: su, body: to("nowhere")}, 422, conforms)
	step(t, "a move without a cluster is a 422", ce, req{method: "POST", host: publicDomain, path: path, token: su, body: map[string]any{}}, 422, violates)
	step(t, "moving an unknown tenant is a 404", ce, req{method: "POST", host: publicDomain, path: "/api/platform/tenants/no_such_tenant/move", token: su, body: to(other)}, 404, conforms)
	step(t, "moving with bad JSON is a 400", ce, req{method: "POST", host: publicDomain, path: path, token: su, body: `{`}, 400, violates)
	step(t, "moving with an oversized body is a 413", ce, req{method: "POST", host: publicDomain, path: path, token: su, body: oversized}, 413, violates)
	step(t, "moving without a token is a 401", ce, req{method: "POST", host: publicDomain, path: path, body: to(other)}, 401, violates)
}

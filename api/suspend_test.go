package api_test

import (
	"net/http"
	"testing"
)

// TestASuspendedTenantIsRefusedUntilResumed: every route of a suspended
// tenant, sign-in included, answers 403 tenant_suspended; other tenants are
// untouched; resuming serves it again with its data whole.
func TestASuspendedTenantIsRefusedUntilResumed(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t)
	a, b := e.tenant("susp"), e.tenant("suspother")
	_, su := e.superuser("root@suspend.test")
	base := "/api/catalog/products/"
	if r := e.do(req{method: "POST", host: a.Host, path: base, token: a.StaffToken, body: newProduct("SUS-1")}); r.Code != http.StatusCreated {
		t.Fatalf("create = %d %s", r.Code, r.Raw)
	}
	platform := func(verb, schemaName, token string) response {
		t.Helper()
		return e.do(req{method: "POST", host: publicDomain, path: "/api/platform/tenants/" + schemaName + "/" + verb, token: token})
	}

	if r := platform("suspend", a.Schema, ""); r.Code != http.StatusUnauthorized {
		t.Fatalf("suspend without a token = %d, want 401", r.Code)
	}
	if r := platform("suspend", "nosuchtenant", su); r.Code != http.StatusNotFound {
		t.Fatalf("suspend of an unknown tenant = %d, want 404", r.Code)
	}
	for range 2 { // twice: suspending a suspended tenant changes nothing
		if r := platform("suspend", a.Schema, su); r.Code != http.StatusOK || r.JSON["state"] != "suspended" {
			t.Fatalf("suspend = %d %s, want 200 and state suspended", r.Code, r.Raw)
		}
	}
	refused := []req{
		{method: "GET", path: base, token: a.UserToken},
		{method: "POST", path: base, token: a.StaffToken, body: newProduct("SUS-2")},
		{method: "GET", path: "/api/notifications/", token: a.UserToken},
		{method: "GET", path: "/api/admin/users/", token: a.StaffToken},
		{method: "POST", path: "/api/auth/token", body: map[string]string{"email": a.StaffEmail, "password": testPassword}},
		{method: "GET", path: "/ws/notifications/", token: a.UserToken},
	}
	for _, q := range refused {
		q.host = a.Host
		if r := e.do(q); r.Code != http.StatusForbidden || r.errorCode() != "tenant_suspended" {
			t.Errorf("%s %s on a suspended tenant = %d %s, want 403 tenant_suspended", q.method, q.path, r.Code, r.Raw)
		}
	}
	if r := e.do(req{method: "GET", host: b.Host, path: base, token: b.UserToken}); r.Code != http.StatusOK {
		t.Fatalf("another tenant = %d, want 200", r.Code)
	}
	if n := e.count(a.Schema, `SELECT count(*) FROM products`); n != 1 {
		t.Fatalf("the suspended tenant holds %d products, want its 1", n)
	}

	if r := platform("resume", a.Schema, su); r.Code != http.StatusOK || r.JSON["state"] != "active" {
		t.Fatalf("resume = %d %s, want 200 and state active", r.Code, r.Raw)
	}
	r := e.do(req{method: "GET", host: a.Host, path: base, token: a.UserToken})
	if r.Code != http.StatusOK || len(r.JSON["results"].([]any)) != 1 {
		t.Fatalf("list after resume = %d %s, want its one product", r.Code, r.Raw)
	}
	if r := e.do(req{method: "POST", host: a.Host, path: "/api/auth/token", body: map[string]string{"email": a.StaffEmail, "password": testPassword}}); r.Code != http.StatusOK {
		t.Fatalf("sign-in after resume = %d %s", r.Code, r.Raw)
	}
}

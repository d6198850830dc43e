package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tenantworks/saas/pkg/auth"
)

func TestPlatformIsOnThePublicDomainOnly(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t)
	a := e.tenant("pltdom")
	_, su := e.superuser("root@platform.test")
	for _, r := range []req{
		{method: "GET", path: "/api/platform/tenants/", token: su},
		{method: "GET", path: "/api/platform/tenants/" + a.Schema + "/", token: su},
		{method: "POST", path: "/api/platform/tenants/", token: su, body: map[string]string{"schema": "sneaky", "name": "S", "domain": "sneaky.test"}},
		{method: "DELETE", path: "/api/platform/tenants/" + a.Schema + "/", token: su},
		{method: "POST", path: "/api/platform/tenants/" + a.Schema + "/move", token: su, body: map[string]string{"to": "main"}},
		{method: "POST", path: "/api/platform/auth/token", body: map[string]string{"email": "root@platform.test", "password": testPassword}},
		{method: "GET", path: "/api/platform/nothing-here", token: su},
	} {
		for _, host := range []string{a.Host, "unknown.example.test"} {
			r.host = host
			if got := e.do(r); got.Code != http.StatusNotFound || got.errorCode() != "not_found" {
				t.Errorf("%s %s on %s = %d %s, want 404", r.method, r.path, host, got.Code, got.Raw)
			}
		}
	}
	if _, err := e.mgr.Get(context.Background(), a.Schema); err != nil {
		t.Fatalf("the tenant is gone after requests that should have been refused: %v", err)
	}
}

func TestPlatformAuth(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t)
	a := e.tenant("pltauth")
	suID, su := e.superuser("root@platform.test")
	tenants := "/api/platform/tenants/"

	t.Run("the token answer has the token shape", func(t *testing.T) {
		r := e.do(req{method: "POST", host: publicDomain, path: "/api/platform/auth/token/", body: map[string]string{"email": "ROOT@platform.test", "password": testPassword}})
		exp, _ := r.JSON["expires_at"].(string)
		if r.Code != http.StatusOK || r.JSON["token"] == "" || !strings.HasSuffix(exp, "Z") {
			t.Fatalf("sign-in = %d %s", r.Code, r.Raw)
		}
	})

	t.Run("bad sign-ins are 401 or 422", func(t *testing.T) {
		cases := []struct {
			name string
			body any
			code int
		}{
			{"wrong password", map[string]string{"email": "root@platform.test", "password": "wrong-password"}, http.StatusUnauthorized},
			{"unknown email", map[string]string{"email": "nobody@platform.test", "password": testPassword}, http.StatusUnauthorized},
			{"a tenant user's credentials", map[string]string{"email": a.StaffEmail, "password": testPassword}, http.StatusUnauthorized},
			{"bad email", map[string]string{"email": "root", "password": testPassword}, http.StatusUnprocessableEntity},
			{"bad JSON", "{", http.StatusBadRequest},
		}
		for _, c := range cases {
			if r := e.do(req{method: "POST", host: publicDomain, path: "/api/platform/auth/token", body: c.body}); r.Code != c.code {
				t.Errorf("%s: %d %s, want %d", c.name, r.Code, r.Raw, c.code)
			}
		}
	})

	t.Run("no token, a bad token or a tenant token is 401", func(t *testing.T) {
		forged, _, _ := auth.NewTokens("another-secret-another-secret-12345", time.Hour).Issue(auth.PlatformAudience, suID, true)
		for name, tok := range map[string]string{"no token": "", "garbage": "not-a-token", "tenant staff token": a.StaffToken, "forged": forged} {
			if r := e.do(req{method: "GET", host: publicDomain, path: tenants, token: tok}); r.Code != http.StatusUnauthorized || r.errorCode() != "unauthorized" {
				t.Errorf("%s: %d %s, want 401", name, r.Code, r.Raw)
			}
		}
		if r := e.do(req{method: "GET", host: publicDomain, path: tenants, token: su}); r.Code != http.StatusOK {
			t.Fatalf("with the platform token: %d %s", r.Code, r.Raw)
		}
	})

	t.Run("a platform token is refused on tenant routes", func(t *testing.T) {
		for _, p := range []string{"/api/catalog/products/", "/api/notifications/", "/api/admin/users/"} {
			if r := e.do(req{method: "GET", host: a.Host, path: p, token: su}); r.Code != http.StatusUnauthorized {
				t.Errorf("GET %s with a platform token = %d %s, want 401", p, r.Code, r.Raw)
			}
		}
	})

	t.Run("a deactivated superuser's token is refused on the next request", func(t *testing.T) {
		_, other := e.superuser("second@platform.test")
		if r := e.do(req{method: "GET", host: publicDomain, path: tenants, token: other}); r.Code != http.StatusOK {
			t.Fatalf("before: %d", r.Code)
		}
		if _, err := e.db.DB.Pool.Exec(context.Background(), `UPDATE public.superusers SET is_active = false WHERE email = 'second@platform.test'`); err != nil {
			t.Fatal(err)
		}
		if r := e.do(req{method: "GET", host: publicDomain, path: tenants, token: other}); r.Code != http.StatusUnauthorized {
			t.Fatalf("after deactivation: %d %s, want 401", r.Code, r.Raw)
		}
		if r := e.do(req{method: "POST", host: publicDomain, path: "/api/platform/auth/token", body: map[string]string{"email": "second@platform.test", "password": testPassword}}); r.Code != http.StatusUnauthorized {
			t.Fatalf("sign-in after deactivation: %d %s, want 401", r.Code, r.Raw)
		}
	})
}

func TestPlatformSignInIsRateLimited(t *testing.T) {
	t.Parallel()
	// A long window, so that a slow machine cannot see it roll over; the
	// attempts are refused before any password is checked, so they are cheap.
	e := newAdminEnv(t, func(w *wiring) { w.LoginLimit, w.LoginWindow = 3, 5*time.Minute })
	body := map[string]string{"email": "not-an-email", "password": ""}
	for i := range 3 {
		if r := e.do(req{method: "POST", host: publicDomain, path: "/api/platform/auth/token", body: body}); r.Code != http.StatusUnprocessableEntity {
			t.Fatalf("attempt %d = %d %s, want 422", i+1, r.Code, r.Raw)
		}
	}
	r := e.do(req{method: "POST", host: publicDomain, path: "/api/platform/auth/token", body: body})
	if r.Code != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("attempt 4 = %d %s (Retry-After %q), want 429 with Retry-After", r.Code, r.Raw, r.Header.Get("Retry-After"))
	}
}

// TestPlatformTenantLifecycle takes one tenant through its life on the
// platform API, step by step, beside another tenant that must not notice.
func TestPlatformTenantLifecycle(t *testing.T) {
	t.Parallel()
	l := newTenantLifecycle(t)
	if l.resolves(t, l.host) {
		t.Fatalf("%s resolves before its tenant exists", l.host) // and is now cached as unknown
	}
	t.Run("a superuser creates a tenant, whose host then resolves", l.createsATenant)
	t.Run("the list has every tenant, oldest first, and one page", l.listsEveryTenant)
	t.Run("a bad create is a 400, a 409 or a 422 naming each field", l.refusesBadCreates)
	t.Run("a tenant is renamed", l.renamesTheTenant)
	t.Run("domains are added, made primary and removed", l.managesDomains)
	t.Run("a deleted tenant is gone, and so is its host", l.deletesTheTenant)
}

// tenantLifecycle is what the steps of TestPlatformTenantLifecycle share:
// the server, a superuser's token, the tenant that was there before (old),
// and the schema and hosts of the one the steps create.
type tenantLifecycle struct {
	e                               *env
	old                             fixture
	su                              string
	schemaName, host, second, third string
}

func newTenantLifecycle(t *testing.T) *tenantLifecycle {
	t.Helper()
	e := newAdminEnv(t)
	old := e.tenant("pltold")
	_, su := e.superuser("root@platform.test")
	schemaName := "acme_" + strings.ToLower(strings.ReplaceAll(old.Schema, "_", ""))[len("pltold"):]
	host := strings.ReplaceAll(schemaName, "_", "-") + ".example.test"
	return &tenantLifecycle{e: e, old: old, su: su, schemaName: schemaName, host: host, second: "www." + host, third: "shop." + host}
}

// p sends a request to the platform's tenant routes as the superuser.
func (l *tenantLifecycle) p(method, path string, body any) response {
	return l.e.do(req{method: method, host: publicDomain, path: "/api/platform/tenants/" + path, token: l.su, body: body})
}

// resolves tells whether a tenant route answers on host at all: a
// sign-in with wrong credentials is a 401 on a tenant's host, a 404
// anywhere else.
func (l *tenantLifecycle) resolves(t *testing.T, host string) bool {
	t.Helper()
	r := l.e.do(req{method: "POST", host: host, path: "/api/auth/token", body: map[string]string{"email": "x@y.test", "password": "wrong-password"}})
	switch r.Code {
	case http.StatusUnauthorized:
		return true
	case http.StatusNotFound:
		return false
	}
	t.Fatalf("sign-in on %s = %d %s", host, r.Code, r.Raw)
	return false
}

// createsATenant creates the tenant, whose host resolves from then on.
func (l *tenantLifecycle) createsATenant(t *testing.T) {
	schemaName, host := l.schemaName, l.host
	r := l.p("POST", "", map[string]string{"schema": schemaName, "name": " Acme ", "domain": strings.ToUpper(host) + "."})
	if r.Code != http.StatusCreated {
		t.Fatalf("create = %d %s", r.Code, r.Raw)
	}
	doms, _ := r.JSON["domains"].([]any)
	if r.JSON["schema"] != schemaName || r.JSON["name"] != "Acme" || r.JSON["state"] != "active" || r.JSON["schema_version"].(float64) < 1 ||
		r.JSON["cluster"] != "main" || len(doms) != 1 || doms[0].(map[string]any)["domain"] != host || doms[0].(map[string]any)["is_primary"] != true {
		t.Fatalf("created = %s", r.Raw)
	}
	if !strings.HasSuffix(r.JSON["created_at"].(string), "Z") || r.Header.Get("Location") != "/api/platform/tenants/"+schemaName+"/" {
		t.Fatalf("created_at %v, Location %q", r.JSON["created_at"], r.Header.Get("Location"))
	}
	if !l.resolves(t, host) {
		t.Fatalf("%s does not resolve after the tenant was created", host)
	}
}

// listsEveryTenant lists the two tenants, oldest first, on one page.
func (l *tenantLifecycle) listsEveryTenant(t *testing.T) {
	old, schemaName := l.old, l.schemaName
	r := l.p("GET", "", nil)
	res, _ := r.JSON["results"].([]any)
	if r.Code != http.StatusOK || len(res) != 2 || r.JSON["next"] != nil {
		t.Fatalf("list = %d %s", r.Code, r.Raw)
	}
	if res[0].(map[string]any)["schema"] != old.Schema || res[1].(map[string]any)["schema"] != schemaName {
		t.Fatalf("order = %s, want %s then %s", r.Raw, old.Schema, schemaName)
	}
}

// refusesBadCreates sends creates that fail, and checks they leave nothing.
func (l *tenantLifecycle) refusesBadCreates(t *testing.T) {
	old := l.old
	cases := []struct {
		name   string
		body   any
		code   int
		fields []string
	}{
		{"bad JSON", "[", http.StatusBadRequest, nil},
		{"everything wrong", map[string]string{"schema": "pg_x", "name": "", "domain": "a b"}, http.StatusUnprocessableEntity, []string{"schema", "name", "domain"}},
		{"a missing field", map[string]string{"schema": "fine_name", "name": "Fine"}, http.StatusUnprocessableEntity, []string{"domain"}},
		{"a taken schema", map[string]string{"schema": old.Schema, "name": "Dup", "domain": "dup.example.test"}, http.StatusConflict, []string{"schema"}},
		{"a taken domain", map[string]string{"schema": "dup_domain", "name": "Dup", "domain": old.Host}, http.StatusConflict, []string{"domain"}},
		{"the public domain", map[string]string{"schema": "dup_public", "name": "Dup", "domain": publicDomain}, http.StatusConflict, []string{"domain"}},
		{"an unknown cluster", map[string]string{"schema": "far_away", "name": "Far", "domain": "far.example.test", "cluster": "pg9"}, http.StatusUnprocessableEntity, []string{"cluster"}},
		{"a cluster not a string", map[string]any{"schema": "far_away", "name": "Far", "domain": "far.example.test", "cluster": 2}, http.StatusUnprocessableEntity, []string{"cluster"}},
	}
	for _, c := range cases {
		r := l.p("POST", "", c.body)
		if r.Code != c.code {
			t.Errorf("%s: %d %s, want %d", c.name, r.Code, r.Raw, c.code)
		}
		for _, f := range c.fields {
			if r.errorDetails()[f] == nil {
				t.Errorf("%s: details %v do not name %s", c.name, r.errorDetails(), f)
			}
		}
	}
	if r := l.p("GET", "", nil); len(r.JSON["results"].([]any)) != 2 {
		t.Fatalf("refused creates left tenants behind: %s", r.Raw)
	}
}

// renamesTheTenant renames the tenant, and fails to in every way it can.
func (l *tenantLifecycle) renamesTheTenant(t *testing.T) {
	schemaName := l.schemaName
	r := l.p("PATCH", schemaName+"/", map[string]string{"name": "Acme Corporation"})
	if r.Code != http.StatusOK || r.JSON["name"] != "Acme Corporation" {
		t.Fatalf("rename = %d %s", r.Code, r.Raw)
	}
	if r := l.p("GET", schemaName+"/", nil); r.Code != http.StatusOK || r.JSON["name"] != "Acme Corporation" {
		t.Fatalf("get after rename = %d %s", r.Code, r.Raw)
	}
	if r := l.p("PATCH", schemaName+"/", map[string]string{"name": "  "}); r.Code != http.StatusUnprocessableEntity || r.errorDetails()["name"] == nil {
		t.Fatalf("empty name = %d %s, want 422 naming name", r.Code, r.Raw)
	}
	if r := l.p("PATCH", schemaName+"/", map[string]any{"schema": "other"}); r.Code != http.StatusUnprocessableEntity || r.errorDetails()["schema"] == nil {
		t.Fatalf("changing the schema = %d %s, want 422 naming schema", r.Code, r.Raw)
	}
	if r := l.p("PATCH", "nosuchtenant/", map[string]string{"name": "X"}); r.Code != http.StatusNotFound {
		t.Fatalf("rename of an unknown tenant = %d, want 404", r.Code)
	}
}

// managesDomains adds, promotes and removes the tenant's domains, checking
// which hosts resolve after each step.
func (l *tenantLifecycle) managesDomains(t *testing.T) {
	old, schemaName, host, second, third := l.old, l.schemaName, l.host, l.second, l.third
	r := l.p("POST", schemaName+"/domains/", map[string]any{"domain": strings.ToUpper(second)})
	if r.Code != http.StatusCreated || r.JSON["domain"] != second || r.JSON["is_primary"] != false {
		t.Fatalf("add = %d %s", r.Code, r.Raw)
	}
	if !l.resolves(t, second) {
		t.Fatalf("%s does not resolve once added", second)
	}
	for name, c := range map[string]struct {
		domain string
		code   int
	}{
		"the same domain again":  {second, http.StatusConflict},
		"another tenant's":       {old.Host, http.StatusConflict},
		"the public domain":      {publicDomain, http.StatusConflict},
		"a name that is no host": {"bad domain!", http.StatusUnprocessableEntity},
	} {
		if r := l.p("POST", schemaName+"/domains/", map[string]any{"domain": c.domain}); r.Code != c.code || r.errorDetails()["domain"] == nil {
			t.Errorf("adding %s: %d %s, want %d naming domain", name, r.Code, r.Raw, c.code)
		}
	}
	if r := l.p("POST", "nosuchtenant/domains/", map[string]any{"domain": "free.example.test"}); r.Code != http.StatusNotFound {
		t.Errorf("adding to an unknown tenant = %d, want 404", r.Code)
	}
	if r := l.p("DELETE", schemaName+"/domains/"+host+"/", nil); r.Code != http.StatusConflict || !strings.Contains(string(r.Raw), "primary") {
		t.Fatalf("removing the primary = %d %s, want 409", r.Code, r.Raw)
	}

	r = l.p("POST", schemaName+"/domains/", map[string]any{"domain": third, "is_primary": true})
	if r.Code != http.StatusCreated || r.JSON["is_primary"] != true {
		t.Fatalf("add as primary = %d %s", r.Code, r.Raw)
	}
	if got := primaries(l.p("GET", schemaName+"/", nil)); got != third {
		t.Fatalf("primary = %q, want %s alone", got, third)
	}
	if r := l.p("PATCH", schemaName+"/domains/"+host+"/", map[string]any{"is_primary": true}); r.Code != http.StatusOK {
		t.Fatalf("make primary = %d %s", r.Code, r.Raw)
	}
	if got := primaries(l.p("GET", schemaName+"/", nil)); got != host {
		t.Fatalf("primary = %q, want %s alone", got, host)
	}
	if r := l.p("PATCH", schemaName+"/domains/"+host+"/", map[string]any{"is_primary": false}); r.Code != http.StatusUnprocessableEntity {
		t.Fatalf("clearing the primary flag = %d %s, want 422", r.Code, r.Raw)
	}

	for _, d := range []string{third, strings.ToUpper(second)} {
		if r := l.p("DELETE", schemaName+"/domains/"+d+"/", nil); r.Code != http.StatusNoContent {
			t.Fatalf("remove %s = %d %s", d, r.Code, r.Raw)
		}
	}
	if l.resolves(t, second) || l.resolves(t, third) {
		t.Fatalf("a removed domain still routes to the tenant")
	}
	if !l.resolves(t, host) {
		t.Fatalf("the remaining domain %s stopped resolving", host)
	}
	for _, d := range []string{second, old.Host, "not_a_domain"} {
		if r := l.p("DELETE", schemaName+"/domains/"+d+"/", nil); r.Code != http.StatusNotFound {
			t.Errorf("removing %q = %d %s, want 404", d, r.Code, r.Raw)
		}
	}
	if !l.resolves(t, old.Host) {
		t.Fatal("the other tenant lost its domain")
	}
}

// deletesTheTenant deletes the tenant, whose host stops resolving.
func (l *tenantLifecycle) deletesTheTenant(t *testing.T) {
	old, schemaName, host := l.old, l.schemaName, l.host
	if r := l.p("DELETE", schemaName+"/", nil); r.Code != http.StatusNoContent {
		t.Fatalf("delete = %d %s", r.Code, r.Raw)
	}
	if l.resolves(t, host) {
		t.Fatalf("%s still resolves after the delete", host)
	}
	if r := l.p("GET", schemaName+"/", nil); r.Code != http.StatusNotFound {
		t.Fatalf("get after delete = %d, want 404", r.Code)
	}
	if r := l.p("DELETE", schemaName+"/", nil); r.Code != http.StatusNotFound {
		t.Fatalf("second delete = %d, want 404", r.Code)
	}
	if !l.resolves(t, old.Host) {
		t.Fatal("the other tenant stopped resolving")
	}
}

// primaries returns the primary domains of a tenant answer, comma-separated.
func primaries(r response) string {
	var out []string
	doms, _ := r.JSON["domains"].([]any)
	for _, d := range doms {
		if m := d.(map[string]any); m["is_primary"] == true {
			out = append(out, m["domain"].(string))
		}
	}
	return strings.Join(out, ",")
}

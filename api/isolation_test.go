package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tenantworks/saas/pkg/auth"
)

func TestTenantsSeeOnlyTheirOwn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.tenant("alpha"), e.tenant("beta") // same user emails in both
	base := "/api/catalog/products/"
	ids := map[string]string{}
	for _, f := range []fixture{a, b} {
		r := e.do(req{method: "POST", host: f.Host, path: base, token: f.StaffToken, body: newProduct("SAME-SKU")})
		if r.Code != http.StatusCreated {
			t.Fatalf("create in %s = %d %s", f.Schema, r.Code, r.Raw)
		}
		ids[f.Schema] = r.JSON["id"].(string)
	}
	for _, f := range []fixture{a, b} {
		r := e.do(req{method: "GET", host: f.Host, path: base, token: f.UserToken})
		res, _ := r.JSON["results"].([]any)
		if r.Code != http.StatusOK || len(res) != 1 || res[0].(map[string]any)["id"] != ids[f.Schema] {
			t.Fatalf("%s lists %s, want only its own product", f.Schema, r.Raw)
		}
	}
	bID := ids[b.Schema]
	cases := []struct {
		name string
		r    req
		code int
	}{
		{"A's token on B's host", req{method: "GET", host: b.Host, path: base, token: a.UserToken}, http.StatusUnauthorized},
		{"A's staff token writing on B's host", req{method: "POST", host: b.Host, path: base, token: a.StaffToken, body: newProduct("X")}, http.StatusUnauthorized},
		{"retrieving B's product from A", req{method: "GET", host: a.Host, path: base + bID + "/", token: a.UserToken}, http.StatusNotFound},
		{"updating B's product from A", req{method: "PATCH", host: a.Host, path: base + bID + "/", token: a.StaffToken, body: map[string]any{"name": "pwned"}}, http.StatusNotFound},
		{"replacing B's product from A", req{method: "PUT", host: a.Host, path: base + bID + "/", token: a.StaffToken, body: newProduct("Y")}, http.StatusNotFound},
		{"deleting B's product from A", req{method: "DELETE", host: a.Host, path: base + bID + "/", token: a.StaffToken}, http.StatusNotFound},
	}
	for _, c := range cases {
		t.Run(c.name+" is refused", func(t *testing.T) {
			if r := e.do(c.r); r.Code != c.code || r.errorCode() == "" {
				t.Fatalf("= %d %s, want %d with a JSON error", r.Code, r.Raw, c.code)
			}
		})
	}
	if n := e.count(b.Schema, `SELECT count(*) FROM products WHERE name = 'Widget SAME-SKU' AND version = 1`); n != 1 {
		t.Fatal("B's product was changed from A")
	}
	if n := e.count(b.Schema, `SELECT count(*) FROM outbox`); n != 1 {
		t.Fatalf("B's outbox has %d rows, want 1", n)
	}
}

func TestHostRouting(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.tenant("route")
	cases := []struct {
		name, host, path string
		code             int
	}{
		{"a tenant route on the public domain", publicDomain, "/api/catalog/products/", http.StatusNotFound},
		{"a tenant route on an unknown host", "nobody.example.test", "/api/catalog/products/", http.StatusNotFound},
		{"health on a tenant domain", a.Host, "/health/", http.StatusNotFound},
		{"metrics on a tenant domain", a.Host, "/metrics", http.StatusNotFound},
		{"the tenant host with a port", a.Host + ":8080", "/api/catalog/products/", http.StatusOK},
		{"the tenant host in upper case with a trailing dot", upper(a.Host) + ".", "/api/catalog/products/", http.StatusOK},
		{"health on the public domain with a port", publicDomain + ":443", "/health/", http.StatusOK},
		{"metrics on the public domain (they have a port of their own)", publicDomain, "/metrics", http.StatusNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(req{method: "GET", host: c.host, path: c.path, token: a.UserToken})
			if r.Code != c.code {
				t.Fatalf("= %d %s, want %d", r.Code, r.Raw, c.code)
			}
			if c.code == http.StatusNotFound && r.errorCode() != "not_found" {
				t.Fatalf("404 body = %s, want a JSON error", r.Raw)
			}
		})
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

func TestTokensAreChecked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.tenant("tok")
	list := func(token string) response {
		return e.do(req{method: "GET", host: a.Host, path: "/api/catalog/products/", token: token})
	}
	sign := func(method jwt.SigningMethod, key any, c auth.Claims) string {
		s, err := jwt.NewWithClaims(method, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	claims := func(exp time.Time) auth.Claims {
		return auth.Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "saas", Subject: a.UserID,
			Audience: jwt.ClaimStrings{a.Schema}, ExpiresAt: jwt.NewNumericDate(exp)}, Tenant: a.Schema}
	}
	good := claims(time.Now().Add(time.Hour))
	if r := list(sign(jwt.SigningMethodHS256, []byte(testSecret), good)); r.Code != http.StatusOK {
		t.Fatalf("a well-formed token = %d %s", r.Code, r.Raw)
	}
	noAudience := good
	noAudience.Audience = nil
	otherTenant := good
	otherTenant.Tenant, otherTenant.Audience = "other_tenant", jwt.ClaimStrings{"other_tenant"}
	unknownUser := good
	unknownUser.Subject = "00000000-0000-0000-0000-000000000000"
	badSubject := good
	badSubject.Subject = "not-a-uuid"
	cases := map[string]string{
		"no token":                        "",
		"garbage":                         "not.a.token",
		"expired":                         sign(jwt.SigningMethodHS256, []byte(testSecret), claims(time.Now().Add(-time.Minute))),
		"signed with another secret":      sign(jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), good),
		"alg none":                        sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good),
		"HS512 with the right secret":     sign(jwt.SigningMethodHS512, []byte(testSecret), good),
		"another tenant's claims":         sign(jwt.SigningMethodHS256, []byte(testSecret), otherTenant),
		"no audience":                     sign(jwt.SigningMethodHS256, []byte(testSecret), noAudience),
		"a user that does not exist":      sign(jwt.SigningMethodHS256, []byte(testSecret), unknownUser),
		"a subject that is not a user id": sign(jwt.SigningMethodHS256, []byte(testSecret), badSubject),
		"a platform token on a tenant":    func() string { s, _, _ := e.tokens.Issue(auth.PlatformAudience, a.StaffID, true); return s }(),
	}
	for name, tok := range cases {
		t.Run(name+" is 401", func(t *testing.T) {
			if r := list(tok); r.Code != http.StatusUnauthorized || r.errorCode() != "unauthorized" {
				t.Fatalf("= %d %s, want 401", r.Code, r.Raw)
			}
		})
	}
	t.Run("a plain user may read but not write (403)", func(t *testing.T) {
		r := e.do(req{method: "POST", host: a.Host, path: "/api/catalog/products/", token: a.UserToken, body: newProduct("U-1")})
		if r.Code != http.StatusForbidden {
			t.Fatalf("= %d %s, want 403", r.Code, r.Raw)
		}
	})
	t.Run("a deactivated user's token is 401 at once", func(t *testing.T) {
		tok, _, _ := e.tokens.Issue(a.Schema, a.UserID, false)
		if r := list(tok); r.Code != http.StatusOK {
			t.Fatalf("before = %d", r.Code)
		}
		if _, err := e.db.DB.Pool.Exec(t.Context(), `UPDATE "`+a.Schema+`".users SET is_active = false WHERE id = $1`, a.UserID); err != nil {
			t.Fatal(err)
		}
		// What the admin API does after committing a deactivation.
		if err := cacheUsers(e).Store(t.Context(), a.Schema, a.UserID, userAuth(false, false)); err != nil {
			t.Fatal(err)
		}
		if r := list(tok); r.Code != http.StatusUnauthorized {
			t.Fatalf("after = %d, want 401", r.Code)
		}
	})
}

func TestSignIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.tenant("login"), e.tenant("other")
	sign := func(f fixture, email, password string) response {
		return e.do(req{method: "POST", host: f.Host, path: "/api/auth/token", body: map[string]string{"email": email, "password": password}})
	}
	r := sign(a, a.StaffEmail, testPassword)
	if r.Code != http.StatusOK || r.JSON["token"] == nil || r.JSON["expires_at"] == nil {
		t.Fatalf("sign in = %d %s", r.Code, r.Raw)
	}
	tok := r.JSON["token"].(string)
	if _, err := time.Parse(time.RFC3339, r.JSON["expires_at"].(string)); err != nil {
		t.Fatalf("expires_at %v is not RFC 3339", r.JSON["expires_at"])
	}
	if r := e.do(req{method: "POST", host: a.Host, path: "/api/catalog/products/", token: tok, body: newProduct("S-1")}); r.Code != http.StatusCreated {
		t.Fatalf("the token's user cannot write: %d %s", r.Code, r.Raw)
	}
	if r := e.do(req{method: "GET", host: b.Host, path: "/api/catalog/products/", token: tok}); r.Code != http.StatusUnauthorized {
		t.Fatalf("A's sign-in token on B = %d, want 401", r.Code)
	}
	for name, c := range map[string]struct {
		email, password string
		code            int
	}{
		"a wrong password":     {a.StaffEmail, "wrong-password", http.StatusUnauthorized},
		"an unknown email":     {"nobody@login.test", testPassword, http.StatusUnauthorized},
		"B's user on A's host": {"staff@other.test", testPassword, http.StatusUnauthorized},
		"a malformed email":    {"not an email", testPassword, http.StatusUnprocessableEntity},
		"an empty password":    {a.StaffEmail, "", http.StatusUnprocessableEntity},
	} {
		t.Run(name, func(t *testing.T) {
			if r := sign(a, c.email, c.password); r.Code != c.code {
				t.Fatalf("= %d %s, want %d", r.Code, r.Raw, c.code)
			}
		})
	}
	if r := e.do(req{method: "POST", host: a.Host, path: "/api/auth/token", body: "{"}); r.Code != http.StatusBadRequest {
		t.Fatalf("malformed JSON = %d, want 400", r.Code)
	}
}

func TestSignInIsRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(w *wiring) { w.LoginLimit = 3; w.LoginWindow = time.Minute })
	a, b := e.tenant("limit"), e.tenant("limitb")
	for i := range 3 {
		if r := e.do(req{method: "POST", host: a.Host, path: "/api/auth/token", body: map[string]string{"email": a.StaffEmail, "password": "wrong-password"}}); r.Code != http.StatusUnauthorized {
			t.Fatalf("attempt %d = %d, want 401", i+1, r.Code)
		}
	}
	r := e.do(req{method: "POST", host: a.Host, path: "/api/auth/token", body: map[string]string{"email": a.StaffEmail, "password": testPassword}})
	if r.Code != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" || r.errorCode() != "rate_limited" {
		t.Fatalf("4th attempt = %d %s (Retry-After %q), want 429 with Retry-After", r.Code, r.Raw, r.Header.Get("Retry-After"))
	}
	// Another tenant's bucket is its own.
	if r := e.do(req{method: "POST", host: b.Host, path: "/api/auth/token", body: map[string]string{"email": b.StaffEmail, "password": testPassword}}); r.Code != http.StatusOK {
		t.Fatalf("other tenant = %d, want 200", r.Code)
	}
}

// TestAdminActionsStayInTheirTenant: staff of A name B's users and
// products by id; nothing of B changes, and a tenant's tokens never reach
// the platform's superuser routes.
func TestAdminActionsStayInTheirTenant(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t)
	a, b := e.tenant("isoa"), e.tenant("isob")
	r := e.do(req{method: "POST", host: b.Host, path: "/api/catalog/products/", token: b.StaffToken, body: newProduct("ISO-1")})
	if r.Code != http.StatusCreated {
		t.Fatalf("create in B = %d %s", r.Code, r.Raw)
	}
	bProduct := r.JSON["id"].(string)
	suID, _ := e.superuser("root@iso.test")
	users := "/api/admin/users/"
	cases := []struct {
		name string
		r    req
		code int
		// notFound, for a bulk answer, is the id it must report.
		notFound string
	}{
		{"deleting B's user from A", req{method: "DELETE", host: a.Host, path: users + b.UserID + "/", token: a.StaffToken}, http.StatusNotFound, ""},
		{"changing B's user's email from A", req{method: "PATCH", host: a.Host, path: users + b.UserID + "/", token: a.StaffToken, body: map[string]any{"email": "x@isoa.test"}}, http.StatusNotFound, ""},
		{"deactivating B's user from A", req{method: "PATCH", host: a.Host, path: users + b.UserID + "/", token: a.StaffToken, body: map[string]any{"is_active": false}}, http.StatusNotFound, ""},
		{"deactivating B's user in bulk from A", req{method: "POST", host: a.Host, path: users + "bulk", token: a.StaffToken, body: map[string]any{"ids": []string{b.UserID}, "is_active": false}}, http.StatusOK, b.UserID},
		{"deleting B's product in bulk from A", req{method: "POST", host: a.Host, path: "/api/admin/products/bulk-delete", token: a.StaffToken, body: map[string]any{"ids": []string{bProduct}}}, http.StatusOK, bProduct},
		{"A's staff token on B's bulk route", req{method: "POST", host: b.Host, path: users + "bulk", token: a.StaffToken, body: map[string]any{"ids": []string{b.UserID}, "is_active": false}}, http.StatusUnauthorized, ""},
		{"a tenant token listing superusers", req{method: "GET", host: publicDomain, path: "/api/platform/superusers/", token: a.StaffToken}, http.StatusUnauthorized, ""},
		{"a tenant token deactivating a superuser", req{method: "PATCH", host: publicDomain, path: "/api/platform/superusers/" + suID + "/", token: a.StaffToken, body: map[string]any{"is_active": false}}, http.StatusUnauthorized, ""},
		{"a tenant token resetting a superuser's password", req{method: "POST", host: publicDomain, path: "/api/platform/superusers/" + suID + "/password/", token: a.StaffToken, body: map[string]any{"password": "pwned-password"}}, http.StatusUnauthorized, ""},
		{"superuser routes on a tenant domain", req{method: "GET", host: a.Host, path: "/api/platform/superusers/", token: a.StaffToken}, http.StatusNotFound, ""},
	}
	for _, c := range cases {
		t.Run(c.name+" changes nothing", func(t *testing.T) {
			r := e.do(c.r)
			if r.Code != c.code {
				t.Fatalf("= %d %s, want %d", r.Code, r.Raw, c.code)
			}
			if c.notFound != "" {
				nf, _ := r.JSON["not_found"].([]any)
				if len(nf) != 1 || nf[0] != c.notFound {
					t.Fatalf("= %s, want %s reported not found", r.Raw, c.notFound)
				}
			}
		})
	}
	if n := e.count(b.Schema, `SELECT count(*) FROM users WHERE is_active AND email = $1`, b.UserEmail); n != 1 {
		t.Fatal("B's user was changed from A")
	}
	if n := e.count(b.Schema, `SELECT count(*) FROM products`); n != 1 {
		t.Fatal("B's product was deleted from A")
	}
	// B's own product create is the one entry B's trail may hold.
	if n := e.count(b.Schema, `SELECT count(*) FROM audit_log WHERE action <> 'product.create'`); n != 0 {
		t.Fatalf("B's audit trail has %d entries besides its own create, want none", n)
	}
	if n := e.countPublic(`SELECT count(*) FROM public.superusers WHERE is_active AND token_generation = 0`); n != 1 {
		t.Fatal("the superuser was changed by a tenant token")
	}
}

func TestImportAndExportStayInTheirTenant(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.tenant("impa"), e.tenant("impb")
	for _, f := range []fixture{a, b} {
		r := e.do(req{method: "POST", host: f.Host, path: importPath, token: f.StaffToken, header: csvBody,
			body: csvHeader + "SAME-SKU,Made in " + f.Schema + ",,1,EUR,1\nONLY-" + f.Schema + ",x,,1,EUR,1\n"})
		if r.Code != http.StatusOK || r.JSON["created"] != float64(2) {
			t.Fatalf("import into %s = %d %s, want 2 created in its own tenant", f.Schema, r.Code, r.Raw)
		}
	}
	t.Run("A's staff token importing on B's host is refused", func(t *testing.T) {
		r := e.do(req{method: "POST", host: b.Host, path: importPath, token: a.StaffToken, header: csvBody,
			body: csvHeader + "SAME-SKU,pwned,,1,EUR,1\n"})
		if r.Code != http.StatusUnauthorized {
			t.Fatalf("= %d %s, want 401", r.Code, r.Raw)
		}
	})
	t.Run("A's staff token exporting on B's host is refused", func(t *testing.T) {
		if r := e.do(req{method: "GET", host: b.Host, path: exportPath, token: a.StaffToken}); r.Code != http.StatusUnauthorized {
			t.Fatalf("= %d %s, want 401", r.Code, r.Raw)
		}
	})
	for _, f := range []fixture{a, b} {
		r := e.do(req{method: "GET", host: f.Host, path: exportPath, token: f.StaffToken})
		want := csvHeader + "ONLY-" + f.Schema + ",x,,1.00,EUR,1\nSAME-SKU,Made in " + f.Schema + ",,1.00,EUR,1\n"
		if r.Code != http.StatusOK || string(r.Raw) != want {
			t.Fatalf("%s exports %d %s, want only its own products", f.Schema, r.Code, r.Raw)
		}
		if n := e.count(f.Schema, `SELECT count(*) FROM outbox`); n != 2 {
			t.Fatalf("%s's outbox has %d rows, want its own 2", f.Schema, n)
		}
	}
}

func TestAuditTrailsStayWithTheirTenantAndThePlatform(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t)
	a, b := e.tenant("audisa"), e.tenant("audisb")
	for i := range 3 {
		if r := e.do(req{method: "POST", host: a.Host, path: productsPath, token: a.StaffToken, body: newProduct(fmt.Sprint("ISO-", i))}); r.Code != http.StatusCreated {
			t.Fatalf("create = %d %s", r.Code, r.Raw)
		}
	}
	_, su := e.superuser("root@audis.test")
	page := e.do(req{method: "GET", host: a.Host, path: "/api/admin/audit/?limit=1", token: a.StaffToken})
	next, _ := page.JSON["next"].(string)
	if page.Code != http.StatusOK || next == "" {
		t.Fatalf("A's first page = %d %s, want a next page", page.Code, page.Raw)
	}
	u, _ := url.Parse(next)
	cases := []struct {
		name string
		r    req
		code int
	}{
		{"B's staff list B's trail, without A's entries", req{method: "GET", host: b.Host, path: "/api/admin/audit/", token: b.StaffToken}, http.StatusOK},
		{"A's staff token on B's host", req{method: "GET", host: b.Host, path: "/api/admin/audit/", token: a.StaffToken}, http.StatusUnauthorized},
		{"A's cursor on B's host", req{method: "GET", host: b.Host, path: u.RequestURI(), token: b.StaffToken}, http.StatusUnprocessableEntity},
		{"a plain user of A", req{method: "GET", host: a.Host, path: "/api/admin/audit/", token: a.UserToken}, http.StatusForbidden},
		{"a tenant token on the platform trail", req{method: "GET", host: publicDomain, path: "/api/platform/audit/", token: a.StaffToken}, http.StatusUnauthorized},
		{"the platform trail on a tenant host", req{method: "GET", host: a.Host, path: "/api/platform/audit/", token: su}, http.StatusNotFound},
		{"a superuser token on a tenant's trail", req{method: "GET", host: a.Host, path: "/api/admin/audit/", token: su}, http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(c.r)
			if r.Code != c.code {
				t.Fatalf("= %d %s, want %d", r.Code, r.Raw, c.code)
			}
			if c.code == http.StatusOK {
				if res, _ := r.JSON["results"].([]any); len(res) != 0 {
					t.Fatalf("B sees %v, want nothing of A's", res)
				}
			}
		})
	}
}

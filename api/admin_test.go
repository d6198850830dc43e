package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func signIn(e *env, host, email, password string) response {
	e.t.Helper()
	return e.do(req{method: "POST", host: host, path: "/api/auth/token", body: map[string]string{"email": email, "password": password}})
}

func TestAdminIsStaffOnly(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t)
	a := e.tenant("adm403")
	routes := []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/admin/users/", nil},
		{"POST", "/api/admin/users/", map[string]any{"email": "x@adm.test", "password": testPassword}},
		{"GET", "/api/admin/users/" + a.UserID + "/", nil},
		{"PATCH", "/api/admin/users/" + a.StaffID + "/", map[string]any{"is_active": false}},
		{"POST", "/api/admin/users/" + a.StaffID + "/password/", map[string]any{"password": "a-new-password"}},
		{"GET", "/api/admin/products/", nil},
		{"GET", "/api/admin/notifications/", nil},
	}
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path+" is 403 for a plain user and 401 without a token", func(t *testing.T) {
			r := e.do(req{method: rt.method, host: a.Host, path: rt.path, token: a.UserToken, body: rt.body})
			if r.Code != http.StatusForbidden || r.errorCode() != "forbidden" {
				t.Errorf("as a user = %d %s, want 403", r.Code, r.Raw)
			}
			if r := e.do(req{method: rt.method, host: a.Host, path: rt.path, body: rt.body}); r.Code != http.StatusUnauthorized {
				t.Errorf("without a token = %d %s, want 401", r.Code, r.Raw)
			}
		})
	}
	if n := e.count(a.Schema, `SELECT count(*) FROM users WHERE is_active AND is_staff`); n != 1 {
		t.Fatalf("active staff users = %d after refused requests, want 1", n)
	}
}

// TestAdminUsers has a tenant's staff create a user, then manage users
// step by step through the admin API.
func TestAdminUsers(t *testing.T) {
	t.Parallel()
	u := newAdminUsers(t)
	t.Run("the created user can sign in", u.signsInAsTheCreatedUser)
	t.Run("a bad create is a 400, 409 or a 422 naming each field", u.refusesBadCreates)
	t.Run("the list walks every user once, by email", u.walksTheList)
	t.Run("a user is retrieved by id; an unknown id is 404", u.retrievesByID)
	t.Run("a deactivated user's token is refused on the next request, and works again once reactivated", u.deactivatesAndReactivates)
	t.Run("revoking staff makes product writes 403 on the next request with the old token", u.revokesStaff)
	t.Run("a password reset retires the old password", u.resetsAPassword)
	t.Run("staff cannot deactivate or un-staff themselves", u.refusesSelfLockout)
}

// adminUsers is what the steps of TestAdminUsers share: the server, the
// tenant, the users route and the id of the user the staff created.
type adminUsers struct {
	e           *env
	a           fixture
	base, newID string
}

// newAdminUsers starts the server and has the tenant's staff create a
// user, checking the answer.
func newAdminUsers(t *testing.T) *adminUsers {
	t.Helper()
	e := newAdminEnv(t)
	a := e.tenant("admusr")
	base := "/api/admin/users/"

	r := e.do(req{method: "POST", host: a.Host, path: base, token: a.StaffToken,
		body: map[string]any{"email": " New.Person@ADMUSR.test ", "password": "first-password"}})
	if r.Code != http.StatusCreated {
		t.Fatalf("create = %d %s", r.Code, r.Raw)
	}
	newID := r.JSON["id"].(string)
	if r.JSON["email"] != "new.person@admusr.test" || r.JSON["is_staff"] != false || r.JSON["is_active"] != true ||
		r.Header.Get("Location") != base+newID+"/" {
		t.Fatalf("created = %s (Location %q)", r.Raw, r.Header.Get("Location"))
	}
	if strings.Contains(string(r.Raw), "password") || strings.Contains(string(r.Raw), "$2") {
		t.Fatalf("the answer shows the password or its hash: %s", r.Raw)
	}
	return &adminUsers{e: e, a: a, base: base, newID: newID}
}

// signsInAsTheCreatedUser signs in with the password the user was created with.
func (u *adminUsers) signsInAsTheCreatedUser(t *testing.T) {
	e, a := u.e, u.a
	if r := signIn(e, a.Host, "new.person@admusr.test", "first-password"); r.Code != http.StatusOK {
		t.Fatalf("sign-in = %d %s", r.Code, r.Raw)
	}
}

// refusesBadCreates sends creates that fail, and checks they add no user.
func (u *adminUsers) refusesBadCreates(t *testing.T) {
	e, a, base := u.e, u.a, u.base
	cases := []struct {
		name   string
		body   any
		code   int
		fields []string
	}{
		{"bad JSON", `{"email":`, http.StatusBadRequest, nil},
		{"bad email", map[string]any{"email": "not-an-email", "password": testPassword}, http.StatusUnprocessableEntity, []string{"email"}},
		{"short password", map[string]any{"email": "ok@admusr.test", "password": "short"}, http.StatusUnprocessableEntity, []string{"password"}},
		{"nothing", map[string]any{}, http.StatusUnprocessableEntity, []string{"email", "password"}},
		{"wrong type", map[string]any{"email": "ok@admusr.test", "password": testPassword, "is_staff": "yes"}, http.StatusUnprocessableEntity, []string{"is_staff"}},
		{"unknown field", map[string]any{"email": "ok@admusr.test", "password": testPassword, "is_superuser": true}, http.StatusUnprocessableEntity, []string{"is_superuser"}},
		{"taken email", map[string]any{"email": "USER@admusr.test", "password": testPassword}, http.StatusConflict, []string{"email"}},
	}
	for _, c := range cases {
		r := e.do(req{method: "POST", host: a.Host, path: base, token: a.StaffToken, body: c.body})
		if r.Code != c.code {
			t.Errorf("%s: %d %s, want %d", c.name, r.Code, r.Raw, c.code)
		}
		for _, f := range c.fields {
			if r.errorDetails()[f] == nil {
				t.Errorf("%s: details %v do not name %s", c.name, r.errorDetails(), f)
			}
		}
	}
	if n := e.count(a.Schema, `SELECT count(*) FROM users`); n != 3 {
		t.Fatalf("users = %d, want 3", n)
	}
}

// walksTheList reads the list a user a page.
func (u *adminUsers) walksTheList(t *testing.T) {
	e, a, base := u.e, u.a, u.base
	items := e.walk(a.Host, base+"?limit=1", a.StaffToken, 1)
	var emails []string
	for _, it := range items {
		emails = append(emails, it["email"].(string))
		if _, ok := it["password_hash"]; ok {
			t.Fatalf("a listed user shows its hash: %v", it)
		}
	}
	want := []string{"new.person@admusr.test", "staff@admusr.test", "user@admusr.test"}
	if !slices.Equal(emails, want) {
		t.Fatalf("emails = %v, want %v", emails, want)
	}
	for q, field := range map[string]string{"?limit=0": "limit", "?cursor=%25": "cursor"} {
		if r := e.do(req{method: "GET", host: a.Host, path: base + q, token: a.StaffToken}); r.Code != http.StatusUnprocessableEntity || r.errorDetails()[field] == nil {
			t.Errorf("GET %s = %d %s, want 422 naming %s", q, r.Code, r.Raw, field)
		}
	}
}

// retrievesByID gets a user, and every route of an unknown id.
func (u *adminUsers) retrievesByID(t *testing.T) {
	e, a, base := u.e, u.a, u.base
	r := e.do(req{method: "GET", host: a.Host, path: base + a.UserID + "/", token: a.StaffToken})
	if r.Code != http.StatusOK || r.JSON["email"] != a.UserEmail {
		t.Fatalf("get = %d %s", r.Code, r.Raw)
	}
	for _, id := range []string{"00000000-0000-0000-0000-000000000000", "nope"} {
		for _, m := range []struct {
			method, suffix string
			body           any
		}{{"GET", "", nil}, {"PATCH", "", map[string]any{"is_active": false}}, {"POST", "password/", map[string]any{"password": testPassword}}} {
			if r := e.do(req{method: m.method, host: a.Host, path: base + id + "/" + m.suffix, token: a.StaffToken, body: m.body}); r.Code != http.StatusNotFound {
				t.Errorf("%s %s = %d %s, want 404", m.method, id, r.Code, r.Raw)
			}
		}
	}
}

// deactivatesAndReactivates deactivates the plain user and brings them back.
func (u *adminUsers) deactivatesAndReactivates(t *testing.T) {
	e, a, base := u.e, u.a, u.base
	list := "/api/catalog/products/"
	if r := e.do(req{method: "GET", host: a.Host, path: list, token: a.UserToken}); r.Code != http.StatusOK {
		t.Fatalf("before: %d %s", r.Code, r.Raw) // the user's flags are now cached
	}
	r := e.do(req{method: "PATCH", host: a.Host, path: base + a.UserID + "/", token: a.StaffToken, body: map[string]any{"is_active": false}})
	if r.Code != http.StatusOK || r.JSON["is_active"] != false {
		t.Fatalf("deactivate = %d %s", r.Code, r.Raw)
	}
	if r := e.do(req{method: "GET", host: a.Host, path: list, token: a.UserToken}); r.Code != http.StatusUnauthorized {
		t.Fatalf("after deactivation: %d %s, want 401", r.Code, r.Raw)
	}
	if r := signIn(e, a.Host, a.UserEmail, testPassword); r.Code != http.StatusUnauthorized {
		t.Fatalf("sign-in of a deactivated user = %d, want 401", r.Code)
	}
	r = e.do(req{method: "PATCH", host: a.Host, path: base + a.UserID + "/", token: a.StaffToken, body: map[string]any{"is_active": true}})
	if r.Code != http.StatusOK || r.JSON["is_active"] != true {
		t.Fatalf("reactivate = %d %s", r.Code, r.Raw)
	}
	if r := e.do(req{method: "GET", host: a.Host, path: list, token: a.UserToken}); r.Code != http.StatusOK {
		t.Fatalf("after reactivation: %d %s, want 200", r.Code, r.Raw)
	}
}

// revokesStaff makes a second staff user and takes their staff rights away.
func (u *adminUsers) revokesStaff(t *testing.T) {
	e, a, base := u.e, u.a, u.base
	r := e.do(req{method: "POST", host: a.Host, path: base, token: a.StaffToken,
		body: map[string]any{"email": "second.staff@admusr.test", "password": testPassword, "is_staff": true}})
	if r.Code != http.StatusCreated || r.JSON["is_staff"] != true {
		t.Fatalf("create staff = %d %s", r.Code, r.Raw)
	}
	id := r.JSON["id"].(string)
	tok := signIn(e, a.Host, "second.staff@admusr.test", testPassword).JSON["token"].(string)
	if r := e.do(req{method: "POST", host: a.Host, path: "/api/catalog/products/", token: tok, body: newProduct("REV-1")}); r.Code != http.StatusCreated {
		t.Fatalf("write as staff = %d %s", r.Code, r.Raw)
	}
	r = e.do(req{method: "PATCH", host: a.Host, path: base + id + "/", token: a.StaffToken, body: map[string]any{"is_staff": false}})
	if r.Code != http.StatusOK || r.JSON["is_staff"] != false || r.JSON["is_active"] != true {
		t.Fatalf("revoke = %d %s", r.Code, r.Raw)
	}
	if r := e.do(req{method: "POST", host: a.Host, path: "/api/catalog/products/", token: tok, body: newProduct("REV-2")}); r.Code != http.StatusForbidden {
		t.Fatalf("write after revocation = %d %s, want 403", r.Code, r.Raw)
	}
	if r := e.do(req{method: "GET", host: a.Host, path: "/api/admin/users/", token: tok}); r.Code != http.StatusForbidden {
		t.Fatalf("admin after revocation = %d %s, want 403", r.Code, r.Raw)
	}
	if r := e.do(req{method: "GET", host: a.Host, path: "/api/catalog/products/", token: tok}); r.Code != http.StatusOK {
		t.Fatalf("read after revocation = %d %s, want 200", r.Code, r.Raw)
	}
}

// resetsAPassword gives the created user a new password.
func (u *adminUsers) resetsAPassword(t *testing.T) {
	e, a, base, newID := u.e, u.a, u.base, u.newID
	path := base + newID + "/password/"
	if r := e.do(req{method: "POST", host: a.Host, path: path, token: a.StaffToken, body: map[string]any{"password": "short"}}); r.Code != http.StatusUnprocessableEntity || r.errorDetails()["password"] == nil {
		t.Fatalf("short password = %d %s, want 422 naming password", r.Code, r.Raw)
	}
	if r := e.do(req{method: "POST", host: a.Host, path: path, token: a.StaffToken, body: map[string]any{"password": "second-password"}}); r.Code != http.StatusNoContent {
		t.Fatalf("reset = %d %s", r.Code, r.Raw)
	}
	if r := signIn(e, a.Host, "new.person@admusr.test", "first-password"); r.Code != http.StatusUnauthorized {
		t.Fatalf("old password = %d, want 401", r.Code)
	}
	if r := signIn(e, a.Host, "new.person@admusr.test", "second-password"); r.Code != http.StatusOK {
		t.Fatalf("new password = %d %s, want 200", r.Code, r.Raw)
	}
}

// refusesSelfLockout has the staff user try to lock themselves out.
func (u *adminUsers) refusesSelfLockout(t *testing.T) {
	e, a, base := u.e, u.a, u.base
	for field, msg := range map[string]string{"is_active": "deactivate", "is_staff": "staff"} {
		r := e.do(req{method: "PATCH", host: a.Host, path: base + a.StaffID + "/", token: a.StaffToken, body: map[string]any{field: false}})
		if r.Code != http.StatusConflict || r.errorDetails()[field] == nil || !strings.Contains(r.JSON["error"].(map[string]any)["message"].(string), msg) {
			t.Errorf("PATCH {%s: false} = %d %s, want a 409 that says why", field, r.Code, r.Raw)
		}
		// Ids have one spelling: the upper-case one names nobody.
		if r := e.do(req{method: "PATCH", host: a.Host, path: base + strings.ToUpper(a.StaffID) + "/", token: a.StaffToken, body: map[string]any{field: false}}); r.Code != http.StatusNotFound {
			t.Errorf("PATCH of the upper-case id {%s: false} = %d %s, want 404", field, r.Code, r.Raw)
		}
	}
	if n := e.count(a.Schema, `SELECT count(*) FROM users WHERE id = $1 AND is_active AND is_staff`, a.StaffID); n != 1 {
		t.Fatal("the staff user lost a flag")
	}
	r := e.do(req{method: "PATCH", host: a.Host, path: base + a.StaffID + "/", token: a.StaffToken, body: map[string]any{"is_active": true, "is_staff": true}})
	if r.Code != http.StatusOK {
		t.Fatalf("a harmless self PATCH = %d %s, want 200", r.Code, r.Raw)
	}
	if r := e.do(req{method: "GET", host: a.Host, path: "/api/admin/users/", token: a.StaffToken}); r.Code != http.StatusOK {
		t.Fatalf("the staff user is locked out: %d", r.Code)
	}
}

func TestAdminProductsAndNotifications(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t)
	a := e.tenant("admlst")

	t.Run("products come straight from the database, paginated like the catalog", func(t *testing.T) {
		for i := range 3 {
			if r := e.do(req{method: "POST", host: a.Host, path: "/api/catalog/products/", token: a.StaffToken, body: newProduct(fmt.Sprintf("ADM-%d", i))}); r.Code != http.StatusCreated {
				t.Fatalf("create = %d %s", r.Code, r.Raw)
			}
		}
		before := e.reads.lists.Load()
		items := e.walk(a.Host, "/api/admin/products/?limit=2&ordering=sku", a.StaffToken, 2)
		var skus []string
		for _, it := range items {
			skus = append(skus, it["sku"].(string))
		}
		if !slices.Equal(skus, []string{"ADM-0", "ADM-1", "ADM-2"}) {
			t.Fatalf("skus = %v", skus)
		}
		if items[0]["price"] != "9.50" || items[0]["version"] != float64(1) || items[0]["currency"] != "EUR" {
			t.Fatalf("item = %v, want the catalog's product shape", items[0])
		}
		if n := e.reads.lists.Load() - before; n != 0 {
			t.Fatalf("%d admin list reads went through the product cache's source; want the database directly", n)
		}
		for q, field := range map[string]string{"?limit=500": "limit", "?ordering=bogus": "ordering", "?cursor=zz": "cursor"} {
			if r := e.do(req{method: "GET", host: a.Host, path: "/api/admin/products/" + q, token: a.StaffToken}); r.Code != http.StatusUnprocessableEntity || r.errorDetails()[field] == nil {
				t.Errorf("GET %s = %d %s, want 422 naming %s", q, r.Code, r.Raw, field)
			}
		}
	})

	t.Run("notifications of every user, newest first, with their user", func(t *testing.T) {
		var want []int64
		owner := map[int64]string{}
		for i := range 5 {
			for _, u := range []string{a.UserID, a.StaffID} {
				id := e.notify(a.Schema, u, fmt.Sprintf("n%d", i))
				want = append(want, id)
				owner[id] = u
			}
		}
		slices.Reverse(want)
		items := e.walk(a.Host, "/api/admin/notifications/?limit=3", a.StaffToken, 3)
		if got := ids(items); !slices.Equal(got, want) {
			t.Fatalf("ids = %v, want %v", got, want)
		}
		for _, it := range items {
			if it["user_id"] != owner[int64(it["id"].(float64))] {
				t.Fatalf("item %v: user_id is not its user's %s", it, owner[int64(it["id"].(float64))])
			}
		}
		mineOnly := e.walk(a.Host, "/api/admin/notifications/?limit=2&user_id="+a.UserID, a.StaffToken, 2)
		if len(mineOnly) != 5 {
			t.Fatalf("filtered by user: %d items, want 5", len(mineOnly))
		}
		if r := e.do(req{method: "GET", host: a.Host, path: "/api/admin/notifications/?user_id=nope", token: a.StaffToken}); r.Code != http.StatusUnprocessableEntity || r.errorDetails()["user_id"] == nil {
			t.Fatalf("bad user_id = %d %s, want 422 naming user_id", r.Code, r.Raw)
		}
	})
}

package api_test

import (
	"net/http"
	"net/url"
	"testing"
)

// entries reads every entry of an audit list, all pages.
func (e *env) entries(host, path, token string) []map[string]any {
	e.t.Helper()
	return e.walk(host, path, token, 2)
}

func TestTheAuditTrailRecordsWhoChangedWhatThroughWhichRequest(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t)
	a := e.tenant("auda")
	staff := e.signIn(a.Host, a.StaffEmail, testPassword) // a token that names its email
	created := e.do(req{method: "POST", host: a.Host, path: productsPath, token: staff, body: newProduct("AUD-1")})
	if created.Code != http.StatusCreated {
		t.Fatalf("create = %d %s", created.Code, created.Raw)
	}
	id := created.JSON["id"].(string)
	one := productsPath + id + "/"
	patched := e.do(req{method: "PATCH", host: a.Host, path: one, token: staff, body: map[string]any{"name": "Renamed"},
		header: map[string]string{"If-Match": `"v1"`, "X-Request-ID": "client-chosen-id"}})
	if patched.Code != http.StatusOK {
		t.Fatalf("patch = %d %s", patched.Code, patched.Raw)
	}
	// Refused changes leave no entry: a stale If-Match, a taken SKU.
	if r := e.do(req{method: "PATCH", host: a.Host, path: one, token: staff, body: map[string]any{"name": "x"}, header: map[string]string{"If-Match": `"v1"`}}); r.Code != http.StatusConflict {
		t.Fatalf("stale patch = %d %s", r.Code, r.Raw)
	}
	if r := e.do(req{method: "POST", host: a.Host, path: productsPath, token: staff, body: newProduct("AUD-1")}); r.Code != http.StatusConflict {
		t.Fatalf("duplicate create = %d %s", r.Code, r.Raw)
	}
	deleted := e.do(req{method: "DELETE", host: a.Host, path: one, token: staff})
	if deleted.Code != http.StatusNoContent {
		t.Fatalf("delete = %d %s", deleted.Code, deleted.Raw)
	}

	got := e.entries(a.Host, "/api/admin/audit/?limit=2&target_type=product&target_id="+id, a.StaffToken)
	want := []struct {
		action, req string
		changed     string
	}{
		{"product.delete", deleted.Header.Get("X-Request-ID"), "sku"},
		{"product.update", "client-chosen-id", "name"},
		{"product.create", created.Header.Get("X-Request-ID"), "sku"},
	}
	if len(got) != len(want) {
		t.Fatalf("audit of the product has %d entries, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		actor, _ := g["actor"].(map[string]any)
		changes, _ := g["changes"].(map[string]any)
		if g["action"] != w.action || g["request_id"] != w.req || w.req == "" {
			t.Errorf("entry %d = %v, want %s from request %q", i, g, w.action, w.req)
		}
		if actor["kind"] != "user" || actor["id"] != a.StaffID || actor["email"] != a.StaffEmail {
			t.Errorf("entry %d actor = %v, want the staff user %s <%s>", i, actor, a.StaffID, a.StaffEmail)
		}
		if _, ok := changes[w.changed]; !ok {
			t.Errorf("entry %d changes = %v, want %s among them", i, changes, w.changed)
		}
	}
	if ch := got[1]["changes"].(map[string]any); len(ch) != 1 || ch["name"].([]any)[0] != "Widget AUD-1" || ch["name"].([]any)[1] != "Renamed" {
		t.Errorf("update changes = %v, want only name: [Widget AUD-1, Renamed]", ch)
	}

	t.Run("filters by actor and action", func(t *testing.T) {
		if got := e.entries(a.Host, "/api/admin/audit/?action=product.update&actor="+a.StaffID, a.StaffToken); len(got) != 1 {
			t.Fatalf("= %v, want the one update", got)
		}
		if got := e.entries(a.Host, "/api/admin/audit/?actor="+a.UserID, a.StaffToken); len(got) != 0 {
			t.Fatalf("= %v, want none: the plain user changed nothing", got)
		}
	})

	t.Run("platform changes name their superuser", func(t *testing.T) {
		suID, su := e.superuser("root@aud.test")
		r := e.do(req{method: "POST", host: publicDomain, path: "/api/platform/tenants/" + a.Schema + "/suspend", token: su})
		if r.Code != http.StatusOK {
			t.Fatalf("suspend = %d %s", r.Code, r.Raw)
		}
		got := e.entries(publicDomain, "/api/platform/audit/?target_type=tenant&action=tenant.suspend&target_id="+url.QueryEscape(a.Schema), su)
		if len(got) != 1 {
			t.Fatalf("platform audit = %v, want the suspension", got)
		}
		actor := got[0]["actor"].(map[string]any)
		if actor["kind"] != "superuser" || actor["id"] != suID || actor["email"] != "root@aud.test" || got[0]["request_id"] != r.Header.Get("X-Request-ID") {
			t.Fatalf("entry = %v, want superuser %s from request %s", got[0], suID, r.Header.Get("X-Request-ID"))
		}
	})
}

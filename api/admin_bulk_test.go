package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"
)

// TestAdminUserLifecycle searches, edits, bulk-changes and deletes users
// through the admin API, checking each change's effect on tokens and its
// audit entry.
func TestAdminUserLifecycle(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t)
	a := e.tenant("lifec")
	const users = "/api/admin/users/"
	create := func(email string, staff bool) string {
		t.Helper()
		r := e.do(req{method: "POST", host: a.Host, path: users, token: a.StaffToken, body: map[string]any{"email": email, "password": testPassword, "is_staff": staff}})
		if r.Code != http.StatusCreated {
			t.Fatalf("create %s = %d %s", email, r.Code, r.Raw)
		}
		return r.JSON["id"].(string)
	}
	ann, bob := create("ann_x@lifec.test", false), create("bob@lifec.test", true)
	signedIn := func(email string) string {
		t.Helper()
		r := signIn(e, a.Host, email, testPassword)
		if r.Code != http.StatusOK {
			t.Fatalf("sign-in of %s = %d %s", email, r.Code, r.Raw)
		}
		return r.JSON["token"].(string)
	}
	annToken := signedIn("ann_x@lifec.test")

	t.Run("the list searches by email and filters by flags, and its next link keeps them", func(t *testing.T) {
		for _, c := range []struct {
			query string
			want  []string
		}{
			{"?q=ANN", []string{"ann_x@lifec.test"}},
			{"?q=_x", []string{"ann_x@lifec.test"}},
			{"?q=%25", nil},
			{"?is_staff=true", []string{"bob@lifec.test", a.StaffEmail}},
			{"?is_staff=true&q=bob", []string{"bob@lifec.test"}},
			{"?is_active=false", nil},
		} {
			var got []string
			for _, it := range e.walk(a.Host, users+c.query+"&limit=1", a.StaffToken, 1) {
				got = append(got, it["email"].(string))
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("%s = %v, want %v", c.query, got, c.want)
			}
		}
		if r := e.do(req{method: "GET", host: a.Host, path: users + "?is_active=maybe", token: a.StaffToken}); r.Code != http.StatusUnprocessableEntity {
			t.Errorf("is_active=maybe = %d, want 422", r.Code)
		}
	})

	t.Run("an email edit is normalized, and a taken one is a 409", func(t *testing.T) {
		r := e.do(req{method: "PATCH", host: a.Host, path: users + ann + "/", token: a.StaffToken, body: map[string]any{"email": "  Ann@LIFEC.test "}})
		if r.Code != http.StatusOK || r.JSON["email"] != "ann@lifec.test" {
			t.Fatalf("= %d %s, want 200 with ann@lifec.test", r.Code, r.Raw)
		}
		r = e.do(req{method: "PATCH", host: a.Host, path: users + ann + "/", token: a.StaffToken, body: map[string]any{"email": "BOB@lifec.test"}})
		if r.Code != http.StatusConflict || r.errorDetails()["email"] == nil {
			t.Fatalf("taking bob's email = %d %s, want 409 naming email", r.Code, r.Raw)
		}
		if r := signIn(e, a.Host, "ann@lifec.test", testPassword); r.Code != http.StatusOK {
			t.Fatalf("sign-in with the new email = %d", r.Code)
		}
	})

	t.Run("a bulk deactivation never takes the caller, and otherwise stops tokens at once", func(t *testing.T) {
		bulk := "/api/admin/users/bulk"
		r := e.do(req{method: "POST", host: a.Host, path: bulk, token: a.StaffToken, body: map[string]any{"ids": []string{ann, a.StaffID}, "is_active": false}})
		if r.Code != http.StatusConflict {
			t.Fatalf("deactivating oneself in bulk = %d %s, want 409", r.Code, r.Raw)
		}
		if r := e.do(req{method: "GET", host: a.Host, path: "/api/catalog/products/", token: annToken}); r.Code != http.StatusOK {
			t.Fatalf("after a refused bulk change ann's token = %d, want 200", r.Code)
		}
		many := make([]string, 501)
		for i := range many {
			many[i] = uuid.NewString()
		}
		if r := e.do(req{method: "POST", host: a.Host, path: bulk, token: a.StaffToken, body: map[string]any{"ids": many, "is_active": false}}); r.Code != http.StatusUnprocessableEntity {
			t.Fatalf("501 ids = %d, want 422", r.Code)
		}
		missing := uuid.NewString()
		r = e.do(req{method: "POST", host: a.Host, path: bulk, token: a.StaffToken, body: map[string]any{"ids": []string{ann, bob, missing}, "is_active": false}})
		if r.Code != http.StatusOK || r.JSON["updated"] != float64(2) || fmt.Sprint(r.JSON["not_found"]) != "["+missing+"]" {
			t.Fatalf("= %d %s, want 2 updated and %s not found", r.Code, r.Raw, missing)
		}
		if r := e.do(req{method: "GET", host: a.Host, path: "/api/catalog/products/", token: annToken}); r.Code != http.StatusUnauthorized {
			t.Fatalf("ann's token after the deactivation = %d, want 401", r.Code)
		}
		r = e.do(req{method: "POST", host: a.Host, path: bulk, token: a.StaffToken, body: map[string]any{"ids": []string{ann, bob}, "is_active": true}})
		if r.Code != http.StatusOK || r.JSON["updated"] != float64(2) {
			t.Fatalf("reactivation = %d %s", r.Code, r.Raw)
		}
		if r := e.do(req{method: "GET", host: a.Host, path: "/api/catalog/products/", token: annToken}); r.Code != http.StatusOK {
			t.Fatalf("ann's token after the reactivation = %d, want 200", r.Code)
		}
	})

	t.Run("a deleted user's token stops at once, their notifications go, their entries stay", func(t *testing.T) {
		e.notify(a.Schema, ann, "hello")
		if r := e.do(req{method: "DELETE", host: a.Host, path: users + a.StaffID + "/", token: a.StaffToken}); r.Code != http.StatusConflict {
			t.Fatalf("deleting oneself = %d %s, want 409", r.Code, r.Raw)
		}
		if r := e.do(req{method: "DELETE", host: a.Host, path: users + ann + "/", token: a.StaffToken}); r.Code != http.StatusNoContent {
			t.Fatalf("delete = %d %s", r.Code, r.Raw)
		}
		if r := e.do(req{method: "GET", host: a.Host, path: "/api/notifications/", token: annToken}); r.Code != http.StatusUnauthorized {
			t.Fatalf("the deleted user's token = %d, want 401", r.Code)
		}
		if n := e.count(a.Schema, `SELECT count(*) FROM notifications WHERE user_id = $1`, ann); n != 0 {
			t.Fatalf("%d notifications of the deleted user left", n)
		}
		if r := e.do(req{method: "GET", host: a.Host, path: users + ann + "/", token: a.StaffToken}); r.Code != http.StatusNotFound {
			t.Fatalf("the deleted user = %d, want 404", r.Code)
		}
	})

	t.Run("every change has its entry, with the caller and the request id", func(t *testing.T) {
		want := map[string]int{"user.create": 2, "user.update": 1, "user.deactivate": 2, "user.activate": 2, "user.delete": 1}
		for action, n := range want {
			if got := e.count(a.Schema, `SELECT count(*) FROM audit_log WHERE action = $1 AND actor_kind = 'user' AND actor_id = $2 AND request_id <> ''`, action, a.StaffID); got != n {
				t.Errorf("%d %s entries by the staff member, want %d", got, action, n)
			}
		}
		if n := e.count(a.Schema, `SELECT count(*) FROM audit_log WHERE target_id = $1`, ann); n != 5 {
			t.Errorf("%d entries about the deleted user, want 5 (they stay)", n)
		}
		if n := e.count(a.Schema, `SELECT count(*) FROM audit_log WHERE changes::text ILIKE '%password%'`); n != 0 {
			t.Errorf("%d entries mention a password", n)
		}
	})
}

func TestAdminBulkDeleteProducts(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t)
	a := e.tenant("bulkdel")
	var ids []string
	for i := range 3 {
		r := e.do(req{method: "POST", host: a.Host, path: "/api/catalog/products/", token: a.StaffToken, body: newProduct(fmt.Sprintf("BD-%d", i))})
		if r.Code != http.StatusCreated {
			t.Fatalf("create = %d %s", r.Code, r.Raw)
		}
		ids = append(ids, r.JSON["id"].(string))
	}
	// Cached, so that the delete must invalidate it.
	if r := e.do(req{method: "GET", host: a.Host, path: "/api/catalog/products/" + ids[0] + "/", token: a.UserToken}); r.Code != http.StatusOK {
		t.Fatal(r.Code)
	}
	const path = "/api/admin/products/bulk-delete"
	if r := e.do(req{method: "POST", host: a.Host, path: path, token: a.StaffToken, body: map[string]any{"ids": []string{ids[0], "NOT-AN-ID"}}}); r.Code != http.StatusUnprocessableEntity || r.errorDetails()["ids"] == nil {
		t.Fatalf("a bad id = %d %s, want 422 naming ids", r.Code, r.Raw)
	}
	missing := uuid.NewString()
	r := e.do(req{method: "POST", host: a.Host, path: path, token: a.StaffToken, body: map[string]any{"ids": []string{ids[0], missing, ids[1]}}})
	if r.Code != http.StatusOK || r.JSON["deleted"] != float64(2) || fmt.Sprint(r.JSON["not_found"]) != "["+missing+"]" {
		t.Fatalf("= %d %s, want 2 deleted and %s not found", r.Code, r.Raw, missing)
	}
	if r := e.do(req{method: "GET", host: a.Host, path: "/api/catalog/products/" + ids[0] + "/", token: a.UserToken}); r.Code != http.StatusNotFound {
		t.Fatalf("a deleted product, once cached = %d, want 404", r.Code)
	}
	if n := e.count(a.Schema, `SELECT count(*) FROM outbox WHERE event_type = 'product.deleted'`); n != 2 {
		t.Fatalf("%d product.deleted events, want 2", n)
	}
	if n := e.count(a.Schema, `SELECT count(*) FROM audit_log WHERE action = 'product.delete' AND actor_id = $1`, a.StaffID); n != 2 {
		t.Fatalf("%d product.delete entries, want 2", n)
	}
	if n := e.count(a.Schema, `SELECT count(*) FROM products`); n != 1 {
		t.Fatalf("%d products left, want 1", n)
	}
}

func TestPlatformSuperusers(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t)
	rootID, rootToken := e.superuser("root@su.test")
	twoID, twoToken := e.superuser("two@su.test")
	const sus = "/api/platform/superusers/"
	patch := func(token, id string, active bool) response {
		return e.do(req{method: "PATCH", host: publicDomain, path: sus + id + "/", token: token, body: map[string]any{"is_active": active}})
	}
	items := e.walk(publicDomain, sus+"?limit=1", rootToken, 1)
	if len(items) != 2 || items[0]["email"] != "root@su.test" || items[1]["email"] != "two@su.test" || items[0]["password_hash"] != nil {
		t.Fatalf("list = %v, want both, by email, without hashes", items)
	}

	t.Run("of two concurrent deactivations of the last two, one is refused", func(t *testing.T) {
		for round := range 4 {
			var wg sync.WaitGroup
			codes := make([]int, 2)
			for i, c := range []struct{ token, id string }{{rootToken, twoID}, {twoToken, rootID}} {
				wg.Go(func() {
					r, err := send(e.handler, req{method: "PATCH", host: publicDomain, path: sus + c.id + "/", token: c.token, body: map[string]any{"is_active": false}})
					if err != nil {
						t.Error(err)
					}
					codes[i] = r.Code
				})
			}
			wg.Wait()
			slices.Sort(codes)
			// The loser is refused either way: 409 when it saw the other
			// deactivation, 401 when its own token was deactivated first.
			if codes[0] != http.StatusOK || (codes[1] != http.StatusConflict && codes[1] != http.StatusUnauthorized) {
				t.Fatalf("round %d: statuses %v, want one 200 and one refusal", round, codes)
			}
			if n := e.countPublic(`SELECT count(*) FROM public.superusers WHERE is_active`); n != 1 {
				t.Fatalf("round %d: %d active superusers, want 1", round, n)
			}
			// Whoever is still active brings the other back.
			if r := patch(rootToken, twoID, true); r.Code != http.StatusOK {
				if r := patch(twoToken, rootID, true); r.Code != http.StatusOK {
					t.Fatalf("reactivation = %d %s", r.Code, r.Raw)
				}
			}
		}
	})

	t.Run("a deactivated superuser's token stops at once; the last one stays", func(t *testing.T) {
		if r := patch(rootToken, twoID, false); r.Code != http.StatusOK || r.JSON["is_active"] != false {
			t.Fatalf("= %d %s", r.Code, r.Raw)
		}
		if r := e.do(req{method: "GET", host: publicDomain, path: sus, token: twoToken}); r.Code != http.StatusUnauthorized {
			t.Fatalf("the deactivated superuser's token = %d, want 401", r.Code)
		}
		if r := patch(rootToken, rootID, false); r.Code != http.StatusConflict {
			t.Fatalf("deactivating the last one = %d %s, want 409", r.Code, r.Raw)
		}
		if r := patch(rootToken, twoID, true); r.Code != http.StatusOK {
			t.Fatalf("reactivation = %d %s", r.Code, r.Raw)
		}
	})

	t.Run("a password reset revokes the superuser's tokens", func(t *testing.T) {
		r := e.do(req{method: "POST", host: publicDomain, path: sus + twoID + "/password/", token: rootToken, body: map[string]string{"password": "a-new-root-password"}})
		if r.Code != http.StatusNoContent {
			t.Fatalf("= %d %s", r.Code, r.Raw)
		}
		if r := e.do(req{method: "GET", host: publicDomain, path: sus, token: twoToken}); r.Code != http.StatusUnauthorized {
			t.Fatalf("the old token = %d, want 401", r.Code)
		}
		r = e.do(req{method: "POST", host: publicDomain, path: "/api/platform/auth/token", body: map[string]string{"email": "two@su.test", "password": "a-new-root-password"}})
		if r.Code != http.StatusOK {
			t.Fatalf("sign-in with the new password = %d", r.Code)
		}
	})

	t.Run("each change has its platform entry, never a password", func(t *testing.T) {
		if n := e.countPublic(`SELECT count(*) FROM public.audit_log WHERE action = 'superuser.password_reset' AND actor_kind = 'superuser' AND actor_id = $1 AND target_id = $2 AND changes = '{}'`, rootID, twoID); n != 1 {
			t.Errorf("%d password_reset entries, want 1 without changes", n)
		}
		if n := e.countPublic(`SELECT count(*) FROM public.audit_log WHERE action = 'superuser.deactivate' AND request_id <> ''`); n < 5 {
			t.Errorf("%d deactivate entries, want one per deactivation (5)", n)
		}
	})
}

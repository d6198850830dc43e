package api_test

import (
	"net/http"
	"strings"
	"testing"
)

const passwordPath = "/api/auth/password"

func changePassword(host, token, current, next string) req {
	return req{method: "POST", host: host, path: passwordPath, token: token, body: map[string]string{"current": current, "new": next}}
}

func TestAPasswordIsNeverTruncated(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t)
	a := e.tenant("trunc")
	longest := strings.Repeat("p", 72)
	r := e.do(req{method: "POST", host: a.Host, path: "/api/admin/users/", token: a.StaffToken,
		body: map[string]any{"email": "long@trunc.test", "password": longest}})
	if r.Code != http.StatusCreated {
		t.Fatalf("create with 72 bytes = %d %s", r.Code, r.Raw)
	}
	id := r.JSON["id"].(string)
	e.signIn(a.Host, "long@trunc.test", longest)
	for _, c := range []struct {
		name string
		r    req
		want int
	}{
		{"sign-in with the 72 bytes and a suffix is 401", req{method: "POST", host: a.Host, path: "/api/auth/token",
			body: map[string]string{"email": "long@trunc.test", "password": longest + "-suffix"}}, http.StatusUnauthorized},
		{"creating a user with 73 bytes is 422", req{method: "POST", host: a.Host, path: "/api/admin/users/", token: a.StaffToken,
			body: map[string]any{"email": "longer@trunc.test", "password": longest + "p"}}, http.StatusUnprocessableEntity},
		{"a reset to 73 bytes is 422", req{method: "POST", host: a.Host, path: "/api/admin/users/" + id + "/password/", token: a.StaffToken,
			body: map[string]any{"password": longest + "p"}}, http.StatusUnprocessableEntity},
	} {
		t.Run(c.name, func(t *testing.T) {
			if r := e.do(c.r); r.Code != c.want {
				t.Fatalf("= %d %s, want %d", r.Code, r.Raw, c.want)
			}
		})
	}
}

// TestChangePasswordStatuses holds POST /api/auth/password to its contract,
// one table per status.
func TestChangePasswordStatuses(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t)
	a, b := e.tenant("pwa"), e.tenant("pwb")
	const newPassword = "a-brand-new-password"

	t.Run("200: a fresh token, and every other token of the user stops working", func(t *testing.T) {
		phone := e.signIn(a.Host, a.UserEmail, testPassword)
		laptop := e.signIn(a.Host, a.UserEmail, testPassword)
		// The check reads the user's cached flags: have them cached.
		if got := e.status(a.Host, laptop); got != http.StatusOK {
			t.Fatalf("before = %d", got)
		}
		r := e.do(changePassword(a.Host, phone, testPassword, newPassword))
		if r.Code != http.StatusOK {
			t.Fatalf("change = %d %s, want 200", r.Code, r.Raw)
		}
		fresh, _ := r.JSON["token"].(string)
		if exp, _ := r.JSON["expires_at"].(string); fresh == "" || exp == "" {
			t.Fatalf("answer %s, want a token and its expiry", r.Raw)
		}
		for name, tok := range map[string]string{"the token of the change": phone, "another sign-in's": laptop, "one issued earlier": a.UserToken} {
			if got := e.status(a.Host, tok); got != http.StatusUnauthorized {
				t.Errorf("%s = %d, want 401", name, got)
			}
		}
		if got := e.status(a.Host, fresh); got != http.StatusOK {
			t.Errorf("the fresh token = %d, want 200", got)
		}
		if got := e.status(a.Host, a.StaffToken); got != http.StatusOK {
			t.Errorf("another user's token = %d, want 200", got)
		}
		if got := e.status(a.Host, e.signIn(a.Host, a.UserEmail, newPassword)); got != http.StatusOK {
			t.Errorf("a sign-in with the new password = %d, want 200", got)
		}
		r = e.do(req{method: "POST", host: a.Host, path: "/api/auth/token", body: map[string]string{"email": a.UserEmail, "password": testPassword}})
		if r.Code != http.StatusUnauthorized {
			t.Errorf("a sign-in with the old password = %d, want 401", r.Code)
		}
		// The route with a trailing slash is the same.
		r = e.do(req{method: "POST", host: a.Host, path: passwordPath + "/", token: fresh, body: map[string]string{"current": newPassword, "new": testPassword}})
		if r.Code != http.StatusOK {
			t.Errorf("change at %s/ = %d %s, want 200", passwordPath, r.Code, r.Raw)
		}
	})

	revoked := e.signIn(a.Host, a.StaffEmail, testPassword)
	if r := e.do(changePassword(a.Host, revoked, testPassword, newPassword)); r.Code != http.StatusOK {
		t.Fatalf("staff change = %d %s", r.Code, r.Raw)
	}
	staffToken := e.signIn(a.Host, a.StaffEmail, newPassword)

	t.Run("401", func(t *testing.T) {
		for name, r := range map[string]req{
			"no token":                        changePassword(a.Host, "", newPassword, "whatever-password"),
			"a garbage token":                 changePassword(a.Host, "not.a.token", newPassword, "whatever-password"),
			"a token the last change revoked": changePassword(a.Host, revoked, newPassword, "whatever-password"),
			"another tenant's token":          changePassword(a.Host, b.UserToken, testPassword, "whatever-password"),
		} {
			t.Run(name, func(t *testing.T) {
				if res := e.do(r); res.Code != http.StatusUnauthorized || res.errorCode() != "unauthorized" {
					t.Fatalf("= %d %s, want 401", res.Code, res.Raw)
				}
			})
		}
	})

	t.Run("422", func(t *testing.T) {
		for _, c := range []struct {
			name  string
			body  any
			field string
		}{
			{"a wrong current password names current", map[string]string{"current": "wrong-password", "new": "whatever-password"}, "current"},
			{"a missing current password names current", map[string]string{"new": "whatever-password"}, "current"},
			{"a short new password names new", map[string]string{"current": newPassword, "new": "short"}, "new"},
			{"a new password of 73 bytes names new", map[string]string{"current": newPassword, "new": strings.Repeat("p", 73)}, "new"},
			{"an unknown field names it", map[string]string{"current": newPassword, "new": "whatever-password", "confirm": "x"}, "confirm"},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := e.do(req{method: "POST", host: a.Host, path: passwordPath, token: staffToken, body: c.body})
				if r.Code != http.StatusUnprocessableEntity || r.errorDetails()[c.field] == nil {
					t.Fatalf("= %d %s, want 422 naming %s", r.Code, r.Raw, c.field)
				}
			})
		}
		// None of them changed anything.
		if got := e.status(a.Host, staffToken); got != http.StatusOK {
			t.Fatalf("the token after refused changes = %d, want 200", got)
		}
	})

	t.Run("400 and 404", func(t *testing.T) {
		for _, c := range []struct {
			name string
			r    req
			want int
		}{
			{"bad JSON is 400", req{method: "POST", host: a.Host, path: passwordPath, token: staffToken, body: `{"current":`}, http.StatusBadRequest},
			{"the public domain is 404", changePassword(publicDomain, staffToken, newPassword, "whatever-password"), http.StatusNotFound},
			{"an unknown host is 404", changePassword("nobody.example.test", staffToken, newPassword, "whatever-password"), http.StatusNotFound},
		} {
			t.Run(c.name, func(t *testing.T) {
				if r := e.do(c.r); r.Code != c.want {
					t.Fatalf("= %d %s, want %d", r.Code, r.Raw, c.want)
				}
			})
		}
	})

	t.Run("429: the eleventh attempt of a user in a minute", func(t *testing.T) {
		tok := b.UserToken
		for i := range 10 {
			if r := e.do(changePassword(b.Host, tok, "guess-"+string(rune('a'+i)), "whatever-password")); r.Code != http.StatusUnprocessableEntity {
				t.Fatalf("guess %d = %d %s, want 422", i+1, r.Code, r.Raw)
			}
		}
		r := e.do(changePassword(b.Host, tok, testPassword, "whatever-password"))
		if r.Code != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" || r.errorCode() != "rate_limited" {
			t.Fatalf("= %d %s (Retry-After %q), want 429 with Retry-After", r.Code, r.Raw, r.Header.Get("Retry-After"))
		}
		if r := e.do(changePassword(b.Host, b.StaffToken, testPassword, "whatever-password")); r.Code != http.StatusOK {
			t.Fatalf("another user of the tenant = %d %s, want a bucket of their own", r.Code, r.Raw)
		}
	})
}

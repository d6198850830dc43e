package api_test

import (
	"net/http"
	"strings"
	"testing"
)

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

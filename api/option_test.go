package api_test

import (
	"net/http"
	"testing"

	"github.com/tenantworks/saas/api"
)

func TestWithRouteServesBehindTheTenantAPIMiddleware(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.tenant("withroute")
	other := e.tenant("withroute_other")
	e.handler = api.New(e.cfg, e.deps, api.WithRoute(http.MethodGet, "/api/_probe/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"probe":true}`))
	}))).Handler()

	for _, c := range []struct {
		name string
		r    req
		want int
	}{
		{"a user of the tenant gets the handler's answer", req{method: http.MethodGet, host: f.Host, path: "/api/_probe/", token: f.UserToken}, http.StatusOK},
		{"a request without a token is 401", req{method: http.MethodGet, host: f.Host, path: "/api/_probe/"}, http.StatusUnauthorized},
		{"a token of another tenant is 401", req{method: http.MethodGet, host: f.Host, path: "/api/_probe/", token: other.UserToken}, http.StatusUnauthorized},
		{"the public domain does not serve it", req{method: http.MethodGet, host: publicDomain, path: "/api/_probe/", token: f.UserToken}, http.StatusNotFound},
		{"an unknown host does not serve it", req{method: http.MethodGet, host: "nobody.example.test", path: "/api/_probe/", token: f.UserToken}, http.StatusNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := e.do(c.r)
			if res.Code != c.want {
				t.Fatalf("status %d, want %d: %s", res.Code, c.want, res.Raw)
			}
			if c.want == http.StatusOK && string(res.Raw) != `{"probe":true}` {
				t.Errorf("body %s, want the handler's", res.Raw)
			}
		})
	}
}

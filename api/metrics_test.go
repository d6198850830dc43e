package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tenantworks/saas/api"
)

// TestMetricsAreNeverOnThePublicPort: Prometheus metrics (request counts
// by route and tenant activity) are served on METRICS_ADDR only; on the
// API's port /metrics is a JSON 404 whatever the host, with or without the
// web client built, on the API and on a push node.
func TestMetricsAreNeverOnThePublicPort(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(w *wiring) { w.WebDir = mustWebDir(t) })
	a := e.tenant("metrics")
	for name, h := range map[string]http.Handler{
		"the API":     e.handler,
		"a push node": api.NewPush(e.cfg, e.deps).Handler(),
	} {
		for _, host := range []string{publicDomain, strings.ToUpper(publicDomain) + ":443", a.Host, "nobody.example.test", "localhost", "127.0.0.1:8080"} {
			for _, path := range []string{"/metrics", "/metrics/", "/metrics?format=text"} {
				for _, method := range []string{"GET", "HEAD"} {
					r := httptest.NewRequest(method, path, nil)
					r.Host = host
					r.Header.Set("Authorization", "Bearer "+a.StaffToken)
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					if w.Code != http.StatusNotFound || strings.Contains(w.Body.String(), "go_goroutines") {
						t.Errorf("%s: %s %s on %s = %d %.80s, want 404", name, method, path, host, w.Code, w.Body)
						continue
					}
					var body struct {
						Error struct{ Code string } `json:"error"`
					}
					if method == "GET" && (json.Unmarshal(w.Body.Bytes(), &body) != nil || body.Error.Code != "not_found") {
						t.Errorf("%s: GET %s on %s: body %s, want a JSON not_found", name, path, host, w.Body)
					}
				}
			}
		}
	}
	for _, rt := range api.New(e.cfg, e.deps).Routes() {
		if strings.HasPrefix(rt.Path, "/metrics") {
			t.Errorf("route %s %s is registered", rt.Method, rt.Path)
		}
	}
}

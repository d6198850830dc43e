package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tenantworks/saas/api"
	"github.com/tenantworks/saas/pkg/domain"
)

// webTenants resolves the hosts of a map; any other host is ENOTFOUND.
type webTenants map[string]*domain.Tenant

func (w webTenants) Resolve(_ context.Context, host string) (*domain.Tenant, error) {
	if t, ok := w[host]; ok {
		return t, nil
	}
	return nil, domain.Errorf(domain.ENOTFOUND, "unknown host")
}

var _ api.TenantResolver = webTenants(nil)

// mustWebDir writes a small built client: index.html and a hashed asset.
func mustWebDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"index.html":           `<!doctype html><html><head><title>app</title></head><body><div id="root"></div></body></html>`,
		"assets/index-abc1.js": `console.log("app")`,
		"favicon.svg":          `<svg xmlns="http://www.w3.org/2000/svg"/>`,
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestWebClientIsServedBesideTheAPI(t *testing.T) {
	t.Parallel()
	tenants := webTenants{"acme.example.test": {Schema: "acme", Name: `Acme <"&">`, State: "active"}}
	srv := api.New(api.Config{PublicDomain: publicDomain, WebDir: mustWebDir(t)},
		api.Deps{Log: slog.New(slog.DiscardHandler), Tenants: tenants})

	const tenantHost = "acme.example.test:8080"
	tests := []struct {
		name, method, host, path string
		status                   int
		contains                 string // in the body; "" for none
		cache                    string // the Cache-Control header; "" for none
	}{
		{"the public domain gets the client as the platform admin", "GET", publicDomain, "/", 200, `<meta name="saas-site" content="platform" data-name="">`, "no-cache"},
		{"a tenant domain gets the client with the tenant's escaped name", "GET", tenantHost, "/", 200, `<meta name="saas-site" content="tenant" data-name="Acme &lt;&#34;&amp;&#34;&gt;">`, "no-cache"},
		{"a client route falls back to index.html", "GET", tenantHost, "/products/0197/edit", 200, `<div id="root">`, "no-cache"},
		{"HEAD of a client route answers too", "HEAD", tenantHost, "/admin/users", 200, "", "no-cache"},
		{"a hashed asset is served as it is and cached for a year", "GET", tenantHost, "/assets/index-abc1.js", 200, `console.log("app")`, "public, max-age=31536000, immutable"},
		{"a file at the root is served but not cached as immutable", "GET", publicDomain, "/favicon.svg", 200, "<svg", "no-cache"},
		{"a missing asset is a 404, not the client", "GET", tenantHost, "/assets/gone-0000.js", 404, `"not_found"`, ""},
		{"a path that climbs out of the folder stays in it", "GET", tenantHost, "/../../../etc/passwd", 200, `<div id="root">`, "no-cache"},
		{"an unknown host gets the JSON 404", "GET", "nobody.example.test", "/", 404, `"not_found"`, ""},
		{"an unknown API path stays the API's (authentication first)", "GET", tenantHost, "/api/nothing/here/", 401, `"unauthorized"`, ""},
		{"a bare /api stays the API's", "GET", tenantHost, "/api", 401, `"unauthorized"`, ""},
		{"an unknown platform path stays the API's", "GET", publicDomain, "/api/platform/nothing", 401, `"unauthorized"`, ""},
		{"an unknown API path on the public domain stays the API's 404", "GET", publicDomain, "/api/nothing", 404, `"not_found"`, ""},
		{"an unknown WebSocket path stays the API's", "GET", tenantHost, "/ws/other/", 401, `"unauthorized"`, ""},
		{"/healthz is never the client", "GET", publicDomain, "/healthz", 404, `"not_found"`, ""},
		{"/metrics/x is never the client", "GET", publicDomain, "/metrics/x", 404, `"not_found"`, ""},
		{"health is still health", "GET", publicDomain, "/health/", 200, `"status":"ok"`, ""},
		{"a POST to a client route is a 404", "POST", tenantHost, "/products", 404, `"not_found"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(tt.method, "http://"+tt.host+tt.path, nil)
			r.URL.Path = tt.path // keep the dots: NewRequest does not clean them, but be explicit
			w := httptest.NewRecorder()
			srv.Handler().ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("%s %s on %s = %d, want %d: %s", tt.method, tt.path, tt.host, w.Code, tt.status, w.Body)
			}
			if tt.contains != "" && !strings.Contains(w.Body.String(), tt.contains) {
				t.Errorf("body does not contain %s:\n%s", tt.contains, w.Body)
			}
			if got := w.Header().Get("Cache-Control"); got != tt.cache {
				t.Errorf("Cache-Control = %q, want %q", got, tt.cache)
			}
			if tt.status >= 400 {
				var body struct {
					Error struct{ Code string } `json:"error"`
				}
				if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Code == "" {
					t.Errorf("a 404 is not the JSON error shape: %s", w.Body)
				}
			}
		})
	}

	t.Run("the page is sent with a policy that keeps it to its own origin", func(t *testing.T) {
		t.Parallel()
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, httptest.NewRequest("GET", "http://"+tenantHost+"/", nil))
		for h, want := range map[string]string{
			"Content-Type":           "text/html; charset=UTF-8",
			"X-Frame-Options":        "DENY",
			"X-Content-Type-Options": "nosniff",
		} {
			if got := w.Header().Get(h); got != want {
				t.Errorf("%s = %q, want %q", h, got, want)
			}
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("Content-Security-Policy = %q", csp)
		}
	})
}

func TestWebClientWithoutABuildAnswersAsBefore(t *testing.T) {
	t.Parallel()
	srv := api.New(api.Config{PublicDomain: publicDomain, WebDir: filepath.Join(t.TempDir(), "missing")},
		api.Deps{Log: slog.New(slog.DiscardHandler), Tenants: webTenants{}})
	for _, host := range []string{publicDomain, "acme.example.test"} {
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, httptest.NewRequest("GET", "http://"+host+"/", nil))
		if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), `"not_found"`) {
			t.Errorf("GET / on %s without a build = %d %s, want the JSON 404", host, w.Code, w.Body)
		}
	}
}

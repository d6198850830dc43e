package api_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/tenantworks/saas/api"
	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/search"
	"github.com/tenantworks/saas/pkg/testenv"
)

func TestOpenAPIDocumentIsValid(t *testing.T) {
	t.Parallel()
	doc := mustLoadOpenAPI(t) // loads and validates it

	t.Run("it is OpenAPI 3.0.3", func(t *testing.T) {
		if doc.OpenAPI != "3.0.3" {
			t.Errorf("openapi = %q, want 3.0.3", doc.OpenAPI)
		}
	})
	t.Run("the same document is served on every host", func(t *testing.T) {
		want := api.OpenAPIDocument()
		for _, host := range []string{publicDomain, "acme.example.test", "nobody.example.test:8080"} {
			if got := servedOpenAPI(t, host); !bytes.Equal(got, want) {
				t.Errorf("GET /api/openapi.json on %s is not the embedded document", host)
			}
		}
	})
	t.Run("every operation lists its statuses one by one and says where it is served", func(t *testing.T) {
		// A default response would let any undocumented status through.
		for path, item := range doc.Paths.Map() {
			for method, op := range item.Operations() {
				if op.Responses.Default() != nil {
					t.Errorf("%s %s has a default response", method, path)
				}
				if h, _ := op.Extensions["x-host"].(string); !slices.Contains([]string{"tenant", "public", "any"}, h) {
					t.Errorf("%s %s: x-host = %v, want tenant, public or any", method, path, op.Extensions["x-host"])
				}
				if op.Security == nil {
					t.Errorf("%s %s does not say which security it needs (security: [] for none)", method, path)
				}
			}
		}
	})
}

// routeSet returns the routes of a server built with cfg and opts, as
// "METHOD /openapi/{path}".
func routeSet(t *testing.T, cfg api.Config, opts ...api.Option) map[string]bool {
	t.Helper()
	srv := api.New(cfg, api.Deps{Log: slog.New(slog.DiscardHandler)}, opts...)
	out := map[string]bool{}
	for _, r := range srv.Routes() {
		p, err := openAPIPath(r.Path)
		if err != nil {
			t.Fatal(err)
		}
		out[r.Method+" "+p] = true
	}
	return out
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	t.Parallel()
	doc := mustLoadOpenAPI(t)
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	// Built without options: the server every deployment runs. Paths
	// are compared exactly, so /health and /health/ are two routes, each of
	// which must be documented on its own.
	routes := routeSet(t, api.Config{PublicDomain: publicDomain})

	t.Run("every route is documented", func(t *testing.T) {
		for r := range routes {
			if !documented[r] {
				t.Errorf("route %s is not in api/openapi.json", r)
			}
		}
	})
	t.Run("every documented operation is a route", func(t *testing.T) {
		for op := range documented {
			if !routes[op] {
				t.Errorf("api/openapi.json documents %s, which the server does not route", op)
			}
		}
	})
	t.Run("a route added with WithRoute is the only extra route, and it is not documented", func(t *testing.T) {
		bench := routeSet(t, api.Config{PublicDomain: publicDomain},
			api.WithRoute(http.MethodGet, "/api/_bench/fixed/", http.NotFoundHandler()))
		var extra []string
		for r := range bench {
			if !routes[r] {
				extra = append(extra, r)
			}
		}
		if want := []string{"GET /api/_bench/fixed/"}; !slices.Equal(extra, want) {
			t.Errorf("WithRoute adds %v, want %v", extra, want)
		}
		for _, r := range extra {
			if documented[r] {
				t.Errorf("the bench-only route %s is documented", r)
			}
		}
	})
}

// TestOpenAPIAnswersMatchTheDocument sends representative requests for every
// documented operation, successes and the main errors, through the real
// router against the real services, and holds every answer (status,
// documented headers, body) to the document. It fails when an operation
// answers a status the document does not list for it, or when no request
// of any group saw a documented operation succeed.
func TestOpenAPIAnswersMatchTheDocument(t *testing.T) {
	t.Parallel()
	o := newOpenAPIExchanges(t)
	t.Run("the document", o.servesTheDocument)
	t.Run("health, readiness and metrics", o.checksHealthReadinessAndMetrics)
	t.Run("tenant sign-in", o.signsInToATenant)
	t.Run("password change", o.changesPasswords)
	t.Run("products", o.managesProducts)
	t.Run("search", o.searchesProducts)
	t.Run("notifications", o.listsAndReadsNotifications)
	t.Run("tenant admin", o.administersATenant)
	t.Run("products CSV import and export", o.importsAndExportsProducts)
	t.Run("WebSocket", o.upgradesToAWebSocket)
	t.Run("platform admin", o.administersThePlatform)
	t.Run("tenant moves", o.movesATenant)
	t.Run("a method a documented path does not serve is a 404", o.refusesUnservedMethods)

	if missing := o.d.successless(); len(missing) > 0 {
		t.Errorf("documented operations that no request above saw succeed: %s", strings.Join(missing, ", "))
	}
	t.Logf("documented statuses no request above produced:\n%s", strings.Join(o.d.unexercised(), "\n"))
}

// openAPIExchanges is what the groups of TestOpenAPIAnswersMatchTheDocument
// share: the checker that sees every exchange, a full server (e) and a bare
// one (no tenancy manager, no push node, search and a readiness dependency
// down), their tenants and superuser tokens.
type openAPIExchanges struct {
	d                     *docChecker
	e, bare               *env
	es                    *search.Client
	srv                   *httptest.Server
	a, b, limited, pw, bt fixture
	suToken, bareSuToken  string
	oversized, upgrade    map[string]string
}

// unknownHost is a host no tenant has.
const unknownHost = "nobody.example.test"

func newOpenAPIExchanges(t *testing.T) *openAPIExchanges {
	t.Helper()
	d := newDocChecker(t)

	nc, err := events.Connect(testenv.MustNATSServer(t).URL, "openapi-test-push")
	if err != nil {
		t.Fatalf("%v (is NATS up? scripts/services.sh up)", err)
	}
	t.Cleanup(nc.Close)
	hub := api.NewPushHub(api.PushConfig{}, nc)
	es := newSearchClient(t, testenv.Get(t).ElasticsearchURL)
	e := newAdminEnv(t, withSearch(es), func(w *wiring) {
		deps := w.Deps
		// A window longer than the test, however slow (-race), so that the
		// eleventh attempt of a window is always a 429.
		w.LoginWindow = 10 * time.Minute
		deps.Push = hub
		rdb := w.Redis
		deps.Checks = map[string]api.Pinger{
			"postgres": deps.DB,
			"redis":    pingerFunc(func(ctx context.Context) error { return rdb.Ping(ctx).Err() }),
		}
	})
	// bare has no tenancy manager, no push node, and search and a
	// readiness dependency down.
	bare := newEnv(t, withSearch(newSearchClient(t, "http://127.0.0.1:1")), func(deps *wiring) {
		deps.Checks = map[string]api.Pinger{"postgres": deps.DB, "elasticsearch": failingPinger{}}
	})
	srv := httptest.NewServer(e.handler)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { // before srv.Close: httptest does not wait for hijacked connections
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := hub.Close(ctx); err != nil {
			t.Errorf("push hub close: %v", err)
		}
	})

	a, b := e.tenant("oa"), e.tenant("ob")
	limited := e.tenant("orl")
	pw := e.tenant("opw")
	_, suToken := e.superuser("root@oa.test")
	bt := bare.tenant("obare")
	_, bareSuToken := bare.superuser("root@obare.test")

	return &openAPIExchanges{d: d, e: e, bare: bare, es: es, srv: srv, a: a, b: b, limited: limited, pw: pw, bt: bt,
		suToken: suToken, bareSuToken: bareSuToken,
		oversized: map[string]string{"padding": strings.Repeat("x", 2<<20)},
		upgrade: map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
			"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}}
}

// withHeader returns a copy of h with header k set to v.
func withHeader(h map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for hk, hv := range h {
		if hk != k {
			out[hk] = hv
		}
	}
	return out
}

// step sends r on env on (o.e when nil) as a subtest, requires the status
// want, and holds the exchange to the document.
func (o *openAPIExchanges) step(t *testing.T, name string, on *env, r req, want int, conform conformance) response {
	t.Helper()
	if on == nil {
		on = o.e
	}
	var res response
	t.Run(name, func(t *testing.T) {
		res = o.d.exchange(t, on, r, conform)
		if res.Code != want {
			t.Errorf("%s %s on %s = %d, want %d: %s", r.method, r.path, r.host, res.Code, want, truncate(res.Raw))
		}
	})
	return res
}

// servesTheDocument fetches the document on every kind of host.
func (o *openAPIExchanges) servesTheDocument(t *testing.T) {
	a, step := o.a, o.step
	step(t, "is served on the public domain", nil, req{method: "GET", host: publicDomain, path: "/api/openapi.json"}, 200, conforms)
	step(t, "is served on a tenant domain", nil, req{method: "GET", host: a.Host, path: "/api/openapi.json"}, 200, conforms)
	step(t, "is served on an unknown host", nil, req{method: "GET", host: unknownHost, path: "/api/openapi.json"}, 200, conforms)
}

// checksHealthReadinessAndMetrics asks for liveness, readiness and metrics
// on the public domain and on a tenant domain, with a dependency down too.
func (o *openAPIExchanges) checksHealthReadinessAndMetrics(t *testing.T) {
	bare, a, step := o.bare, o.a, o.step
	for _, p := range []string{"/health", "/health/"} {
		step(t, p+" answers on the public domain", nil, req{method: "GET", host: publicDomain, path: p}, 200, conforms)
		step(t, p+" is not found on a tenant domain", nil, req{method: "GET", host: a.Host, path: p}, 404, conforms)
	}
	for _, p := range []string{"/ready", "/ready/"} {
		step(t, p+" answers when every dependency is up", nil, req{method: "GET", host: publicDomain, path: p}, 200, conforms)
		step(t, p+" answers 503 when a dependency is down", bare, req{method: "GET", host: publicDomain, path: p}, 503, conforms)
		step(t, p+" is not found on a tenant domain", nil, req{method: "GET", host: a.Host, path: p}, 404, conforms)
	}
}

// signsInToATenant signs users in, and fails to in every documented way,
// rate limiting included.
func (o *openAPIExchanges) signsInToATenant(t *testing.T) {
	d, e, a, limited, oversized, step := o.d, o.e, o.a, o.limited, o.oversized, o.step
	creds := map[string]string{"email": a.UserEmail, "password": testPassword}
	for _, p := range []string{"/api/auth/token", "/api/auth/token/"} {
		step(t, "a user signs in at "+p, nil, req{method: "POST", host: a.Host, path: p, body: creds}, 200, conforms)
	}
	tok := "/api/auth/token"
	step(t, "a wrong password is refused", nil, req{method: "POST", host: a.Host, path: tok,
		body: map[string]string{"email": a.UserEmail, "password": "wrong-password"}}, 401, conforms)
	step(t, "bad JSON is a 400", nil, req{method: "POST", host: a.Host, path: tok, body: `{"email":`}, 400, violates)
	step(t, "a missing password is a 422", nil, req{method: "POST", host: a.Host, path: tok,
		body: map[string]string{"email": a.UserEmail}}, 422, violates)
	step(t, "an unknown field is a 422", nil, req{method: "POST", host: a.Host, path: tok,
		body: map[string]string{"email": a.UserEmail, "password": testPassword, "otp": "1"}}, 422, violates)
	step(t, "an unknown host is a 404", nil, req{method: "POST", host: unknownHost, path: tok, body: creds}, 404, conforms)
	step(t, "the public domain is a 404", nil, req{method: "POST", host: publicDomain, path: tok, body: creds}, 404, conforms)
	step(t, "an oversized body is a 413", nil, req{method: "POST", host: a.Host, path: tok, body: oversized}, 413, violates)
	t.Run("the eleventh attempt in a minute is a 429", func(t *testing.T) {
		// Every attempt counts, a malformed one too (and it costs no
		// password hash, which is slow under -race).
		malformed := req{method: "POST", host: limited.Host, path: tok, body: `{`}
		for i := range 10 {
			if r := d.exchange(t, e, malformed, violates); r.Code != 400 {
				t.Fatalf("attempt %d = %d, want 400: %s", i+1, r.Code, r.Raw)
			}
		}
		wrong := req{method: "POST", host: limited.Host, path: tok, body: map[string]string{"email": limited.UserEmail, "password": "wrong-password"}}
		if r := d.exchange(t, e, wrong, conforms); r.Code != 429 {
			t.Fatalf("attempt 11 = %d, want 429: %s", r.Code, r.Raw)
		}
	})
}

// changesPasswords has users change their own password, and fail to in
// every documented way, rate limiting included.
func (o *openAPIExchanges) changesPasswords(t *testing.T) {
	pw, oversized, step, d, e := o.pw, o.oversized, o.step, o.d, o.e
	const path = "/api/auth/password"
	change := func(token, current, next string) req {
		return req{method: "POST", host: pw.Host, path: path, token: token, body: map[string]string{"current": current, "new": next}}
	}
	r := step(t, "a user changes their password", nil, change(pw.UserToken, testPassword, "changed-password"), 200, conforms)
	fresh, _ := r.JSON["token"].(string)
	step(t, "and back, with the fresh token, at "+path+"/", nil, req{method: "POST", host: pw.Host, path: path + "/", token: fresh,
		body: map[string]string{"current": "changed-password", "new": testPassword}}, 200, conforms)
	step(t, "a revoked token is a 401", nil, change(pw.UserToken, testPassword, "changed-password"), 401, conforms)
	step(t, "no token is a 401", nil, change("", testPassword, "changed-password"), 401, violates)
	step(t, "a wrong current password is a 422", nil, change(pw.StaffToken, "wrong-password", "changed-password"), 422, conforms)
	step(t, "a short new password is a 422", nil, change(pw.StaffToken, testPassword, "short"), 422, violates)
	step(t, "an unknown field is a 422", nil, req{method: "POST", host: pw.Host, path: path, token: pw.StaffToken,
		body: map[string]string{"current": testPassword, "new": "changed-password", "confirm": "changed-password"}}, 422, violates)
	step(t, "bad JSON is a 400", nil, req{method: "POST", host: pw.Host, path: path, token: pw.StaffToken, body: `{"current":`}, 400, violates)
	step(t, "an oversized body is a 413", nil, req{method: "POST", host: pw.Host, path: path, token: pw.StaffToken, body: oversized}, 413, violates)
	step(t, "an unknown host is a 404", nil, req{method: "POST", host: unknownHost, path: path, token: pw.StaffToken,
		body: map[string]string{"current": testPassword, "new": "changed-password"}}, 404, conforms)
	step(t, "the public domain is a 404", nil, req{method: "POST", host: publicDomain, path: path, token: pw.StaffToken,
		body: map[string]string{"current": testPassword, "new": "changed-password"}}, 404, conforms)
	t.Run("attempts past the limit are a 429", func(t *testing.T) {
		for i := 0; ; i++ {
			if i == 20 {
				t.Fatal("20 attempts and no 429")
			}
			if r := d.exchange(t, e, change(pw.StaffToken, "wrong-password", "changed-password"), conforms); r.Code == 429 {
				break
			} else if r.Code != 422 {
				t.Fatalf("attempt %d = %d, want 422 or 429: %s", i+1, r.Code, r.Raw)
			}
		}
	})
}

// managesProducts creates, lists, reads, replaces, patches and deletes
// products, and fails to in every documented way.
func (o *openAPIExchanges) managesProducts(t *testing.T) {
	a, b, oversized, step := o.a, o.b, o.oversized, o.step
	product := func(sku string) map[string]any {
		return map[string]any{"sku": sku, "name": "Widget " + sku, "description": "A widget.", "price": "19.9", "currency": "EUR", "stock": 5}
	}
	const products = "/api/catalog/products/"
	var p1, etag1, etag2, etag3 string
	r := step(t, "staff create a product", nil, req{method: "POST", host: a.Host, path: products, token: a.StaffToken, body: product("OA-1")}, 201, conforms)
	if p1, _ = r.JSON["id"].(string); p1 == "" {
		t.Fatalf("no id in %s", r.Raw)
	}
	etag1 = r.Header.Get("ETag")
	step(t, "staff create another", nil, req{method: "POST", host: a.Host, path: products, token: a.StaffToken, body: product("OA-2")}, 201, conforms)
	step(t, "a plain user may not create", nil, req{method: "POST", host: a.Host, path: products, token: a.UserToken, body: product("OA-3")}, 403, conforms)
	step(t, "a duplicate sku is a conflict", nil, req{method: "POST", host: a.Host, path: products, token: a.StaffToken, body: product("OA-1")}, 409, conforms)
	step(t, "bad JSON is a 400", nil, req{method: "POST", host: a.Host, path: products, token: a.StaffToken, body: `{"sku":`}, 400, violates)
	step(t, "missing fields are a 422", nil, req{method: "POST", host: a.Host, path: products, token: a.StaffToken, body: map[string]string{"name": "x"}}, 422, violates)
	bad := product("OA-4")
	bad["colour"] = "red"
	step(t, "an unknown field is a 422", nil, req{method: "POST", host: a.Host, path: products, token: a.StaffToken, body: bad}, 422, violates)
	bad = product("OA-4")
	bad["price"] = "1.234"
	step(t, "a price with three decimals is a 422", nil, req{method: "POST", host: a.Host, path: products, token: a.StaffToken, body: bad}, 422, violates)
	bad = product("OA-4")
	bad["currency"] = "ZZZ"
	step(t, "a well-formed currency that is not ISO 4217 is a 422", nil, req{method: "POST", host: a.Host, path: products, token: a.StaffToken, body: bad}, 422, violates)
	step(t, "an oversized body is a 413", nil, req{method: "POST", host: a.Host, path: products, token: a.StaffToken, body: oversized}, 413, violates)

	r = step(t, "a list page links the next", nil, req{method: "GET", host: a.Host, path: products + "?limit=1", token: a.UserToken}, 200, conforms)
	if next, _ := r.JSON["next"].(string); next == "" {
		t.Errorf("next = %v with two products and limit 1", r.JSON["next"])
	}
	step(t, "a list ordered by price", nil, req{method: "GET", host: a.Host, path: products + "?ordering=-price&limit=100", token: a.UserToken}, 200, conforms)
	step(t, "limit 0 is a 422", nil, req{method: "GET", host: a.Host, path: products + "?limit=0", token: a.UserToken}, 422, violates)
	step(t, "a limit that is not a number is a 422", nil, req{method: "GET", host: a.Host, path: products + "?limit=ten", token: a.UserToken}, 422, violates)
	step(t, "an unknown ordering is a 422", nil, req{method: "GET", host: a.Host, path: products + "?ordering=colour", token: a.UserToken}, 422, violates)
	step(t, "an empty limit and ordering are the same as none", nil, req{method: "GET", host: a.Host, path: products + "?limit=&ordering=", token: a.UserToken}, 200, conforms)
	step(t, "a cursor of nothing is a 422", nil, req{method: "GET", host: a.Host, path: products + "?cursor=bogus", token: a.UserToken}, 422, conforms)
	step(t, "no token is a 401", nil, req{method: "GET", host: a.Host, path: products}, 401, violates)
	step(t, "a garbage token is a 401", nil, req{method: "GET", host: a.Host, path: products, token: "not.a.token"}, 401, conforms)
	step(t, "another tenant's token is a 401", nil, req{method: "GET", host: a.Host, path: products, token: b.UserToken}, 401, conforms)
	step(t, "an unknown host is a 404", nil, req{method: "GET", host: unknownHost, path: products, token: a.UserToken}, 404, conforms)
	step(t, "the public domain is a 404", nil, req{method: "GET", host: publicDomain, path: products, token: a.UserToken}, 404, conforms)

	one := products + p1 + "/"
	missing := products + uuid.NewString() + "/"
	step(t, "a product is retrieved", nil, req{method: "GET", host: a.Host, path: one, token: a.UserToken}, 200, conforms)
	step(t, "If-None-Match with the current ETag is a 304", nil, req{method: "GET", host: a.Host, path: one, token: a.UserToken,
		header: map[string]string{"If-None-Match": etag1}}, 304, conforms)
	step(t, "an unknown product is a 404", nil, req{method: "GET", host: a.Host, path: missing, token: a.UserToken}, 404, conforms)
	step(t, "an id that is not one is a 404", nil, req{method: "GET", host: a.Host, path: products + "not-a-uuid/", token: a.UserToken}, 404, violates)

	replaced := product("OA-1")
	replaced["name"] = "Replaced"
	r = step(t, "staff replace a product", nil, req{method: "PUT", host: a.Host, path: one, token: a.StaffToken, body: replaced,
		header: map[string]string{"If-Match": etag1}}, 200, conforms)
	etag2 = r.Header.Get("ETag")
	step(t, "a stale If-Match on PUT is a 409", nil, req{method: "PUT", host: a.Host, path: one, token: a.StaffToken, body: replaced,
		header: map[string]string{"If-Match": etag1}}, 409, conforms)
	step(t, "PUT to another product's sku is a 409", nil, req{method: "PUT", host: a.Host, path: one, token: a.StaffToken, body: product("OA-2")}, 409, conforms)
	step(t, "PUT without every required field is a 422", nil, req{method: "PUT", host: a.Host, path: one, token: a.StaffToken, body: map[string]string{"name": "x"}}, 422, violates)
	step(t, "a plain user may not PUT", nil, req{method: "PUT", host: a.Host, path: one, token: a.UserToken, body: replaced}, 403, conforms)
	step(t, "PUT to an unknown product is a 404", nil, req{method: "PUT", host: a.Host, path: missing, token: a.StaffToken, body: product("OA-9")}, 404, conforms)
	step(t, "PUT with bad JSON is a 400", nil, req{method: "PUT", host: a.Host, path: one, token: a.StaffToken, body: `[`}, 400, violates)
	step(t, "PUT with an oversized body is a 413", nil, req{method: "PUT", host: a.Host, path: one, token: a.StaffToken, body: oversized}, 413, violates)

	r = step(t, "staff patch a product", nil, req{method: "PATCH", host: a.Host, path: one, token: a.StaffToken, body: map[string]any{"stock": 7},
		header: map[string]string{"If-Match": etag2}}, 200, conforms)
	etag3 = r.Header.Get("ETag")
	step(t, "an If-Match that names no version is a 409", nil, req{method: "PATCH", host: a.Host, path: one, token: a.StaffToken, body: map[string]any{"stock": 8},
		header: map[string]string{"If-Match": "garbage"}}, 409, conforms)
	step(t, "a negative stock is a 422", nil, req{method: "PATCH", host: a.Host, path: one, token: a.StaffToken, body: map[string]any{"stock": -1}}, 422, violates)
	step(t, "a stock that is a string is a 422", nil, req{method: "PATCH", host: a.Host, path: one, token: a.StaffToken, body: map[string]any{"stock": "7"}}, 422, violates)
	step(t, "a plain user may not PATCH", nil, req{method: "PATCH", host: a.Host, path: one, token: a.UserToken, body: map[string]any{"stock": 1}}, 403, conforms)
	step(t, "PATCH to an unknown product is a 404", nil, req{method: "PATCH", host: a.Host, path: missing, token: a.StaffToken, body: map[string]any{"stock": 1}}, 404, conforms)
	step(t, "PATCH with bad JSON is a 400", nil, req{method: "PATCH", host: a.Host, path: one, token: a.StaffToken, body: `{`}, 400, violates)
	step(t, "PATCH with an oversized body is a 413", nil, req{method: "PATCH", host: a.Host, path: one, token: a.StaffToken, body: oversized}, 413, violates)

	step(t, "a plain user may not delete", nil, req{method: "DELETE", host: a.Host, path: one, token: a.UserToken}, 403, conforms)
	step(t, "a stale If-Match on DELETE is a 409", nil, req{method: "DELETE", host: a.Host, path: one, token: a.StaffToken,
		header: map[string]string{"If-Match": etag1}}, 409, conforms)
	step(t, "staff delete a product", nil, req{method: "DELETE", host: a.Host, path: one, token: a.StaffToken,
		header: map[string]string{"If-Match": etag3}}, 204, conforms)
	step(t, "a deleted product is a 404", nil, req{method: "DELETE", host: a.Host, path: one, token: a.StaffToken}, 404, conforms)
}

// searchesProducts searches a tenant's index, with search up and down.
func (o *openAPIExchanges) searchesProducts(t *testing.T) {
	e, bare, es, a, bt, step := o.e, o.bare, o.es, o.a, o.bt, o.step
	e.indexProducts(es, a, "Blue lamp", "Blue chair", "Red lamp")
	const search = "/api/catalog/products/search/"
	r := step(t, "a search page links the next", nil, req{method: "GET", host: a.Host, path: search + "?q=lamp&limit=1", token: a.UserToken}, 200, conforms)
	if next, _ := r.JSON["next"].(string); next == "" {
		t.Errorf("next = %v with two matches and limit 1", r.JSON["next"])
	}
	step(t, "a search with no match", nil, req{method: "GET", host: a.Host, path: search + "?q=" + url.QueryEscape("zzzz qqqq"), token: a.UserToken}, 200, conforms)
	step(t, "a missing q is a 422", nil, req{method: "GET", host: a.Host, path: search, token: a.UserToken}, 422, violates)
	step(t, "a blank q is a 422", nil, req{method: "GET", host: a.Host, path: search + "?q=%20%20", token: a.UserToken}, 422, violates)
	step(t, "a q over 200 characters is a 422", nil, req{method: "GET", host: a.Host, path: search + "?q=" + strings.Repeat("a", 201), token: a.UserToken}, 422, violates)
	step(t, "limit 0 is a 422", nil, req{method: "GET", host: a.Host, path: search + "?q=lamp&limit=0", token: a.UserToken}, 422, violates)
	step(t, "a cursor of nothing is a 422", nil, req{method: "GET", host: a.Host, path: search + "?q=lamp&cursor=bogus", token: a.UserToken}, 422, conforms)
	step(t, "no token is a 401", nil, req{method: "GET", host: a.Host, path: search + "?q=lamp"}, 401, violates)
	step(t, "the public domain is a 404", nil, req{method: "GET", host: publicDomain, path: search + "?q=lamp", token: a.UserToken}, 404, conforms)
	step(t, "search down is a 503", bare, req{method: "GET", host: bt.Host, path: search + "?q=lamp", token: bt.UserToken}, 503, conforms)
}

// listsAndReadsNotifications lists a user's notifications and marks one
// read.
func (o *openAPIExchanges) listsAndReadsNotifications(t *testing.T) {
	e, a, step := o.e, o.a, o.step
	n1 := e.notify(a.Schema, a.UserID, "first")
	e.notify(a.Schema, a.UserID, "second")
	staffs := e.notify(a.Schema, a.StaffID, "the staff's")
	const list = "/api/notifications/"
	r := step(t, "a page of my notifications links the next", nil, req{method: "GET", host: a.Host, path: list + "?limit=1", token: a.UserToken}, 200, conforms)
	if next, _ := r.JSON["next"].(string); next == "" {
		t.Errorf("next = %v with two notifications and limit 1", r.JSON["next"])
	}
	step(t, "the unread ones", nil, req{method: "GET", host: a.Host, path: list + "?unread=true", token: a.UserToken}, 200, conforms)
	step(t, "unread that is not a boolean is a 422", nil, req{method: "GET", host: a.Host, path: list + "?unread=maybe", token: a.UserToken}, 422, violates)
	step(t, "limit 101 is a 422", nil, req{method: "GET", host: a.Host, path: list + "?limit=101", token: a.UserToken}, 422, violates)
	step(t, "a cursor of nothing is a 422", nil, req{method: "GET", host: a.Host, path: list + "?cursor=zzz", token: a.UserToken}, 422, conforms)
	step(t, "no token is a 401", nil, req{method: "GET", host: a.Host, path: list}, 401, violates)

	read := func(id string) string { return "/api/notifications/" + id + "/read/" }
	step(t, "one of mine is marked read", nil, req{method: "POST", host: a.Host, path: read(fmt.Sprint(n1)), token: a.UserToken}, 200, conforms)
	step(t, "another user's is a 404", nil, req{method: "POST", host: a.Host, path: read(fmt.Sprint(staffs)), token: a.UserToken}, 404, conforms)
	step(t, "an id that is not a number is a 404", nil, req{method: "POST", host: a.Host, path: read("abc"), token: a.UserToken}, 404, violates)
	step(t, "id 0 is a 404", nil, req{method: "POST", host: a.Host, path: read("0"), token: a.UserToken}, 404, violates)
	step(t, "marking read without a token is a 401", nil, req{method: "POST", host: a.Host, path: read(fmt.Sprint(n1))}, 401, violates)
}

// administersATenant manages a tenant's users, products and notifications
// as its staff.
func (o *openAPIExchanges) administersATenant(t *testing.T) {
	a, oversized, step := o.a, o.oversized, o.step
	const users = "/api/admin/users/"
	step(t, "staff list users", nil, req{method: "GET", host: a.Host, path: users + "?limit=1", token: a.StaffToken}, 200, conforms)
	step(t, "a plain user may not list users", nil, req{method: "GET", host: a.Host, path: users, token: a.UserToken}, 403, conforms)
	step(t, "limit 0 is a 422", nil, req{method: "GET", host: a.Host, path: users + "?limit=0", token: a.StaffToken}, 422, violates)
	step(t, "a cursor that is not one is a 422", nil, req{method: "GET", host: a.Host, path: users + "?cursor=!!!", token: a.StaffToken}, 422, conforms)
	step(t, "no token is a 401", nil, req{method: "GET", host: a.Host, path: users}, 401, violates)

	newUser := map[string]any{"email": "new@oa.test", "password": testPassword, "is_staff": false}
	r := step(t, "staff create a user", nil, req{method: "POST", host: a.Host, path: users, token: a.StaffToken, body: newUser}, 201, conforms)
	uid, _ := r.JSON["id"].(string)
	if uid == "" {
		t.Fatalf("no id in %s", r.Raw)
	}
	step(t, "a taken email is a 409", nil, req{method: "POST", host: a.Host, path: users, token: a.StaffToken, body: newUser}, 409, conforms)
	step(t, "a short password is a 422", nil, req{method: "POST", host: a.Host, path: users, token: a.StaffToken,
		body: map[string]any{"email": "short@oa.test", "password": "short"}}, 422, violates)
	step(t, "an email that is not one is a 422", nil, req{method: "POST", host: a.Host, path: users, token: a.StaffToken,
		body: map[string]any{"email": "not-an-email", "password": testPassword}}, 422, violates)
	step(t, "creating with bad JSON is a 400", nil, req{method: "POST", host: a.Host, path: users, token: a.StaffToken, body: `{"email"`}, 400, violates)
	step(t, "creating with an oversized body is a 413", nil, req{method: "POST", host: a.Host, path: users, token: a.StaffToken, body: oversized}, 413, violates)
	step(t, "a plain user may not create users", nil, req{method: "POST", host: a.Host, path: users, token: a.UserToken, body: newUser}, 403, conforms)

	one, missing := users+uid+"/", users+uuid.NewString()+"/"
	step(t, "staff get a user", nil, req{method: "GET", host: a.Host, path: one, token: a.StaffToken}, 200, conforms)
	step(t, "an unknown user is a 404", nil, req{method: "GET", host: a.Host, path: missing, token: a.StaffToken}, 404, conforms)
	step(t, "a user id that is not one is a 404", nil, req{method: "GET", host: a.Host, path: users + "nope/", token: a.StaffToken}, 404, violates)
	step(t, "a plain user may not get users", nil, req{method: "GET", host: a.Host, path: one, token: a.UserToken}, 403, conforms)

	step(t, "staff deactivate a user", nil, req{method: "PATCH", host: a.Host, path: one, token: a.StaffToken, body: map[string]any{"is_active": false}}, 200, conforms)
	step(t, "staff may not revoke their own staff rights", nil, req{method: "PATCH", host: a.Host, path: users + a.StaffID + "/", token: a.StaffToken,
		body: map[string]any{"is_staff": false}}, 409, conforms)
	step(t, "is_active that is not a boolean is a 422", nil, req{method: "PATCH", host: a.Host, path: one, token: a.StaffToken, body: map[string]any{"is_active": "no"}}, 422, violates)
	step(t, "an unknown flag is a 422", nil, req{method: "PATCH", host: a.Host, path: one, token: a.StaffToken, body: map[string]any{"is_admin": true}}, 422, violates)
	step(t, "patching an unknown user is a 404", nil, req{method: "PATCH", host: a.Host, path: missing, token: a.StaffToken, body: map[string]any{"is_active": true}}, 404, conforms)
	step(t, "patching with bad JSON is a 400", nil, req{method: "PATCH", host: a.Host, path: one, token: a.StaffToken, body: `{`}, 400, violates)
	step(t, "patching with an oversized body is a 413", nil, req{method: "PATCH", host: a.Host, path: one, token: a.StaffToken, body: oversized}, 413, violates)
	step(t, "a plain user may not patch users", nil, req{method: "PATCH", host: a.Host, path: one, token: a.UserToken, body: map[string]any{"is_active": true}}, 403, conforms)

	pw := func(p string) string { return p + "password/" }
	step(t, "staff set a password", nil, req{method: "POST", host: a.Host, path: pw(one), token: a.StaffToken, body: map[string]string{"password": "another-good-password"}}, 204, conforms)
	step(t, "a short new password is a 422", nil, req{method: "POST", host: a.Host, path: pw(one), token: a.StaffToken, body: map[string]string{"password": "short"}}, 422, violates)
	step(t, "an unknown user's password is a 404", nil, req{method: "POST", host: a.Host, path: pw(missing), token: a.StaffToken, body: map[string]string{"password": "another-good-password"}}, 404, conforms)
	step(t, "a password with bad JSON is a 400", nil, req{method: "POST", host: a.Host, path: pw(one), token: a.StaffToken, body: `"`}, 400, violates)
	step(t, "a password with an oversized body is a 413", nil, req{method: "POST", host: a.Host, path: pw(one), token: a.StaffToken, body: oversized}, 413, violates)
	step(t, "a plain user may not set passwords", nil, req{method: "POST", host: a.Host, path: pw(one), token: a.UserToken, body: map[string]string{"password": "another-good-password"}}, 403, conforms)

	step(t, "staff search and filter users", nil, req{method: "GET", host: a.Host, path: users + "?q=OA.TEST&is_staff=false&is_active=true&limit=1", token: a.StaffToken}, 200, conforms)
	step(t, "is_staff that is not a boolean is a 422", nil, req{method: "GET", host: a.Host, path: users + "?is_staff=maybe", token: a.StaffToken}, 422, violates)
	step(t, "staff change a user's email", nil, req{method: "PATCH", host: a.Host, path: one, token: a.StaffToken, body: map[string]any{"email": "Renamed@OA.test"}}, 200, conforms)
	step(t, "a taken email is a 409 too", nil, req{method: "PATCH", host: a.Host, path: one, token: a.StaffToken, body: map[string]any{"email": a.StaffEmail}}, 409, conforms)

	const bulk = "/api/admin/users/bulk"
	step(t, "staff activate users in bulk", nil, req{method: "POST", host: a.Host, path: bulk, token: a.StaffToken,
		body: map[string]any{"ids": []string{uid, uuid.NewString()}, "is_active": true}}, 200, conforms)
	step(t, "staff may not deactivate themselves in bulk", nil, req{method: "POST", host: a.Host, path: bulk, token: a.StaffToken,
		body: map[string]any{"ids": []string{uid, a.StaffID}, "is_active": false}}, 409, conforms)
	step(t, "no ids is a 422", nil, req{method: "POST", host: a.Host, path: bulk, token: a.StaffToken, body: map[string]any{"ids": []string{}, "is_active": false}}, 422, violates)
	step(t, "a bulk change without is_active is a 422", nil, req{method: "POST", host: a.Host, path: bulk, token: a.StaffToken, body: map[string]any{"ids": []string{uid}}}, 422, violates)
	step(t, "a bulk change with bad JSON is a 400", nil, req{method: "POST", host: a.Host, path: bulk, token: a.StaffToken, body: `{`}, 400, violates)
	step(t, "a bulk change with an oversized body is a 413", nil, req{method: "POST", host: a.Host, path: bulk, token: a.StaffToken, body: oversized}, 413, violates)
	step(t, "a plain user may not change users in bulk", nil, req{method: "POST", host: a.Host, path: bulk, token: a.UserToken,
		body: map[string]any{"ids": []string{uid}, "is_active": true}}, 403, conforms)

	step(t, "staff may not delete themselves", nil, req{method: "DELETE", host: a.Host, path: users + a.StaffID + "/", token: a.StaffToken}, 409, conforms)
	step(t, "a plain user may not delete users", nil, req{method: "DELETE", host: a.Host, path: one, token: a.UserToken}, 403, conforms)
	step(t, "staff delete a user", nil, req{method: "DELETE", host: a.Host, path: one, token: a.StaffToken}, 204, conforms)
	step(t, "a deleted user is a 404", nil, req{method: "DELETE", host: a.Host, path: one, token: a.StaffToken}, 404, conforms)

	const bulkDelete = "/api/admin/products/bulk-delete"
	many := make([]string, 501)
	for i := range many {
		many[i] = uuid.NewString()
	}
	step(t, "staff delete products in bulk", nil, req{method: "POST", host: a.Host, path: bulkDelete, token: a.StaffToken,
		body: map[string]any{"ids": []string{uuid.NewString()}}}, 200, conforms)
	step(t, "501 ids are a 422", nil, req{method: "POST", host: a.Host, path: bulkDelete, token: a.StaffToken, body: map[string]any{"ids": many}}, 422, violates)
	step(t, "a bulk delete with bad JSON is a 400", nil, req{method: "POST", host: a.Host, path: bulkDelete, token: a.StaffToken, body: `[`}, 400, violates)
	step(t, "a bulk delete with an oversized body is a 413", nil, req{method: "POST", host: a.Host, path: bulkDelete, token: a.StaffToken, body: oversized}, 413, violates)
	step(t, "a plain user may not delete products in bulk", nil, req{method: "POST", host: a.Host, path: bulkDelete, token: a.UserToken,
		body: map[string]any{"ids": []string{uuid.NewString()}}}, 403, conforms)

	const aprod = "/api/admin/products/"
	step(t, "staff list products from the database", nil, req{method: "GET", host: a.Host, path: aprod + "?limit=1&ordering=name", token: a.StaffToken}, 200, conforms)
	step(t, "an unknown ordering is a 422", nil, req{method: "GET", host: a.Host, path: aprod + "?ordering=colour", token: a.StaffToken}, 422, violates)
	step(t, "a plain user may not list admin products", nil, req{method: "GET", host: a.Host, path: aprod, token: a.UserToken}, 403, conforms)

	const anote = "/api/admin/notifications/"
	step(t, "staff list every notification", nil, req{method: "GET", host: a.Host, path: anote + "?limit=1", token: a.StaffToken}, 200, conforms)
	step(t, "staff list one user's unread ones", nil, req{method: "GET", host: a.Host, path: anote + "?unread=true&user_id=" + a.UserID, token: a.StaffToken}, 200, conforms)
	step(t, "a user_id that is not one is a 422", nil, req{method: "GET", host: a.Host, path: anote + "?user_id=nope", token: a.StaffToken}, 422, violates)
	step(t, "an empty user_id, limit and unread are the same as none", nil, req{method: "GET", host: a.Host, path: anote + "?user_id=&limit=&unread=", token: a.StaffToken}, 200, conforms)
	step(t, "a plain user may not list every notification", nil, req{method: "GET", host: a.Host, path: anote, token: a.UserToken}, 403, conforms)

	const aaudit = "/api/admin/audit/"
	step(t, "staff list the audit trail", nil, req{method: "GET", host: a.Host, path: aaudit + "?limit=1", token: a.StaffToken}, 200, conforms)
	step(t, "staff filter the audit trail", nil, req{method: "GET", host: a.Host, path: aaudit + "?action=product.create&target_type=product&actor=" + a.StaffID + "&target_id=x", token: a.StaffToken}, 200, conforms)
	step(t, "a filter past 200 bytes is a 422", nil, req{method: "GET", host: a.Host, path: aaudit + "?action=" + strings.Repeat("a", 201), token: a.StaffToken}, 422, violates)
	step(t, "an audit cursor that is not one is a 422", nil, req{method: "GET", host: a.Host, path: aaudit + "?cursor=!!!", token: a.StaffToken}, 422, conforms)
	step(t, "a plain user may not read the audit trail", nil, req{method: "GET", host: a.Host, path: aaudit, token: a.UserToken}, 403, conforms)
}

// upgradesToAWebSocket refuses the upgrades the document refuses and
// makes one that succeeds.
func (o *openAPIExchanges) upgradesToAWebSocket(t *testing.T) {
	d, e, bare, srv, a, bt, upgrade, step := o.d, o.e, o.bare, o.srv, o.a, o.bt, o.upgrade, o.step
	const ws = "/ws/notifications/"
	step(t, "no token is a 401", nil, req{method: "GET", host: a.Host, path: ws, header: upgrade}, 401, violates)
	step(t, "a garbage token in the query is a 401", nil, req{method: "GET", host: a.Host, path: ws + "?token=garbage", header: upgrade}, 401, conforms)
	step(t, "a request that is no upgrade is a 426", nil, req{method: "GET", host: a.Host, path: ws, token: a.UserToken}, 426, violates)
	step(t, "since -1 is a 422", nil, req{method: "GET", host: a.Host, path: ws + "?since=-1", token: a.UserToken, header: upgrade}, 422, violates)
	step(t, "an unsupported WebSocket version is a 400", nil, req{method: "GET", host: a.Host, path: ws, token: a.UserToken,
		header: withHeader(upgrade, "Sec-WebSocket-Version", "12")}, 400, violates)
	step(t, "an unknown host is a 404", nil, req{method: "GET", host: unknownHost, path: ws, token: a.UserToken, header: upgrade}, 404, conforms)
	step(t, "the public domain is a 404", nil, req{method: "GET", host: publicDomain, path: ws, token: a.UserToken, header: upgrade}, 404, conforms)
	step(t, "a server without a push node answers 503", bare, req{method: "GET", host: bt.Host, path: ws, token: bt.UserToken, header: upgrade}, 503, conforms)

	t.Run("an upgrade switches protocols and sends what was missed", func(t *testing.T) {
		e.notify(a.Schema, a.UserID, "missed")
		q := "?since=0&token=" + url.QueryEscape(a.UserToken)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+ws+q, &websocket.DialOptions{Host: a.Host})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.CloseNow()
		hr := httpRequest(t, req{method: "GET", host: a.Host, path: ws + q, header: upgrade})
		d.check(t, hr, conforms, resp.StatusCode, resp.Header, nil)
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("status %d, want 101", resp.StatusCode)
		}
		_, msg, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		d.validateSchema(t, "PushNotification", msg)
		_ = conn.Close(websocket.StatusNormalClosure, "")
	})
}

// administersThePlatform signs a superuser in and manages tenants and
// their domains.
func (o *openAPIExchanges) administersThePlatform(t *testing.T) {
	d, e, bare, a, suToken, bareSuToken, oversized, step := o.d, o.e, o.bare, o.a, o.suToken, o.bareSuToken, o.oversized, o.step
	creds := map[string]string{"email": "root@oa.test", "password": testPassword}
	for _, p := range []string{"/api/platform/auth/token", "/api/platform/auth/token/"} {
		step(t, "a superuser signs in at "+p, nil, req{method: "POST", host: publicDomain, path: p, body: creds}, 200, conforms)
	}
	const ptok = "/api/platform/auth/token"
	step(t, "a wrong password is refused", nil, req{method: "POST", host: publicDomain, path: ptok,
		body: map[string]string{"email": "root@oa.test", "password": "wrong-password"}}, 401, conforms)
	step(t, "sign-in with bad JSON is a 400", nil, req{method: "POST", host: publicDomain, path: ptok, body: `{`}, 400, violates)
	step(t, "sign-in without a password is a 422", nil, req{method: "POST", host: publicDomain, path: ptok, body: map[string]string{"email": "root@oa.test"}}, 422, violates)
	step(t, "sign-in on a tenant domain is a 404", nil, req{method: "POST", host: a.Host, path: ptok, body: creds}, 404, conforms)
	step(t, "sign-in with an oversized body is a 413", nil, req{method: "POST", host: publicDomain, path: ptok, body: oversized}, 413, violates)

	const tenants = "/api/platform/tenants/"
	step(t, "a superuser lists tenants", nil, req{method: "GET", host: publicDomain, path: tenants, token: suToken}, 200, conforms)
	step(t, "a superuser searches, filters and pages tenants", nil, req{method: "GET", host: publicDomain,
		path: tenants + "?q=oa&state=active&ordering=-created_at&limit=1", token: suToken}, 200, conforms)
	step(t, "an unknown state is a 422", nil, req{method: "GET", host: publicDomain, path: tenants + "?state=gone", token: suToken}, 422, violates)
	step(t, "no token is a 401", nil, req{method: "GET", host: publicDomain, path: tenants}, 401, violates)
	step(t, "a tenant token is a 401", nil, req{method: "GET", host: publicDomain, path: tenants, token: a.StaffToken}, 401, conforms)
	step(t, "a tenant domain is a 404", nil, req{method: "GET", host: a.Host, path: tenants, token: suToken}, 404, conforms)
	step(t, "a server without tenant administration answers 503", bare, req{method: "GET", host: publicDomain, path: tenants, token: bareSuToken}, 503, conforms)

	schemaName := "oa_new_" + testenv.RandomName(8)
	host := strings.ReplaceAll(schemaName, "_", "-") + ".example.test"
	create := map[string]string{"schema": schemaName, "name": "New tenant", "domain": host}
	step(t, "a superuser creates a tenant", nil, req{method: "POST", host: publicDomain, path: tenants, token: suToken, body: create}, 201, conforms)
	step(t, "a taken schema is a 409", nil, req{method: "POST", host: publicDomain, path: tenants, token: suToken, body: create}, 409, conforms)
	step(t, "a schema PostgreSQL reserves is a 422", nil, req{method: "POST", host: publicDomain, path: tenants, token: suToken,
		body: map[string]string{"schema": "pg_oa", "name": "x", "domain": "pg-oa.example.test"}}, 422, conforms)
	step(t, "a schema with capitals is a 422", nil, req{method: "POST", host: publicDomain, path: tenants, token: suToken,
		body: map[string]string{"schema": "Bad", "name": "x", "domain": "bad.example.test"}}, 422, violates)
	step(t, "missing fields are a 422", nil, req{method: "POST", host: publicDomain, path: tenants, token: suToken, body: map[string]string{}}, 422, violates)
	step(t, "a cluster the server does not know is a 422", nil, req{method: "POST", host: publicDomain, path: tenants, token: suToken,
		body: map[string]string{"schema": "oa_lost", "name": "x", "domain": "oa-lost.example.test", "cluster": "pg9"}}, 422, conforms)
	step(t, "a cluster no name could be is a 422", nil, req{method: "POST", host: publicDomain, path: tenants, token: suToken,
		body: map[string]string{"schema": "oa_lost", "name": "x", "domain": "oa-lost.example.test", "cluster": "Main"}}, 422, violates)
	placed := "oa_main_" + testenv.RandomName(8)
	step(t, "a superuser creates a tenant on a named cluster", nil, req{method: "POST", host: publicDomain, path: tenants, token: suToken,
		body: map[string]string{"schema": placed, "name": "Placed", "domain": strings.ReplaceAll(placed, "_", "-") + ".example.test", "cluster": "main"}}, 201, conforms)
	step(t, "a superuser deletes it", nil, req{method: "DELETE", host: publicDomain, path: tenants + placed + "/", token: suToken}, 204, conforms)
	step(t, "creating with bad JSON is a 400", nil, req{method: "POST", host: publicDomain, path: tenants, token: suToken, body: `{`}, 400, violates)
	step(t, "creating with an oversized body is a 413", nil, req{method: "POST", host: publicDomain, path: tenants, token: suToken, body: oversized}, 413, violates)

	one := tenants + schemaName + "/"
	step(t, "a superuser gets a tenant", nil, req{method: "GET", host: publicDomain, path: one, token: suToken}, 200, conforms)
	step(t, "an unknown tenant is a 404", nil, req{method: "GET", host: publicDomain, path: tenants + "no_such_tenant/", token: suToken}, 404, conforms)
	step(t, "a superuser renames a tenant", nil, req{method: "PATCH", host: publicDomain, path: one, token: suToken, body: map[string]string{"name": "Renamed"}}, 200, conforms)
	step(t, "an empty change returns the tenant", nil, req{method: "PATCH", host: publicDomain, path: one, token: suToken, body: map[string]string{}}, 200, conforms)
	step(t, "a blank name is a 422", nil, req{method: "PATCH", host: publicDomain, path: one, token: suToken, body: map[string]string{"name": ""}}, 422, violates)
	step(t, "renaming an unknown tenant is a 404", nil, req{method: "PATCH", host: publicDomain, path: tenants + "no_such_tenant/", token: suToken, body: map[string]string{"name": "x"}}, 404, conforms)
	step(t, "renaming with bad JSON is a 400", nil, req{method: "PATCH", host: publicDomain, path: one, token: suToken, body: `{`}, 400, violates)
	step(t, "renaming with an oversized body is a 413", nil, req{method: "PATCH", host: publicDomain, path: one, token: suToken, body: oversized}, 413, violates)
	step(t, "a superuser suspends a tenant", nil, req{method: "POST", host: publicDomain, path: one + "suspend", token: suToken}, 200, conforms)
	step(t, "a suspended tenant's sign-in is a 403", nil, req{method: "POST", host: host, path: "/api/auth/token",
		body: map[string]string{"email": "x@oa.test", "password": testPassword}}, 403, conforms)
	step(t, "suspending an unknown tenant is a 404", nil, req{method: "POST", host: publicDomain, path: tenants + "no_such_tenant/suspend", token: suToken}, 404, conforms)
	step(t, "a superuser resumes a tenant", nil, req{method: "POST", host: publicDomain, path: one + "resume", token: suToken}, 200, conforms)
	step(t, "resuming without a token is a 401", nil, req{method: "POST", host: publicDomain, path: one + "resume"}, 401, violates)

	domains := one + "domains/"
	www := "www." + host
	step(t, "a superuser adds a domain", nil, req{method: "POST", host: publicDomain, path: domains, token: suToken, body: map[string]any{"domain": www}}, 201, conforms)
	step(t, "another tenant's domain is a 409", nil, req{method: "POST", host: publicDomain, path: domains, token: suToken, body: map[string]any{"domain": a.Host}}, 409, conforms)
	step(t, "the public domain is a 409", nil, req{method: "POST", host: publicDomain, path: domains, token: suToken, body: map[string]any{"domain": publicDomain}}, 409, conforms)
	step(t, "a host with a port is a 422", nil, req{method: "POST", host: publicDomain, path: domains, token: suToken, body: map[string]any{"domain": "x.example.test:80"}}, 422, violates)
	step(t, "a domain for an unknown tenant is a 404", nil, req{method: "POST", host: publicDomain, path: tenants + "no_such_tenant/domains/", token: suToken,
		body: map[string]any{"domain": "nobody-else.example.test"}}, 404, conforms)
	step(t, "adding with bad JSON is a 400", nil, req{method: "POST", host: publicDomain, path: domains, token: suToken, body: `{`}, 400, violates)
	step(t, "adding with an oversized body is a 413", nil, req{method: "POST", host: publicDomain, path: domains, token: suToken, body: oversized}, 413, violates)

	step(t, "a superuser moves the primary flag", nil, req{method: "PATCH", host: publicDomain, path: domains + www + "/", token: suToken, body: map[string]any{"is_primary": true}}, 200, conforms)
	step(t, "clearing the primary flag is a 422", nil, req{method: "PATCH", host: publicDomain, path: domains + www + "/", token: suToken, body: map[string]any{"is_primary": false}}, 422, violates)
	step(t, "another tenant's domain is a 404", nil, req{method: "PATCH", host: publicDomain, path: domains + a.Host + "/", token: suToken, body: map[string]any{"is_primary": true}}, 404, conforms)
	step(t, "moving with bad JSON is a 400", nil, req{method: "PATCH", host: publicDomain, path: domains + www + "/", token: suToken, body: `{`}, 400, violates)
	step(t, "moving with an oversized body is a 413", nil, req{method: "PATCH", host: publicDomain, path: domains + www + "/", token: suToken, body: oversized}, 413, violates)

	step(t, "the primary domain cannot be removed", nil, req{method: "DELETE", host: publicDomain, path: domains + www + "/", token: suToken}, 409, conforms)
	step(t, "a superuser removes a domain", nil, req{method: "DELETE", host: publicDomain, path: domains + host + "/", token: suToken}, 204, conforms)
	step(t, "a removed domain is a 404", nil, req{method: "DELETE", host: publicDomain, path: domains + host + "/", token: suToken}, 404, conforms)

	step(t, "deleting without a token is a 401", nil, req{method: "DELETE", host: publicDomain, path: one}, 401, violates)
	step(t, "a superuser deletes a tenant", nil, req{method: "DELETE", host: publicDomain, path: one, token: suToken}, 204, conforms)
	step(t, "a deleted tenant is a 404", nil, req{method: "DELETE", host: publicDomain, path: one, token: suToken}, 404, conforms)

	const sus = "/api/platform/superusers/"
	twoID, twoToken := e.superuser("two@oa.test")
	rootID := ""
	r := step(t, "a superuser lists superusers", nil, req{method: "GET", host: publicDomain, path: sus + "?limit=100", token: suToken}, 200, conforms)
	for _, it := range r.JSON["results"].([]any) {
		if m := it.(map[string]any); m["email"] == "root@oa.test" {
			rootID, _ = m["id"].(string)
		}
	}
	step(t, "superusers by page", nil, req{method: "GET", host: publicDomain, path: sus + "?limit=1", token: suToken}, 200, conforms)
	step(t, "a tenant token never lists superusers", nil, req{method: "GET", host: publicDomain, path: sus, token: a.StaffToken}, 401, conforms)
	step(t, "superusers on a tenant domain are a 404", nil, req{method: "GET", host: a.Host, path: sus, token: suToken}, 404, conforms)
	step(t, "a superuser deactivates another", nil, req{method: "PATCH", host: publicDomain, path: sus + twoID + "/", token: suToken, body: map[string]any{"is_active": false}}, 200, conforms)
	step(t, "the deactivated superuser's token stops at once", nil, req{method: "GET", host: publicDomain, path: sus, token: twoToken}, 401, conforms)
	step(t, "the last active superuser stays", nil, req{method: "PATCH", host: publicDomain, path: sus + rootID + "/", token: suToken, body: map[string]any{"is_active": false}}, 409, conforms)
	step(t, "a superuser reactivates another", nil, req{method: "PATCH", host: publicDomain, path: sus + twoID + "/", token: suToken, body: map[string]any{"is_active": true}}, 200, conforms)
	step(t, "a change without is_active is a 422", nil, req{method: "PATCH", host: publicDomain, path: sus + twoID + "/", token: suToken, body: map[string]any{}}, 422, violates)
	step(t, "an unknown superuser is a 404", nil, req{method: "PATCH", host: publicDomain, path: sus + uuid.NewString() + "/", token: suToken, body: map[string]any{"is_active": true}}, 404, conforms)
	step(t, "a superuser change with bad JSON is a 400", nil, req{method: "PATCH", host: publicDomain, path: sus + twoID + "/", token: suToken, body: `{`}, 400, violates)
	step(t, "a superuser change with an oversized body is a 413", nil, req{method: "PATCH", host: publicDomain, path: sus + twoID + "/", token: suToken, body: oversized}, 413, violates)
	step(t, "a superuser resets another's password", nil, req{method: "POST", host: publicDomain, path: sus + twoID + "/password/", token: suToken,
		body: map[string]string{"password": "another-root-password"}}, 204, conforms)
	step(t, "the reset revokes their tokens", nil, req{method: "GET", host: publicDomain, path: sus, token: twoToken}, 401, conforms)
	step(t, "a short superuser password is a 422", nil, req{method: "POST", host: publicDomain, path: sus + twoID + "/password/", token: suToken,
		body: map[string]string{"password": "short"}}, 422, violates)
	step(t, "an unknown superuser's password is a 404", nil, req{method: "POST", host: publicDomain, path: sus + uuid.NewString() + "/password/", token: suToken,
		body: map[string]string{"password": "another-root-password"}}, 404, conforms)
	step(t, "a superuser password with bad JSON is a 400", nil, req{method: "POST", host: publicDomain, path: sus + twoID + "/password/", token: suToken, body: `{`}, 400, violates)
	step(t, "a superuser password with an oversized body is a 413", nil, req{method: "POST", host: publicDomain, path: sus + twoID + "/password/", token: suToken, body: oversized}, 413, violates)

	const paudit = "/api/platform/audit/"
	step(t, "a superuser reads the platform audit trail", nil, req{method: "GET", host: publicDomain, path: paudit + "?limit=2", token: suToken}, 200, conforms)
	step(t, "a superuser filters it by target", nil, req{method: "GET", host: publicDomain, path: paudit + "?target_type=tenant&target_id=" + schemaName, token: suToken}, 200, conforms)
	step(t, "a tenant token never reads it", nil, req{method: "GET", host: publicDomain, path: paudit, token: a.StaffToken}, 401, conforms)
	step(t, "on a tenant domain it is a 404", nil, req{method: "GET", host: a.Host, path: paudit, token: suToken}, 404, conforms)
	step(t, "a platform audit limit of 0 is a 422", nil, req{method: "GET", host: publicDomain, path: paudit + "?limit=0", token: suToken}, 422, violates)

	t.Run("sign-in attempts past the limit are a 429", func(t *testing.T) {
		malformed := req{method: "POST", host: publicDomain, path: ptok, body: `{`}
		for i := 0; ; i++ {
			if i == 20 {
				t.Fatal("20 sign-in attempts and no 429")
			}
			if r := d.exchange(t, e, malformed, violates); r.Code == 429 {
				break
			} else if r.Code != 400 {
				t.Fatalf("attempt %d = %d, want 400 or 429: %s", i+1, r.Code, r.Raw)
			}
		}
		wrong := req{method: "POST", host: publicDomain, path: ptok, body: map[string]string{"email": "root@oa.test", "password": "wrong-password"}}
		if r := d.exchange(t, e, wrong, conforms); r.Code != 429 {
			t.Fatalf("a sign-in past the limit = %d, want 429: %s", r.Code, r.Raw)
		}
	})
}

// refusesUnservedMethods sends every method a documented path does not
// serve.
func (o *openAPIExchanges) refusesUnservedMethods(t *testing.T) {
	d, e, a, suToken := o.d, o.e, o.a, o.suToken
	// As the document's description says: Echo's catch-all routes of
	// the guarded groups answer such a request, never with a 405.
	fill := strings.NewReplacer("{id}", uuid.NewString(), "{schema}", a.Schema, "{domain}", a.Host)
	for path, item := range d.doc.Paths.Map() {
		host, token := a.Host, a.StaffToken
		for _, op := range item.Operations() {
			if op.Extensions["x-host"] == "public" {
				host, token = publicDomain, suToken
			}
		}
		concrete := fill.Replace(path)
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
			if d.documentsAnywhere(m, concrete) {
				continue // e.g. PUT .../search/ is PUT .../{id}/ to the server
			}
			if r := e.do(req{method: m, host: host, path: concrete, token: token}); r.Code != http.StatusNotFound {
				t.Errorf("%s %s on %s = %d, want 404: %s", m, concrete, host, r.Code, truncate(r.Raw))
			}
		}
	}
}

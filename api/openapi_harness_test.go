package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/tenantworks/saas/api"
)

// servedOpenAPI fetches GET /api/openapi.json from a server built without
// any dependency (the route needs none) and returns the body.
func servedOpenAPI(tb testing.TB, host string) []byte {
	tb.Helper()
	srv := api.New(api.Config{PublicDomain: publicDomain}, api.Deps{Log: slog.New(slog.DiscardHandler)})
	hr := httptest.NewRequest(http.MethodGet, "/api/openapi.json", nil)
	hr.Host = host
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, hr)
	if rec.Code != http.StatusOK {
		tb.Fatalf("GET /api/openapi.json on %s = %d %s", host, rec.Code, rec.Body.Bytes())
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Fatalf("GET /api/openapi.json on %s: Content-Type %q, want application/json", host, ct)
	}
	return rec.Body.Bytes()
}

// mustLoadOpenAPI loads and validates the served document.
func mustLoadOpenAPI(tb testing.TB) *openapi3.T {
	tb.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(servedOpenAPI(tb, publicDomain))
	if err != nil {
		tb.Fatalf("load the OpenAPI document: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		tb.Fatalf("the OpenAPI document is not valid: %v", err)
	}
	return doc
}

// openAPIPath writes an Echo route path in OpenAPI's syntax: ":id" becomes
// "{id}". A wildcard has no OpenAPI equivalent and is reported.
func openAPIPath(echoPath string) (string, error) {
	segs := strings.Split(echoPath, "/")
	for i, s := range segs {
		switch {
		case strings.HasPrefix(s, ":"):
			segs[i] = "{" + s[1:] + "}"
		case strings.Contains(s, "*"):
			return "", fmt.Errorf("route %q has a wildcard, which OpenAPI cannot describe", echoPath)
		}
	}
	return strings.Join(segs, "/"), nil
}

// conformance is whether a test request is one the document accepts.
type conformance int

const (
	// conforms: the request is valid per the document (what it can say:
	// a wrong password or an unknown id still conforms).
	conforms conformance = iota
	// violates: the document refuses the request (a missing token, a bad
	// body or parameter), so a client following it never sends it.
	violates
	// unchecked: the request is not held to the document.
	unchecked
)

// docChecker validates requests and responses against the document, and
// records which statuses of which operations the tests saw.
type docChecker struct {
	doc    *openapi3.T
	router routers.Router
	opts   *openapi3filter.Options

	mu   sync.Mutex
	seen map[string]map[int]bool // "METHOD /path" -> statuses
}

func newDocChecker(tb testing.TB) *docChecker {
	tb.Helper()
	doc := mustLoadOpenAPI(tb)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		tb.Fatalf("route the OpenAPI document: %v", err)
	}
	return &docChecker{doc: doc, router: router, seen: map[string]map[int]bool{}, opts: &openapi3filter.Options{
		IncludeResponseStatus: true,
		MultiError:            true,
		AuthenticationFunc:    presentCredentials,
		SchemaValidationOptions: []openapi3.SchemaValidationOption{
			openapi3.WithStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562)),
			openapi3.WithStringFormatValidator("email", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForEmail)),
			openapi3.WithStringFormatValidator("uri", openapi3.NewCallbackValidator(func(s string) error {
				if u, err := url.Parse(s); err != nil || !u.IsAbs() {
					return fmt.Errorf("%q is not an absolute URL", s)
				}
				return nil
			})),
		},
	}}
}

// presentCredentials passes a security requirement when the request
// carries the credential it names; whether the token is good is the
// server's business, not the document's.
func presentCredentials(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	r := in.RequestValidationInput.Request
	s := in.SecurityScheme
	switch s.Type {
	case "http":
		scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if ok && strings.EqualFold(scheme, s.Scheme) && tok != "" {
			return nil
		}
		return fmt.Errorf("no %s credentials in Authorization", s.Scheme)
	case "apiKey":
		if s.In == "query" && r.URL.Query().Get(s.Name) != "" {
			return nil
		}
		return fmt.Errorf("no %s in the %s", s.Name, s.In)
	}
	return fmt.Errorf("security scheme type %q is not checked here", s.Type)
}

// httpRequest builds the request that env.do sends for r.
func httpRequest(tb testing.TB, r req) *http.Request {
	tb.Helper()
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		body = bytes.NewReader(j)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	hr.Host = r.host
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	return hr
}

// check holds one exchange to the document: the operation must be
// documented, the request must conform (or not) as said, and the
// response's status must be one the operation documents, with the
// documented headers and body.
func (d *docChecker) check(t *testing.T, hr *http.Request, conform conformance, code int, header http.Header, body []byte) {
	t.Helper()
	ctx := context.Background()
	route, params, err := d.router.FindRoute(hr)
	if err != nil {
		t.Fatalf("%s %s is not in the OpenAPI document: %v", hr.Method, hr.URL.Path, err)
	}
	key := route.Method + " " + route.Path
	d.mu.Lock()
	if d.seen[key] == nil {
		d.seen[key] = map[int]bool{}
	}
	d.seen[key][code] = true
	d.mu.Unlock()

	// ValidateResponse skips some statuses (304 among them) without looking
	// them up, so whether the status is documented is checked here.
	if route.Operation.Responses.Status(code) == nil {
		t.Errorf("%s answered %d, which the document does not list for it (%v); body %s",
			key, code, documentedStatuses(route.Operation), body)
	}

	in := &openapi3filter.RequestValidationInput{Request: hr, PathParams: params, Route: route, Options: d.opts}
	if conform != unchecked {
		err := openapi3filter.ValidateRequest(ctx, in)
		switch {
		case conform == conforms && err != nil:
			t.Errorf("the document refuses a request the test holds valid: %s %s: %v", hr.Method, hr.URL, err)
		case conform == violates && err == nil:
			t.Errorf("the document accepts a request the test holds invalid: %s %s", hr.Method, hr.URL)
		}
	}

	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: code, Header: header, Options: d.opts}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("%s answered %d against the document: %v\nbody: %s", key, code, err, truncate(body))
	}
}

// validateSchema checks a JSON value against a component schema.
func (d *docChecker) validateSchema(t *testing.T, name string, raw []byte) {
	t.Helper()
	ref := d.doc.Components.Schemas[name]
	if ref == nil || ref.Value == nil {
		t.Fatalf("no schema %s in the document", name)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v: %s", name, err, raw)
	}
	if err := ref.Value.VisitJSON(v, append(slices.Clone(d.opts.SchemaValidationOptions), openapi3.MultiErrors())...); err != nil {
		t.Errorf("%s does not match schema %s: %v", raw, name, err)
	}
}

// successless lists the documented operations that no check saw answer
// with a success (1xx, 2xx or 304).
func (d *docChecker) successless() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for path, item := range d.doc.Paths.Map() {
		for method := range item.Operations() {
			key := method + " " + path
			ok := false
			for code := range d.seen[key] {
				if code < 300 || code == http.StatusNotModified {
					ok = true
				}
			}
			if !ok {
				out = append(out, key)
			}
		}
	}
	slices.Sort(out)
	return out
}

// unexercised lists, per operation, the documented statuses no check saw.
func (d *docChecker) unexercised() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for path, item := range d.doc.Paths.Map() {
		for method, op := range item.Operations() {
			key := method + " " + path
			var missing []string
			for _, code := range documentedStatuses(op) {
				if n, err := strconv.Atoi(code); err == nil && !d.seen[key][n] {
					missing = append(missing, code)
				}
			}
			if len(missing) > 0 {
				out = append(out, key+": "+strings.Join(missing, " "))
			}
		}
	}
	slices.Sort(out)
	return out
}

// documentsAnywhere reports whether some documented path template with
// method matches the concrete path. OpenAPI matches a concrete path before
// a templated one, but Echo routes a method the concrete path lacks to a
// template that has it.
func (d *docChecker) documentsAnywhere(method, path string) bool {
	for tmpl, item := range d.doc.Paths.Map() {
		if item.GetOperation(method) == nil {
			continue
		}
		segs := strings.Split(tmpl, "/")
		for i, seg := range segs {
			if strings.HasPrefix(seg, "{") {
				segs[i] = "[^/]+"
			} else {
				segs[i] = regexp.QuoteMeta(seg)
			}
		}
		if regexp.MustCompile("^" + strings.Join(segs, "/") + "$").MatchString(path) {
			return true
		}
	}
	return false
}

func documentedStatuses(op *openapi3.Operation) []string {
	var out []string
	for code := range op.Responses.Map() {
		out = append(out, code)
	}
	slices.Sort(out)
	return out
}

func truncate(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "..."
	}
	return string(b)
}

// exchange sends r through e and holds the exchange to the document.
func (d *docChecker) exchange(t *testing.T, e *env, r req, conform conformance) response {
	t.Helper()
	res := e.do(r)
	d.check(t, httpRequest(t, r), conform, res.Code, res.Header, res.Raw)
	return res
}

// failingPinger is a readiness check whose dependency is down.
type failingPinger struct{}

func (failingPinger) Ping(context.Context) error { return errors.New("connection refused") }

// pingerFunc adapts a function to api.Pinger.
type pingerFunc func(context.Context) error

func (f pingerFunc) Ping(ctx context.Context) error { return f(ctx) }

package api

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/tenantworks/saas/pkg/domain"
)

// The fuzz targets of this file drive what the API parses from a request
// before any store is involved: product bodies, If-Match, ?since=, the
// token's places and the Host header. Run one with
//
//	go test -run '^$' -fuzz '^FuzzProductPayload$' -fuzztime 10s ./api
//
// (or `go tool task fuzz` for every target of the module).

var (
	skuModelRE      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$`)
	priceModelRE    = regexp.MustCompile(`^\d{1,12}\.\d{2}$`)
	currencyModelRE = regexp.MustCompile(`^[A-Z]{3}$`)
)

// storableText reports whether PostgreSQL can store s in a text column.
func storableText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// Body limits of FuzzProductPayload, by its mode argument: the server's
// default, and a small one declared (Content-Length) or discovered while
// reading (chunked).
const smallLimit = 64

// FuzzProductPayload sends a body through the path of create, PUT and
// PATCH (body limit, decodeJSON, Validate) and maps the outcome with the
// server's own error table. It must end in a valid patch or in a 400, 413
// or 422, never anything else.
func FuzzProductPayload(f *testing.F) {
	for _, s := range []string{
		`{"sku":"SKU-1","name":"Widget","price":"12.5","currency":"EUR"}`,
		`{"sku":" sku/1.a_b ","name":"  Widget  ","description":"","price":"0","currency":"USD","stock":0}`,
		`{"price":"12.345"}`, `{"price":12.5}`, `{"price":"012.50"}`, `{"price":"1e3"}`, `{"price":"-1"}`,
		`{"stock":1.5}`, `{"stock":1e3}`, `{"stock":"3"}`, `{"stock":2147483648}`, `{"stock":99999999999999999999}`,
		`{"currency":"eur"}`, `{"currency":"ABC"}`, `{"name":"\u0000"}`, `{"name":"a\u0000b"}`, `{"description":"\u0000"}`,
		`{"name":"\ud800"}`, `{"name":"` + strings.Repeat("é", 201) + `"}`, `{"sku":{"a":1}}`, `{"sku":["a"]}`,
		`{"colour":"red"}`, `{"SKU":"a"}`, `{"name":"a","name":"b"}`, `{}`, `[]`, `null`, ` null `, `"x"`, `1`, ``, `{`,
		`{} {}`, `{}x`, `{"sku":"a"}` + strings.Repeat(" ", 100), strings.Repeat("[", 10000),
	} {
		for mode := range uint8(3) {
			f.Add([]byte(s), mode%2 == 0, mode)
		}
	}
	srv := &Server{log: slog.New(slog.DiscardHandler)}
	e := echo.New()
	limits := []echo.MiddlewareFunc{middleware.BodyLimit("1M"), middleware.BodyLimit(strconv.Itoa(smallLimit) + "B")}
	f.Fuzz(func(t *testing.T, body []byte, full bool, mode uint8) {
		mode %= 3
		limit := int64(1 << 20)
		if mode > 0 {
			limit = smallLimit
		}
		var patch domain.ProductPatch
		h := limits[min(mode, 1)](func(c echo.Context) error {
			var req productRequest
			if err := decodeJSON(c, &req); err != nil {
				return err
			}
			patch = req.toPatch()
			return patch.Validate(full)
		})
		r := httptest.NewRequest(http.MethodPatch, "/api/catalog/products/x/", bytes.NewReader(body))
		if mode == 2 {
			r.ContentLength = -1 // chunked: the limit is found while reading
		}
		c := e.NewContext(r, httptest.NewRecorder())
		err := h(c)
		if err != nil {
			status, out := srv.errorResponse(c, err)
			var he *echo.HTTPError
			var de *domain.Error
			switch {
			case errors.As(err, &he) && (he.Code == http.StatusBadRequest || he.Code == http.StatusRequestEntityTooLarge):
				if he.Code == http.StatusRequestEntityTooLarge && int64(len(body)) <= limit {
					t.Fatalf("413 for a body of %d bytes under the limit of %d", len(body), limit)
				}
			case errors.As(err, &de) && de.Code == domain.EINVALID && len(de.Details) > 0:
			default:
				t.Fatalf("body %q: error %v (%T), want a 400, 413 or an EINVALID *domain.Error with details", body, err, err)
			}
			if status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge && status != http.StatusUnprocessableEntity {
				t.Fatalf("body %q answered %d %+v", body, status, out)
			}
			return
		}
		if int64(len(body)) > limit {
			t.Fatalf("a body of %d bytes accepted with a limit of %d", len(body), limit)
		}
		if b := bytes.TrimLeft(body, " \t\r\n"); len(b) == 0 || b[0] != '{' {
			t.Fatalf("body %q accepted: not a JSON object", body)
		}
		if full && (patch.SKU == nil || patch.Name == nil || patch.Price == nil || patch.Currency == nil) {
			t.Fatalf("body %q accepted for a full write without every required field", body)
		}
		if p := patch.SKU; p != nil && !skuModelRE.MatchString(*p) {
			t.Fatalf("body %q: accepted sku %q", body, *p)
		}
		if p := patch.Name; p != nil && (utf8.RuneCountInString(*p) < 1 || utf8.RuneCountInString(*p) > 200 || strings.TrimSpace(*p) != *p || !storableText(*p)) {
			t.Fatalf("body %q: accepted name %q", body, *p)
		}
		if p := patch.Description; p != nil && (utf8.RuneCountInString(*p) > 5000 || !storableText(*p)) {
			t.Fatalf("body %q: accepted description %q", body, *p)
		}
		if p := patch.Price; p != nil && !priceModelRE.MatchString(*p) {
			t.Fatalf("body %q: accepted price %q", body, *p)
		}
		if p := patch.Currency; p != nil && !currencyModelRE.MatchString(*p) {
			t.Fatalf("body %q: accepted currency %q", body, *p)
		}
		if p := patch.Stock; p != nil && (*p < 0 || *p > 1<<31-1) {
			t.Fatalf("body %q: accepted stock %d", body, *p)
		}
		// The normalized patch is a fixed point of Validate.
		again := clonePatch(patch)
		if err := again.Validate(full); err != nil || !samePatch(again, patch) {
			t.Fatalf("body %q: the accepted patch does not validate again unchanged: %v", body, err)
		}
	})
}

func clonePatch(p domain.ProductPatch) domain.ProductPatch {
	s := func(v *string) *string {
		if v == nil {
			return nil
		}
		c := *v
		return &c
	}
	out := domain.ProductPatch{SKU: s(p.SKU), Name: s(p.Name), Description: s(p.Description), Price: s(p.Price), Currency: s(p.Currency)}
	if p.Stock != nil {
		n := *p.Stock
		out.Stock = &n
	}
	return out
}

func samePatch(a, b domain.ProductPatch) bool {
	s := func(x, y *string) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return s(a.SKU, b.SKU) && s(a.Name, b.Name) && s(a.Description, b.Description) && s(a.Price, b.Price) &&
		s(a.Currency, b.Currency) && (a.Stock == nil) == (b.Stock == nil) && (a.Stock == nil || *a.Stock == *b.Stock)
}

// FuzzIfMatch reads arbitrary If-Match values: absent or "*" is no
// condition; a value is taken only when it is exactly one of our ETags
// (strong or weak), which always works for every version; anything else
// can never match (409).
func FuzzIfMatch(f *testing.F) {
	for _, s := range []string{"", "*", " * ", `"v1"`, `W/"v1"`, ` "v7" `, `"v05"`, `"v+5"`, `"v-1"`, `"v5`, `v5`, `"V5"`,
		`"v1", "v2"`, `"v9223372036854775807"`, `"v9223372036854775808"`, `w/"v1"`, `W/W/"v1"`} {
		f.Add(s, int64(1))
	}
	f.Add("", int64(1<<63-1))
	e := echo.New()
	read := func(h string) (*int64, error) {
		r := httptest.NewRequest(http.MethodPatch, "/", nil)
		if h != "" {
			r.Header.Set("If-Match", h)
		}
		return ifMatch(e.NewContext(r, httptest.NewRecorder()))
	}
	f.Fuzz(func(t *testing.T, h string, version int64) {
		v, err := read(h)
		h = strings.TrimSpace(h)
		switch {
		case h == "" || h == "*":
			if v != nil || err != nil {
				t.Fatalf("If-Match %q: %v, %v; want no condition", h, v, err)
			}
		case err != nil:
			if domain.ErrorCode(err) != domain.ECONFLICT {
				t.Fatalf("If-Match %q: %v, want ECONFLICT", h, err)
			}
		case v == nil || (h != etag(*v) && h != "W/"+etag(*v)):
			t.Fatalf("If-Match %q taken as version %d, whose ETag is %s", h, *v, etag(*v))
		}
		if version < 1 {
			return
		}
		for _, tag := range []string{etag(version), "W/" + etag(version)} {
			if v, err := read(tag); err != nil || v == nil || *v != version {
				t.Fatalf("If-Match %s: %v, %v; want version %d", tag, v, err, version)
			}
		}
	})
}

// FuzzSinceParam parses ?since= of GET /ws/notifications/. It is all the
// push node parses from a client besides the token: the server never reads
// a data message (pushConn.serve calls conn.CloseRead, which answers pings
// and notices a close, and closes the connection on any data message), so
// there is no client message to fuzz.
func FuzzSinceParam(f *testing.F) {
	for _, s := range []string{"", "0", "1", "42", "-1", "+1", "007", " 1", "1 ", "1e3", "0x10", "9223372036854775807",
		"9223372036854775808", "abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, catchUp, err := sinceParam(raw)
		switch {
		case raw == "":
			if id != 0 || catchUp || err != nil {
				t.Fatalf("since absent: %d, %v, %v; want live only", id, catchUp, err)
			}
		case err != nil:
			if !errors.Is(err, errBadSince) || domain.ErrorCode(err) != domain.EINVALID {
				t.Fatalf("since %q: %v, want errBadSince (422)", raw, err)
			}
			if n, perr := strconv.ParseInt(raw, 10, 64); perr == nil && n >= 0 {
				t.Fatalf("since %q refused, but names id %d", raw, n)
			}
		default:
			n, perr := strconv.ParseInt(raw, 10, 64)
			if !catchUp || id < 0 || perr != nil || n != id {
				t.Fatalf("since %q: %d, %v; want the catch-up after id %d", raw, id, catchUp, n)
			}
		}
	})
}

// FuzzBearer checks where a request's token may come from: the
// Authorization header when there is one (and then nowhere else); for a
// WebSocket upgrade without it, a "bearer.<token>" subprotocol, the pair
// "bearer", "<token>", or ?token=; for any other request, nowhere. The
// subprotocols the upgrade answers are always among those offered or
// "bearer".
func FuzzBearer(f *testing.F) {
	f.Add("Bearer abc", "", "", false)
	f.Add("bearer  abc ", "", "", true)
	f.Add("Basic abc", "bearer.xyz", "q", true)
	f.Add("Bearer", "", "", false)
	f.Add("", "bearer.xyz", "q", true)
	f.Add("", "bearer, xyz", "q", true)
	f.Add("", "bearer", "q", true)
	f.Add("", "chat, bearer.xyz, bearer.other", "", true)
	f.Add("", "BEARER.xyz", "", true)
	f.Add("", "bearer.", "q", true)
	f.Add("", "bearer.xyz", "q", false)
	f.Add("", "", "q", false)
	f.Fuzz(func(t *testing.T, authz, protocols, query string, upgrade bool) {
		r := httptest.NewRequest(http.MethodGet, "/ws/notifications/?token="+url.QueryEscape(query), nil)
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		if protocols != "" {
			r.Header.Set("Sec-WebSocket-Protocol", protocols)
		}
		if upgrade {
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Upgrade", "websocket")
		}
		tok := bearer(r)
		var offered []string
		for _, p := range strings.Split(protocols, ",") {
			if p = strings.TrimSpace(p); p != "" {
				offered = append(offered, p)
			}
		}
		switch {
		case tok == "":
		case authz != "":
			scheme, rest, ok := strings.Cut(authz, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || tok != strings.TrimSpace(rest) {
				t.Fatalf("Authorization %q gave token %q", authz, tok)
			}
		case !upgrade:
			t.Fatalf("a plain request without Authorization gave token %q (protocols %q, query %q)", tok, protocols, query)
		default:
			found := tok == query
			for i, p := range offered {
				if strings.EqualFold(p, "bearer."+tok) || (strings.EqualFold(p, "bearer") && i+1 < len(offered) && offered[i+1] == tok) {
					found = true
				}
			}
			if !found {
				t.Fatalf("token %q comes from none of protocols %q and query %q", tok, protocols, query)
			}
		}
		for _, p := range acceptedSubprotocols(r) {
			ok := p == bearerSubprotocol
			for _, o := range offered {
				ok = ok || o == p
			}
			if !ok {
				t.Fatalf("the upgrade would answer subprotocol %q, never offered in %q", p, protocols)
			}
		}
	})
}

// FuzzHostOf checks that a request reaches the tenant of its Host: for
// every name NormalizeDomain stores, the Host header spelling it (in any
// case, with a trailing dot or a port) resolves to the stored form.
func FuzzHostOf(f *testing.F) {
	for _, s := range []string{"acme.example.com", "ACME.example.com.", "localhost", "1.2.3.4", "xn--bcher-kva.example", "\u212Acme.io"} {
		f.Add(s, uint16(8080))
	}
	f.Fuzz(func(t *testing.T, host string, port uint16) {
		d, err := domain.NormalizeDomain(host)
		if err != nil || host != strings.TrimSpace(host) { // a Host header has no surrounding spaces
			return
		}
		for _, h := range []string{host, host + ":" + strconv.Itoa(int(port)), strings.ToUpper(host), strings.ToUpper(d) + "."} {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Host = h
			if got := hostOf(r); got != d {
				t.Fatalf("Host %q resolves as %q, stored as %q", h, got, d)
			}
		}
	})
}

package api_test

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/tenantworks/saas/pkg/domain"
)

// TestAPIFuzzFindings replays, through the real router and stores, what
// the Schemathesis run of scripts/apifuzz.sh found the server answering
// otherwise than the document says.
func TestAPIFuzzFindings(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t)
	a := e.tenant("stfuzz")
	_, suToken := e.superuser("root@stfuzz.test")
	products := "/api/catalog/products/"
	created := e.do(req{method: "POST", host: a.Host, path: products, token: a.StaffToken,
		body: map[string]any{"sku": "ST-1", "name": "Widget", "price": "1", "currency": "EUR", "stock": 7}})
	if created.Code != http.StatusCreated {
		t.Fatalf("create = %d %s", created.Code, created.Raw)
	}
	product := products + created.JSON["id"].(string) + "/"
	tenantPath := "/api/platform/tenants/" + a.Schema + "/"

	t.Run("a null or mis-cased member is a 422 naming it, and changes nothing", func(t *testing.T) {
		// encoding/json took null for an absent member (a PUT with
		// "stock": null reset the stock to 0) and matched member names
		// case-insensitively; no request schema takes either.
		for _, c := range []struct {
			name  string
			r     req
			field string
		}{
			{"PUT a product with a null stock", req{method: "PUT", host: a.Host, path: product, token: a.StaffToken,
				body: `{"sku":"ST-1","name":"Widget","price":"1","currency":"EUR","stock":null}`}, "stock"},
			{"PATCH a product with a null name", req{method: "PATCH", host: a.Host, path: product, token: a.StaffToken,
				body: `{"name":null}`}, "name"},
			{"POST a product with a null description", req{method: "POST", host: a.Host, path: products, token: a.StaffToken,
				body: `{"sku":"ST-2","name":"Widget","price":"1","currency":"EUR","description":null}`}, "description"},
			{"POST a product with SKU for sku", req{method: "POST", host: a.Host, path: products, token: a.StaffToken,
				body: `{"SKU":"ST-3","sku":"ST-3","name":"Widget","price":"1","currency":"EUR"}`}, "SKU"},
			{"PATCH a product with Stock for stock", req{method: "PATCH", host: a.Host, path: product, token: a.StaffToken,
				body: `{"Stock":1}`}, "Stock"},
			{"create a user with a null is_staff", req{method: "POST", host: a.Host, path: "/api/admin/users/", token: a.StaffToken,
				body: `{"email":"new@stfuzz.test","password":"long-enough","is_staff":null}`}, "is_staff"},
			{"PATCH a user with a null is_active", req{method: "PATCH", host: a.Host, path: "/api/admin/users/" + a.UserID + "/", token: a.StaffToken,
				body: `{"is_active":null}`}, "is_active"},
			{"sign in with a null email", req{method: "POST", host: a.Host, path: "/api/auth/token",
				body: `{"email":null,"password":"x"}`}, "email"},
			{"PATCH a tenant with a null name", req{method: "PATCH", host: publicDomain, path: tenantPath, token: suToken,
				body: `{"name":null}`}, "name"},
			{"add a domain with a null is_primary", req{method: "POST", host: publicDomain, path: tenantPath + "domains/", token: suToken,
				body: `{"domain":"second.stfuzz.test","is_primary":null}`}, "is_primary"},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := e.do(c.r)
				if r.Code != http.StatusUnprocessableEntity || r.errorDetails()[c.field] == nil {
					t.Fatalf("%s %s = %d %s, want 422 naming %s", c.r.method, c.r.path, r.Code, r.Raw, c.field)
				}
			})
		}
		got := e.do(req{method: "GET", host: a.Host, path: product, token: a.StaffToken})
		if got.JSON["stock"] != float64(7) || got.JSON["name"] != "Widget" || got.JSON["version"] != float64(1) {
			t.Errorf("the product changed: %s", got.Raw)
		}
		if n := e.count(a.Schema, "SELECT count(*) FROM products"); n != 1 {
			t.Errorf("%d products, want 1", n)
		}
		if n := e.count(a.Schema, "SELECT count(*) FROM users WHERE email = 'new@stfuzz.test'"); n != 0 {
			t.Errorf("the user was created")
		}
		if r := e.do(req{method: "GET", host: "second.stfuzz.test", path: products, token: a.UserToken}); r.Code != http.StatusNotFound {
			t.Errorf("the domain was added: GET on it = %d", r.Code)
		}
	})

	t.Run("a password's minimum counts characters, its maximum bytes", func(t *testing.T) {
		// "éééé" is 8 bytes but 4 characters: the document's minLength
		// (characters) refuses it, and so does the server now.
		for _, c := range []struct {
			password string
			want     int
		}{
			{"éééé", http.StatusUnprocessableEntity},
			{"1234567", http.StatusUnprocessableEntity},
			{"éééééééé", http.StatusCreated},
			{strings.Repeat("a", 72), http.StatusCreated},
			{strings.Repeat("é", 36), http.StatusCreated},
			{strings.Repeat("a", 71) + "é", http.StatusUnprocessableEntity}, // 73 bytes
		} {
			t.Run(fmt.Sprintf("%d characters in %d bytes is a %d", utf8.RuneCountInString(c.password), len(c.password), c.want), func(t *testing.T) {
				email := fmt.Sprintf("pw%d-%d@stfuzz.test", utf8.RuneCountInString(c.password), len(c.password))
				r := e.do(req{method: "POST", host: a.Host, path: "/api/admin/users/", token: a.StaffToken,
					body: map[string]any{"email": email, "password": c.password}})
				if r.Code != c.want {
					t.Fatalf("create user = %d %s, want %d", r.Code, r.Raw, c.want)
				}
				want := c.want
				if want == http.StatusCreated {
					want = http.StatusNoContent
				}
				r = e.do(req{method: "POST", host: a.Host, path: "/api/admin/users/" + a.UserID + "/password/", token: a.StaffToken,
					body: map[string]any{"password": c.password}})
				if r.Code != want {
					t.Fatalf("set password = %d %s, want %d", r.Code, r.Raw, want)
				}
			})
		}
	})
}

// docPattern compiles the pattern of a property of a component schema.
func docPattern(t *testing.T, doc *openapi3.T, schema, property string) *regexp.Regexp {
	t.Helper()
	s := doc.Components.Schemas[schema].Value.Properties[property].Value
	re, err := regexp.Compile(s.Pattern)
	if err != nil {
		t.Fatalf("%s.%s: pattern %q: %v", schema, property, s.Pattern, err)
	}
	return re
}

// TestOpenAPIStringRulesAreTheServers holds the document's patterns and
// enums to the server's own validation, value by value, where a fuzzer
// found them apart: the document's \s and \S were ECMA-262's white space,
// not the strings.TrimSpace the server trims with (U+0085 and U+FEFF
// differ), names said nothing of NUL, and any three capitals passed for
// a currency.
func TestOpenAPIStringRulesAreTheServers(t *testing.T) {
	t.Parallel()
	doc := mustLoadOpenAPI(t)

	// Every BMP character, and a few beyond.
	var runes []rune
	for r := rune(0); r <= 0xFFFF; r++ {
		if !(0xD800 <= r && r <= 0xDFFF) {
			runes = append(runes, r)
		}
	}
	runes = append(runes, 0x1F600, 0x10FFFF)

	productName := func(s string) bool {
		return (&domain.ProductPatch{Name: &s}).Validate(false) == nil
	}
	productSKU := func(s string) bool {
		return (&domain.ProductPatch{SKU: &s}).Validate(false) == nil
	}
	productDescription := func(s string) bool {
		return (&domain.ProductPatch{Description: &s}).Validate(false) == nil
	}
	tenantName := func(s string) bool { return domain.ValidateTenantName(s) == nil }
	tenantDomain := func(s string) bool { _, err := domain.NormalizeDomain(s); return err == nil }

	for _, c := range []struct {
		schema, property string
		accepts          func(string) bool
		values           func(r string) []string
	}{
		{"ProductCreate", "name", productName, func(r string) []string { return []string{r, r + "a" + r, "a" + r + "a"} }},
		{"ProductPatch", "name", productName, func(r string) []string { return []string{r, r + "a" + r, "a" + r + "a"} }},
		{"ProductCreate", "description", productDescription, func(r string) []string { return []string{r, "a" + r + "a"} }},
		{"ProductCreate", "sku", productSKU, func(r string) []string { return []string{r, r + "A" + r} }},
		{"TenantCreate", "name", tenantName, func(r string) []string { return []string{r, r + "a" + r, "a" + r + "a"} }},
		{"TenantPatch", "name", tenantName, func(r string) []string { return []string{r, r + "a" + r, "a" + r + "a"} }},
		{"TenantCreate", "domain", tenantDomain, func(r string) []string { return []string{r + "a.test" + r} }},
		{"DomainCreate", "domain", tenantDomain, func(r string) []string { return []string{r + "a.test" + r} }},
	} {
		t.Run(c.schema+"."+c.property+" matches what the server accepts", func(t *testing.T) {
			t.Parallel()
			re := docPattern(t, doc, c.schema, c.property)
			var apart []string
			for _, r := range runes {
				for _, v := range c.values(string(r)) {
					if re.MatchString(v) != c.accepts(v) {
						apart = append(apart, fmt.Sprintf("%q (document %t, server %t)", v, re.MatchString(v), c.accepts(v)))
					}
				}
			}
			if len(apart) > 0 {
				t.Errorf("%d values apart, such as %s", len(apart), strings.Join(apart[:min(len(apart), 5)], ", "))
			}
		})
	}

	t.Run("the blank class is unicode.IsSpace", func(t *testing.T) {
		// The patterns above spell the class out; check it against the
		// definition itself too, so a Unicode update cannot slip by. The
		// search query, trimmed by the handler, uses the same class.
		var q *regexp.Regexp
		for _, p := range doc.Paths.Find("/api/catalog/products/search/").Get.Parameters {
			if p.Value.Name == "q" {
				q = regexp.MustCompile(p.Value.Schema.Value.Pattern)
			}
		}
		name := docPattern(t, doc, "ProductCreate", "name")
		for _, r := range runes {
			if r != 0 && name.MatchString(string(r)) == unicode.IsSpace(r) {
				t.Errorf("%U: matches the name pattern = %t, unicode.IsSpace = %t", r, name.MatchString(string(r)), unicode.IsSpace(r))
			}
			if q.MatchString(string(r)) == unicode.IsSpace(r) {
				t.Errorf("%U: matches the search pattern = %t, unicode.IsSpace = %t", r, q.MatchString(string(r)), unicode.IsSpace(r))
			}
		}
	})

	t.Run("the currency enum is every code the server accepts", func(t *testing.T) {
		enum := doc.Components.Schemas["Currency"].Value.Enum
		var accepted []any
		for a := 'A'; a <= 'Z'; a++ {
			for b := 'A'; b <= 'Z'; b++ {
				for c := 'A'; c <= 'Z'; c++ {
					code := string([]rune{a, b, c})
					if (&domain.ProductPatch{Currency: &code}).Validate(false) == nil {
						accepted = append(accepted, code)
					}
				}
			}
		}
		if !slices.Equal(enum, accepted) {
			t.Errorf("the document's currencies (%d) are not the %d the server accepts, in order", len(enum), len(accepted))
		}
		for _, schema := range []string{"ProductCreate", "ProductReplace", "ProductPatch"} {
			if ref := doc.Components.Schemas[schema].Value.Properties["currency"].Ref; ref != "#/components/schemas/Currency" {
				t.Errorf("%s.currency is %q, want the Currency schema", schema, ref)
			}
		}
	})
}

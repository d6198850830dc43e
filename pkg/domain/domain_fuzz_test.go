package domain

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// The fuzz targets of this file check the validators that every outside
// name, address and product field goes through. Run one with
//
//	go test -run '^$' -fuzz '^FuzzNormalizeDomain$' -fuzztime 10s ./pkg/domain
//
// (or `go tool task fuzz` for all of them). Without -fuzz, `go test` runs
// the seeds below and those under testdata/fuzz as ordinary tests.

// storableText reports whether PostgreSQL can store s in a text column:
// valid UTF-8 without NUL (the server refuses 0x00 with SQLSTATE 22021, which
// reaches a client as a 500).
func storableText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// mustInvalid fails unless err is an EINVALID *Error naming field.
func mustInvalid(t *testing.T, err error, field string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Code != EINVALID {
		t.Fatalf("error %v (%T) is not an EINVALID *Error", err, err)
	}
	if field != "" {
		if _, ok := e.Details[field]; !ok {
			t.Fatalf("error %v does not name %q: %v", err, field, e.Details)
		}
	}
}

var hostRE = regexp.MustCompile(`^[a-z0-9-]+(\.[a-z0-9-]+)*$`)

func FuzzNormalizeDomain(f *testing.F) {
	for _, s := range []string{
		"acme.example.com", "ACME.Example.COM.", "  shop.acme.io  ", "localhost", "a", "xn--bcher-kva.example",
		"acme.example.com:8080", "[::1]", "a..b", ".", "", "-a.com", "a-.com", "a_b.com", "\u212Aelvin.com", // the Kelvin sign: not ASCII, though strings.ToLower makes it k
		strings.Repeat("a", 63) + ".com", strings.Repeat("a", 64) + ".com", strings.Repeat("a.", 126) + "a",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := NormalizeDomain(s)
		if err != nil {
			mustInvalid(t, err, "domain")
			return
		}
		if len(d) < 1 || len(d) > 253 || !hostRE.MatchString(d) {
			t.Fatalf("NormalizeDomain(%q) = %q, not a lower-case ASCII host name of 1 to 253 bytes", s, d)
		}
		for _, label := range strings.Split(d, ".") {
			if len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
				t.Fatalf("NormalizeDomain(%q) = %q: label %q is not a DNS label", s, d, label)
			}
		}
		again, err := NormalizeDomain(d)
		if err != nil || again != d {
			t.Fatalf("not idempotent: NormalizeDomain(%q) = %q, then %q, %v", s, d, again, err)
		}
		// What a client may type for the same host normalizes to it too.
		if v, err := NormalizeDomain(" " + strings.ToUpper(d) + ". "); err != nil || v != d {
			t.Fatalf("NormalizeDomain of the upper-cased %q with a trailing dot = %q, %v", d, v, err)
		}
	})
}

var schemaModelRE = regexp.MustCompile(`^[a-z][a-z0-9_]{2,62}$`)

func FuzzValidateSchemaName(f *testing.F) {
	for _, s := range []string{
		"acme", "acme_2024", "public", "information_schema", "pg_catalog", "pg_", "ab", "Acme", "1acme", "acme-co",
		`acme"; DROP SCHEMA public; --`, "acme.evil", "ac me", "acme\x00", "_platform", "select", "user",
		strings.Repeat("a", 63), strings.Repeat("a", 64), "ａｃｍｅ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateSchemaName(s)
		reserved := s == "public" || s == "information_schema" || strings.HasPrefix(s, "pg_")
		want := schemaModelRE.MatchString(s) && !reserved
		if (err == nil) != want {
			t.Fatalf("ValidateSchemaName(%q) = %v, want accepted = %v", s, err, want)
		}
		if err != nil {
			mustInvalid(t, err, "schema")
			return
		}
		// Never anything that would need quoting, so the quoted identifier
		// the code always writes (pgx.Identifier.Sanitize) is the name
		// itself. SQL keywords such as "select" pass: every statement
		// quotes the schema, so they are harmless.
		if q := (pgx.Identifier{s}).Sanitize(); q != `"`+s+`"` {
			t.Fatalf("ValidateSchemaName accepted %q, which quotes as %s", s, q)
		}
		// The schema is also a token of NATS subjects (tenant.<schema>.<type>,
		// push.<schema>.<user>), part of Elasticsearch index names and of
		// Redis keys: no separator, wildcard, space or upper case.
		if strings.ContainsAny(s, ".*> \t\r\n:/\\\"'") || strings.ToLower(s) != s || len(s) > 63 {
			t.Fatalf("ValidateSchemaName accepted %q, unsafe as a subject token or index name", s)
		}
	})
}

func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{
		"ada@example.com", "  Ada@Example.COM ", "ada", "@example.com", "ada@", "Ada Lovelace <ada@example.com>",
		`"ada lovelace"@example.com`, "ada@[127.0.0.1]", "ada+tag@example.com", "ada@example.com\x00", "ådå@exämple.com",
		"a\u212A@example.com", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 189) + ".com", "ada@example..com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := NormalizeEmail(s)
		if err != nil {
			mustInvalid(t, err, "email")
			return
		}
		again, err := NormalizeEmail(e)
		if err != nil || again != e {
			t.Fatalf("not idempotent: NormalizeEmail(%q) = %q, then %q, %v", s, e, again, err)
		}
		if e != strings.TrimSpace(e) || e != strings.ToLower(e) || len(e) > 254 || !strings.Contains(e, "@") {
			t.Fatalf("NormalizeEmail(%q) = %q: not trimmed, lower case, at most 254 bytes with an @", s, e)
		}
		if !storableText(e) {
			t.Fatalf("NormalizeEmail(%q) = %q, which PostgreSQL cannot store as text", s, e)
		}
	})
}

func FuzzValidateTenantName(f *testing.F) {
	for _, s := range []string{"Acme Inc.", "", "   ", strings.Repeat("é", 200), strings.Repeat("é", 201), "Acme\x00", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateTenantName(s)
		if err != nil {
			mustInvalid(t, err, "name")
			return
		}
		if n := utf8.RuneCountInString(strings.TrimSpace(s)); n < 1 || n > 200 {
			t.Fatalf("ValidateTenantName accepted %q of %d characters once trimmed", s, n)
		}
		if !storableText(s) {
			t.Fatalf("ValidateTenantName accepted %q, which PostgreSQL cannot store as text", s)
		}
	})
}

var (
	priceModelRE = regexp.MustCompile(`^(0|[1-9][0-9]{0,11})\.[0-9]{2}$`)
	skuModelRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$`)
)

// FuzzProductPatchValidate feeds Validate every field directly (the API
// target FuzzProductPayload in package api reaches it through JSON, which
// the fuzzer explores more slowly).
func FuzzProductPatchValidate(f *testing.F) {
	f.Add(uint8(0x3f), true, "SKU-1", "Widget", "A widget", "12.5", "EUR", int64(3))
	f.Add(uint8(0x3f), true, " sku/1.a_b ", "  Widget  ", "", "0", "USD", int64(0))
	f.Add(uint8(0x3f), false, "-bad", "", strings.Repeat("d", 5001), "012.50", "eur", int64(-1))
	f.Add(uint8(0x02), false, "", "a\x00b", "", "", "", int64(0))
	f.Add(uint8(0x04), false, "", "", "x\x00", "", "", int64(0))
	f.Add(uint8(0x08), false, "", "", "", "999999999999.99", "", int64(0))
	f.Add(uint8(0x08), false, "", "", "", "1000000000000", "", int64(0))
	f.Add(uint8(0x10), false, "", "", "", "", "ABC", int64(0))
	f.Add(uint8(0x20), false, "", "", "", "", "", int64(2147483648))
	f.Add(uint8(0x02), false, "", "\u00a0\u2003Widget\u3000", "", "", "", int64(0))
	f.Fuzz(func(t *testing.T, set uint8, full bool, sku, name, desc, price, currency string, stock int64) {
		var p ProductPatch
		if set&0x01 != 0 {
			p.SKU = &sku
		}
		if set&0x02 != 0 {
			p.Name = &name
		}
		if set&0x04 != 0 {
			p.Description = &desc
		}
		if set&0x08 != 0 {
			p.Price = &price
		}
		if set&0x10 != 0 {
			p.Currency = &currency
		}
		if set&0x20 != 0 {
			p.Stock = &stock
		}
		err := p.Validate(full)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != EINVALID || len(e.Details) == 0 {
				t.Fatalf("Validate: %v (%T), want an EINVALID *Error with details", err, err)
			}
			for k := range e.Details {
				if !strings.Contains(" sku name description price currency stock ", " "+k+" ") {
					t.Fatalf("Validate names an unknown field %q", k)
				}
			}
			return
		}
		checkValidPatch(t, p, full)
		// Normalizing is idempotent: a valid patch validates again unchanged.
		before := snapshot(p)
		if err := p.Validate(full); err != nil || snapshot(p) != before {
			t.Fatalf("Validate is not idempotent: %v, %q became %q", err, before, snapshot(p))
		}
	})
}

// checkValidPatch asserts what every accepted patch guarantees: the
// invariants of a stored product, each text storable in PostgreSQL.
func checkValidPatch(t *testing.T, p ProductPatch, full bool) {
	t.Helper()
	if full && (p.SKU == nil || p.Name == nil || p.Price == nil || p.Currency == nil) {
		t.Fatalf("full patch accepted without a required field: %s", snapshot(p))
	}
	if p.SKU != nil && !skuModelRE.MatchString(*p.SKU) {
		t.Fatalf("accepted sku %q", *p.SKU)
	}
	if p.Name != nil {
		if n := utf8.RuneCountInString(*p.Name); n < 1 || n > 200 || strings.TrimSpace(*p.Name) != *p.Name || !storableText(*p.Name) {
			t.Fatalf("accepted name %q", *p.Name)
		}
	}
	if p.Description != nil && (utf8.RuneCountInString(*p.Description) > 5000 || !storableText(*p.Description)) {
		t.Fatalf("accepted description %q", *p.Description)
	}
	if p.Price != nil && !priceModelRE.MatchString(*p.Price) {
		t.Fatalf("accepted price %q, want ^\\d{1,12}\\.\\d{2}$ without leading zeros", *p.Price)
	}
	if p.Currency != nil && (len(*p.Currency) != 3 || strings.ToUpper(*p.Currency) != *p.Currency || !knownCurrency(*p.Currency)) {
		t.Fatalf("accepted currency %q", *p.Currency)
	}
	if p.Stock != nil && (*p.Stock < 0 || *p.Stock > 1<<31-1) {
		t.Fatalf("accepted stock %d", *p.Stock)
	}
}

func snapshot(p ProductPatch) string {
	s := func(v *string) string {
		if v == nil {
			return "<nil>"
		}
		return strconv.Quote(*v)
	}
	st := "<nil>"
	if p.Stock != nil {
		st = strconv.FormatInt(*p.Stock, 10)
	}
	return strings.Join([]string{s(p.SKU), s(p.Name), s(p.Description), s(p.Price), s(p.Currency), st}, " ")
}

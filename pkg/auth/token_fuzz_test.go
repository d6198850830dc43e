package auth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// The fuzz targets of this file hold Verify to its contract: it accepts
// exactly the tokens Issue produced with the same secret for the same
// tenant, unexpired, and nothing else. Run one with
//
//	go test -run '^$' -fuzz '^FuzzVerify$' -fuzztime 10s ./pkg/auth

const fuzzSecret = "fuzz-secret-0123456789abcdef0123456789"

// fuzzNow is the fixed clock of every fuzz target: Issue is deterministic
// under it (HS256 has no randomness), so the tokens it makes are known.
var fuzzNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func fuzzTokens(secret string) *Tokens {
	t := NewTokens(secret, time.Hour)
	t.now = func() time.Time { return fuzzNow }
	return t
}

// issued are the (tenant, user, staff) triples whose tokens seed FuzzVerify;
// they are the only tokens of fuzzSecret that exist.
var issued = []struct {
	tenant, user string
	staff        bool
}{
	{"acme", "0190a7e4-1111-7000-8000-000000000001", false},
	{"acme", "0190a7e4-1111-7000-8000-000000000002", true},
	{"globex", "0190a7e4-1111-7000-8000-000000000001", false},
	{PlatformAudience, "0190a7e4-1111-7000-8000-00000000000a", true},
}

func mustIssue(tb testing.TB, tk *Tokens, tenant, user string, staff bool) string {
	tb.Helper()
	tok, _, err := tk.Issue(tenant, user, staff)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// sameToken reports whether got is want up to what the decoder cannot see:
// the same signed text (header and payload, byte for byte) and a signature
// segment that decodes to the same bytes. The last character of a 43-byte
// base64 signature carries 2 unused bits, so a few other spellings of it
// decode identically and are, rightly, accepted.
func sameToken(got, want string) bool {
	gi, wi := strings.LastIndexByte(got, '.'), strings.LastIndexByte(want, '.')
	if gi < 0 || got[:gi] != want[:wi] || strings.Count(got, ".") != 2 {
		return false
	}
	gs, err1 := base64.RawURLEncoding.DecodeString(got[gi+1:])
	ws, err2 := base64.RawURLEncoding.DecodeString(want[wi+1:])
	return err1 == nil && err2 == nil && bytes.Equal(gs, ws)
}

// asJSON is s as a JSON round trip leaves it: each invalid byte becomes
// U+FFFD.
func asJSON(s string) string { return string([]rune(s)) }

func mustBadToken(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrBadToken) {
		t.Fatalf("error %v does not wrap ErrBadToken", err)
	}
}

// FuzzVerify verifies arbitrary strings, for every tenant the seeds use:
// whatever it accepts must be, up to the signature's unused bits, a token
// Issue made for that very tenant; the same string never verifies under
// another secret.
func FuzzVerify(f *testing.F) {
	tk := fuzzTokens(fuzzSecret)
	var tokens []string
	for _, is := range issued {
		tok := mustIssue(f, tk, is.tenant, is.user, is.staff)
		tokens = append(tokens, tok)
		f.Add(tok)
	}
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpc3MiOiJzYWFzIiwic3ViIjoieCIsImF1ZCI6WyJhY21lIl0sImV4cCI6OTk5OTk5OTk5OSwidGVuYW50IjoiYWNtZSJ9.")
	f.Add(tokens[0] + "=")
	f.Add(strings.Replace(tokens[0], ".", "..", 1))
	other := fuzzTokens("another-secret-0123456789abcdef0123")
	f.Fuzz(func(t *testing.T, tok string) {
		for _, tenant := range []string{"acme", "globex", PlatformAudience, ""} {
			c, err := tk.Verify(tok, tenant)
			if err != nil {
				mustBadToken(t, err)
				continue
			}
			match := -1
			for i, is := range issued {
				if is.tenant == tenant && sameToken(tok, tokens[i]) {
					match = i
				}
			}
			if match < 0 {
				t.Fatalf("Verify(%q, %q) accepted a token Issue never made for that tenant: %+v", tok, tenant, c)
			}
			is := issued[match]
			if c.Tenant != tenant || c.Subject != is.user || c.Staff != is.staff {
				t.Fatalf("Verify(%q, %q) = %+v, issued for %+v", tok, tenant, c, is)
			}
			if _, err := other.Verify(tok, tenant); err == nil {
				t.Fatalf("a token of one secret verified under another: %q", tok)
			}
		}
	})
}

// FuzzVerifyTenantBinding issues a token for tenant a and verifies it for
// tenant b: it verifies only when a == b, and then always (for the names a
// tenant or the platform can have, and a user id) with the issued claims.
func FuzzVerifyTenantBinding(f *testing.F) {
	f.Add("acme", "acme", "0190a7e4-1111-7000-8000-000000000001", false)
	f.Add("acme", "globex", "0190a7e4-1111-7000-8000-000000000001", true)
	f.Add(PlatformAudience, "acme", "0190a7e4-1111-7000-8000-00000000000a", true)
	f.Add("acme", PlatformAudience, "u", false)
	f.Add("acme", "ACME", "u", false)
	f.Add("acme", "acme ", "u", false)
	f.Add("", "", "u", false)
	f.Add("acme", "acme", "", false)
	f.Add("ac\xffme", "ac\xffme", "u", false)
	f.Add("ac\xffme", "ac\ufffdme", "u", false)
	tk := fuzzTokens(fuzzSecret)
	f.Fuzz(func(t *testing.T, a, b, user string, staff bool) {
		tok := mustIssue(t, tk, a, user, staff)
		c, err := tk.Verify(tok, b)
		if err != nil {
			mustBadToken(t, err)
		}
		// Issue is only ever given schema names and PlatformAudience, valid
		// UTF-8; an invalid byte would reach the token as U+FFFD (the JSON
		// encoder's doing), so the exact statement compares that form.
		if err == nil && asJSON(a) != b {
			t.Fatalf("a token of tenant %q verified for tenant %q: %+v", a, b, c)
		}
		wellFormed := a != "" && utf8.ValidString(a) && user != "" && utf8.ValidString(user)
		if a == b && wellFormed {
			if err != nil {
				t.Fatalf("a fresh token of %q does not verify for it: %v", a, err)
			}
			if c.Tenant != a || c.Subject != user || c.Staff != staff || c.Issuer != issuer {
				t.Fatalf("claims %+v, issued for tenant %q, user %q, staff %v", c, a, user, staff)
			}
		}
	})
}

// FuzzVerifyByteFlip alters one byte of a valid token: the result verifies
// exactly when the alteration is invisible to the decoder (it touches
// only the unused bits of the signature's last character), and then with
// the same claims.
func FuzzVerifyByteFlip(f *testing.F) {
	tk := fuzzTokens(fuzzSecret)
	for _, s := range []struct {
		pos  uint16
		mask byte
	}{{0, 1}, {10, 0x20}, {60, 0x01}, {200, 0x80}, {60000, 0x01}, {60000, 0x02}, {60000, 0x03}, {60001, 0x01}} {
		f.Add(s.pos, s.mask, "acme", "0190a7e4-1111-7000-8000-000000000001", false)
	}
	// Seed the harmless flips of the seed token too: the other spellings
	// of its last character that decode to the same signature.
	seed := mustIssue(f, tk, "acme", "0190a7e4-1111-7000-8000-000000000001", false)
	for mask := 1; mask < 256; mask++ {
		b := []byte(seed)
		b[len(b)-1] ^= byte(mask)
		if sameToken(string(b), seed) {
			f.Add(uint16(60000), byte(mask), "acme", "0190a7e4-1111-7000-8000-000000000001", false)
		}
	}
	f.Fuzz(func(t *testing.T, pos uint16, mask byte, tenant, user string, staff bool) {
		if mask == 0 || tenant == "" || user == "" || !utf8.ValidString(tenant) || !utf8.ValidString(user) {
			return
		}
		tok := mustIssue(t, tk, tenant, user, staff)
		want, err := tk.Verify(tok, tenant)
		if err != nil {
			t.Fatalf("fresh token does not verify: %v", err)
		}
		b := []byte(tok)
		i := int(pos) % len(b)
		if pos >= 60000 { // aimed at the signature's last characters
			i = len(b) - 1 - int(pos-60000)%4
		}
		b[i] ^= mask
		flipped := string(b)
		c, err := tk.Verify(flipped, tenant)
		harmless := sameToken(flipped, tok)
		switch {
		case err == nil && !harmless:
			t.Fatalf("byte %d of %q flipped by %#x still verifies: %q", i, tok, mask, flipped)
		case err != nil && harmless:
			t.Fatalf("byte %d flipped by %#x decodes to the same token but fails: %v", i, mask, err)
		case err == nil && (c.Tenant != want.Tenant || c.Subject != want.Subject || c.Staff != want.Staff || !c.ExpiresAt.Equal(want.ExpiresAt.Time)):
			t.Fatalf("harmless flip changed the claims: %+v, want %+v", c, want)
		}
		if err != nil {
			mustBadToken(t, err)
		}
	})
}

// FuzzVerifyForged signs arbitrary claims with an arbitrary key and
// algorithm, as an attacker or a misconfigured peer would, and checks
// Verify against a model of what it must take: HS256 with our secret,
// issuer "saas", an expiry still ahead, our tenant both in the audience and
// in the tenant claim, and a subject.
func FuzzVerifyForged(f *testing.F) {
	f.Add(fuzzSecret, uint8(0), "saas", "u", "acme", "", "acme", int64(60), true)
	f.Add(fuzzSecret, uint8(0), "saas", "u", "acme", "", "acme", int64(0), true)
	f.Add(fuzzSecret, uint8(0), "saas", "u", "acme", "", "acme", int64(60), false)
	f.Add(fuzzSecret, uint8(1), "saas", "u", "acme", "", "acme", int64(60), true)
	f.Add(fuzzSecret, uint8(2), "saas", "u", "acme", "", "acme", int64(60), true)
	f.Add(fuzzSecret, uint8(3), "saas", "u", "acme", "", "acme", int64(60), true)
	f.Add("", uint8(0), "saas", "u", "acme", "", "acme", int64(60), true)
	f.Add(fuzzSecret+"x", uint8(0), "saas", "u", "acme", "", "acme", int64(60), true)
	f.Add(fuzzSecret, uint8(0), "saas", "u", "globex", "acme", "acme", int64(60), true)
	f.Add(fuzzSecret, uint8(0), "saas", "u", "acme", "", "globex", int64(60), true)
	f.Add(fuzzSecret, uint8(0), "SAAS", "u", "acme", "", "acme", int64(60), true)
	f.Add(fuzzSecret, uint8(0), "saas", "", "acme", "", "acme", int64(60), true)
	f.Add(fuzzSecret, uint8(0), "saas", "u", PlatformAudience, "", PlatformAudience, int64(60), true)
	methods := []jwt.SigningMethod{jwt.SigningMethodHS256, jwt.SigningMethodHS384, jwt.SigningMethodHS512, jwt.SigningMethodNone}
	tk := fuzzTokens(fuzzSecret)
	f.Fuzz(func(t *testing.T, secret string, alg uint8, iss, sub, aud1, aud2, tenantClaim string, expIn int64, hasExp bool) {
		m := methods[int(alg)%len(methods)]
		c := Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: iss, Subject: sub, Audience: jwt.ClaimStrings{aud1}}, Tenant: tenantClaim}
		if aud2 != "" {
			c.Audience = append(c.Audience, aud2)
		}
		expIn %= 1 << 32 // keep the expiry a representable date
		if hasExp {
			c.ExpiresAt = jwt.NewNumericDate(fuzzNow.Add(time.Duration(expIn) * time.Second))
		}
		var key any = []byte(secret)
		if m == jwt.SigningMethodNone {
			key = jwt.UnsafeAllowNoneSignatureType
		}
		tok, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		for _, tenant := range []string{"acme", PlatformAudience} {
			got, err := tk.Verify(tok, tenant)
			if err != nil {
				mustBadToken(t, err)
			}
			// The model; invalid UTF-8 in a claim is replaced by the JSON
			// encoder, so it is compared as the verifier will see it.
			inAud := asJSON(aud1) == tenant || (aud2 != "" && asJSON(aud2) == tenant)
			want := secret == fuzzSecret && m == jwt.SigningMethodHS256 && asJSON(iss) == issuer && hasExp && expIn > 0 &&
				inAud && asJSON(tenantClaim) == tenant && sub != ""
			if (err == nil) != want {
				t.Fatalf("Verify(%s for tenant %q) = %+v, %v; want accepted = %v (alg %s, secret %q, claims %+v)",
					tok, tenant, got, err, want, m.Alg(), secret, c)
			}
		}
	})
}

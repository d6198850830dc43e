package auth

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// A token seen before is answered from the verified-token cache, which must
// give exactly what a full verification would: the expiry still counts,
// the tenant still counts, and any other string is verified in full.
func TestVerifiedTokensStillExpireAndStayBoundToTheirTenant(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tok := NewTokens(randomSecret(), time.Hour)
	tok.now = func() time.Time { return now }
	s, _, err := tok.IssueFor("acme", Subject{ID: "u1", Generation: 3, Email: "a@acme.test"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the second is a hit
		c, err := tok.Verify(s, "acme")
		if err != nil || c.Subject != "u1" || c.Generation != 3 || c.Email != "a@acme.test" {
			t.Fatalf("verify %d: %+v, %v", i, c, err)
		}
	}
	if _, ok := tok.verified.get(verifiedKey{s, "acme"}, now); !ok {
		t.Fatal("a verified token was not remembered")
	}
	if _, err := tok.Verify(s, "globex"); !errors.Is(err, ErrBadToken) {
		t.Fatalf("a remembered token verified for another tenant: %v", err)
	}
	if _, err := tok.Verify(s+"x", "acme"); !errors.Is(err, ErrBadToken) {
		t.Fatalf("a tampered token verified: %v", err)
	}
	now = now.Add(time.Hour)
	if _, err := tok.Verify(s, "acme"); !errors.Is(err, ErrBadToken) {
		t.Fatalf("a remembered token verified at its expiry: %v", err)
	}
}

// The cache holds at most verifiedCap tokens, dropping the least recently
// used first.
func TestVerifiedTokenCacheIsBounded(t *testing.T) {
	v := newVerified()
	exp := time.Now().Add(time.Hour)
	for i := range verifiedCap + 10 {
		v.put(verifiedKey{fmt.Sprint(i), "t"}, Claims{Tenant: "t"}, exp)
		if i == verifiedCap-1 {
			v.get(verifiedKey{"0", "t"}, time.Now()) // 0 is now recent
		}
	}
	if n := v.ll.Len(); n != verifiedCap || len(v.items) != verifiedCap {
		t.Fatalf("%d entries (%d in the map), want %d", n, len(v.items), verifiedCap)
	}
	if _, ok := v.get(verifiedKey{"0", "t"}, time.Now()); !ok {
		t.Fatal("a recently used entry was dropped")
	}
	if _, ok := v.get(verifiedKey{"1", "t"}, time.Now()); ok {
		t.Fatal("the least recently used entry was kept")
	}
}

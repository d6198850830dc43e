package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// randomSecret is a secret of this test run's own.
func randomSecret() string { return rand.Text() + rand.Text() }

func TestRotationVerifiesThePreviousSecretAndSignsWithTheCurrentOne(t *testing.T) {
	t.Parallel()
	current, previous, third := randomSecret(), randomSecret(), randomSecret()
	rotating := NewTokens(current, time.Hour, previous)
	const user = "0190a7e4-1111-7000-8000-000000000001"

	for _, c := range []struct {
		name   string
		signer *Tokens
		valid  bool
	}{
		{"a token of the current secret verifies", NewTokens(current, time.Hour), true},
		{"a token of the previous secret verifies", NewTokens(previous, time.Hour), true},
		{"a token of a third secret does not", NewTokens(third, time.Hour), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			tok := mustIssue(t, c.signer, "acme", user, false)
			_, err := rotating.Verify(tok, "acme")
			if c.valid && err != nil {
				t.Fatalf("Verify = %v, want it valid", err)
			}
			if !c.valid {
				mustBadToken(t, err)
			}
		})
	}
	t.Run("new tokens are signed with the current secret only", func(t *testing.T) {
		tok := mustIssue(t, rotating, "acme", user, false)
		if _, err := NewTokens(current, time.Hour).Verify(tok, "acme"); err != nil {
			t.Fatalf("the current secret alone does not verify a new token: %v", err)
		}
		_, err := NewTokens(previous, time.Hour).Verify(tok, "acme")
		mustBadToken(t, err)
	})
}

func TestNoWeakSecretSignsOrVerifies(t *testing.T) {
	t.Parallel()
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: issuer, Subject: "u", Audience: jwt.ClaimStrings{"acme"},
			ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))},
		Tenant: "acme",
	}
	for _, secret := range []string{"", "x", strings.Repeat("s", MinSecretLen-1)} {
		t.Run(fmt.Sprintf("a secret of %d bytes", len(secret)), func(t *testing.T) {
			if err := CheckSecret(secret); !errors.Is(err, ErrWeakSecret) {
				t.Fatalf("CheckSecret = %v, want ErrWeakSecret", err)
			}
			tk := NewTokens(secret, time.Hour)
			if _, _, err := tk.Issue("acme", "u", false); !errors.Is(err, ErrWeakSecret) {
				t.Fatalf("Issue = %v, want ErrWeakSecret", err)
			}
			forged, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
			if err != nil {
				t.Fatal(err)
			}
			_, err = tk.Verify(forged, "acme")
			mustBadToken(t, err)
			// A weak previous secret is ignored beside a good current one.
			_, err = NewTokens(randomSecret(), time.Hour, secret).Verify(forged, "acme")
			mustBadToken(t, err)
		})
	}
	if err := CheckSecret(strings.Repeat("s", MinSecretLen)); err != nil {
		t.Fatalf("CheckSecret of %d bytes = %v, want nil", MinSecretLen, err)
	}
}

func TestATokenCarriesItsGeneration(t *testing.T) {
	t.Parallel()
	tk := NewTokens(randomSecret(), time.Hour)
	tok, _, err := tk.IssueFor("acme", Subject{ID: "u", Staff: true, Generation: 7})
	if err != nil {
		t.Fatal(err)
	}
	c, err := tk.Verify(tok, "acme")
	if err != nil || c.Subject != "u" || !c.Staff || c.Generation != 7 {
		t.Fatalf("Verify = %+v, %v; want user u, staff, generation 7", c, err)
	}
	tok = mustIssue(t, tk, "acme", "u", false)
	if c, err := tk.Verify(tok, "acme"); err != nil || c.Generation != 0 {
		t.Fatalf("Issue's token = %+v, %v; want generation 0", c, err)
	}
}

func TestATokenCarriesItsSubjectsEmail(t *testing.T) {
	t.Parallel()
	tokens := NewTokens(randomSecret(), time.Hour)
	tok, _, err := tokens.IssueFor("acme", Subject{ID: "0190a7e4-1111-7000-8000-000000000001", Email: "ann@acme.test"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := tokens.Verify(tok, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if c.Email != "ann@acme.test" {
		t.Fatalf("Email = %q, want the subject's", c.Email)
	}
}

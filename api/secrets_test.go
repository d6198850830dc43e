package api_test

import (
	"crypto/rand"
	"net/http"
	"testing"
	"time"

	"github.com/tenantworks/saas/pkg/auth"
)

// publishedExampleSecret is the token secret .env.example once showed.
// Nothing signs with it any more; a token made with it is a forgery.
const publishedExampleSecret = "dev-only-insecure-secret-change-me"

const productsPath = "/api/catalog/products/"

// signIn signs email in on host with password and returns the token; the
// sign-in must succeed.
func (e *env) signIn(host, email, password string) string {
	e.t.Helper()
	r := e.do(req{method: "POST", host: host, path: "/api/auth/token", body: map[string]string{"email": email, "password": password}})
	if r.Code != http.StatusOK {
		e.t.Fatalf("sign-in of %s = %d %s", email, r.Code, r.Raw)
	}
	return r.JSON["token"].(string)
}

// status is the answer to a product list on host with token.
func (e *env) status(host, token string) int {
	e.t.Helper()
	return e.do(req{method: "GET", host: host, path: productsPath, token: token}).Code
}

func TestATokenSignedWithThePublishedExampleSecretIsRefused(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t)
	a := e.tenant("pubsec")
	suID, _ := e.superuser("root@pubsec.test")
	forger := auth.NewTokens(publishedExampleSecret, time.Hour)
	staff, _, err := forger.Issue(a.Schema, a.StaffID, true)
	if err != nil {
		t.Fatal(err)
	}
	platform, _, err := forger.Issue(auth.PlatformAudience, suID, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []req{
		{method: "GET", host: a.Host, path: productsPath, token: staff},
		{method: "POST", host: a.Host, path: productsPath, token: staff, body: newProduct("FORGED-1")},
		{method: "GET", host: a.Host, path: "/api/admin/users/", token: staff},
		{method: "GET", host: publicDomain, path: "/api/platform/tenants/", token: platform},
	} {
		if r := e.do(c); r.Code != http.StatusUnauthorized {
			t.Errorf("%s %s with a forged token = %d %s, want 401", c.method, c.path, r.Code, r.Raw)
		}
	}
}

func TestTokensOfThePreviousSecretVerifyWhileRotating(t *testing.T) {
	t.Parallel()
	previous, third := rand.Text()+rand.Text(), rand.Text()+rand.Text()
	e := newEnv(t, func(w *wiring) { w.Tokens = auth.NewTokens(testSecret, time.Hour, previous) })
	a := e.tenant("rot")
	issue := func(secret string) string {
		tok, _, err := auth.NewTokens(secret, time.Hour).Issue(a.Schema, a.UserID, false)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, c := range []struct {
		name, token string
		want        int
	}{
		{"a token of the current secret is accepted", issue(testSecret), http.StatusOK},
		{"a token of the previous secret is accepted", issue(previous), http.StatusOK},
		{"a token of a third secret is refused", issue(third), http.StatusUnauthorized},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := e.status(a.Host, c.token); got != c.want {
				t.Fatalf("= %d, want %d", got, c.want)
			}
		})
	}
	t.Run("sign-in answers a token of the current secret", func(t *testing.T) {
		tok := e.signIn(a.Host, a.UserEmail, testPassword)
		if _, err := auth.NewTokens(testSecret, time.Hour).Verify(tok, a.Schema); err != nil {
			t.Fatalf("the current secret does not verify it: %v", err)
		}
		if _, err := auth.NewTokens(previous, time.Hour).Verify(tok, a.Schema); err == nil {
			t.Fatal("the previous secret verifies a new token")
		}
	})
}

package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tenantworks/saas/api"
	"github.com/tenantworks/saas/pkg/auth"
)

// issuedAt returns a token's iat, unverified.
func issuedAt(t *testing.T, token string) time.Time {
	t.Helper()
	var c auth.Claims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &c); err != nil || c.IssuedAt == nil {
		t.Fatalf("token without iat: %v", err)
	}
	return c.IssuedAt.Time
}

// startOfASecond waits until a new second has just begun, so that what
// follows (a few milliseconds of work) happens within one second.
func startOfASecond() {
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 5*time.Millisecond)))
}

// TestRevocationHasNoSameSecondHole changes and resets passwords within
// the second their earlier tokens were issued in: JWT times are whole
// seconds, so a time-based check would either accept the token issued
// just before the change or refuse the one issued just after.
func TestRevocationHasNoSameSecondHole(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t)
	// Within one second, on a busy machine; each attempt uses its own
	// tenant (the sign-in limit is per address and tenant).
	sameSecond := func(name string, run func(a fixture) (before, after string)) {
		t.Run(name, func(t *testing.T) {
			for attempt := 1; ; attempt++ {
				a := e.tenant("sec")
				startOfASecond()
				before, after := run(a)
				if got := e.status(a.Host, before); got != http.StatusUnauthorized {
					t.Errorf("the token issued before = %d, want 401", got)
				}
				if got := e.status(a.Host, after); got != http.StatusOK {
					t.Errorf("the token issued after = %d, want 200", got)
				}
				if issuedAt(t, before).Equal(issuedAt(t, after)) {
					return // the same second, as meant
				}
				if attempt == 5 {
					t.Fatalf("5 attempts and never within one second")
				}
			}
		})
	}
	sameSecond("a change revokes the token of just before, not the one of just after", func(a fixture) (string, string) {
		before := e.signIn(a.Host, a.UserEmail, testPassword)
		r := e.do(changePassword(a.Host, before, testPassword, "same-second-password"))
		if r.Code != http.StatusOK {
			t.Fatalf("change = %d %s", r.Code, r.Raw)
		}
		if fresh, _ := r.JSON["token"].(string); e.status(a.Host, fresh) != http.StatusOK {
			t.Error("the change's fresh token is refused")
		}
		return before, e.signIn(a.Host, a.UserEmail, "same-second-password")
	})
	sameSecond("a staff reset revokes the token of just before, not the one of just after", func(a fixture) (string, string) {
		before := e.signIn(a.Host, a.UserEmail, testPassword)
		if got := e.status(a.Host, before); got != http.StatusOK { // cached as valid
			t.Fatalf("before the reset = %d", got)
		}
		r := e.do(req{method: "POST", host: a.Host, path: "/api/admin/users/" + a.UserID + "/password/", token: a.StaffToken,
			body: map[string]string{"password": "reset-password"}})
		if r.Code != http.StatusNoContent {
			t.Fatalf("reset = %d %s", r.Code, r.Raw)
		}
		return before, e.signIn(a.Host, a.UserEmail, "reset-password")
	})
}

func TestASuperusersPasswordResetRevokesTheirPlatformTokens(t *testing.T) {
	t.Parallel()
	e := newAdminEnv(t)
	id, before := e.superuser("root@reset.test")
	tenants := func(tok string) int {
		return e.do(req{method: "GET", host: publicDomain, path: "/api/platform/tenants/", token: tok}).Code
	}
	if got := tenants(before); got != http.StatusOK {
		t.Fatalf("before = %d", got)
	}
	if _, err := e.deps.Accounts.SetSuperuserPassword(t.Context(), id, "a-new-root-password"); err != nil {
		t.Fatal(err)
	}
	if got := tenants(before); got != http.StatusUnauthorized {
		t.Errorf("the token issued before the reset = %d, want 401", got)
	}
	r := e.do(req{method: "POST", host: publicDomain, path: "/api/platform/auth/token", body: map[string]string{"email": "root@reset.test", "password": "a-new-root-password"}})
	if r.Code != http.StatusOK {
		t.Fatalf("sign-in with the new password = %d %s", r.Code, r.Raw)
	}
	if got := tenants(r.JSON["token"].(string)); got != http.StatusOK {
		t.Errorf("the token issued after the reset = %d, want 200", got)
	}
}

func TestAPasswordResetClosesTheUsersOpenWebSockets(t *testing.T) {
	t.Parallel()
	p := newPushEnv(t, api.PushConfig{PingInterval: 100 * time.Millisecond})
	a := p.tenant("wspw")
	old := connect(t, p.srv, dialOpts{host: a.Host, token: a.UserToken})
	connect(t, p.srv, dialOpts{host: a.Host, token: a.StaffToken}) // another user's
	r := p.do(req{method: "POST", host: a.Host, path: "/api/admin/users/" + a.UserID + "/password/", token: a.StaffToken,
		body: map[string]string{"password": "a-brand-new-password"}})
	if r.Code != http.StatusNoContent {
		t.Fatalf("reset = %d %s", r.Code, r.Raw)
	}
	err := old.closed()
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation || !strings.Contains(err.Error(), "token revoked") {
		t.Fatalf("the revoked token's connection ended with %v, want policy violation, token revoked", err)
	}
	connect(t, p.srv, dialOpts{host: a.Host, token: p.signIn(a.Host, a.UserEmail, "a-brand-new-password")})
	wsEventually(t, "the new token's connection is counted", func() bool { return p.hub.Connections() == 2 })
	time.Sleep(5 * 100 * time.Millisecond) // a few liveness checks
	if n := p.hub.Connections(); n != 2 {
		t.Fatalf("%d connections, want the new token's and the other user's", n)
	}
}

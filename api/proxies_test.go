package api_test

import (
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// proxiedEnv is an env whose sign-in allows 3 attempts a minute per tenant
// and client address, behind the given trusted proxies.
func proxiedEnv(t *testing.T, trusted ...string) (*env, fixture) {
	t.Helper()
	e := newEnv(t, func(w *wiring) {
		w.LoginLimit, w.LoginWindow = 3, time.Minute
		for _, p := range trusted {
			w.TrustedProxies = append(w.TrustedProxies, netip.MustParsePrefix(p))
		}
	})
	return e, e.tenant("xff")
}

// signInFrom tries a wrong password from the peer remote with the
// X-Forwarded-For xff (none when ""), and returns the status.
func signInFrom(e *env, f fixture, remote, xff string) int {
	e.t.Helper()
	r := req{method: "POST", host: f.Host, path: "/api/auth/token", remote: remote,
		body: map[string]string{"email": f.StaffEmail, "password": "wrong-password"}}
	if xff != "" {
		r.header = map[string]string{"X-Forwarded-For": xff}
	}
	return e.do(r).Code
}

// exhaust spends a bucket's 3 attempts and checks that the next is 429.
func exhaust(t *testing.T, e *env, f fixture, remote, xff string) {
	t.Helper()
	for i := range 3 {
		if code := signInFrom(e, f, remote, xff); code != http.StatusUnauthorized {
			t.Fatalf("attempt %d from %s (X-Forwarded-For %q) = %d, want 401", i+1, remote, xff, code)
		}
	}
	if code := signInFrom(e, f, remote, xff); code != http.StatusTooManyRequests {
		t.Fatalf("4th attempt from %s (X-Forwarded-For %q) = %d, want 429", remote, xff, code)
	}
}

func TestSignInBucketsFollowForwardedAddressesOnlyFromTrustedProxies(t *testing.T) {
	t.Parallel()
	// ignored checks that from peer, X-Forwarded-For does not choose the
	// bucket: whatever it says, the peer has 3 attempts.
	ignored := func(t *testing.T, e *env, f fixture, peer string) {
		t.Helper()
		for i, xff := range []string{"198.51.100.201", "198.51.100.202", "198.51.100.203"} {
			if code := signInFrom(e, f, peer, xff); code != http.StatusUnauthorized {
				t.Fatalf("attempt %d = %d, want 401", i+1, code)
			}
		}
		if code := signInFrom(e, f, peer, "198.51.100.204"); code != http.StatusTooManyRequests {
			t.Fatalf("4th attempt with yet another X-Forwarded-For = %d, want 429: one bucket, the peer's", code)
		}
	}

	t.Run("with no trusted proxies", func(t *testing.T) {
		t.Parallel()
		e, f := proxiedEnv(t)
		// Echo's X-Forwarded-For extractor trusts the last three kinds
		// unless told otherwise.
		for name, peer := range map[string]string{"a public peer": "203.0.113.5:40000", "a loopback peer": "127.0.0.1:40000",
			"a private peer": "10.1.2.3:40000", "a link-local peer": "[fe80::1]:40000"} {
			t.Run("from "+name+", X-Forwarded-For is ignored", func(t *testing.T) { ignored(t, e, f, peer) })
		}
	})

	t.Run("with trusted proxies", func(t *testing.T) {
		t.Parallel()
		e, f := proxiedEnv(t, "192.0.2.0/24", "2001:db8::/32")
		const proxy = "192.0.2.10:40000"

		t.Run("each client forwarded by a trusted proxy has its own bucket", func(t *testing.T) {
			exhaust(t, e, f, proxy, "198.51.100.1")
			if code := signInFrom(e, f, proxy, "198.51.100.2"); code != http.StatusUnauthorized {
				t.Fatalf("another client through the same proxy = %d, want 401 (a bucket of its own)", code)
			}
			// A client writes its own X-Forwarded-For; the proxy appends
			// the address it saw. Only that last one counts.
			if code := signInFrom(e, f, proxy, "203.0.113.77, 198.51.100.1"); code != http.StatusTooManyRequests {
				t.Fatalf("the limited client with a forged address in front = %d, want 429", code)
			}
		})

		t.Run("a chain of trusted proxies is walked back to the client", func(t *testing.T) {
			exhaust(t, e, f, proxy, "198.51.100.11, 2001:db8::5")
			if code := signInFrom(e, f, proxy, "198.51.100.11"); code != http.StatusTooManyRequests {
				t.Fatalf("the same client through one proxy only = %d, want 429 (the same bucket)", code)
			}
		})

		for name, peer := range map[string]string{"a loopback peer": "127.0.0.1:40000", "a private peer": "192.168.1.5:40000",
			"a peer just outside the trusted range": "192.0.3.1:40000", "an IPv6 peer outside the trusted range": "[2001:db9::1]:40000"} {
			t.Run("from "+name+", X-Forwarded-For is ignored", func(t *testing.T) { ignored(t, e, f, peer) })
		}
	})
}

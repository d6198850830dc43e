package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/crypto/bcrypt"

	"github.com/tenantworks/saas/pkg/auth"
	"github.com/tenantworks/saas/pkg/testenv"
)

const testPassword = "e2e-password-1"

// TestEndToEnd runs every role in one process (saas dev) against the real
// services and follows product writes through the whole pipeline: the
// search index, the cache, and each user's WebSocket.
func TestEndToEnd(t *testing.T) {
	useServices(t)
	t.Setenv("NATS_URL", testenv.MustNATSServer(t).URL) // a stream of this test's own
	t.Setenv("JWT_SECRET", "e2e-secret-"+testenv.RandomName(24))
	old := auth.PasswordCost
	auth.PasswordCost = bcrypt.MinCost // sign-ins below; bcrypt is slow under -race
	t.Cleanup(func() { auth.PasswordCost = old })

	a, b := "e2ea_"+testenv.RandomName(6), "e2eb_"+testenv.RandomName(6)
	hostA, hostB := a[:4]+"-"+a[5:]+".localhost", b[:4]+"-"+b[5:]+".localhost"
	for _, args := range [][]string{
		{"migrate", "--shared"},
		{"tenant", "create", "--schema", a, "--name", "A", "--domain", hostA},
		{"tenant", "create", "--schema", b, "--name", "B", "--domain", hostB},
		{"user", "create", "--tenant", a, "--email", "s1@a.test", "--password", testPassword, "--staff"},
		{"user", "create", "--tenant", a, "--email", "s2@a.test", "--password", testPassword, "--staff"},
		{"user", "create", "--tenant", a, "--email", "plain@a.test", "--password", testPassword},
		{"user", "create", "--tenant", b, "--email", "s@b.test", "--password", testPassword, "--staff"},
	} {
		if out, errOut, code := saas(t, args...); code != 0 {
			t.Fatalf("saas %v: %s%s", args, out, errOut)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	_, app := newRootCmd(io.Discard, io.Discard)
	if err := app.init(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.runDev(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("saas dev: %v", err)
		}
		app.close()
	})
	base := "http://" + ln.Addr().String()

	call := func(method, host, path, token string, body any) (int, map[string]any) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			j, _ := json.Marshal(body)
			rd = bytes.NewReader(j)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Host = host
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}
	token := func(host, email string) string {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			code, out := call("POST", host, "/api/auth/token", "", map[string]string{"email": email, "password": testPassword})
			if code == http.StatusOK {
				return out["token"].(string)
			}
			if time.Now().After(deadline) {
				t.Fatalf("sign in %s on %s: %d %v", email, host, code, out)
			}
		}
	}
	s1, s2, plain, sb := token(hostA, "s1@a.test"), token(hostA, "s2@a.test"), token(hostA, "plain@a.test"), token(hostB, "s@b.test")

	// Four WebSocket listeners; each counts the product.created notices it gets.
	type listener struct {
		mu   sync.Mutex
		got  map[string]int // product id -> notifications
		conn *websocket.Conn
	}
	listen := func(host, tok string) *listener {
		t.Helper()
		l := &listener{got: map[string]int{}}
		dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
		defer dcancel()
		conn, _, err := websocket.Dial(dctx, "ws://"+ln.Addr().String()+"/ws/notifications/?token="+tok, &websocket.DialOptions{Host: host})
		if err != nil {
			t.Fatalf("dial %s: %v", host, err)
		}
		l.conn = conn
		go func() {
			for {
				_, data, err := conn.Read(ctx)
				if err != nil {
					return
				}
				var m struct {
					Kind string `json:"kind"`
					Data struct {
						ProductID string `json:"product_id"`
					} `json:"data"`
				}
				if json.Unmarshal(data, &m) == nil && m.Kind == "product.created" {
					l.mu.Lock()
					l.got[m.Data.ProductID]++
					l.mu.Unlock()
				}
			}
		}()
		t.Cleanup(func() { _ = conn.CloseNow() })
		return l
	}
	l1, l2, lPlain, lB := listen(hostA, s1), listen(hostA, s2), listen(hostA, plain), listen(hostB, sb)

	eventually := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	search := func(host, tok, q string) []any {
		code, out := call("GET", host, "/api/catalog/products/search/?q="+q, tok, nil)
		if code != http.StatusOK {
			t.Fatalf("search = %d %v", code, out)
		}
		res, _ := out["results"].([]any)
		return res
	}
	versionFound := func(q string, version float64) func() bool {
		return func() bool {
			for _, r := range search(hostA, plain, q) {
				if r.(map[string]any)["version"] == version {
					return true
				}
			}
			return false
		}
	}

	// Create: searchable, and one notification per staff user of A.
	code, p := call("POST", hostA, "/api/catalog/products/", s1, map[string]any{"sku": "E2E-1", "name": "Zebra lamp", "price": "12.00", "currency": "EUR"})
	if code != http.StatusCreated {
		t.Fatalf("create = %d %v", code, p)
	}
	id := p["id"].(string)
	eventually("the new product in search at version 1", versionFound("zebra", 1))
	// Warm the cache with version 1 (item and list).
	if code, got := call("GET", hostA, "/api/catalog/products/"+id+"/", plain, nil); code != http.StatusOK || got["version"] != float64(1) {
		t.Fatalf("retrieve = %d %v", code, got)
	}
	call("GET", hostA, "/api/catalog/products/", plain, nil)
	eventually("each staff user's notification", func() bool {
		l1.mu.Lock()
		defer l1.mu.Unlock()
		l2.mu.Lock()
		defer l2.mu.Unlock()
		return l1.got[id] >= 1 && l2.got[id] >= 1
	})

	// Update: the search and the cached item and list follow.
	if code, got := call("PATCH", hostA, "/api/catalog/products/"+id+"/", s2, map[string]any{"name": "Zebra lantern"}); code != http.StatusOK {
		t.Fatalf("patch = %d %v", code, got)
	}
	eventually("version 2 in search", versionFound("lantern", 2))
	eventually("the cached item to show version 2", func() bool {
		_, got := call("GET", hostA, "/api/catalog/products/"+id+"/", plain, nil)
		return got["version"] == float64(2) && got["name"] == "Zebra lantern"
	})
	eventually("the cached list to show version 2", func() bool {
		_, got := call("GET", hostA, "/api/catalog/products/", plain, nil)
		res, _ := got["results"].([]any)
		return len(res) == 1 && res[0].(map[string]any)["version"] == float64(2)
	})
	if res := search(hostB, sb, "zebra"); len(res) != 0 {
		t.Fatalf("tenant B's search finds A's product: %v", res)
	}

	// Delete: gone from search and from the cache.
	if code, _ := call("DELETE", hostA, "/api/catalog/products/"+id+"/", s1, nil); code != http.StatusNoContent {
		t.Fatalf("delete = %d", code)
	}
	eventually("the product to leave the search", func() bool { return len(search(hostA, plain, "zebra")) == 0 })
	eventually("the cached item to 404", func() bool {
		code, _ := call("GET", hostA, "/api/catalog/products/"+id+"/", plain, nil)
		return code == http.StatusNotFound
	})

	// Let late or duplicate pushes arrive, then count.
	time.Sleep(500 * time.Millisecond)
	for name, c := range map[string]struct {
		l    *listener
		want int
	}{"staff 1 of A": {l1, 1}, "staff 2 of A": {l2, 1}, "the plain user of A": {lPlain, 0}, "the staff of B": {lB, 0}} {
		c.l.mu.Lock()
		got := c.l.got[id]
		total := len(c.l.got)
		c.l.mu.Unlock()
		if got != c.want || total > c.want {
			t.Errorf("%s got %d notifications for the product (%d products in all), want %d", name, got, total, c.want)
		}
	}

}

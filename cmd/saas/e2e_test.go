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
// search index, the cache, and each user's WebSocket. Each step needs the
// one before; the first that fails ends the test.
func TestEndToEnd(t *testing.T) {
	d := startDev(t)
	// Four WebSocket listeners; each counts the product.created notices it gets.
	l1, l2, lPlain, lB := d.listen(t, d.hostA, d.s1), d.listen(t, d.hostA, d.s2), d.listen(t, d.hostA, d.plain), d.listen(t, d.hostB, d.sb)
	var id string
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"a created product becomes searchable and notifies each staff user of its tenant", func(t *testing.T) {
			id = d.createdProductIsSearchableAndNotified(t, l1, l2)
		}},
		{"an update reaches the search, the cached item and the cached list, and no other tenant", func(t *testing.T) {
			d.updateReachesSearchAndCache(t, id)
		}},
		{"a delete leaves the search and the cache", func(t *testing.T) {
			d.deleteLeavesSearchAndCache(t, id)
		}},
		{"every user got the notifications meant for them, once", func(t *testing.T) {
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
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			return
		}
	}
}

// createdProductIsSearchableAndNotified creates a product in tenant A and
// waits for it in search and for each staff user's notification; it warms
// the cache with it on the way, and returns its id.
func (d *dev) createdProductIsSearchableAndNotified(t *testing.T, l1, l2 *listener) string {
	hostA, s1, plain := d.hostA, d.s1, d.plain
	code, p := d.call(t, "POST", hostA, "/api/catalog/products/", s1, map[string]any{"sku": "E2E-1", "name": "Zebra lamp", "price": "12.00", "currency": "EUR"})
	if code != http.StatusCreated {
		t.Fatalf("create = %d %v", code, p)
	}
	id := p["id"].(string)
	eventually(t, "the new product in search at version 1", d.versionFound(t, "zebra", 1))
	// Warm the cache with version 1 (item and list).
	if code, got := d.call(t, "GET", hostA, "/api/catalog/products/"+id+"/", plain, nil); code != http.StatusOK || got["version"] != float64(1) {
		t.Fatalf("retrieve = %d %v", code, got)
	}
	d.call(t, "GET", hostA, "/api/catalog/products/", plain, nil)
	eventually(t, "each staff user's notification", func() bool {
		l1.mu.Lock()
		defer l1.mu.Unlock()
		l2.mu.Lock()
		defer l2.mu.Unlock()
		return l1.got[id] >= 1 && l2.got[id] >= 1
	})
	return id
}

// updateReachesSearchAndCache renames product id: the search and the cached
// item and list follow, and tenant B's search never finds it.
func (d *dev) updateReachesSearchAndCache(t *testing.T, id string) {
	hostA, s2, plain := d.hostA, d.s2, d.plain
	if code, got := d.call(t, "PATCH", hostA, "/api/catalog/products/"+id+"/", s2, map[string]any{"name": "Zebra lantern"}); code != http.StatusOK {
		t.Fatalf("patch = %d %v", code, got)
	}
	eventually(t, "version 2 in search", d.versionFound(t, "lantern", 2))
	eventually(t, "the cached item to show version 2", func() bool {
		_, got := d.call(t, "GET", hostA, "/api/catalog/products/"+id+"/", plain, nil)
		return got["version"] == float64(2) && got["name"] == "Zebra lantern"
	})
	eventually(t, "the cached list to show version 2", func() bool {
		_, got := d.call(t, "GET", hostA, "/api/catalog/products/", plain, nil)
		res, _ := got["results"].([]any)
		return len(res) == 1 && res[0].(map[string]any)["version"] == float64(2)
	})
	if res := d.search(t, d.hostB, d.sb, "zebra"); len(res) != 0 {
		t.Fatalf("tenant B's search finds A's product: %v", res)
	}
}

// deleteLeavesSearchAndCache deletes product id: it leaves the search and
// the cache.
func (d *dev) deleteLeavesSearchAndCache(t *testing.T, id string) {
	hostA, s1, plain := d.hostA, d.s1, d.plain
	if code, _ := d.call(t, "DELETE", hostA, "/api/catalog/products/"+id+"/", s1, nil); code != http.StatusNoContent {
		t.Fatalf("delete = %d", code)
	}
	eventually(t, "the product to leave the search", func() bool { return len(d.search(t, hostA, plain, "zebra")) == 0 })
	eventually(t, "the cached item to 404", func() bool {
		code, _ := d.call(t, "GET", hostA, "/api/catalog/products/"+id+"/", plain, nil)
		return code == http.StatusNotFound
	})
}

// dev is `saas dev` running in this process on a database of the test's
// own and a NATS server of its own, with two tenants: A has two staff
// users and a plain one, B one staff user; each signed in.
type dev struct {
	ctx               context.Context // until the test ends
	addr              string
	hostA, hostB      string
	s1, s2, plain, sb string // tokens: the staff of A, A's plain user, the staff of B
}

func startDev(t *testing.T) *dev {
	t.Helper()
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
	d := &dev{ctx: ctx, addr: ln.Addr().String(), hostA: hostA, hostB: hostB}
	d.s1, d.s2, d.plain, d.sb = d.token(t, hostA, "s1@a.test"), d.token(t, hostA, "s2@a.test"), d.token(t, hostA, "plain@a.test"), d.token(t, hostB, "s@b.test")
	return d
}

// call sends a JSON request to host and decodes the JSON answer.
func (d *dev) call(t *testing.T, method, host, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, "http://"+d.addr+path, rd)
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

// token signs email in on host, trying for up to 10 seconds while the
// server starts.
func (d *dev) token(t *testing.T, host, email string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, out := d.call(t, "POST", host, "/api/auth/token", "", map[string]string{"email": email, "password": testPassword})
		if code == http.StatusOK {
			return out["token"].(string)
		}
		if time.Now().After(deadline) {
			t.Fatalf("sign in %s on %s: %d %v", email, host, code, out)
		}
	}
}

// listener counts the product.created notifications one WebSocket gets.
type listener struct {
	mu   sync.Mutex
	got  map[string]int // product id -> notifications
	conn *websocket.Conn
}

// listen opens a WebSocket on host with tok and counts what it receives
// until the test ends.
func (d *dev) listen(t *testing.T, host, tok string) *listener {
	t.Helper()
	ctx := d.ctx
	l := &listener{got: map[string]int{}}
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	conn, _, err := websocket.Dial(dctx, "ws://"+d.addr+"/ws/notifications/?token="+tok, &websocket.DialOptions{Host: host})
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

// search returns the results of a search on host.
func (d *dev) search(t *testing.T, host, tok, q string) []any {
	t.Helper()
	code, out := d.call(t, "GET", host, "/api/catalog/products/search/?q="+q, tok, nil)
	if code != http.StatusOK {
		t.Fatalf("search = %d %v", code, out)
	}
	res, _ := out["results"].([]any)
	return res
}

// versionFound tells whether tenant A's search for q finds a product at
// version.
func (d *dev) versionFound(t *testing.T, q string, version float64) func() bool {
	return func() bool {
		for _, r := range d.search(t, d.hostA, d.plain, q) {
			if r.(map[string]any)["version"] == version {
				return true
			}
		}
		return false
	}
}

// eventually polls cond every 50ms until it holds, failing t after 20
// seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/tenantworks/saas/pkg/auth"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/testenv"
	"github.com/tenantworks/saas/schema"
)

// TestATenantOnAnotherClusterGoesThroughThePipeline runs saas dev on two
// clusters (TENANT_DATABASES) with a tenant held by pg2: its product is
// written there, relayed from there, becomes searchable, and each of its
// staff users is notified.
func TestATenantOnAnotherClusterGoesThroughThePipeline(t *testing.T) {
	useServices(t)
	cd := testenv.MustClusterDatabases(t)
	other := cd.Clusters[1]
	t.Setenv("DATABASE_URL", cd.PoolURL)
	t.Setenv("DATABASE_POOL_MODE", string(cd.PoolMode))
	t.Setenv("DATABASE_DIRECT_URL", cd.URL)
	t.Setenv(testenv.TenantDatabasesEnv, cd.TenantDatabases)
	t.Setenv("NATS_URL", testenv.MustNATSServer(t).URL) // a stream of this test's own
	t.Setenv("JWT_SECRET", "e2e-secret-"+testenv.RandomName(24))
	old := auth.PasswordCost
	auth.PasswordCost = bcrypt.MinCost // sign-ins below; bcrypt is slow under -race
	t.Cleanup(func() { auth.PasswordCost = old })

	far := "e2ef_" + testenv.RandomName(6)
	host := far[:4] + "-" + far[5:] + ".localhost"
	if out, errOut, code := saas(t, "tenant", "create", "--schema", far, "--name", "Far", "--domain", host); code != 0 {
		t.Fatalf("tenant create: %s%s", out, errOut)
	}
	relocate(t, cd, far, other)
	for _, args := range [][]string{
		{"user", "create", "--tenant", far, "--email", "s1@far.test", "--password", testPassword, "--staff"},
		{"user", "create", "--tenant", far, "--email", "s2@far.test", "--password", testPassword, "--staff"},
		{"user", "create", "--tenant", far, "--email", "plain@far.test", "--password", testPassword},
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
	d := &dev{ctx: ctx, addr: ln.Addr().String(), hostA: host}
	d.s1, d.s2, d.plain = d.token(t, host, "s1@far.test"), d.token(t, host, "s2@far.test"), d.token(t, host, "plain@far.test")
	l1, l2 := d.listen(t, host, d.s1), d.listen(t, host, d.s2)

	code, p := d.call(t, "POST", host, "/api/catalog/products/", d.s1, map[string]any{"sku": "FAR-1", "name": "Zebra lamp", "price": "12.00", "currency": "EUR"})
	if code != http.StatusCreated {
		t.Fatalf("create = %d %v", code, p)
	}
	id := p["id"].(string)
	var n int
	if err := other.DB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM `+pgx.Identifier{far, "products"}.Sanitize()+` WHERE id = $1`, id).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the product on %s: %d rows, %v; want it there", other.Name, n, err)
	}
	eventually(t, "the outbox marker on "+other.Name+" to be drained", func() bool {
		pending, err := other.DB.PendingTenants(t.Context())
		return err == nil && len(pending) == 0
	})
	eventually(t, "the new product in search at version 1", d.versionFound(t, "zebra", 1))
	eventually(t, "each staff user's notification", func() bool {
		l1.mu.Lock()
		defer l1.mu.Unlock()
		l2.mu.Lock()
		defer l2.mu.Unlock()
		return l1.got[id] >= 1 && l2.got[id] >= 1
	})

	// A client reconnecting with ?since= is caught up from the tenant's
	// cluster.
	if !d.caughtUp(t, host, d.s1, id) {
		t.Fatal("the catch-up of ?since=0 lacks the product's notification")
	}
	// A rebuild reads the tenant's products where they are.
	out, errOut, code := saas(t, "reindex", "--tenant", far)
	if code != 0 || !strings.Contains(out, "reindexed "+far+" from db") || !strings.Contains(out, ": 1 read") {
		t.Fatalf("reindex = %d %s%s, want the one product read", code, out, errOut)
	}
	eventually(t, "the product in search after the rebuild", d.versionFound(t, "zebra", 1))
	// The CSV export reads them there too.
	if out, errOut, code := saas(t, "products", "export", "--tenant", far, "--file", "-"); code != 0 || !strings.Contains(out, "FAR-1,Zebra lamp") {
		t.Fatalf("export = %d %s%s, want the product", code, out, errOut)
	}
}

// relocate moves a tenant created on main, before it holds anything of
// its own, to the cluster to: its schema is made there, public.tenants
// names the cluster, and main's schema goes.
func relocate(t *testing.T, cd *testenv.Database, schemaName string, to postgres.Cluster) {
	t.Helper()
	ctx := t.Context()
	if _, err := to.DB.Pool.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schemaName}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	r, err := schema.NewRunner(to.DirectURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.MigrateTenant(ctx, schemaName); err != nil {
		t.Fatal(err)
	}
	if _, err := cd.DB.Pool.Exec(ctx, `UPDATE public.tenants SET cluster = $1 WHERE schema_name = $2`, to.Name, schemaName); err != nil {
		t.Fatal(err)
	}
	if _, err := cd.DB.Pool.Exec(ctx, `DROP SCHEMA `+pgx.Identifier{schemaName}.Sanitize()+` CASCADE`); err != nil {
		t.Fatal(err)
	}
}

// caughtUp opens a WebSocket on host with tok and ?since=0 and reports
// whether its catch-up brings a notification about product id (within 10
// seconds).
func (d *dev) caughtUp(t *testing.T, host, tok, id string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+d.addr+"/ws/notifications/?since=0&token="+tok, &websocket.DialOptions{Host: host})
	if err != nil {
		t.Fatalf("dial %s: %v", host, err)
	}
	defer func() { _ = conn.CloseNow() }()
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return false
		}
		var m struct {
			Data struct {
				ProductID string `json:"product_id"`
			} `json:"data"`
		}
		if json.Unmarshal(data, &m) == nil && m.Data.ProductID == id {
			return true
		}
	}
}

package api_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/auth"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/pkg/testenv"
	"github.com/tenantworks/saas/schema"
)

// newAdminEnv is an env wired for the admin APIs: the tenancy manager and
// the user-flags cache are in the API's Deps, and the resolver forgets what
// it knew whenever the manager changes tenants or domains (in production,
// NATS carries that announcement between processes). Every request comes
// from an address of this env's own, so the sign-in rate limiter's
// "public" bucket, which lives in the shared Redis, is not shared with
// other tests.
func newAdminEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	return newAdminEnvOn(t, nil, opts...)
}

// newAdminEnvOn is newAdminEnv on the database db (nil: a fresh one).
func newAdminEnvOn(t *testing.T, db *testenv.Database, opts ...envOption) *env {
	t.Helper()
	var mgr *tenancy.Manager
	wire := func(d *wiring) {
		runner, err := schema.NewRunner(d.DirectURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		resolver := tenancy.NewResolver(d.DB, time.Minute)
		mgr = tenancy.NewManager(d.DB, runner, slog.New(slog.DiscardHandler))
		mgr.OnChange(func(context.Context) { resolver.Purge() })
		d.Tenants = resolver
		d.Tenancy = mgr
	}
	var e *env
	if db != nil {
		e = newEnvOn(t, db, append([]envOption{wire}, opts...)...)
	} else {
		e = newEnv(t, append([]envOption{wire}, opts...)...)
	}
	e.mgr = mgr
	addr := randomAddr()
	h := e.handler
	e.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.RemoteAddr = addr
		h.ServeHTTP(w, r)
	})
	return e
}

// randomAddr returns an address in 10.0.0.0/8 with a port.
func randomAddr() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("10.%d.%d.%d:40000", b[0], b[1], b[2])
}

// superuser creates an active platform superuser and signs it in through
// the API, returning its id and token.
func (e *env) superuser(email string) (id, token string) {
	e.t.Helper()
	hash, err := auth.HashPassword(testPassword)
	if err != nil {
		e.t.Fatal(err)
	}
	su, err := e.db.DB.CreateSuperuser(context.Background(), email, hash, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	r := e.do(req{method: "POST", host: publicDomain, path: "/api/platform/auth/token", body: map[string]string{"email": email, "password": testPassword}})
	if r.Code != http.StatusOK {
		e.t.Fatalf("superuser sign-in = %d %s", r.Code, r.Raw)
	}
	return su.ID, r.JSON["token"].(string)
}

// notify inserts a notification for a user straight into the tenant's
// table, as the notifier worker will, and returns its id.
func (e *env) notify(schemaName, userID, title string) int64 {
	e.t.Helper()
	ctx := context.Background()
	var id int64
	err := e.db.DB.InTenant(ctx, schemaName, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx,
			`INSERT INTO notifications (event_id, user_id, kind, title, data)
			 VALUES (gen_random_uuid(), $1, 'product.created', $2, jsonb_build_object('title', $2::text))
			 RETURNING id`, userID, title).Scan(&id)
	})
	if err != nil {
		e.t.Fatalf("insert notification in %s: %v", schemaName, err)
	}
	return id
}

// walk follows a list's next links from path and returns every item of
// every page, failing the test on anything but 200 or on a page larger
// than limit.
func (e *env) walk(host, path, token string, limit int) []map[string]any {
	e.t.Helper()
	var items []map[string]any
	for pages := 0; path != ""; pages++ {
		if pages > 1000 {
			e.t.Fatal("walk: more than 1000 pages; the next links loop")
		}
		r := e.do(req{method: "GET", host: host, path: path, token: token})
		if r.Code != http.StatusOK {
			e.t.Fatalf("walk: GET %s = %d %s", path, r.Code, r.Raw)
		}
		results, _ := r.JSON["results"].([]any)
		if len(results) > limit {
			e.t.Fatalf("walk: page of %d items, limit %d", len(results), limit)
		}
		for _, it := range results {
			items = append(items, it.(map[string]any))
		}
		path = ""
		if next, ok := r.JSON["next"].(string); ok {
			u, err := url.Parse(next)
			if err != nil || !u.IsAbs() || u.Host != host {
				e.t.Fatalf("walk: next = %q, want an absolute URL on %s", next, host)
			}
			path = u.RequestURI()
		} else if r.JSON["next"] != nil {
			e.t.Fatalf("walk: next = %v, want a URL or null", r.JSON["next"])
		}
	}
	return items
}

// countPublic returns a single number from a query outside any tenant.
func (e *env) countPublic(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.DB.Pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		e.t.Fatalf("count %q: %v", query, err)
	}
	return n
}

package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/tenantworks/saas/api"
	"github.com/tenantworks/saas/pkg/accounts"
	"github.com/tenantworks/saas/pkg/auth"
	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/catalog"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/pkg/testenv"
	"github.com/tenantworks/saas/schema"
)

const (
	publicDomain = "platform.test"
	testPassword = "correct-horse-battery"
)

// testSecret signs this run's tokens: random, as every deployment's is.
var testSecret = rand.Text() + rand.Text()

// fixtureHash is the hash of testPassword, computed once: bcrypt is slow
// by design, and slower still under the race detector.
var fixtureHash = sync.OnceValue(func() string {
	h, err := auth.HashPassword(testPassword)
	if err != nil {
		panic(err)
	}
	return h
})

// env is one API server on a fresh database, talking to the real Redis.
type env struct {
	t       *testing.T
	db      *testenv.Database
	rdb     redis.UniversalClient
	mgr     *tenancy.Manager
	tokens  *auth.Tokens
	handler http.Handler
	cfg     api.Config // as the server was built
	deps    api.Deps
	reads   *countingSource // every product read that reached PostgreSQL
}

// wiring is what an envOption may change before the server is built: its
// config and deps, the Redis the caches and the sign-in limiter use, and
// the limiter's bounds.
type wiring struct {
	*api.Config
	*api.Deps
	Redis       redis.UniversalClient
	LoginLimit  int
	LoginWindow time.Duration
	// DirectURL reaches the test database with sessions of their own, for
	// migrations (Deps.DB may go through a transaction pooler).
	DirectURL string
}

type envOption func(*wiring)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	return newEnvOn(t, testenv.MustDatabase(t), opts...)
}

// newEnvOn is newEnv on db (one of testenv.MustClusterDatabases, say).
func newEnvOn(t *testing.T, db *testenv.Database, opts ...envOption) *env {
	t.Helper()
	rdb, err := cache.Open(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	runner, err := schema.NewRunner(db.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	e := &env{t: t, db: db, rdb: rdb, mgr: tenancy.NewManager(db.DB, runner, log),
		tokens: auth.NewTokens(testSecret, time.Hour), reads: &countingSource{DB: db.DB}}
	cfg := api.Config{PublicDomain: publicDomain}
	deps := api.Deps{
		Log:     log,
		DB:      db.DB,
		Tenants: tenancy.NewResolver(db.DB, time.Minute),
		Tokens:  e.tokens,
	}
	w := &wiring{Config: &cfg, Deps: &deps, Redis: rdb, DirectURL: db.URL}
	for _, o := range opts {
		o(w)
	}
	if deps.Users == nil {
		deps.Users = cache.NewUsers(w.Redis, cache.Keys{}, db.DB, time.Minute, log)
	}
	if deps.Catalog == nil {
		// As in production: reads through the cache, which every write
		// invalidates once committed.
		products := cache.NewProducts(w.Redis, cache.Keys{}, e.reads, time.Minute, log)
		cat, err := catalog.New(catalog.Deps{Store: db.DB, Reader: products, Invalidator: products, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		deps.Catalog = cat
	}
	if deps.Accounts == nil {
		flags, _ := deps.Users.(accounts.FlagCache)
		acc, err := accounts.New(accounts.Deps{Store: db.DB, Limiter: cache.NewLimiter(w.Redis, cache.Keys{}, w.LoginLimit, w.LoginWindow),
			Flags: flags, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		deps.Accounts = acc
	}
	e.cfg, e.deps = cfg, deps
	srv := api.New(cfg, deps)
	t.Cleanup(srv.Close) // before the databases go: a move may run
	e.handler = srv.Handler()
	return e
}

// countingSource counts the product reads that reach the database.
type countingSource struct {
	*postgres.DB
	gets, lists atomic.Int64
}

func (c *countingSource) GetProduct(ctx context.Context, schemaName, id string) (domain.Product, error) {
	c.gets.Add(1)
	return c.DB.GetProduct(ctx, schemaName, id)
}

func (c *countingSource) ListProducts(ctx context.Context, schemaName string, p postgres.ListParams) ([]domain.Product, string, error) {
	c.lists.Add(1)
	return c.DB.ListProducts(ctx, schemaName, p)
}

// fixture is a tenant with a staff user and a plain user, and their tokens.
type fixture struct {
	Schema, Host          string
	StaffID, UserID       string
	StaffToken, UserToken string
	StaffEmail, UserEmail string
}

// tenant creates a tenant with a random schema (Redis is shared between
// tests, and its keys are scoped by schema) and two users.
func (e *env) tenant(prefix string) fixture {
	e.t.Helper()
	ctx := context.Background()
	schemaName := prefix + "_" + testenv.RandomName(8)
	f := fixture{Schema: schemaName, Host: strings.ReplaceAll(schemaName, "_", "-") + ".example.test",
		StaffEmail: "staff@" + prefix + ".test", UserEmail: "user@" + prefix + ".test"}
	if _, err := e.mgr.Create(ctx, tenancy.CreateParams{Schema: schemaName, Name: prefix, Domain: f.Host}); err != nil {
		e.t.Fatal(err)
	}
	hash := fixtureHash()
	staff, err := e.db.DB.CreateUser(ctx, schemaName, postgres.NewUser{Email: f.StaffEmail, PasswordHash: hash, IsStaff: true})
	if err != nil {
		e.t.Fatal(err)
	}
	user, err := e.db.DB.CreateUser(ctx, schemaName, postgres.NewUser{Email: f.UserEmail, PasswordHash: hash})
	if err != nil {
		e.t.Fatal(err)
	}
	f.StaffID, f.UserID = staff.ID, user.ID
	f.StaffToken, _, _ = e.tokens.Issue(schemaName, staff.ID, true)
	f.UserToken, _, _ = e.tokens.Issue(schemaName, user.ID, false)
	return f
}

// req describes one request.
type req struct {
	method, host, path, token string
	body                      any // string or []byte sent as is, anything else as JSON
	header                    map[string]string
	remote                    string // the peer's host:port; default httptest's 192.0.2.1:1234
}

// response is a recorded answer with its JSON body decoded.
type response struct {
	Code   int
	Header http.Header
	Raw    []byte
	JSON   map[string]any
}

func (r response) errorCode() string {
	e, _ := r.JSON["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (r response) errorDetails() map[string]any {
	e, _ := r.JSON["error"].(map[string]any)
	d, _ := e["details"].(map[string]any)
	return d
}

func (e *env) do(r req) response {
	e.t.Helper()
	out, err := send(e.handler, r)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// send serves r on h; safe to call from any goroutine.
func send(h http.Handler, r req) (response, error) {
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		body = bytes.NewBufferString(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		body = bytes.NewReader(j)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	hr.Host = r.host
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if r.remote != "" {
		hr.RemoteAddr = r.remote
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, hr)
	out := response{Code: rec.Code, Header: rec.Header(), Raw: rec.Body.Bytes()}
	_ = json.Unmarshal(out.Raw, &out.JSON)
	return out, nil
}

// count returns a single number from a query in a tenant's schema.
func (e *env) count(schemaName, query string, args ...any) int {
	e.t.Helper()
	var n int
	ctx := context.Background()
	err := e.db.DB.InTenant(ctx, schemaName, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, query, args...).Scan(&n)
	})
	if err != nil {
		e.t.Fatalf("count %q in %s: %v", query, schemaName, err)
	}
	return n
}

// redisKeys returns the keys matching pattern, on every master when the
// tests run against a Redis Cluster (KEYS asks only one node there).
func (e *env) redisKeys(t *testing.T, pattern string) []string {
	t.Helper()
	var (
		mu   sync.Mutex
		keys []string
	)
	get := func(ctx context.Context, c redis.UniversalClient) error {
		ks, err := c.Keys(ctx, pattern).Result()
		mu.Lock()
		keys = append(keys, ks...)
		mu.Unlock()
		return err
	}
	var err error
	if c, ok := e.rdb.(*redis.ClusterClient); ok {
		err = c.ForEachMaster(t.Context(), func(ctx context.Context, node *redis.Client) error { return get(ctx, node) })
	} else {
		err = get(t.Context(), e.rdb)
	}
	if err != nil {
		t.Fatalf("redis keys %s: %v", pattern, err)
	}
	return keys
}

func cacheUsers(e *env) *cache.Users {
	return cache.NewUsers(e.rdb, cache.Keys{}, e.db.DB, time.Minute, slog.New(slog.DiscardHandler))
}

func userAuth(active, staff bool) postgres.UserAuth {
	return postgres.UserAuth{Active: active, Staff: staff}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantworks/saas/pkg/search"
	"github.com/tenantworks/saas/pkg/testenv"
	"github.com/tenantworks/saas/schema"
)

// saas runs the binary's command tree in-process and returns its output and
// exit code.
func saas(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	code = exitCode(err, &errb)
	return out.String(), errb.String(), code
}

// useServices points the process environment at the test services with a
// fresh database of this test's own (reached through PgBouncer in
// transaction mode under SAAS_TEST_POOLER=1, as a deployment behind it is
// configured), and at no other cluster: TENANT_DATABASES, which the
// services' environment sets to the shared database of the other cluster,
// is emptied, so that no tenant lands there.
func useServices(t *testing.T) {
	t.Helper()
	useDatabase(t, testenv.MustDatabase(t))
}

// useClusterServices is useServices with a fresh database of this test's
// own on every cluster of TENANT_DATABASES too (see
// testenv.MustClusterDatabases), named in TENANT_DATABASES.
func useClusterServices(t *testing.T) *testenv.Database {
	t.Helper()
	db := testenv.MustClusterDatabases(t)
	useDatabase(t, db)
	return db
}

func useDatabase(t *testing.T, db *testenv.Database) {
	t.Helper()
	s := testenv.Get(t)
	t.Setenv("TENANT_DATABASES", db.TenantDatabases)
	t.Setenv("DATABASE_URL", db.PoolURL)
	t.Setenv("DATABASE_POOL_MODE", string(db.PoolMode))
	t.Setenv("DATABASE_DIRECT_URL", db.URL)
	t.Setenv("REDIS_URL", s.RedisURL)
	t.Setenv("NATS_URL", s.NatsURL)
	t.Setenv("ELASTICSEARCH_URL", s.ElasticsearchURL)
	t.Setenv("LOG_FORMAT", "json")
	t.Setenv("APP_ENV", "test")
	// A token secret of this test's own: there is no default.
	t.Setenv("JWT_SECRET", "test-secret-"+testenv.RandomName(32))
	t.Setenv("JWT_SECRET_PREVIOUS", "")
	// Tenants the test creates live on shared indices of the run's prefix;
	// registered first, this runs after the test's own clean-ups.
	t.Cleanup(func() {
		es, err := search.New(search.Config{URL: s.ElasticsearchURL, IndexPrefix: os.Getenv("ELASTICSEARCH_INDEX_PREFIX")})
		if err == nil {
			err = es.DeleteSharedIndices(context.Background())
		}
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

func TestTenantCommands(t *testing.T) {
	useServices(t)
	shared, err := fs.Glob(schema.Public, "*.sql")
	if err != nil || len(shared) == 0 {
		t.Fatalf("shared migrations: %v", err)
	}
	sharedVersion := strings.TrimLeft(strings.SplitN(shared[len(shared)-1], "_", 2)[0], "0")
	// Operator commands neither sign nor verify tokens: they run without
	// a secret.
	t.Setenv("JWT_SECRET", "")
	steps := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"shared migrations apply", []string{"migrate", "--shared"}, 0, "shared schema at version " + sharedVersion},
		{"a tenant is created", []string{"tenant", "create", "--schema", "acme", "--name", "Acme", "--domain", "acme.localhost"}, 0, "created tenant acme"},
		{"a taken schema is a conflict", []string{"tenant", "create", "--schema", "acme", "--name", "Other", "--domain", "other.localhost"}, 3, "schema already exists"},
		{"a taken domain is a conflict", []string{"tenant", "create", "--schema", "other", "--name", "Other", "--domain", "ACME.localhost"}, 3, "domain already in use"},
		{"a reserved schema is bad input", []string{"tenant", "create", "--schema", "pg_x", "--name", "X", "--domain", "x.localhost"}, 2, "invalid"},
		{"a missing flag is bad usage", []string{"tenant", "create", "--schema", "beta"}, 2, "--name is required"},
		{"an unknown flag is bad usage", []string{"tenant", "list", "--bogus"}, 2, "unknown flag"},
		{"a user is created", []string{"user", "create", "--tenant", "acme", "--email", "Staff@Acme.test", "--password", "s3cret-pass", "--staff"}, 0, "created user staff@acme.test"},
		{"the same email again is a conflict", []string{"user", "create", "--tenant", "acme", "--email", "staff@acme.test", "--password", "s3cret-pass"}, 3, "email already in use"},
		{"a short password is bad input", []string{"user", "create", "--tenant", "acme", "--email", "b@acme.test", "--password", "short"}, 2, "password"},
		{"a user of an unknown tenant is not found", []string{"user", "create", "--tenant", "nobody", "--email", "b@acme.test", "--password", "s3cret-pass"}, 4, "not found"},
		{"a superuser is created", []string{"superuser", "create", "--email", "root@platform.test", "--password", "s3cret-pass"}, 0, "created superuser root@platform.test"},
		{"tenant migrations with nothing pending", []string{"migrate"}, 0, "0 pending, 0 migrated, 0 failed"},
		{"the list shows the tenant", []string{"tenant", "list"}, 0, "acme.localhost"},
		{"a tenant is suspended", []string{"tenant", "suspend", "--schema", "acme"}, 0, "tenant acme is suspended"},
		{"show says so", []string{"tenant", "show", "--schema", "acme"}, 0, "suspended"},
		{"show names its cluster", []string{"tenant", "show", "--schema", "acme"}, 0, "cluster         main"},
		{"a tenant is resumed", []string{"tenant", "resume", "--schema", "acme"}, 0, "tenant acme is active"},
		{"suspending an unknown tenant is not found", []string{"tenant", "suspend", "--schema", "nobody"}, 4, "not found"},
		{"a tenant is deleted", []string{"tenant", "delete", "--schema", "acme"}, 0, "deleted tenant acme"},
		{"deleting it again is not found", []string{"tenant", "delete", "--schema", "acme"}, 4, "not found"},
	}
	for _, s := range steps {
		out, errOut, code := saas(t, s.args...)
		if code != s.code || !strings.Contains(out+errOut, s.contains) {
			t.Fatalf("%s: saas %v exited %d with\n%s%s\nwant exit %d and %q", s.name, s.args, code, out, errOut, s.code, s.contains)
		}
	}
}

// The roles that sign or verify tokens refuse to start without a good
// secret, in every APP_ENV, before they open anything: exit code 2 (bad
// usage) and a message naming the variable.
func TestRolesRefuseToStartWithoutAGoodSecret(t *testing.T) {
	good := "test-secret-" + testenv.RandomName(32)
	for _, c := range []struct {
		name, secret, previous, says string
	}{
		{"no JWT_SECRET", "", "", "JWT_SECRET is not set"},
		{"a JWT_SECRET of 31 bytes", strings.Repeat("s", 31), "", "JWT_SECRET is 31 bytes long"},
		{"the secret .env.example once published", "dev-only-insecure-secret-change-me", "", "published as an example"},
		{"a short JWT_SECRET_PREVIOUS", good, "short", "JWT_SECRET_PREVIOUS is 5 bytes long"},
	} {
		for _, env := range []string{"development", "production"} {
			for _, role := range [][]string{{"api"}, {"push"}, {"dev"}} {
				t.Run(role[0]+" with "+c.name+" in "+env, func(t *testing.T) {
					// Unreachable services: a role that got past the check
					// would fail otherwise, with another exit code.
					t.Setenv("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none?connect_timeout=1")
					t.Setenv("APP_ENV", env)
					t.Setenv("JWT_SECRET", c.secret)
					t.Setenv("JWT_SECRET_PREVIOUS", c.previous)
					_, errOut, code := saas(t, role...)
					if code != 2 || !strings.Contains(errOut, c.says) {
						t.Fatalf("saas %s exited %d with %q, want exit 2 saying %q", role[0], code, errOut, c.says)
					}
					if c.secret != "" && strings.Contains(errOut, c.secret) {
						t.Fatalf("the error shows the secret: %s", errOut)
					}
				})
			}
		}
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	root, _ := newRootCmd(&bytes.Buffer{}, &bytes.Buffer{})
	var paths [][]string
	var walk func(prefix []string, c *cobra.Command)
	walk = func(prefix []string, c *cobra.Command) {
		for _, sub := range c.Commands() {
			p := append(append([]string{}, prefix...), sub.Name())
			paths = append(paths, p)
			walk(p, sub)
		}
	}
	walk(nil, root)
	have := map[string]bool{}
	for _, p := range paths {
		have[strings.Join(p, " ")] = true
	}
	// The command line of the design, every one of them.
	for _, want := range []string{"api", "push", "relay", "worker indexer", "worker cache", "worker notifier", "dev",
		"migrate", "tenant create", "tenant list", "tenant delete", "user create", "user list", "user set", "user delete",
		"superuser create", "superuser list", "superuser set", "reindex",
		"dlq list", "dlq redrive", "products import", "products export", "audit", "audit prune"} {
		if !have[want] {
			t.Errorf("saas %s is missing", want)
		}
	}
	for _, c := range paths {
		out, _, code := saas(t, append(c, "--help")...)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("saas %s --help exited %d: %s", strings.Join(c, " "), code, out)
		}
	}
}

func TestAPIServesHealthAndReadiness(t *testing.T) {
	useServices(t)
	if _, errOut, code := saas(t, "migrate", "--shared"); code != 0 {
		t.Fatal(errOut)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	_, a := newRootCmd(&bytes.Buffer{}, &bytes.Buffer{})
	if err := a.init(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.serveAPI(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		a.close()
	})
	base := "http://" + ln.Addr().String()
	get := func(path, host string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Host = host
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(res.Body).Decode(&body)
		return res.StatusCode, body
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get("/ready", "localhost")
		if code == http.StatusOK {
			if checks, _ := body["checks"].(map[string]any); len(checks) != 4 {
				t.Fatalf("ready checks = %v, want four dependencies", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/ready = %d %v", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _ := get("/health/", "LocalHost:8080"); code != http.StatusOK {
		t.Fatalf("/health/ on the public domain = %d, want 200", code)
	}
	// Metrics have a listener of their own (metrics_test.go).
	if code, _ := get("/metrics", "localhost"); code != http.StatusNotFound {
		t.Fatalf("/metrics on the API port = %d, want 404", code)
	}
	code, body := get("/health/", "unknown.example")
	if code != http.StatusNotFound || body["error"] == nil {
		t.Fatalf("/health/ on an unknown host = %d %v, want 404 with a JSON error", code, body)
	}
}

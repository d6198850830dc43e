// Package stack runs a private deployment of saas on this machine, beside
// whatever else runs on it, for the benchmarks, the soak and the end-to-end
// tests: a fresh database on the shared PostgreSQL with the shared
// migrations, private nats-server node(s) with JetStream, a private
// redis-server (or a database number of the shared Redis), an Elasticsearch
// index prefix of its own, the saas binary built once from this module, and
// the role processes (saas api, push, relay, worker indexer|cache|notifier,
// dev), started, stopped, killed and restarted on demand. Close removes all
// of it.
//
// Everything listens on loopback ports found free at start. The services'
// URLs come from the environment (scripts/services.sh env). On Linux the
// children are killed if this process dies without Close (Pdeathsig); the
// database and indices are then left behind, named after Options.Name.
package stack

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tenantworks/saas/bench/internal/benchenv"
	"github.com/tenantworks/saas/pkg/auth"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/search"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/schema"
)

// Redis says where a stack's cache lives.
type Redis int

const (
	// RedisPrivate is a redis-server of the stack's own on a free port,
	// without persistence: a restart comes back empty. Killed at Close.
	RedisPrivate Redis = iota
	// RedisSharedDB is database Options.RedisDB of the server of
	// $REDIS_URL. It must be empty at start, and is flushed at Close.
	RedisSharedDB
	// RedisShared is $REDIS_URL as it is. At Close the keys of the stack's
	// tenants are deleted, one SCAN per tenant (per master of a cluster).
	RedisShared
)

// Options configure a stack. Only Name is required.
type Options struct {
	// Name starts the database's name (<Name>_<random>) and the temp
	// dir's; lower-case letters, digits and _.
	Name string
	// IndexPrefix starts ELASTICSEARCH_INDEX_PREFIX, <IndexPrefix>_<random>;
	// default Name.
	IndexPrefix string
	// NATSNodes is how many private nats-server nodes run; default 1. More
	// than one form a cluster on loopback ports.
	NATSNodes int
	// Streams creates the event streams, with a replica on every node,
	// before any role runs (roles keep an existing stream's replicas).
	// Otherwise the first role to start creates them.
	Streams bool
	// NATSServer is the nats-server binary; default PATH, then
	// $SERVICES_DIR/bin.
	NATSServer string
	// Redis is where the cache lives; default RedisPrivate.
	Redis Redis
	// RedisDB is the database number of RedisSharedDB.
	RedisDB int
	// MaxConns caps the pool of DB(); 0: postgres.Open's default.
	MaxConns int32
	// Clusters is how many PostgreSQL clusters tenants live on: 0 means
	// main and every cluster of $TENANT_DATABASES; 1 main alone; K main,
	// the first K-1 clusters of $TENANT_DATABASES, and throw-away
	// PostgreSQL servers of the stack's own (benchenv.StartPostgres,
	// named extra1, extra2, ...) for what they lack. Each gets a fresh
	// database; DB() routes to them, the roles get them in TENANT_DATABASES.
	Clusters int
	// Pooler sends the role processes' DATABASE_URL through PgBouncer in
	// transaction mode ($DATABASE_POOLER_URL with the stack's database,
	// DATABASE_POOL_MODE=transaction) and DATABASE_DIRECT_URL to the
	// database itself, as production behind a pooler runs. DB() and the
	// migrations stay direct. PgBouncer must pass any database name
	// through (scripts/services.sh configures `* = host=...`).
	Pooler bool
	// Search gives the tenants that Manager creates their search index and
	// alias (tenant create's search hook), before any role runs.
	Search bool
	// Saas is a saas binary to use instead of building ./cmd/saas of this
	// module, which happens at the first need (Binary, Start, Saas).
	Saas string
	// Overlay is a go build -overlay file for that build, to try a change
	// without editing the tree.
	Overlay string
	// Env is added to every process's environment after the stack's own
	// variables (see Env), which it may override: LOG_FORMAT=json, ...
	Env []string
	// LogDir receives the processes' logs, <name>.log; default the temp dir.
	LogDir string
	// Keep leaves the database, the indices and the temp dir in place at
	// Close, for a look afterwards.
	Keep bool
	// Logf reports cleanup failures; default a line on stderr.
	Logf func(format string, args ...any)
}

// Stack is one private deployment. Its methods are safe for concurrent use.
type Stack struct {
	o         Options
	id        string
	dir       string
	jwtSecret string
	password  string // of the users NewUser makes

	adminURL, dbURL, dbName string
	// tenantDatabases is the roles' TENANT_DATABASES: the stack's fresh
	// database on every other cluster ("" when there is none).
	tenantDatabases string
	poolerURL       string // Options.Pooler only
	natsNodes       []*Proc
	redis           *Proc // RedisPrivate only
	redisURL        string
	esURL, prefix   string

	db     *postgres.DB
	runner *schema.Runner
	es     *search.Client
	mgr    *tenancy.Manager
	tokens *auth.Tokens

	build    sync.Mutex
	bin      string
	hashOnce func() (string, error)

	mu       sync.Mutex
	cleanups []func()
	names    map[string]int // processes started, by role
}

// New starts a stack: temp dir, nats-server node(s), the fresh database
// with the shared migrations, Redis and the index prefix. The saas binary
// is built at its first need. On error whatever was made is removed; else
// the caller must Close the stack.
func New(ctx context.Context, o Options) (_ *Stack, err error) {
	if o.Name == "" {
		return nil, errors.New("stack: Options.Name is required")
	}
	if o.NATSNodes <= 0 {
		o.NATSNodes = 1
	}
	if o.IndexPrefix == "" {
		o.IndexPrefix = o.Name
	}
	if o.Logf == nil {
		o.Logf = func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "stack %s: %s\n", o.Name, fmt.Sprintf(format, args...))
		}
	}
	s := &Stack{
		o:         o,
		id:        strings.ToLower(rand.Text()[:10]),
		jwtSecret: rand.Text() + rand.Text(),
		password:  rand.Text(),
		esURL:     benchenv.Getenv("ELASTICSEARCH_URL", "http://127.0.0.1:9200"),
		adminURL:  benchenv.Getenv("DATABASE_URL", "postgres://saas:saas@127.0.0.1:5432/saas?sslmode=disable"),
		names:     map[string]int{},
	}
	s.prefix = o.IndexPrefix + "_" + s.id
	s.tokens = auth.NewTokens(s.jwtSecret, 24*time.Hour)
	s.hashOnce = sync.OnceValues(func() (string, error) { return auth.HashPassword(s.password) })
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.dir, err = os.MkdirTemp("", strings.ReplaceAll(o.Name, "_", "-")+"-"); err != nil {
		return nil, err
	}
	s.Defer(func() {
		if o.Keep {
			o.Logf("kept %s", s.dir)
			return
		}
		_ = os.RemoveAll(s.dir)
	})
	if s.o.LogDir == "" {
		s.o.LogDir = s.dir
	}
	if err := s.startNATS(ctx); err != nil {
		return nil, err
	}
	if err := s.makeDatabase(ctx); err != nil {
		return nil, err
	}
	if err := s.startRedis(ctx); err != nil {
		return nil, err
	}
	if s.es, err = search.New(search.Config{URL: s.esURL, IndexPrefix: s.prefix}); err != nil {
		return nil, err
	}
	s.Defer(s.deleteIndices)
	var hooks []tenancy.Hook
	if o.Search {
		hooks = append(hooks, search.NewHook(s.es))
	}
	s.mgr = tenancy.NewManager(s.db, s.runner, slog.New(slog.DiscardHandler), hooks...)
	return s, nil
}

// Defer adds f to what Close does; the last added runs first.
func (s *Stack) Defer(f func()) {
	s.mu.Lock()
	s.cleanups = append(s.cleanups, f)
	s.mu.Unlock()
}

// Close stops every process (SIGTERM, SIGKILL after 15 s), then removes
// the indices, the Redis keys or server, the database, the nats-server
// nodes and the temp dir, last made first. Calls after the first do nothing.
func (s *Stack) Close() {
	s.mu.Lock()
	cs := s.cleanups
	s.cleanups = nil
	s.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
}

// Dir is the stack's temp dir (the saas binary, the nats and redis data).
func (s *Stack) Dir() string { return s.dir }

// DatabaseURL is the URL of the stack's database.
func (s *Stack) DatabaseURL() string { return s.dbURL }

// PoolerURL is the URL of the stack's database through PgBouncer ("" unless
// Options.Pooler).
func (s *Stack) PoolerURL() string { return s.poolerURL }

// DatabaseName is the name of the stack's database.
func (s *Stack) DatabaseName() string { return s.dbName }

// AdminURL is $DATABASE_URL: the shared database, where the stack's
// database was created and is dropped.
func (s *Stack) AdminURL() string { return s.adminURL }

// NATSURL lists the nats-server nodes' URLs, comma-separated.
func (s *Stack) NATSURL() string {
	urls := make([]string, len(s.natsNodes))
	for i, n := range s.natsNodes {
		urls[i] = "nats://" + n.Addr()
	}
	return strings.Join(urls, ",")
}

// NATS returns the nats-server nodes, to stop and restart them.
func (s *Stack) NATS() []*Proc { return s.natsNodes }

// RedisURL is the REDIS_URL of the stack's processes.
func (s *Stack) RedisURL() string { return s.redisURL }

// Redis returns the private redis-server (nil unless RedisPrivate).
func (s *Stack) Redis() *Proc { return s.redis }

// ElasticsearchURL is the shared Elasticsearch's URL.
func (s *Stack) ElasticsearchURL() string { return s.esURL }

// DB is a pool on the stack's database (Options.MaxConns).
func (s *Stack) DB() *postgres.DB { return s.db }

// IndexPrefix is the stack's ELASTICSEARCH_INDEX_PREFIX: every index and
// alias of its tenants is named <IndexPrefix>_...
func (s *Stack) IndexPrefix() string { return s.prefix }

// Search is a client of the shared Elasticsearch with the stack's prefix.
func (s *Stack) Search() *search.Client { return s.es }

// Manager creates and deletes tenants in the stack's database, with their
// search index when Options.Search is set.
func (s *Stack) Manager() *tenancy.Manager { return s.mgr }

// Env is what the stack sets in its processes' environment, Options.Env
// last.
func (s *Stack) Env() []string {
	env := []string{"APP_ENV=development"}
	if s.poolerURL != "" {
		env = append(env, "DATABASE_URL="+s.poolerURL, "DATABASE_POOL_MODE=transaction", "DATABASE_DIRECT_URL="+s.dbURL)
	} else {
		env = append(env, "DATABASE_URL="+s.dbURL)
	}
	env = append(env,
		// The stack's own database on every other cluster, never the
		// clusters' shared ones that the services' environment names.
		"TENANT_DATABASES="+s.tenantDatabases,
		"NATS_URL="+s.NATSURL(),
		"REDIS_URL="+s.redisURL,
		"ELASTICSEARCH_URL="+s.esURL,
		"ELASTICSEARCH_INDEX_PREFIX="+s.prefix,
		"PUBLIC_DOMAIN=localhost",
		"JWT_SECRET="+s.jwtSecret,
		"LOG_LEVEL=warn",
		"LOG_FORMAT=text",
	)
	return append(env, s.o.Env...)
}

// environ is this process's environment with Env and then extra on top.
func (s *Stack) environ(extra ...string) []string {
	return append(append(os.Environ(), s.Env()...), extra...)
}

// Binary returns the saas binary: Options.Saas, or ./cmd/saas of this
// module built into the temp dir on the first call (with Options.Overlay).
func (s *Stack) Binary(ctx context.Context) (string, error) {
	s.build.Lock()
	defer s.build.Unlock()
	if s.bin != "" {
		return s.bin, nil
	}
	if s.o.Saas != "" {
		s.bin = s.o.Saas
		return s.bin, nil
	}
	bin, err := benchenv.BuildSaas(ctx, s.dir, s.o.Overlay)
	if err != nil {
		return "", err
	}
	s.bin = bin
	return bin, nil
}

// logPath is where the process called name writes.
func (s *Stack) logPath(name string) string { return filepath.Join(s.o.LogDir, name+".log") }

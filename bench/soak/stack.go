//go:build linux

package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/bench/internal/benchenv"
	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/auth"
	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/search"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/schema"
)

// stack is everything the soak makes, and undoes in cleanup.
type stack struct {
	o         options
	dir       string // temp dir: saas binary, logs, nats and redis data
	bin       string
	dbName    string
	dbURL     string
	adminURL  string // the shared database, for CREATE/DROP DATABASE
	esURL     string
	prefix    string // ELASTICSEARCH_INDEX_PREFIX
	jwtSecret string

	redis *service
	nats  []*service // one node, or a cluster of three
	roles map[string]*proc
	api   string // http://127.0.0.1:port of the API
	push  string // of the push node

	tenants []*tenant

	db *postgres.DB
	es *search.Client

	mu         sync.Mutex
	cleanups   []func()
	natsVictim int // the cluster node the next NATS fault kills
}

type tenant struct {
	schema, host string
	staff        []*user
}

type user struct {
	id, email, token string
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s soak: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func (s *stack) defer_(f func()) {
	s.mu.Lock()
	s.cleanups = append(s.cleanups, f)
	s.mu.Unlock()
}

func (s *stack) cleanup() {
	s.mu.Lock()
	cs := s.cleanups
	s.cleanups = nil
	s.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
}

func (s *stack) natsURL() string {
	urls := make([]string, len(s.nats))
	for i, n := range s.nats {
		urls[i] = "nats://" + n.addr
	}
	return strings.Join(urls, ",")
}

func (s *stack) env() []string {
	return append(os.Environ(),
		"APP_ENV=development",
		"DATABASE_URL="+s.dbURL,
		"NATS_URL="+s.natsURL(),
		"REDIS_URL=redis://"+s.redis.addr+"/0",
		"REDIS_KEY_PREFIX="+cache.DefaultPrefix, // the keys checkCache reads
		"ELASTICSEARCH_URL="+s.esURL,
		"ELASTICSEARCH_INDEX_PREFIX="+s.prefix,
		"PUBLIC_DOMAIN=localhost",
		"JWT_SECRET="+s.jwtSecret,
		"LOG_LEVEL=warn",
		"LOG_FORMAT=json",
	)
}

// setup builds saas, starts the private Redis and NATS, makes the fresh
// database with its tenants and staff users, and starts every role.
func setup(ctx context.Context, o options) (_ *stack, err error) {
	sfx := strings.ToLower(rand.Text()[:10])
	s := &stack{
		o:         o,
		esURL:     benchenv.Getenv("ELASTICSEARCH_URL", "http://127.0.0.1:9200"),
		prefix:    "soak_" + sfx,
		jwtSecret: rand.Text() + rand.Text(),
		roles:     map[string]*proc{},
	}
	defer func() {
		if err != nil {
			s.cleanup()
		}
	}()
	if s.dir, err = os.MkdirTemp("", "soak-"); err != nil {
		return nil, err
	}
	s.defer_(func() {
		if o.keep {
			logf("kept %s", s.dir)
			return
		}
		_ = os.RemoveAll(s.dir)
	})
	if s.bin, err = benchenv.BuildSaas(ctx, s.dir, ""); err != nil {
		return nil, err
	}
	if err := s.startRedis(ctx); err != nil {
		return nil, err
	}
	if err := s.startNATS(ctx, o.natsNodes); err != nil {
		return nil, err
	}
	if err := s.makeDatabase(ctx); err != nil {
		return nil, err
	}
	if err := s.makeTenants(ctx); err != nil {
		return nil, err
	}
	if err := s.startRoles(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// service is a private backing service process (redis-server or a
// nats-server node) that the soak kills and restarts.
type service struct {
	name string
	addr string
	args []string
	bin  string
	log  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func (v *service) start(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	lf, err := os.OpenFile(v.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer lf.Close()
	cmd := exec.Command(v.bin, v.args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = childAttrs()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", v.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	v.cmd, v.done = cmd, done
	return waitTCP(ctx, v.addr, done, 30*time.Second, v.name)
}

// kill stops the process with sig and waits for it to be gone.
func (v *service) kill(sig syscall.Signal) {
	v.mu.Lock()
	cmd, done := v.cmd, v.done
	v.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func waitTCP(ctx context.Context, addr string, done <-chan struct{}, limit time.Duration, name string) error {
	deadline := time.Now().Add(limit)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("%s exited at start", name)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen on %s within %s", name, addr, limit)
		}
	}
}

// startRedis runs a private redis-server without persistence: a restart
// comes back empty, the harder case for the cache.
func (s *stack) startRedis(ctx context.Context) error {
	bin, err := benchenv.FindBinary("redis-server", "")
	if err != nil {
		return err
	}
	addr, err := benchenv.FreeAddr()
	if err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(addr)
	s.redis = &service{name: "redis", addr: addr, bin: bin, log: filepath.Join(s.dir, "redis.log"),
		args: []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.dir}}
	s.defer_(func() { s.redis.kill(syscall.SIGKILL) })
	return s.redis.start(ctx)
}

// startNATS runs n private nats-server nodes with JetStream; more than one
// form a cluster on loopback ports.
func (s *stack) startNATS(ctx context.Context, n int) error {
	bin, err := benchenv.FindBinary("nats-server", "")
	if err != nil {
		return err
	}
	clients := make([]string, n)
	routes := make([]string, n)
	for i := range n {
		if clients[i], err = benchenv.FreeAddr(); err != nil {
			return err
		}
		if routes[i], err = benchenv.FreeAddr(); err != nil {
			return err
		}
	}
	for i := range n {
		_, port, _ := net.SplitHostPort(clients[i])
		name := "nats"
		if n > 1 {
			name = fmt.Sprintf("nats-%d", i+1)
		}
		args := []string{"-js", "-sd", filepath.Join(s.dir, name), "-a", "127.0.0.1", "-p", port, "-n", name}
		if n > 1 {
			var rs []string
			for j, r := range routes {
				if j != i {
					rs = append(rs, "nats://"+r)
				}
			}
			args = append(args, "--cluster_name", "soak", "--cluster", "nats://"+routes[i], "--routes", strings.Join(rs, ","))
		}
		v := &service{name: name, addr: clients[i], bin: bin, args: args, log: filepath.Join(s.dir, name+".log")}
		s.nats = append(s.nats, v)
		s.defer_(func() { v.kill(syscall.SIGKILL) })
	}
	errs := make(chan error, n)
	for _, v := range s.nats {
		go func() { errs <- v.start(ctx) }()
	}
	for range n {
		if err := <-errs; err != nil {
			return err
		}
	}
	// A cluster elects its JetStream meta leader after the nodes meet.
	nc, err := events.Connect(s.natsURL(), "soak-setup")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.AccountInfo(actx)
		cancel()
		if err == nil {
			break
		} else if time.Now().After(deadline) {
			return fmt.Errorf("jetstream not ready: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// In a cluster the streams get a replica on every node before any
	// role starts; the roles keep an existing stream's replicas.
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := events.EnsureStreams(ectx, js, events.StreamConfig{Replicas: n}); err != nil {
		return fmt.Errorf("streams with %d replicas: %w", n, err)
	}
	return nil
}

// makeDatabase creates the fresh database and migrates its shared schema.
func (s *stack) makeDatabase(ctx context.Context) error {
	s.adminURL = benchenv.Getenv("DATABASE_URL", "postgres://saas:saas@127.0.0.1:5432/saas?sslmode=disable")
	var drop func()
	var err error
	if s.dbURL, drop, err = benchenv.FreshDatabase(ctx, "soak"); err != nil {
		return err
	}
	u, err := url.Parse(s.dbURL)
	if err != nil {
		return err
	}
	s.dbName = strings.TrimPrefix(u.Path, "/")
	s.defer_(func() {
		if s.o.keep {
			logf("kept database %s", s.dbName)
			return
		}
		drop()
	})
	if s.db, err = postgres.Open(ctx, postgres.Config{URL: s.dbURL, MaxConns: 8}); err != nil {
		return err
	}
	s.defer_(s.db.Close)
	runner, err := schema.NewRunner(s.dbURL, nil)
	if err != nil {
		return err
	}
	_, err = runner.MigrateShared(ctx)
	return err
}

// makeTenants creates the tenants (with their search indices) and their
// staff users, and mints a token for each user.
func (s *stack) makeTenants(ctx context.Context) error {
	var err error
	if s.es, err = search.New(search.Config{URL: s.esURL, IndexPrefix: s.prefix}); err != nil {
		return err
	}
	runner, err := schema.NewRunner(s.dbURL, nil)
	if err != nil {
		return err
	}
	mgr := tenancy.NewManager(s.db, runner, slog.New(slog.DiscardHandler), search.NewHook(s.es))
	s.defer_(s.deleteIndices)
	tokens := auth.NewTokens(s.jwtSecret, 24*time.Hour)
	hash, err := auth.HashPassword(rand.Text())
	if err != nil {
		return err
	}
	for i := range s.o.tenants {
		t := &tenant{schema: fmt.Sprintf("soak_t%03d", i), host: fmt.Sprintf("t%03d.soak.localhost", i)}
		if _, err := mgr.Create(ctx, tenancy.CreateParams{Schema: t.schema, Name: "soak tenant " + t.schema, Domain: t.host}); err != nil {
			return fmt.Errorf("create tenant %s: %w", t.schema, err)
		}
		for j := range s.o.staff {
			email := "staff" + strconv.Itoa(j) + "@" + t.host
			u, err := s.db.CreateUser(ctx, t.schema, postgres.NewUser{Email: email, PasswordHash: hash, IsStaff: true})
			if err != nil {
				return fmt.Errorf("create user in %s: %w", t.schema, err)
			}
			tok, _, err := tokens.Issue(t.schema, u.ID, true)
			if err != nil {
				return err
			}
			t.staff = append(t.staff, &user{id: u.ID, email: email, token: tok})
		}
		if err := auditLog(ctx, s.db, t.schema); err != nil {
			return err
		}
		s.tenants = append(s.tenants, t)
	}
	return nil
}

// deleteIndices drops every tenant's search indices.
func (s *stack) deleteIndices() {
	if s.o.keep {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, t := range s.tenants {
		if err := s.es.DeleteTenant(ctx, t.schema); err != nil {
			logf("delete indices of %s: %v", t.schema, err)
		}
	}
	// The tenants' shared indices belong to the run's prefix alone.
	if err := s.es.DeleteSharedIndices(ctx); err != nil {
		logf("delete shared indices: %v", err)
	}
}

// roleArgs are the saas commands of the roles, by name.
var roleArgs = map[string][]string{
	"api":      {"api"},
	"push":     {"push"},
	"relay":    {"relay"},
	"indexer":  {"worker", "indexer"},
	"cache":    {"worker", "cache"},
	"notifier": {"worker", "notifier"},
}

// roleNames in start order.
var roleNames = []string{"relay", "indexer", "cache", "notifier", "api", "push"}

func (s *stack) startRoles(ctx context.Context) error {
	for _, name := range roleNames {
		p := &proc{name: name, args: roleArgs[name], bin: s.bin, log: filepath.Join(s.dir, name+".log"), env: s.env()}
		if name == "api" || name == "push" {
			addr, err := benchenv.FreeAddr()
			if err != nil {
				return err
			}
			p.addr = addr
			p.env = append(p.env, "HTTP_ADDR="+addr)
			if name == "api" {
				s.api = "http://" + addr
			} else {
				s.push = "http://" + addr
			}
		}
		s.roles[name] = p
		s.defer_(p.stop)
		if err := p.start(ctx); err != nil {
			return err
		}
	}
	return nil
}

// proc is one saas role process.
type proc struct {
	name string
	args []string
	bin  string
	log  string
	env  []string
	addr string // HTTP roles only

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	stopped  bool
	killing  bool  // between a fault's kill and its restart
	maxRSS   int64 // bytes, over every run
	restarts int
}

func (p *proc) start(ctx context.Context) error {
	p.mu.Lock()
	lf, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		p.mu.Unlock()
		return err
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = childAttrs()
	err = cmd.Start()
	lf.Close()
	if err != nil {
		p.mu.Unlock()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done
	p.killing = false
	p.mu.Unlock()
	if p.addr != "" {
		return waitHealthy(ctx, "http://"+p.addr, done, 60*time.Second, p.name)
	}
	return nil
}

// kill9 kills the process at once and waits until it is gone.
func (p *proc) kill9() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.restarts++
	p.killing = true
	p.mu.Unlock()
	_ = cmd.Process.Kill()
	<-done
}

// crashed reports whether the process is gone without a fault's kill or
// the final stop.
func (p *proc) crashed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.killing || p.stopped {
		return false
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process with SIGTERM (SIGKILL after 20 s).
func (p *proc) stop() {
	p.mu.Lock()
	cmd, done, stopped := p.cmd, p.done, p.stopped
	p.stopped = true
	p.mu.Unlock()
	if cmd == nil || stopped {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func waitHealthy(ctx context.Context, base string, done <-chan struct{}, limit time.Duration, name string) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health/", nil)
		req.Host = "localhost"
		if res, err := client.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("%s exited at start", name)
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy within %s", name, limit)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/tenantworks/saas/bench/internal/benchenv"
	"github.com/tenantworks/saas/pkg/auth"
	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/search"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/schema"
)

// stack is everything the benchmark makes, and undoes in cleanup.
type stack struct {
	dir       string // temp dir: saas binary, logs, nats store
	bin       string // the saas binary
	dbName    string
	dbURL     string
	natsURL   string
	esURL     string
	redisURL  string // REDIS_URL with the bench's db number
	prefix    string // ELASTICSEARCH_INDEX_PREFIX
	jwtSecret string

	live    tenantInfo // part 1: staff user, WebSocket, paced writes
	backlog tenantInfo // part 2: 10,000 products written to the database

	db  *postgres.DB
	es  *search.Client
	rdb *redis.Client

	cleanups []func()
}

type tenantInfo struct {
	schema, host, token string
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench/pipeline: "+format+"\n", args...)
}

func (s *stack) cleanup() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
	s.cleanups = nil
}

func (s *stack) env() []string {
	return append(os.Environ(),
		"APP_ENV=development",
		"DATABASE_URL="+s.dbURL,
		"NATS_URL="+s.natsURL,
		"REDIS_URL="+s.redisURL,
		"ELASTICSEARCH_URL="+s.esURL,
		"ELASTICSEARCH_INDEX_PREFIX="+s.prefix,
		"PUBLIC_DOMAIN=localhost",
		"JWT_SECRET="+s.jwtSecret,
		"LOG_LEVEL=warn",
		"LOG_FORMAT=text",
	)
}

// setup makes the temp dir, the private nats-server, the fresh database
// with both tenants (and their indices) and the staff user, and builds saas.
func setup(ctx context.Context, o options) (_ *stack, err error) {
	sfx := strings.ToLower(rand.Text()[:10])
	s := &stack{
		dbName:    "bench_pipeline_" + sfx,
		esURL:     benchenv.Getenv("ELASTICSEARCH_URL", "http://127.0.0.1:9200"),
		prefix:    "bpipe_" + sfx,
		jwtSecret: rand.Text() + rand.Text(),
		live:      tenantInfo{schema: "bpl_" + sfx, host: "bpl-" + sfx + ".bench.localhost"},
		backlog:   tenantInfo{schema: "bpb_" + sfx, host: "bpb-" + sfx + ".bench.localhost"},
	}
	defer func() {
		if err != nil {
			s.cleanup()
		}
	}()
	if s.dir, err = os.MkdirTemp("", "bench-pipeline-"); err != nil {
		return nil, err
	}
	s.cleanups = append(s.cleanups, func() { _ = os.RemoveAll(s.dir) })

	// Build first: it is the slow part, and needs nothing else.
	if s.bin, err = benchenv.BuildSaas(ctx, s.dir, o.buildOverlay); err != nil {
		return nil, err
	}

	natsBin, err := benchenv.FindBinary("nats-server", o.natsServer)
	if err != nil {
		return nil, err
	}
	if err := s.startNATS(ctx, natsBin); err != nil {
		return nil, err
	}

	// Redis: the bench's own db number, flushed at the end.
	ru, err := url.Parse(benchenv.Getenv("REDIS_URL", "redis://127.0.0.1:6379/0"))
	if err != nil {
		return nil, fmt.Errorf("parse REDIS_URL: %w", err)
	}
	ru.Path = "/" + strconv.Itoa(o.redisDB)
	s.redisURL = ru.String()
	if s.rdb, err = cache.Open(s.redisURL); err != nil {
		return nil, err
	}
	s.cleanups = append(s.cleanups, func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.rdb.FlushDB(c).Err(); err != nil {
			logf("FLUSHDB redis db %d: %v", o.redisDB, err)
		}
		_ = s.rdb.Close()
	})
	if n, err := s.rdb.DBSize(ctx).Result(); err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	} else if n > 0 {
		return nil, fmt.Errorf("redis db %d holds %d keys: someone else uses it; pick another with -redis-db", o.redisDB, n)
	}

	// The fresh database.
	base := benchenv.Getenv("DATABASE_URL", "postgres://saas:saas@127.0.0.1:5432/saas?sslmode=disable")
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		return nil, fmt.Errorf("connect postgres: %w", err)
	}
	s.cleanups = append(s.cleanups, func() { _ = admin.Close(context.Background()) })
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{s.dbName}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create database: %w", err)
	}
	s.cleanups = append(s.cleanups, func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(c, "DROP DATABASE "+pgx.Identifier{s.dbName}.Sanitize()+" WITH (FORCE)"); err != nil {
			logf("drop database %s: %v", s.dbName, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	u.Path = "/" + s.dbName
	s.dbURL = u.String()
	if s.db, err = postgres.Open(ctx, postgres.Config{URL: s.dbURL, MaxConns: int32(o.backlogWorkers + 2)}); err != nil {
		return nil, err
	}
	s.cleanups = append(s.cleanups, s.db.Close)
	runner, err := schema.NewRunner(s.dbURL, nil)
	if err != nil {
		return nil, err
	}
	if _, err := runner.MigrateShared(ctx); err != nil {
		return nil, err
	}

	// Tenants, with the search hook: each gets its index and alias now,
	// before any role of the stack runs.
	if s.es, err = search.New(search.Config{URL: s.esURL, IndexPrefix: s.prefix}); err != nil {
		return nil, err
	}
	s.cleanups = append(s.cleanups, s.deleteIndices)
	mgr := tenancy.NewManager(s.db, runner, slog.New(slog.DiscardHandler), search.NewHook(s.es))
	for _, t := range []tenantInfo{s.live, s.backlog} {
		if _, err := mgr.Create(ctx, tenancy.CreateParams{Schema: t.schema, Name: "pipeline benchmark " + t.schema, Domain: t.host}); err != nil {
			return nil, fmt.Errorf("create tenant %s: %w", t.schema, err)
		}
	}
	hash, err := auth.HashPassword(rand.Text())
	if err != nil {
		return nil, err
	}
	user, err := s.db.CreateUser(ctx, s.live.schema, postgres.NewUser{Email: "staff@" + s.live.host, PasswordHash: hash, IsStaff: true})
	if err != nil {
		return nil, err
	}
	if s.live.token, _, err = auth.NewTokens(s.jwtSecret, 2*time.Hour).Issue(s.live.schema, user.ID, true); err != nil {
		return nil, err
	}
	return s, nil
}

// deleteIndices deletes the tenants' indices, then any index left under
// the bench's prefix, by name (wildcard deletes may be refused).
func (s *stack) deleteIndices() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, t := range []tenantInfo{s.live, s.backlog} {
		if err := s.es.DeleteTenant(ctx, t.schema); err != nil {
			logf("delete indices of %s: %v", t.schema, err)
		}
	}
	var left []struct {
		Index string `json:"index"`
	}
	if err := esJSON(ctx, http.MethodGet, s.esURL+"/_cat/indices/"+s.prefix+"_*?format=json&expand_wildcards=all", nil, &left); err != nil {
		logf("list indices %s_*: %v", s.prefix, err)
		return
	}
	for _, ix := range left {
		if !strings.HasPrefix(ix.Index, s.prefix+"_") {
			continue
		}
		if err := esJSON(ctx, http.MethodDelete, s.esURL+"/"+ix.Index, nil, nil); err != nil {
			logf("delete index %s: %v", ix.Index, err)
		}
	}
}

var esHTTP = &http.Client{Timeout: 30 * time.Second}

// esJSON sends one request to Elasticsearch and decodes the answer into out
// (when not nil). A status of 300 or more is an error.
func esJSON(ctx context.Context, method, u string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := esHTTP.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %.300s", method, u, res.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// refreshInterval reads index.refresh_interval of the alias's index.
func (s *stack) refreshInterval(ctx context.Context, schema string) (string, error) {
	var out map[string]struct {
		Settings struct {
			Index struct {
				RefreshInterval string `json:"refresh_interval"`
			} `json:"index"`
		} `json:"settings"`
	}
	if err := esJSON(ctx, http.MethodGet, s.esURL+"/"+s.es.Alias(schema)+"/_settings", nil, &out); err != nil {
		return "", err
	}
	for _, v := range out {
		if v.Settings.Index.RefreshInterval == "" {
			return "1s (Elasticsearch default, not set)", nil
		}
		return v.Settings.Index.RefreshInterval, nil
	}
	return "", errors.New("no index behind the alias")
}

// startNATS runs a private nats-server with JetStream on a free loopback
// port, its store in the temp dir; cleanup kills it.
func (s *stack) startNATS(ctx context.Context, bin string) error {
	addr, err := benchenv.FreeAddr()
	if err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(addr)
	store := filepath.Join(s.dir, "nats")
	cmd := exec.Command(bin, "-js", "-sd", store, "-a", "127.0.0.1", "-p", port)
	cmd.SysProcAttr = childAttrs()
	logFile, err := os.Create(filepath.Join(s.dir, "nats.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start nats-server: %w", err)
	}
	s.cleanups = append(s.cleanups, func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	s.natsURL = "nats://" + addr
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return errors.New("nats-server did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// proc is one saas process (dev, relay or worker indexer).
type proc struct {
	name    string
	cmd     *exec.Cmd
	done    chan error
	logPath string
	once    sync.Once
	started time.Time
}

// startSaas runs `saas args...` with the stack's environment plus extra.
func (s *stack) startSaas(args []string, extra ...string) (*proc, error) {
	name := strings.Join(args, "-")
	p := &proc{name: "saas " + strings.Join(args, " "), done: make(chan error, 1), logPath: filepath.Join(s.dir, name+".log")}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	p.cmd = exec.Command(s.bin, args...)
	p.cmd.Env = append(s.env(), extra...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = childAttrs()
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", p.name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	s.cleanups = append(s.cleanups, p.stop)
	return p, nil
}

// stop sends SIGTERM and kills after 15 s. Calls after the first do nothing.
func (p *proc) stop() {
	p.once.Do(func() {
		select {
		case err := <-p.done:
			p.done <- err
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.done:
			p.done <- err
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			p.done <- <-p.done
		}
	})
}

// exited returns an error if the process is gone.
func (p *proc) exited() error {
	select {
	case err := <-p.done:
		p.done <- err
		return fmt.Errorf("%s exited: %v\n%s", p.name, err, p.logTail())
	default:
		return nil
	}
}

func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// waitHealthy polls GET /health/ until 200.
func (p *proc) waitHealthy(ctx context.Context, base string, limit time.Duration) error {
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
		if err := p.exited(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy within %s\n%s", p.name, limit, p.logTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

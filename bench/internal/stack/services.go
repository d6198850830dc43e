package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/bench/internal/benchenv"
	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/config"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/schema"
)

// startNATS runs the private nats-server node(s) with JetStream, their
// stores in the temp dir; more than one form a cluster. It returns when
// JetStream answers (a cluster has elected its meta leader), with the
// streams made when Options.Streams is set.
func (s *Stack) startNATS(ctx context.Context) error {
	n := s.o.NATSNodes
	bin, err := benchenv.FindBinary("nats-server", s.o.NATSServer)
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
			args = append(args, "--cluster_name", "stack", "--cluster", "nats://"+routes[i], "--routes", strings.Join(rs, ","))
		}
		p := &Proc{name: name, addr: clients[i], bin: bin, args: args, logPath: s.logPath(name)}
		s.natsNodes = append(s.natsNodes, p)
		s.Defer(p.Kill)
	}
	errs := make(chan error, n)
	for _, p := range s.natsNodes {
		go func() { errs <- p.Start(ctx) }()
	}
	for range n {
		if err := <-errs; err != nil {
			return err
		}
	}
	nc, err := events.Connect(s.NATSURL(), "stack-setup")
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
		} else if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("jetstream not ready: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !s.o.Streams {
		return nil
	}
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := events.EnsureStreams(ectx, js, events.StreamConfig{Replicas: n}); err != nil {
		return fmt.Errorf("streams with %d replicas: %w", n, err)
	}
	return nil
}

// makeDatabase creates the fresh database, migrates its shared schema and
// opens DB's pool.
func (s *Stack) makeDatabase(ctx context.Context) error {
	dbURL, drop, err := benchenv.FreshDatabase(ctx, s.o.Name)
	if err != nil {
		return err
	}
	s.dbURL = dbURL
	u, err := url.Parse(dbURL)
	if err != nil {
		drop()
		return err
	}
	s.dbName = strings.TrimPrefix(u.Path, "/")
	if s.o.Pooler {
		raw := os.Getenv("DATABASE_POOLER_URL")
		if raw == "" {
			drop()
			return errors.New(`DATABASE_POOLER_URL is not set: eval "$(bash scripts/services.sh env)" (scripts/services.sh up starts PgBouncer)`)
		}
		pu, err := url.Parse(raw)
		if err != nil {
			drop()
			return fmt.Errorf("parse DATABASE_POOLER_URL: %w", err)
		}
		pu.Path = u.Path
		s.poolerURL = pu.String()
	}
	s.Defer(func() {
		if s.o.Keep {
			s.o.Logf("kept database %s", s.dbName)
			return
		}
		drop()
	})
	if s.db, err = postgres.Open(ctx, postgres.Config{URL: s.dbURL, MaxConns: s.o.MaxConns}); err != nil {
		return err
	}
	s.Defer(s.db.Close)
	if s.runner, err = schema.NewRunner(s.dbURL, nil); err != nil {
		return err
	}
	if _, err := s.runner.MigrateShared(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", s.dbName, err)
	}
	return s.makeClusterDatabases(ctx)
}

// makeClusterDatabases makes a fresh database, its shared schema migrated,
// on every other cluster of $TENANT_DATABASES, attaches them to DB, and
// names them in the roles' TENANT_DATABASES: a stack never places tenants
// in a cluster's shared database.
func (s *Stack) makeClusterDatabases(ctx context.Context) error {
	dbs, err := config.ParseTenantDatabases(os.Getenv("TENANT_DATABASES"), s.dbURL)
	if err != nil {
		return fmt.Errorf("TENANT_DATABASES: %w", err)
	}
	if k := s.o.Clusters; k > 0 {
		dbs = dbs[:min(k, len(dbs))]
		for have, i := len(dbs), len(dbs); i < k; i++ {
			srv, err := benchenv.StartPostgres(ctx)
			if err != nil {
				return fmt.Errorf("throw-away PostgreSQL for cluster %d: %w", i+1, err)
			}
			s.Defer(srv.Stop)
			dbs = append(dbs, config.TenantDatabase{Name: fmt.Sprintf("extra%d", i-have+1), URL: srv.URL})
		}
	}
	var others []postgres.Cluster
	var spelled []string
	for _, c := range dbs[1:] {
		u, drop, err := benchenv.FreshDatabaseOn(ctx, c.URL, s.o.Name)
		if err != nil {
			return fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		s.Defer(func() {
			if !s.o.Keep {
				drop()
			}
		})
		db, err := postgres.Open(ctx, postgres.Config{URL: u, MaxConns: s.o.MaxConns})
		if err != nil {
			return fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		s.Defer(db.Close)
		r, err := schema.NewRunner(u, nil)
		if err != nil {
			return err
		}
		if _, err := r.MigrateShared(ctx); err != nil {
			return fmt.Errorf("migrate cluster %s: %w", c.Name, err)
		}
		others = append(others, postgres.Cluster{Name: c.Name, DB: db, DirectURL: u})
		spelled = append(spelled, c.Name+"="+u)
	}
	s.tenantDatabases = strings.Join(spelled, ",")
	return s.db.AttachClusters(s.dbURL, others)
}

// startRedis starts the private redis-server, or checks and later cleans
// the shared Redis's part of the stack (see Redis).
func (s *Stack) startRedis(ctx context.Context) error {
	switch s.o.Redis {
	case RedisPrivate:
		bin, err := benchenv.FindBinary("redis-server", "")
		if err != nil {
			return err
		}
		addr, err := benchenv.FreeAddr()
		if err != nil {
			return err
		}
		_, port, _ := net.SplitHostPort(addr)
		s.redis = &Proc{name: "redis", addr: addr, bin: bin, logPath: s.logPath("redis"),
			args: []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.dir}}
		s.redisURL = "redis://" + addr + "/0"
		s.Defer(s.redis.Kill)
		return s.redis.Start(ctx)
	case RedisSharedDB:
		u, err := url.Parse(benchenv.Getenv("REDIS_URL", "redis://127.0.0.1:6379/0"))
		if err != nil {
			return fmt.Errorf("parse REDIS_URL: %w", err)
		}
		u.Path = "/" + strconv.Itoa(s.o.RedisDB)
		s.redisURL = u.String()
		rdb, err := cache.Open(s.redisURL)
		if err != nil {
			return err
		}
		if n, err := rdb.DBSize(ctx).Result(); err != nil {
			_ = rdb.Close()
			return fmt.Errorf("redis: %w", err)
		} else if n > 0 {
			_ = rdb.Close()
			return fmt.Errorf("redis db %d holds %d keys: someone else uses it; pick another database number", s.o.RedisDB, n)
		}
		s.Defer(func() {
			defer rdb.Close()
			c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := rdb.FlushDB(c).Err(); err != nil {
				s.o.Logf("FLUSHDB redis db %d: %v", s.o.RedisDB, err)
			}
		})
		return nil
	case RedisShared:
		s.redisURL = benchenv.Getenv("REDIS_URL", "redis://127.0.0.1:6379/0")
		rdb, err := cache.Open(s.redisURL)
		if err != nil {
			return err
		}
		if err := rdb.Ping(ctx).Err(); err != nil {
			_ = rdb.Close()
			return fmt.Errorf("redis: %w", err)
		}
		s.Defer(func() {
			defer rdb.Close()
			c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			rows, err := s.db.Pool.Query(c, "SELECT schema_name FROM public.tenants")
			var ts []string
			if err == nil {
				ts, err = pgx.CollectRows(rows, pgx.RowTo[string])
			}
			if err != nil {
				s.o.Logf("list tenants for their redis keys: %v", err)
				return
			}
			for _, t := range ts {
				// The roles inherit REDIS_KEY_PREFIX (default saas).
				keys := cache.Keys{}
				if p := os.Getenv("REDIS_KEY_PREFIX"); p != "" {
					if k, err := cache.NewKeys(p); err == nil {
						keys = k
					}
				}
				// The hook scans every master of a Redis Cluster.
				if err := (cache.Hook{Client: rdb, Keys: keys}).TenantDeleted(c, domain.Tenant{Schema: t}); err != nil {
					s.o.Logf("delete redis keys of %s: %v", t, err)
				}
			}
		})
		return nil
	default:
		return fmt.Errorf("stack: unknown Redis mode %d", s.o.Redis)
	}
}

var esHTTP = &http.Client{Timeout: 30 * time.Second}

// deleteIndices deletes every index under the stack's prefix, by name
// (wildcard deletes may be refused): the tenants' own and shared indices,
// and with them their aliases.
func (s *Stack) deleteIndices() {
	if s.o.Keep {
		s.o.Logf("kept indices %s_*", s.prefix)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	do := func(method, u string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			return nil, err
		}
		res, err := esHTTP.Do(req)
		if err == nil && res.StatusCode >= 300 {
			res.Body.Close()
			return nil, fmt.Errorf("%s %s: %s", method, u, res.Status)
		}
		return res, err
	}
	res, err := do(http.MethodGet, s.esURL+"/_cat/indices/"+s.prefix+"_*?format=json&h=index&expand_wildcards=all")
	if err != nil {
		s.o.Logf("list indices %s_*: %v", s.prefix, err)
		return
	}
	var left []struct {
		Index string `json:"index"`
	}
	err = json.NewDecoder(res.Body).Decode(&left)
	res.Body.Close()
	if err != nil {
		s.o.Logf("list indices %s_*: %v", s.prefix, err)
		return
	}
	for _, ix := range left {
		if !strings.HasPrefix(ix.Index, s.prefix+"_") {
			continue
		}
		if res, err := do(http.MethodDelete, s.esURL+"/"+url.PathEscape(ix.Index)); err != nil {
			s.o.Logf("delete index %s: %v", ix.Index, err)
		} else {
			res.Body.Close()
		}
	}
}

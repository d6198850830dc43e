package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/tenantworks/saas/pkg/auth"
	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/schema"
)

// benchEnv is the fresh database, its tenant and staff user, and what the
// server process is started with.
type benchEnv struct {
	dbName    string
	dbURL     string
	redisURL  string
	jwtSecret string
	schema    string
	host      string // the tenant's domain, sent as Host
	token     string // a staff bearer token of the tenant

	db       *postgres.DB
	rdb      *redis.Client
	keys     cache.Keys // as the server names them: it inherits REDIS_KEY_PREFIX
	cleanups []func()
}

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// setup creates the database, migrates it and creates the tenant and a
// staff user. On error what was made is undone; otherwise the caller runs
// cleanup.
func setup(ctx context.Context) (_ *benchEnv, err error) {
	base := getenv("DATABASE_URL", "postgres://saas:saas@127.0.0.1:5432/saas?sslmode=disable")
	suffix := strings.ToLower(rand.Text()[:10])
	e := &benchEnv{
		dbName:    "bench_api_" + suffix,
		redisURL:  getenv("REDIS_URL", "redis://127.0.0.1:6379/0"),
		jwtSecret: rand.Text() + rand.Text(),
		schema:    "bapi_" + suffix,
		host:      "bapi-" + suffix + ".bench.localhost",
	}
	if e.keys, err = cache.NewKeys(getenv("REDIS_KEY_PREFIX", cache.DefaultPrefix)); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			e.cleanup()
		}
	}()

	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", redact(base), err)
	}
	e.cleanups = append(e.cleanups, func() { _ = admin.Close(context.Background()) })
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{e.dbName}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create database: %w", err)
	}
	e.cleanups = append(e.cleanups, func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(dctx, "DROP DATABASE "+pgx.Identifier{e.dbName}.Sanitize()+" WITH (FORCE)"); err != nil {
			logf("drop database %s: %v", e.dbName, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	u.Path = "/" + e.dbName
	e.dbURL = u.String()

	e.db, err = postgres.Open(ctx, postgres.Config{URL: e.dbURL, MaxConns: 4})
	if err != nil {
		return nil, err
	}
	e.cleanups = append(e.cleanups, e.db.Close)
	runner, err := schema.NewRunner(e.dbURL, nil)
	if err != nil {
		return nil, err
	}
	if _, err := runner.MigrateShared(ctx); err != nil {
		return nil, err
	}
	m := tenancy.NewManager(e.db, runner, slog.New(slog.DiscardHandler))
	if _, err := m.Create(ctx, tenancy.CreateParams{Schema: e.schema, Name: "API benchmark", Domain: e.host}); err != nil {
		return nil, err
	}

	e.rdb, err = cache.Open(e.redisURL)
	if err != nil {
		return nil, err
	}
	e.cleanups = append(e.cleanups, func() { _ = e.rdb.Close() }, e.dropRedisKeys)

	hash, err := auth.HashPassword(rand.Text())
	if err != nil {
		return nil, err
	}
	user, err := e.db.CreateUser(ctx, e.schema, postgres.NewUser{Email: "staff@" + e.host, PasswordHash: hash, IsStaff: true})
	if err != nil {
		return nil, err
	}
	e.token, _, err = auth.NewTokens(e.jwtSecret, 2*time.Hour).Issue(e.schema, user.ID, true)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// cleanup undoes setup, last step first. It is safe to call once.
func (e *benchEnv) cleanup() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
	e.cleanups = nil
}

// dropRedisKeys deletes every cache key of the tenant (<prefix>:<schema>:...).
func (e *benchEnv) dropRedisKeys() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	iter := e.rdb.Scan(ctx, 0, e.keys.Tenant(e.schema)+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		logf("scan redis keys of %s: %v", e.schema, err)
		return
	}
	if len(keys) > 0 {
		if err := e.rdb.Del(ctx, keys...).Err(); err != nil {
			logf("delete redis keys of %s: %v", e.schema, err)
		}
	}
}

// truncate empties the tables the create workloads write, so that each
// side starts from the same state: the tenant's products and outbox, and
// public.outbox_pending, which a trigger on outbox fills (when the shared
// migrations have it).
func (e *benchEnv) truncate(ctx context.Context) error {
	if err := e.db.InTenant(ctx, e.schema, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "TRUNCATE products, outbox"); err != nil {
			return err
		}
		var pending bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass('public.outbox_pending') IS NOT NULL").Scan(&pending); err != nil || !pending {
			return err
		}
		_, err := tx.Exec(ctx, "TRUNCATE public.outbox_pending")
		return err
	}); err != nil {
		return fmt.Errorf("truncate: %w", err)
	}
	return nil
}

// rowStats summarizes what a create workload left behind.
type rowStats struct {
	products, outbox int64
	productBytes     float64 // average pg_column_size of a products row
	payloadBytes     float64 // average length of the outbox payload as text
	outboxBytes      float64 // average pg_column_size of an outbox row
	requestIDBytes   float64
}

func (e *benchEnv) rowStats(ctx context.Context) (rowStats, error) {
	var s rowStats
	err := e.db.InTenant(ctx, e.schema, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM products),
			(SELECT coalesce(avg(pg_column_size(p.*)), 0) FROM products p),
			(SELECT count(*) FROM outbox),
			(SELECT coalesce(avg(pg_column_size(o.*)), 0) FROM outbox o),
			(SELECT coalesce(avg(length(payload::text)), 0) FROM outbox),
			(SELECT coalesce(avg(length(request_id)), 0) FROM outbox)`).
			Scan(&s.products, &s.productBytes, &s.outbox, &s.outboxBytes, &s.payloadBytes, &s.requestIDBytes)
	})
	if err != nil {
		return s, fmt.Errorf("row stats: %w", err)
	}
	return s, nil
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "***"
	}
	return u.Redacted()
}

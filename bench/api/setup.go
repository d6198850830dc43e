package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/tenantworks/saas/bench/internal/stack"
	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/tenancy"
)

// benchEnv is the private stack (fresh database, the shared Redis), its
// tenant and staff user.
type benchEnv struct {
	*stack.Stack
	schema string
	host   string     // the tenant's domain, sent as Host
	token  string     // a staff bearer token of the tenant
	user   stack.User // whose token it is: the actor of every create
	rdb    redis.UniversalClient
}

// setup starts the stack, whose saas binary is saas or else built with
// overlay, and
// creates the tenant and a staff user. On error what was made is undone;
// otherwise the caller closes the stack, which also deletes the tenant's
// Redis keys.
func setup(ctx context.Context, overlay, saas string) (_ *benchEnv, err error) {
	st, err := stack.New(ctx, stack.Options{Name: "bench_api", Redis: stack.RedisShared, MaxConns: 4, Saas: saas, Overlay: overlay, Logf: logf})
	if err != nil {
		return nil, err
	}
	suffix := strings.ToLower(rand.Text()[:10])
	e := &benchEnv{Stack: st, schema: "bapi_" + suffix, host: "bapi-" + suffix + ".bench.localhost"}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if _, err := e.Manager().Create(ctx, tenancy.CreateParams{Schema: e.schema, Name: "API benchmark", Domain: e.host}); err != nil {
		return nil, err
	}
	if e.rdb, err = cache.Open(e.RedisURL()); err != nil {
		return nil, err
	}
	e.Defer(func() { _ = e.rdb.Close() })
	u, err := e.NewUser(ctx, e.schema, "staff@"+e.host, true)
	if err != nil {
		return nil, err
	}
	e.token, e.user = u.Token, u
	return e, nil
}

// truncate empties the tables the create workloads write, so that each
// side starts from the same state: the tenant's products and outbox, and
// public.outbox_pending, which a trigger on outbox fills (when the shared
// migrations have it).
func (e *benchEnv) truncate(ctx context.Context) error {
	if err := e.DB().InTenant(ctx, e.schema, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "TRUNCATE products, outbox, audit_log"); err != nil {
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
	products, outbox, audit int64
	productBytes            float64 // average pg_column_size of a products row
	payloadBytes            float64 // average length of the outbox payload as text
	outboxBytes             float64 // average pg_column_size of an outbox row
	requestIDBytes          float64
	auditBytes              float64 // average pg_column_size of an audit_log row
}

func (e *benchEnv) rowStats(ctx context.Context) (rowStats, error) {
	var s rowStats
	err := e.DB().InTenant(ctx, e.schema, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM products),
			(SELECT coalesce(avg(pg_column_size(p.*)), 0) FROM products p),
			(SELECT count(*) FROM outbox),
			(SELECT coalesce(avg(pg_column_size(o.*)), 0) FROM outbox o),
			(SELECT coalesce(avg(length(payload::text)), 0) FROM outbox),
			(SELECT coalesce(avg(length(request_id)), 0) FROM outbox),
			(SELECT count(*) FROM audit_log),
			(SELECT coalesce(avg(pg_column_size(a.*)), 0) FROM audit_log a)`).
			Scan(&s.products, &s.productBytes, &s.outbox, &s.outboxBytes, &s.payloadBytes, &s.requestIDBytes, &s.audit, &s.auditBytes)
	})
	if err != nil {
		return s, fmt.Errorf("row stats: %w", err)
	}
	return s, nil
}

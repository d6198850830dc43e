package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/tenantworks/saas/api"
	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/accounts"
	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/catalog"
	"github.com/tenantworks/saas/pkg/tenancy"
)

func newAPICmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "api",
		Short: "Serve the HTTP API on HTTP_ADDR (metrics on METRICS_ADDR)",
		Args:  noArgs,
		RunE:  a.withMetrics(func(ctx context.Context) error { return a.serveAPI(ctx, nil) }),
	}
}

func newDevCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "dev",
		Short: "Run every role in one process, for local work",
		Long: `Runs the API (with the WebSocket push node), the relay and the indexer,
cache-invalidator and notifier workers in one process. If any role fails,
the others are stopped and the error is returned.`,
		Args: noArgs,
		RunE: a.withMetrics(func(ctx context.Context) error { return a.runDev(ctx, nil) }),
	}
}

// runDev runs every role until ctx is done or one of them fails.
func (a *app) runDev(ctx context.Context, ln net.Listener) error {
	if _, err := a.tokens(); err != nil {
		return err // before any role starts
	}
	g, ctx := errgroup.WithContext(ctx)
	roles := map[string]func(context.Context) error{
		"api":               func(ctx context.Context) error { return a.serveAPI(ctx, ln) },
		"relay":             a.runRelay,
		"indexer":           a.runIndexer,
		"cache-invalidator": a.runCacheInvalidator,
		"notifier":          a.runNotifier,
	}
	for name, run := range roles {
		g.Go(func() error {
			if err := run(ctx); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// serveAPI wires the API to its dependencies and serves until ctx is done.
// ln may be nil, in which case HTTP_ADDR is listened on.
func (a *app) serveAPI(ctx context.Context, ln net.Listener) error {
	tokens, err := a.tokens()
	if err != nil {
		return err
	}
	db, err := a.database(ctx)
	if err != nil {
		return err
	}
	rdb, err := a.redis()
	if err != nil {
		return err
	}
	nc, err := a.nats()
	if err != nil {
		return err
	}
	if js, err := jetstream.New(nc); err == nil {
		pipelineMetrics.use(db, js, a.log)
	}
	es, err := a.searchClient()
	if err != nil {
		return err
	}
	resolver := tenancy.NewResolver(db, 30*time.Second)
	// Another process changed tenants or domains, or moved a tenant to
	// another cluster: forget what we knew.
	sub, err := nc.Subscribe(tenancy.ChangedSubject, func(*nats.Msg) { resolver.Purge(); db.ForgetPlacements() })
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", tenancy.ChangedSubject, err)
	}
	a.mu.Lock() // saas dev: the other roles add theirs meanwhile
	a.closers = append(a.closers, func() { _ = sub.Unsubscribe() })
	a.mu.Unlock()
	// Platform admin: tenant and domain changes announce themselves, so
	// every API process (this one included) drops its resolver cache.
	mgr, err := a.manager(ctx)
	if err != nil {
		return err
	}
	users := cache.NewUsers(rdb, a.redisKeys, db, userFlagsTTL, a.log)
	products := cache.NewProducts(rdb, a.redisKeys, db, 0, a.log)
	cat, err := catalog.New(catalog.Deps{Store: db, Reader: products, Invalidator: products, Log: a.log})
	if err != nil {
		return err
	}
	// The tenant admin API writes users' new flags through the same cache
	// every request reads them from.
	acc, err := accounts.New(accounts.Deps{Store: db, Limiter: cache.NewLimiter(rdb, a.redisKeys, 0, 0), Flags: users, Log: a.log})
	if err != nil {
		return err
	}
	srv := a.newServer(api.Config{PublicDomain: a.cfg.PublicDomain, AccessLog: true, WebDir: os.Getenv("WEB_DIR"),
		ReadTimeout: a.cfg.HTTPReadTimeout, TrustedProxies: a.cfg.TrustedProxies}, api.Deps{
		Log: a.log,
		Checks: map[string]api.Pinger{
			"postgres":      db,
			"redis":         cache.Pinger{Client: rdb},
			"nats":          events.Pinger{Conn: nc},
			"elasticsearch": es,
		},
		DB:       db,
		Tenants:  resolver,
		Tokens:   tokens,
		Users:    users,
		Catalog:  cat,
		Accounts: acc,
		Tenancy:  mgr,
		Push:     a.pushHub(ctx, nc),
		Search:   es,
	})
	if ln == nil {
		ln, err = net.Listen("tcp", a.cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", a.cfg.HTTPAddr, err)
		}
	}
	a.log.InfoContext(ctx, "api listening", slog.String("addr", ln.Addr().String()),
		slog.String("health", fmt.Sprintf("http://%s:%d/health/", a.cfg.PublicDomain, ln.Addr().(*net.TCPAddr).Port)))
	return srv.Serve(ctx, ln)
}

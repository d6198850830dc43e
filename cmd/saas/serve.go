package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/tenantworks/saas/api"
	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/auth"
	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/search"
	"github.com/tenantworks/saas/pkg/tenancy"
)

func newAPICmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "api",
		Short: "Serve the HTTP API on HTTP_ADDR",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.serveAPI(cmd.Context(), nil)
		},
	}
}

func newDevCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "dev",
		Short: "Run every role in one process, for local work",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.serveAPI(cmd.Context(), nil)
		},
	}
}

// serveAPI wires the API to its dependencies and serves until ctx is done.
// ln may be nil, in which case HTTP_ADDR is listened on.
func (a *app) serveAPI(ctx context.Context, ln net.Listener) error {
	db, err := a.database(ctx)
	if err != nil {
		return err
	}
	rdb, err := cache.Open(a.cfg.RedisURL)
	if err != nil {
		return err
	}
	a.closers = append(a.closers, func() { _ = rdb.Close() })
	nc, err := a.nats()
	if err != nil {
		return err
	}
	es, err := search.New(search.Config{URL: a.cfg.ElasticsearchURL, IndexPrefix: a.cfg.ElasticsearchIndexPrefix})
	if err != nil {
		return err
	}
	resolver := tenancy.NewResolver(db, 30*time.Second)
	// Another process changed tenants or domains: forget what we knew.
	sub, err := nc.Subscribe(tenancy.ChangedSubject, func(*nats.Msg) { resolver.Purge() })
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", tenancy.ChangedSubject, err)
	}
	a.closers = append(a.closers, func() { _ = sub.Unsubscribe() })
	srv := api.New(api.Config{PublicDomain: a.cfg.PublicDomain, AccessLog: true}, api.Deps{
		Log: a.log,
		Checks: map[string]api.Pinger{
			"postgres":      db,
			"redis":         cache.Pinger{Client: rdb},
			"nats":          events.Pinger{Conn: nc},
			"elasticsearch": es,
		},
		DB:       db,
		Redis:    rdb,
		Tenants:  resolver,
		Tokens:   auth.NewTokens(a.cfg.JWTSecret, 0),
		Users:    cache.NewUsers(rdb, db, time.Minute, a.log),
		Products: cache.NewProducts(rdb, db, 0, a.log),
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

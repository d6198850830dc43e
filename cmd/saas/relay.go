package main

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/workers/cacheinvalidator"
	"github.com/tenantworks/saas/workers/relay"
)

func newRelayCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "relay",
		Short: "Publish the tenants' outbox rows to the event stream (any number may run)",
		Args:  noArgs,
		RunE:  a.withMetrics(a.runRelay),
	}
}

func (a *app) jetstream() (jetstream.JetStream, error) {
	nc, err := a.nats()
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, nil
}

// runRelay runs the relay role until ctx is done.
func (a *app) runRelay(ctx context.Context) error {
	db, err := a.database(ctx)
	if err != nil {
		return err
	}
	js, err := a.jetstream()
	if err != nil {
		return err
	}
	// The relay drains every cluster of TENANT_DATABASES, each listened to
	// on its direct URL: LISTEN needs a session of its own, never a
	// transaction pooler (see direct.go).
	r, err := relay.New(relay.Config{AuditRetention: a.cfg.AuditRetention},
		relay.Deps{Clusters: relay.ClustersOf(a.clusters(db)), JS: js, Log: a.log, Audit: db})
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

// runCacheInvalidator runs the cache-invalidator role until ctx is done.
func (a *app) runCacheInvalidator(ctx context.Context) error {
	db, err := a.database(ctx)
	if err != nil {
		return err
	}
	js, err := a.jetstream()
	if err != nil {
		return err
	}
	rdb, err := a.redis()
	if err != nil {
		return err
	}
	w, err := cacheinvalidator.New(cacheinvalidator.Config{}, cacheinvalidator.Deps{JS: js, Invalidator: cache.NewProducts(rdb, a.redisKeys, db, 0, a.log), Log: a.log})
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

func (a *app) redis() (redis.UniversalClient, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.rdb != nil {
		return a.rdb, nil
	}
	rdb, err := cache.Open(a.cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	a.rdb = rdb
	a.closers = append(a.closers, func() { _ = rdb.Close() })
	return rdb, nil
}

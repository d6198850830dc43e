package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/tenantworks/saas/api"
	"github.com/tenantworks/saas/pkg/tenancy"
)

func newPushCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "push",
		Short: "Serve the WebSocket push node (GET /ws/notifications/) on HTTP_ADDR",
		Long: `push serves GET /ws/notifications/ on tenant domains, and /health/ and /ready on
the public domain; metrics are on METRICS_ADDR. Run any number of them: a
notification reaches whichever node holds its user's connection. "saas api"
serves the same route.`,
		Args: noArgs,
		RunE: a.withMetrics(func(ctx context.Context) error { return a.serveAPI(ctx, nil) }),
	}
}

// newServer builds this process's HTTP server: for the push role the push
// node's routes alone (its readiness does not depend on Elasticsearch),
// else the whole API, WebSocket route included.
func (a *app) newServer(cfg api.Config, deps api.Deps) *api.Server {
	if a.role == "push" {
		delete(deps.Checks, "elasticsearch")
		return api.NewPush(cfg, deps)
	}
	return api.New(cfg, deps, a.serverOptions()...)
}

// pushHub returns the process's WebSocket push node. When ctx ends it
// closes every connection with "going away"; on exit it waits up to 10
// seconds for them, before the NATS connection closes.
func (a *app) pushHub(ctx context.Context, nc *nats.Conn) *api.PushHub {
	hub := api.NewPushHub(api.PushConfig{MaxPerUser: a.cfg.WSMaxPerUser, MaxPerNode: a.cfg.WSMaxPerNode}, nc)
	hub.ResyncOnReconnect(nc)
	// The node's one subscription, taken now so that no connection waits
	// for it; if NATS is not there yet, the first connection takes it.
	if err := hub.Listen(ctx); err != nil {
		a.log.WarnContext(ctx, "push node not subscribed yet; the first connection will", slog.Any("error", err))
	}
	if sub, err := nc.Subscribe(tenancy.SuspendedSubject, func(m *nats.Msg) { hub.CloseTenant(string(m.Data)) }); err != nil {
		a.log.WarnContext(ctx, "push node will not close suspended tenants' WebSockets", slog.Any("error", err))
	} else {
		a.mu.Lock()
		a.closers = append(a.closers, func() { _ = sub.Unsubscribe() })
		a.mu.Unlock()
	}
	stop := context.AfterFunc(ctx, hub.Drain)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closers = append(a.closers, func() {
		stop()
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hub.Close(cctx); err != nil {
			a.log.Warn("websocket connections still open at exit", slog.Int("connections", hub.Connections()), slog.Any("error", err))
		}
	})
	return hub
}

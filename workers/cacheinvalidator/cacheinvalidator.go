// Package cacheinvalidator keeps the API's Redis cache honest: for every
// product event it drops the product's cached item and moves the tenant's
// list generation on, so no cached read outlives a committed write by more
// than the pipeline's delay.
package cacheinvalidator

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/workers/runner"
)

// Invalidator drops what the cache holds for a product; it must be
// idempotent. *cache.Products implements it.
type Invalidator interface {
	Invalidate(ctx context.Context, schemaName, productID string) error
}

// Config configures the worker.
type Config struct {
	Runner runner.Config // Consumer defaults to events.ConsumerCache
}

// Worker is the cache-invalidator role.
type Worker struct {
	r *runner.Runner
}

// New returns the worker.
func New(cfg Config, js jetstream.JetStream, inv Invalidator, log *slog.Logger) *Worker {
	if cfg.Runner.Consumer == "" {
		cfg.Runner.Consumer = events.ConsumerCache
	}
	h := func(ctx context.Context, ev events.Envelope) error {
		if domain.ValidateSchemaName(ev.Tenant) != nil || ev.AggregateID == "" {
			return runner.Permanent(domain.Errorf(domain.EINVALID, "event %s names no valid tenant or product", ev.ID))
		}
		// Redis down: the error is retried with backoff, nothing is lost.
		return inv.Invalidate(ctx, ev.Tenant, ev.AggregateID)
	}
	return &Worker{r: runner.New(cfg.Runner, js, runner.Each(h), log)}
}

// Run consumes until ctx is done.
func (w *Worker) Run(ctx context.Context) error { return w.r.Run(ctx) }

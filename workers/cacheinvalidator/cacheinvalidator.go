// Package cacheinvalidator keeps the API's Redis cache honest: for every
// product event it drops the product's cached item and moves the tenant's
// list generation on, so no cached read outlives a committed write by more
// than the pipeline's delay.
package cacheinvalidator

import (
	"context"
	"errors"
	"fmt"
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

// Config configures the worker. Zero values take the defaults.
type Config struct {
	// Consumer is the durable consumer's name; default
	// events.ConsumerCache, or ConsumerConfig.Durable when ConsumerConfig
	// is set. Copies of the worker share it.
	Consumer string
	// ConsumerConfig, when set, replaces the role's consumer definition
	// (tests use a durable of their own, filtered to their tenant).
	ConsumerConfig *jetstream.ConsumerConfig
	// Batch is how many events one fetch takes; default 100.
	Batch int
}

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	if cfg.ConsumerConfig != nil {
		cfg.Consumer = cfg.ConsumerConfig.Durable
	}
	if cfg.Consumer == "" {
		cfg.Consumer = events.ConsumerCache
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	return cfg
}

// Deps are the worker's collaborators. JS and Invalidator are required;
// Log defaults to slog.Default().
type Deps struct {
	JS          jetstream.JetStream
	Invalidator Invalidator
	Log         *slog.Logger
}

// ErrMissingDependency is returned by New, wrapped with the name of the
// field, when a required dependency is missing.
var ErrMissingDependency = errors.New("cacheinvalidator: missing dependency")

// Worker is the cache-invalidator role.
type Worker struct {
	r *runner.Runner
}

// New returns the worker; see Config for the defaults. Errors:
// ErrMissingDependency naming Deps.JS or Deps.Invalidator.
func New(cfg Config, deps Deps) (*Worker, error) {
	switch {
	case deps.JS == nil:
		return nil, fmt.Errorf("%w: Deps.JS", ErrMissingDependency)
	case deps.Invalidator == nil:
		return nil, fmt.Errorf("%w: Deps.Invalidator", ErrMissingDependency)
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	cfg = cfg.withDefaults()
	inv := deps.Invalidator
	h := func(ctx context.Context, ev events.Envelope) error {
		if domain.ValidateSchemaName(ev.Tenant) != nil || ev.AggregateID == "" {
			return runner.Permanent(domain.Errorf(domain.EINVALID, "event %s names no valid tenant or product", ev.ID))
		}
		// Redis down: the error is retried with backoff, nothing is lost.
		return inv.Invalidate(ctx, ev.Tenant, ev.AggregateID)
	}
	rc := runner.Config{Consumer: cfg.Consumer, ConsumerConfig: cfg.ConsumerConfig, Batch: cfg.Batch}
	return &Worker{r: runner.New(rc, deps.JS, runner.Each(h), deps.Log)}, nil
}

// Run consumes until ctx is done.
func (w *Worker) Run(ctx context.Context) error { return w.r.Run(ctx) }

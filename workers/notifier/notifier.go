// Package notifier is the worker that turns product events into
// notifications: on product.created it writes one notification row per
// active staff user of the event's tenant, keyed on (event id, user id) so
// that a redelivered event adds nothing, then pushes every row of the event
// over core NATS (events.PushSubject) to the push nodes, which hand it to
// the user's WebSocket.
//
// The push follows the commit and repeats on every delivery: a crash
// between the insert and the push loses no live push, at the price of a
// duplicate push now and then, which the WebSocket side drops by id.
package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/workers/runner"
)

// Store writes the notifications of an event.
type Store interface {
	NotifyActiveStaff(ctx context.Context, schemaName string, n postgres.EventNotification) ([]domain.Notification, error)
}

var _ Store = (*postgres.DB)(nil)

// Publisher sends live pushes on core NATS; *nats.Conn is one.
type Publisher interface {
	Publish(subject string, data []byte) error
	FlushWithContext(ctx context.Context) error
}

// Config configures a Notifier. Zero values take the defaults.
type Config struct {
	// Consumer is the durable consumer's name; default
	// events.ConsumerNotifier, or ConsumerConfig.Durable when
	// ConsumerConfig is set. Copies of the worker share it.
	Consumer string
	// ConsumerConfig, when set, replaces the role's consumer definition
	// (tests use a durable of their own, filtered to their tenant); its
	// Durable then names the consumer.
	ConsumerConfig *jetstream.ConsumerConfig
	// Batch is how many events one fetch takes; default 100.
	Batch int
	// FlushTimeout bounds the wait for NATS to take a batch's pushes;
	// default 5 seconds.
	FlushTimeout time.Duration
}

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	if cfg.ConsumerConfig != nil {
		cfg.Consumer = cfg.ConsumerConfig.Durable
	}
	if cfg.Consumer == "" {
		cfg.Consumer = events.ConsumerNotifier
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	if cfg.FlushTimeout <= 0 {
		cfg.FlushTimeout = 5 * time.Second
	}
	return cfg
}

// Deps are a Notifier's collaborators. Store, JS and NATS are required;
// Log defaults to slog.Default().
type Deps struct {
	Store Store
	JS    jetstream.JetStream
	NATS  Publisher
	Log   *slog.Logger
}

// Notifier is the notifier worker role.
type Notifier struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
}

// ErrMissingDependency is returned by New, wrapped with the name of the
// field, when a required dependency is missing.
var ErrMissingDependency = errors.New("notifier: missing dependency")

// New returns a Notifier; see Config for the defaults. Errors:
// ErrMissingDependency naming Deps.Store, Deps.JS or Deps.NATS.
func New(cfg Config, deps Deps) (*Notifier, error) {
	switch {
	case deps.Store == nil:
		return nil, fmt.Errorf("%w: Deps.Store", ErrMissingDependency)
	case deps.JS == nil:
		return nil, fmt.Errorf("%w: Deps.JS", ErrMissingDependency)
	case deps.NATS == nil:
		return nil, fmt.Errorf("%w: Deps.NATS", ErrMissingDependency)
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	return &Notifier{cfg: cfg.withDefaults(), deps: deps, log: deps.Log.With(slog.String("worker", "notifier"))}, nil
}

// Run consumes events until ctx is done; see runner.Runner.Run.
func (n *Notifier) Run(ctx context.Context) error {
	r := runner.New(runner.Config{Consumer: n.cfg.Consumer, Batch: n.cfg.Batch, ConsumerConfig: n.cfg.ConsumerConfig},
		n.deps.JS, n.Handle, n.log)
	return r.Run(ctx)
}

// productData is the data of a product.created notification.
type productData struct {
	ProductID string `json:"product_id"`
	SKU       string `json:"sku"`
	Name      string `json:"name"`
	Price     string `json:"price"`
	Currency  string `json:"currency"`
}

// Handle is the notifier's runner.BatchHandler. Per event: a type other
// than product.created, or a tenant whose schema is gone, is done (nil); a
// payload that does not decode, or ids that cannot be, are
// runner.Permanent; a database or NATS failure is retryable. The pushes of
// the whole batch are flushed to NATS once, at the end.
func (n *Notifier) Handle(ctx context.Context, evs []events.Envelope) []error {
	errs := make([]error, len(evs))
	pushed := make([]bool, len(evs))
	for i, ev := range evs {
		pushed[i], errs[i] = n.handle(ctx, ev)
	}
	if !anyTrue(pushed) {
		return errs
	}
	fctx, cancel := context.WithTimeout(ctx, n.cfg.FlushTimeout)
	defer cancel()
	if err := n.deps.NATS.FlushWithContext(fctx); err != nil {
		// The rows are committed; redelivery pushes them again.
		for i := range evs {
			if pushed[i] && errs[i] == nil {
				errs[i] = fmt.Errorf("notifier: flush pushes: %w", err)
			}
		}
	}
	return errs
}

func anyTrue(bs []bool) bool {
	for _, b := range bs {
		if b {
			return true
		}
	}
	return false
}

// handle handles one event and reports whether it published pushes.
func (n *Notifier) handle(ctx context.Context, ev events.Envelope) (bool, error) {
	if ev.Type != events.ProductCreated {
		return false, nil
	}
	// The relay writes ids as PostgreSQL does; uuid.Parse also takes forms
	// the database refuses ("urn:uuid:...", any two characters around one),
	// which would be retried to the dead-letter stream as if it were down.
	if u, err := uuid.Parse(ev.ID); err != nil || u.String() != ev.ID {
		return false, runner.Permanent(fmt.Errorf("notifier: event id %q is not a UUID", ev.ID))
	}
	if err := domain.ValidateSchemaName(ev.Tenant); err != nil {
		return false, runner.Permanent(fmt.Errorf("notifier: tenant %q: %w", ev.Tenant, err))
	}
	var p events.Product
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		return false, runner.Permanent(fmt.Errorf("notifier: decode product payload: %w", err))
	}
	if p.ID == "" || p.Name == "" {
		return false, runner.Permanent(errors.New("notifier: product payload without id or name"))
	}
	data, err := json.Marshal(productData{ProductID: p.ID, SKU: p.SKU, Name: p.Name, Price: p.Price, Currency: p.Currency})
	if err != nil {
		return false, runner.Permanent(fmt.Errorf("notifier: encode data: %w", err))
	}
	rows, err := n.deps.Store.NotifyActiveStaff(ctx, ev.Tenant, postgres.EventNotification{
		EventID: ev.ID, Kind: events.ProductCreated, Title: "New product: " + p.Name, Data: data,
	})
	switch {
	case errors.Is(err, postgres.ErrNoSchema):
		n.log.InfoContext(ctx, "tenant schema gone, event dropped",
			slog.String("tenant", ev.Tenant), slog.String("event_id", ev.ID))
		return false, nil
	case domain.ErrorCode(err) == domain.EINVALID:
		return false, runner.Permanent(err)
	case err != nil:
		return false, err
	}
	for _, row := range rows {
		b, err := json.Marshal(events.NotificationFromDomain(row))
		if err != nil {
			return false, runner.Permanent(fmt.Errorf("notifier: encode push: %w", err))
		}
		if err := n.deps.NATS.Publish(events.PushSubject(ev.Tenant, row.UserID), b); err != nil {
			return false, fmt.Errorf("notifier: push notification %d: %w", row.ID, err)
		}
	}
	return len(rows) > 0, nil
}

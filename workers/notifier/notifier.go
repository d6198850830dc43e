// Package notifier is the worker that turns product events into
// notifications: on product.created it writes one notification row per
// active staff user of the event's tenant, recording the event once with
// its rows so that a redelivered event adds nothing and gets the same
// rows back, then pushes the event's rows over
// core NATS to the push nodes, which hand each to its user's WebSocket:
// one events.PushFanout message per event (events.PushTenantSubject)
// carrying every recipient and row id, which each push node fans out to
// the connections it holds.
//
// The events of a fetched batch are written per tenant, as many in one
// transaction as make about Config.TxRows rows (one event a transaction
// for a tenant with 1,000 staff users, many for one with 10), so that an
// event's push waits for little more than its own rows while small
// tenants pay the lock and the commit once for several events; the pushes
// of the whole batch are flushed once.
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

// Store writes the notifications of events of one tenant.
type Store interface {
	NotifyActiveStaffMany(ctx context.Context, schemaName string, ns []postgres.EventNotification) ([]domain.Notification, error)
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
	// TxRows is about how many notification rows one transaction
	// writes; default 1,000. A tenant's first event of a batch is written
	// alone; the next ones as many to a transaction as TxRows holds at
	// the rows per event the first one wrote. An event's notifications
	// are pushed after its transaction commits, so with 1,000 staff users
	// each event is written and pushed on its own rather than waiting for
	// the rows of others (an event's rows, not the transaction, are most
	// of the cost), while a tenant with 10 staff users gets up to
	// TxEvents events a transaction and pays the lock and the commit
	// once for them. A longer transaction also holds the tenant's
	// notifications lock longer, which another copy of the worker waits
	// for up to the tenant's lock_timeout.
	TxRows int
	// TxEvents is how many events of a tenant one transaction writes at
	// most; default 100.
	TxEvents int
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
	if cfg.TxRows <= 0 {
		cfg.TxRows = 1000
	}
	if cfg.TxEvents <= 0 {
		cfg.TxEvents = 100
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
// runner.Permanent; a database or NATS failure is retryable, for every
// event of the transaction it hit. The events of a tenant are written in
// the batch's order, as many to a transaction as Config.TxRows says, and
// pushed after its commit; the pushes of the whole batch are flushed to NATS once, at the
// end.
func (n *Notifier) Handle(ctx context.Context, evs []events.Envelope) []error {
	errs := make([]error, len(evs))
	pushed := make([]bool, len(evs))
	var tenants []string            // in the order of their first event
	pending := map[string][]*work{} // per tenant, the events to write
	byID := map[string]*work{}      // an event delivered twice in the batch is written once
	for i, ev := range evs {
		if w := byID[ev.Tenant+"/"+ev.ID]; w != nil {
			w.idx = append(w.idx, i)
			continue
		}
		w, err := n.prepare(ev)
		errs[i] = err
		if w == nil {
			continue
		}
		w.idx = []int{i}
		byID[ev.Tenant+"/"+ev.ID] = w
		if _, ok := pending[ev.Tenant]; !ok {
			tenants = append(tenants, ev.Tenant)
		}
		pending[ev.Tenant] = append(pending[ev.Tenant], w)
	}
	for _, tenant := range tenants {
		ws := pending[tenant]
		perEvent := -1 // rows an event of the tenant writes, once known
		for len(ws) > 0 {
			k := 1
			switch {
			case perEvent == 0: // no staff user: nothing is written
				k = n.cfg.TxEvents
			case perEvent > 0:
				k = n.cfg.TxRows / perEvent
			}
			k = max(1, min(k, n.cfg.TxEvents, len(ws)))
			if rows, ok := n.write(ctx, tenant, ws[:k], errs, pushed); ok {
				perEvent = (rows + k - 1) / k
			}
			ws = ws[k:]
		}
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

// work is one event to write: its places in the batch and its
// notification.
type work struct {
	idx []int
	n   postgres.EventNotification
}

// set gives each of w's places in the batch err, and whether it pushed.
func (w *work) set(errs []error, pushed []bool, err error, push bool) {
	for _, i := range w.idx {
		errs[i], pushed[i] = err, push
	}
}

// prepare checks one event and returns its notification, or nil with the
// event's result when there is nothing to write.
func (n *Notifier) prepare(ev events.Envelope) (*work, error) {
	if ev.Type != events.ProductCreated {
		return nil, nil
	}
	// The relay writes ids as PostgreSQL does; uuid.Parse also takes forms
	// the database refuses ("urn:uuid:...", any two characters around one),
	// which would be retried to the dead-letter stream as if it were down.
	if u, err := uuid.Parse(ev.ID); err != nil || u.String() != ev.ID {
		return nil, runner.Permanent(fmt.Errorf("notifier: event id %q is not a UUID", ev.ID))
	}
	if err := domain.ValidateSchemaName(ev.Tenant); err != nil {
		return nil, runner.Permanent(fmt.Errorf("notifier: tenant %q: %w", ev.Tenant, err))
	}
	var p events.Product
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		return nil, runner.Permanent(fmt.Errorf("notifier: decode product payload: %w", err))
	}
	if p.ID == "" || p.Name == "" {
		return nil, runner.Permanent(errors.New("notifier: product payload without id or name"))
	}
	data, err := json.Marshal(productData{ProductID: p.ID, SKU: p.SKU, Name: p.Name, Price: p.Price, Currency: p.Currency})
	if err != nil {
		return nil, runner.Permanent(fmt.Errorf("notifier: encode data: %w", err))
	}
	return &work{n: postgres.EventNotification{
		EventID: ev.ID, Kind: events.ProductCreated, Title: "New product: " + p.Name, Data: data,
	}}, nil
}

// write writes the notifications of ws, events of one tenant, in one
// transaction, then publishes their pushes, setting each event's result
// in errs and whether it published in pushed. It returns how many rows
// the events have, and whether it wrote them.
func (n *Notifier) write(ctx context.Context, tenant string, ws []*work, errs []error, pushed []bool) (int, bool) {
	ns := make([]postgres.EventNotification, len(ws))
	for i, w := range ws {
		ns[i] = w.n
	}
	rows, err := n.deps.Store.NotifyActiveStaffMany(ctx, tenant, ns)
	switch {
	case errors.Is(err, postgres.ErrNoSchema):
		n.log.InfoContext(ctx, "tenant schema gone, events dropped",
			slog.String("tenant", tenant), slog.Int("events", len(ws)))
		return 0, false
	case domain.ErrorCode(err) == domain.EINVALID && len(ws) > 1:
		// One event is at fault: write each alone to find it.
		for i := range ws {
			n.write(ctx, tenant, ws[i:i+1], errs, pushed)
		}
		return 0, false
	case domain.ErrorCode(err) == domain.EINVALID:
		ws[0].set(errs, pushed, runner.Permanent(err), false)
		return 0, false
	case err != nil:
		for _, w := range ws {
			w.set(errs, pushed, err, false)
		}
		return 0, false
	}
	subject := events.PushTenantSubject(tenant)
	failed := map[string]error{} // event id -> its publish error
	sent := map[string]bool{}    // event ids with a push
	for _, f := range events.FanoutsOf(rows) {
		if failed[f.EventID] != nil {
			continue
		}
		sent[f.EventID] = true
		b, err := json.Marshal(f)
		if err == nil {
			err = n.deps.NATS.Publish(subject, b)
		}
		if err != nil {
			failed[f.EventID] = fmt.Errorf("notifier: push event %s: %w", f.EventID, err)
		}
	}
	for _, w := range ws {
		w.set(errs, pushed, failed[w.n.EventID], failed[w.n.EventID] == nil && sent[w.n.EventID])
	}
	return len(rows), true
}

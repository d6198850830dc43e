// Package relay publishes the tenants' outbox rows to JetStream.
//
// Each outbox insert commits a row in public.outbox_pending and a NOTIFY on
// channel saas_outbox carrying the tenant's schema, both on the PostgreSQL
// cluster that holds the tenant. A relay is given every cluster
// (Deps.Clusters) and, on each, listens and sweeps outbox_pending every Sweep
// interval for anything a lost notification left behind; a tenant is drained
// on the cluster whose marker or notification named it (and, when that
// cluster no longer holds the tenant's schema, on the others, for what a move
// left there). Its cost follows the tenants with pending events, never the
// number of tenants; a cluster adds one LISTEN connection and one sweep query
// per interval.
//
// Draining one tenant happens in one transaction holding that tenant's
// advisory lock on its cluster, so any number of relays may run and one at
// a time drains a tenant. The relay reads the pending rows in id order,
// publishes each with Nats-Msg-Id = event id, waits for every ack, then
// deletes the rows and commits. A crash between publish and commit
// re-publishes the same ids, which the stream drops as duplicates. Nothing
// is marked done before its ack, and nothing is skipped when transactions
// commit out of id order: the relay keeps no cursor, it always reads what
// is still there.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/observability"
	"github.com/tenantworks/saas/pkg/postgres"
)

// Channel is the LISTEN/NOTIFY channel of outbox writes.
const Channel = postgres.OutboxChannel

// Config configures a Relay. Zero values take the defaults.
type Config struct {
	// Workers is how many tenants are drained at once, on all clusters
	// together; default 4.
	Workers int
	// Batch is how many events one transaction publishes; default 500.
	Batch int
	// Sweep is how often each cluster's outbox_pending is checked; default
	// 2s. It bounds the delay of an event whose notification was lost.
	Sweep time.Duration
	// PublishTimeout bounds the wait for a batch's acks; default 10s.
	PublishTimeout time.Duration
	// AfterPublish, when set, runs after a batch is acknowledged and before
	// it is marked done. Fault-injection tests use it to crash in between.
	AfterPublish func(schemaName string, n int)
	// AuditRetention is how long audit entries are kept: with Deps.Audit
	// set and AuditRetention > 0, the relay deletes older entries once at
	// start and then every AuditPruneEvery. 0 keeps them for ever.
	AuditRetention time.Duration
	// AuditPruneEvery is how often audit entries are pruned; default 1h.
	AuditPruneEvery time.Duration
}

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.Sweep <= 0 {
		cfg.Sweep = 2 * time.Second
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 10 * time.Second
	}
	if cfg.AuditPruneEvery <= 0 {
		cfg.AuditPruneEvery = time.Hour
	}
	return cfg
}

// Outbox is the relay's view of the tenants' outboxes on one cluster.
// *postgres.DB is one: each of its Clusters() is used as it is, unrouted.
type Outbox interface {
	// DrainOutbox publishes one batch of a tenant's outbox under the
	// tenant's lock; see postgres.DB.DrainOutbox.
	DrainOutbox(ctx context.Context, schemaName string, limit int, publish func([]postgres.OutboxRow) error) (int, error)
	// ForgetPending drops a schema's pending markers.
	ForgetPending(ctx context.Context, schemaName string) error
	// PendingTenants lists the schemas with pending markers.
	PendingTenants(ctx context.Context) ([]string, error)
}

var _ Outbox = (*postgres.DB)(nil)

// Cluster is one PostgreSQL cluster whose tenants' outboxes a Relay drains.
type Cluster struct {
	// Name tells the cluster apart in logs.
	Name string
	// Outbox is the cluster's pool (it may lead to a transaction pooler).
	Outbox Outbox
	// ListenURL is for the cluster's dedicated LISTEN connection: a
	// direct one, never through a transaction-mode pooler.
	ListenURL string
}

// ClustersOf returns the relay's view of clusters, as
// postgres.DB.Clusters() lists them, each listened to on its DirectURL.
func ClustersOf(clusters []postgres.Cluster) []Cluster {
	out := make([]Cluster, len(clusters))
	for i, c := range clusters {
		out[i] = Cluster{Name: c.Name, Outbox: c.DB, ListenURL: c.DirectURL}
	}
	return out
}

// Deps are a Relay's collaborators. Clusters (at least one, each with its
// Outbox and ListenURL) and JS are required; Log defaults to
// slog.Default().
type Deps struct {
	// Clusters are every cluster that tenants live on (TENANT_DATABASES):
	// a relay given fewer leaves the others' events where they are.
	Clusters []Cluster
	JS       jetstream.JetStream
	Log      *slog.Logger
	// Audit, when set, prunes the audit trails by age (see
	// Config.AuditRetention). The routing *postgres.DB (the main
	// cluster's, clusters attached) is one: it prunes every cluster.
	Audit AuditPruner
}

// AuditPruner deletes audit entries written before a time, in every trail;
// see postgres.DB.PruneAudit.
type AuditPruner interface {
	PruneAudit(ctx context.Context, before time.Time, batch int) (postgres.AuditPruneReport, error)
}

// ErrMissingDependency is returned by New, wrapped with the name of the
// field, when a required dependency is missing.
var ErrMissingDependency = errors.New("relay: missing dependency")

// Relay moves outbox rows to the stream.
type Relay struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	mu     sync.Mutex
	queued map[task]bool
	queue  chan task
}

// task is a tenant to drain on one cluster, Deps.Clusters[cluster].
type task struct {
	cluster int
	schema  string
	// probe marks a drain asked for because the tenant's schema was found
	// gone from another cluster, not by a marker of this one.
	probe bool
}

// New returns a Relay; see Config for the defaults. Errors:
// ErrMissingDependency naming Deps.Clusters (none given, or one without
// its Outbox or ListenURL) or Deps.JS when one is missing.
func New(cfg Config, deps Deps) (*Relay, error) {
	if len(deps.Clusters) == 0 {
		return nil, fmt.Errorf("%w: Deps.Clusters", ErrMissingDependency)
	}
	for i, c := range deps.Clusters {
		switch {
		case c.Outbox == nil:
			return nil, fmt.Errorf("%w: Deps.Clusters[%d].Outbox (%s)", ErrMissingDependency, i, c.Name)
		case c.ListenURL == "":
			return nil, fmt.Errorf("%w: Deps.Clusters[%d].ListenURL (%s)", ErrMissingDependency, i, c.Name)
		}
	}
	if deps.JS == nil {
		return nil, fmt.Errorf("%w: Deps.JS", ErrMissingDependency)
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	deps.Clusters = slices.Clone(deps.Clusters)
	return &Relay{cfg: cfg.withDefaults(), deps: deps, log: deps.Log.With(slog.String("role", "relay")),
		queued: map[task]bool{}, queue: make(chan task, 65536)}, nil
}

// Run relays until ctx is done and returns nil then. Database and NATS
// outages are retried with backoff.
func (r *Relay) Run(ctx context.Context) error {
	for attempt := uint64(1); ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := events.EnsureStreams(cctx, r.deps.JS, events.StreamConfig{})
		cancel()
		if err == nil {
			break
		}
		r.log.WarnContext(ctx, "stream not ready, retrying", slog.Any("error", err))
		if !sleep(ctx, events.BackoffFor(attempt)) {
			return nil
		}
	}
	var wg sync.WaitGroup
	// Each cluster is listened to and swept on its own, so that one that
	// is down delays none of the others' events.
	for c := range r.deps.Clusters {
		wg.Go(func() { r.listen(ctx, c) })
		wg.Go(func() { r.sweepLoop(ctx, c) })
	}
	if r.deps.Audit != nil && r.cfg.AuditRetention > 0 {
		wg.Go(func() { r.pruneLoop(ctx) })
	}
	for range r.cfg.Workers {
		wg.Go(func() { r.work(ctx) })
	}
	r.log.InfoContext(ctx, "relay running", slog.Int("workers", r.cfg.Workers), slog.Int("clusters", len(r.deps.Clusters)))
	wg.Wait()
	return nil
}

// enqueue schedules a tenant of a cluster for draining unless it is
// already waiting.
func (r *Relay) enqueue(k task) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.queued[k] {
		return
	}
	select {
	case r.queue <- k:
		r.queued[k] = true
	default: // full: the sweep will bring it back
	}
}

func (r *Relay) enqueueAfter(ctx context.Context, k task, d time.Duration) {
	go func() {
		if sleep(ctx, d) {
			r.enqueue(k)
		}
	}()
}

func (r *Relay) work(ctx context.Context) {
	failures := map[task]uint64{}
	for {
		var k task
		select {
		case <-ctx.Done():
			return
		case k = <-r.queue:
		}
		// Unmark before draining, so a notification that arrives meanwhile
		// schedules another pass.
		r.mu.Lock()
		delete(r.queued, k)
		r.mu.Unlock()
		err := r.drain(ctx, k)
		switch {
		case err == nil:
			delete(failures, k)
		case errors.Is(err, postgres.ErrOutboxLocked):
			// Another relay is draining it; look again shortly in case it
			// read its batch before our notification's commit.
			r.enqueueAfter(ctx, k, 100*time.Millisecond)
		case ctx.Err() != nil:
			return
		default:
			failures[k]++
			d := events.BackoffFor(failures[k])
			r.log.WarnContext(ctx, "drain failed, retrying", slog.String("tenant", k.schema),
				slog.String("cluster", r.deps.Clusters[k.cluster].Name), slog.Duration("in", d), slog.Any("error", err))
			r.enqueueAfter(ctx, k, d)
		}
	}
}

// drain publishes a tenant's pending events on one cluster, a batch per
// transaction, until none is left.
func (r *Relay) drain(ctx context.Context, k task) error {
	outbox := r.deps.Clusters[k.cluster].Outbox
	if err := domain.ValidateSchemaName(k.schema); err != nil {
		// Not a tenant schema (a notification we did not send): forget it.
		_ = outbox.ForgetPending(ctx, k.schema)
		return nil
	}
	for {
		n, err := r.drainBatch(ctx, outbox, k.schema)
		if errors.Is(err, postgres.ErrNoSchema) { // the tenant is gone from this cluster
			if !k.probe {
				r.probeOthers(k)
			}
			return outbox.ForgetPending(ctx, k.schema)
		}
		if err != nil || n < r.cfg.Batch {
			return err
		}
	}
}

// probeOthers drains, on every cluster but k's, the tenant whose schema
// k's cluster no longer holds. A tenant moved to another cluster may have
// left outbox rows there (copied by the move) with no marker of that
// cluster to name them: they are relayed now rather than at the tenant's
// next write. For a deleted tenant each probe costs one failed query.
func (r *Relay) probeOthers(k task) {
	for c := range r.deps.Clusters {
		if c != k.cluster {
			r.enqueue(task{cluster: c, schema: k.schema, probe: true})
		}
	}
}

// drainBatch publishes one batch of a tenant's outbox in one transaction
// holding the tenant's lock (see postgres.DB.DrainOutbox): the rows are
// deleted only once every one of them is acknowledged.
func (r *Relay) drainBatch(ctx context.Context, outbox Outbox, schemaName string) (int, error) {
	published, err := outbox.DrainOutbox(ctx, schemaName, r.cfg.Batch, func(rows []postgres.OutboxRow) error {
		batch := make([]events.Envelope, len(rows))
		for i, x := range rows {
			batch[i] = envelopeOf(schemaName, x)
		}
		if err := r.publish(ctx, batch); err != nil {
			return err
		}
		if r.cfg.AfterPublish != nil {
			r.cfg.AfterPublish(schemaName, len(batch))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("relay: drain %s: %w", schemaName, err)
	}
	if published > 0 {
		observability.RelayPublished.Add(float64(published))
	}
	return published, nil
}

// publish sends a batch asynchronously, in order, and waits for every ack.
func (r *Relay) publish(ctx context.Context, batch []events.Envelope) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, 0, len(batch))
	for _, env := range batch {
		data, err := jsonEnvelope(env)
		if err != nil {
			return err
		}
		m := nats.NewMsg(events.Subject(env.Tenant, env.Type))
		m.Data = data
		f, err := r.deps.JS.PublishMsgAsync(m, jetstream.WithMsgID(env.ID), jetstream.WithExpectStream(events.StreamName))
		if err != nil {
			return fmt.Errorf("publish %s: %w", env.ID, err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish %s: %w", f.Msg().Header.Get(nats.MsgIdHdr), err)
		case <-ctx.Done():
			return fmt.Errorf("publish: waiting for acks: %w", ctx.Err())
		}
	}
	return nil
}

// sweepLoop enqueues every tenant with a pending marker on a cluster, at
// start and then every Sweep interval.
func (r *Relay) sweepLoop(ctx context.Context, cluster int) {
	t := time.NewTicker(r.cfg.Sweep)
	defer t.Stop()
	for {
		r.sweep(ctx, cluster)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Relay) sweep(ctx context.Context, cluster int) {
	schemas, err := r.deps.Clusters[cluster].Outbox.PendingTenants(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.log.WarnContext(ctx, "sweep failed", slog.String("cluster", r.deps.Clusters[cluster].Name), slog.Any("error", err))
		}
		return
	}
	for _, s := range schemas {
		r.enqueue(task{cluster: cluster, schema: s})
	}
}

// listen holds a dedicated connection on LISTEN to a cluster and enqueues
// the notified tenants; after a reconnect it sweeps that cluster, since
// notifications sent while it was away are lost.
func (r *Relay) listen(ctx context.Context, cluster int) {
	for attempt := uint64(1); ctx.Err() == nil; attempt++ {
		err := postgres.ListenOutbox(ctx, r.deps.Clusters[cluster].ListenURL,
			func() { r.sweep(ctx, cluster) },
			func(s string) { r.enqueue(task{cluster: cluster, schema: s}) })
		if ctx.Err() != nil {
			return
		}
		r.log.WarnContext(ctx, "listen connection lost, reconnecting", slog.String("cluster", r.deps.Clusters[cluster].Name), slog.Any("error", err))
		if !sleep(ctx, events.BackoffFor(attempt)) {
			return
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// pruneLoop prunes the audit trails now and then every AuditPruneEvery.
// Every relay does it: the deletes are idempotent, and a tenant with
// nothing old costs one index probe.
func (r *Relay) pruneLoop(ctx context.Context) {
	for {
		start := time.Now()
		rep, err := r.deps.Audit.PruneAudit(ctx, start.Add(-r.cfg.AuditRetention), 0)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.log.WarnContext(ctx, "audit pruning failed; retrying at the next round", slog.Any("error", err))
		case rep.Deleted > 0:
			r.log.InfoContext(ctx, "audit entries pruned", slog.Int64("deleted", rep.Deleted),
				slog.Int("trails", rep.Pruned), slog.Int("tenants", rep.Tenants), slog.Duration("took", time.Since(start)))
		}
		if !sleep(ctx, r.cfg.AuditPruneEvery) {
			return
		}
	}
}

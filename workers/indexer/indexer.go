// Package indexer is the worker that keeps every tenant's search index in
// step with its products, and the rebuild behind `saas reindex`.
//
// Each product event becomes one write to the tenant's alias, at the
// product's version as Elasticsearch external version, so that an event
// that arrives late or twice never replaces a newer document. Deletes are
// kept by the database, not by Elasticsearch: before a created or updated
// event is indexed, the product is looked up, and the event is dropped when
// the product no longer exists. Elasticsearch remembers a delete's version
// only for index.gc_deletes (60s by default); after that, only this check
// keeps a replayed old event from bringing a deleted product back.
//
// Tenants start on a shared index (see pkg/search). The worker notes which
// tenants it writes to and, every Config.PromoteEvery, counts their
// documents in the shared indices (one request); a tenant past the
// Reindexer's DedicatedAt is promoted to an index of its own there and
// then, in the background, by a rebuild from the database. `saas reindex`
// places tenants by the same rule, so it promotes too, and is the way back
// for a tenant that shrank.
package indexer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/search"
	"github.com/tenantworks/saas/workers/runner"
)

// Searcher writes to a tenant's index. *search.Client is one.
type Searcher interface {
	Apply(ctx context.Context, schema string, ops []search.Op) ([]error, error)
}

// Versions tells which products still exist. *postgres.DB is one; it
// returns ENOTFOUND for a tenant that is gone or being deleted.
type Versions interface {
	ProductVersions(ctx context.Context, schemaName string, ids []string) (map[string]int64, error)
}

var (
	_ Searcher = (*search.Client)(nil)
	_ Versions = (*postgres.DB)(nil)
)

// Config configures an Indexer. Zero values take the defaults.
type Config struct {
	// Consumer is the durable consumer's name; default
	// events.ConsumerIndexer, or ConsumerConfig.Durable when
	// ConsumerConfig is set. Copies of the worker share it.
	Consumer string
	// ConsumerConfig, when set, replaces the role's consumer definition
	// (tests use a durable of their own, filtered to their tenant); its
	// Durable then names the consumer.
	ConsumerConfig *jetstream.ConsumerConfig
	// Batch is how many events one fetch takes, and so the largest bulk
	// request; default 100.
	Batch int
	// PromoteEvery is how often the tenants written to in the last two
	// periods are offered to Deps.Promoter; default one minute. It should
	// be longer than the indices' refresh interval (1s), which the counts
	// lag behind.
	PromoteEvery time.Duration
}

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	if cfg.ConsumerConfig != nil && cfg.ConsumerConfig.Durable != "" {
		cfg.Consumer = cfg.ConsumerConfig.Durable
	}
	if cfg.Consumer == "" {
		cfg.Consumer = events.ConsumerIndexer
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	if cfg.PromoteEvery <= 0 {
		cfg.PromoteEvery = time.Minute
	}
	return cfg
}

// Promoter moves tenants that outgrew their shared index to an index of
// their own and returns those it moved. *Reindexer is one.
type Promoter interface {
	PromoteLarge(ctx context.Context, schemas []string) ([]string, error)
}

var _ Promoter = (*Reindexer)(nil)

// Deps are an Indexer's collaborators. DB, Search and JS are required;
// Log defaults to slog.Default().
type Deps struct {
	DB     Versions
	Search Searcher
	JS     jetstream.JetStream
	Log    *slog.Logger
	// Promoter, when set, is offered the tenants written to, every
	// Config.PromoteEvery; without it no tenant is promoted automatically.
	Promoter Promoter
}

// Indexer is the indexer worker role.
type Indexer struct {
	cfg  Config
	deps Deps

	mu      sync.Mutex
	touched map[string]bool // tenants written to since the last promotion check
	// previous were touched in the period before: each tenant is checked
	// at two ticks after its last write, so a count the index had not
	// refreshed yet at the first is seen at the second.
	previous map[string]bool
}

// ErrMissingDependency is returned by New and NewReindexer, wrapped with
// the name of the field, when a required dependency is missing.
var ErrMissingDependency = errors.New("indexer: missing dependency")

// New returns an Indexer; see Config for the defaults. Errors:
// ErrMissingDependency naming Deps.DB, Deps.Search or Deps.JS.
func New(cfg Config, deps Deps) (*Indexer, error) {
	switch {
	case deps.DB == nil:
		return nil, fmt.Errorf("%w: Deps.DB", ErrMissingDependency)
	case deps.Search == nil:
		return nil, fmt.Errorf("%w: Deps.Search", ErrMissingDependency)
	case deps.JS == nil:
		return nil, fmt.Errorf("%w: Deps.JS", ErrMissingDependency)
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	return &Indexer{cfg: cfg.withDefaults(), deps: deps, touched: map[string]bool{}, previous: map[string]bool{}}, nil
}

// Run consumes until ctx is done, then returns nil. Elasticsearch or
// PostgreSQL being down is retried with backoff; nothing is acknowledged
// before it is written. With a Promoter, promotions run beside the
// consumer, one tenant at a time.
func (ix *Indexer) Run(ctx context.Context) error {
	r := runner.New(runner.Config{Consumer: ix.cfg.Consumer, ConsumerConfig: ix.cfg.ConsumerConfig, Batch: ix.cfg.Batch},
		ix.deps.JS, ix.Handle, ix.deps.Log)
	if ix.deps.Promoter == nil {
		return r.Run(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { ix.promoteLoop(ctx) })
	err := r.Run(ctx)
	cancel()
	wg.Wait()
	return err
}

// promoteLoop offers the tenants written to to the Promoter every
// PromoteEvery until ctx is done.
func (ix *Indexer) promoteLoop(ctx context.Context) {
	tick := time.NewTicker(ix.cfg.PromoteEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ix.mu.Lock()
		check := maps.Clone(ix.touched)
		maps.Copy(check, ix.previous)
		ix.previous, ix.touched = ix.touched, ix.previous
		clear(ix.touched)
		ix.mu.Unlock()
		if len(check) == 0 {
			continue
		}
		schemas := slices.Sorted(maps.Keys(check))
		if _, err := ix.deps.Promoter.PromoteLarge(ctx, schemas); err != nil && ctx.Err() == nil {
			ix.deps.Log.WarnContext(ctx, "promotion check failed; tried again at the next", slog.Any("error", err))
			ix.mu.Lock()
			for _, s := range schemas {
				ix.touched[s] = true
			}
			ix.mu.Unlock()
		}
	}
}

// Handle is the worker's runner.BatchHandler. It groups the batch by
// tenant and, per tenant, makes one database query (which products still
// exist) and one bulk request. It returns per event: nil when the event is
// in the index or has nothing to do there (its product or its tenant is
// gone; the index already holds a newer version); a runner.Permanent error
// for an event that cannot be understood or a document the index rejects;
// any other error is retryable, such as Elasticsearch or PostgreSQL down.
func (ix *Indexer) Handle(ctx context.Context, evs []events.Envelope) []error {
	errs := make([]error, len(evs))
	var tenants []string
	byTenant := map[string][]int{}
	for i, ev := range evs {
		if _, ok := byTenant[ev.Tenant]; !ok {
			tenants = append(tenants, ev.Tenant)
		}
		byTenant[ev.Tenant] = append(byTenant[ev.Tenant], i)
	}
	for _, t := range tenants {
		ix.handleTenant(ctx, t, evs, byTenant[t], errs)
	}
	return errs
}

// handleTenant handles the events at positions idx of evs, all of tenant,
// writing their results into errs.
func (ix *Indexer) handleTenant(ctx context.Context, tenant string, evs []events.Envelope, idx []int, errs []error) {
	var ops []search.Op
	var at []int // position in evs of each op
	for _, i := range idx {
		op, ok, err := OpOf(evs[i])
		switch {
		case err != nil:
			errs[i] = runner.Permanent(err)
		case ok:
			ops, at = append(ops, op), append(at, i)
		}
	}
	if len(ops) == 0 {
		return
	}
	live, err := Live(ctx, ix.deps.DB, tenant, ops)
	if err != nil {
		for _, i := range at {
			errs[i] = err
		}
		return
	}
	if live == nil { // the tenant is gone: nothing of it is indexed any more
		ix.deps.Log.DebugContext(ctx, "events of a deleted tenant dropped", slog.String("tenant", tenant), slog.Int("events", len(at)))
		return
	}
	var keep []search.Op
	var keepAt []int
	for j, op := range ops {
		if live[j] {
			keep, keepAt = append(keep, op), append(keepAt, at[j])
		}
	}
	if len(keep) == 0 {
		return
	}
	itemErrs, err := ix.deps.Search.Apply(ctx, tenant, keep)
	if err == nil && ix.deps.Promoter != nil {
		ix.mu.Lock()
		ix.touched[tenant] = true
		ix.mu.Unlock()
	}
	for j, i := range keepAt {
		switch {
		case err != nil:
			errs[i] = err
		case j < len(itemErrs) && itemErrs[j] != nil:
			errs[i] = itemErrs[j]
			if domain.ErrorCode(itemErrs[j]) == domain.EINVALID {
				errs[i] = runner.Permanent(itemErrs[j])
			}
		}
	}
}

// OpOf returns the index operation an event asks for. ok is false for an
// event type the index does not care about. An error means the event
// cannot be understood (bad payload, id or version): retrying cannot help.
func OpOf(ev events.Envelope) (op search.Op, ok bool, err error) {
	switch ev.Type {
	case events.ProductCreated, events.ProductUpdated:
		var p events.Product
		if err := json.Unmarshal(ev.Payload, &p); err != nil {
			return search.Op{}, false, fmt.Errorf("event %s: decode payload: %w", ev.ID, err)
		}
		if p.ID == "" {
			p.ID = ev.AggregateID
		}
		if ev.Version != 0 { // the envelope's version is the one that orders
			p.Version = ev.Version
		}
		if err := checkTarget(ev, p.ID, p.Version); err != nil {
			return search.Op{}, false, err
		}
		return search.IndexOp(search.DocFromProduct(domain.Product{ID: p.ID, SKU: p.SKU, Name: p.Name, Description: p.Description,
			Price: p.Price, Currency: p.Currency, Stock: p.Stock, Version: p.Version, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt})), true, nil
	case events.ProductDeleted:
		id := ev.AggregateID
		if id == "" {
			var p events.Product
			if err := json.Unmarshal(ev.Payload, &p); err != nil {
				return search.Op{}, false, fmt.Errorf("event %s: decode payload: %w", ev.ID, err)
			}
			id = p.ID
		}
		if err := checkTarget(ev, id, ev.Version); err != nil {
			return search.Op{}, false, err
		}
		return search.DeleteOp(id, ev.Version), true, nil
	}
	return search.Op{}, false, nil
}

func checkTarget(ev events.Envelope, id string, version int64) error {
	// Only the form the database writes: Live looks the id up among
	// p.id::text, and uuid.Parse also takes "{...}" and "urn:uuid:...".
	if u, err := uuid.Parse(id); err != nil || u.String() != id {
		return domain.Errorf(domain.EINVALID, "event %s: product id %q is not a UUID", ev.ID, id)
	}
	if ev.AggregateID != "" && ev.AggregateID != id {
		return domain.Errorf(domain.EINVALID, "event %s: payload is product %s, envelope says %s", ev.ID, id, ev.AggregateID)
	}
	if version < 1 {
		return domain.Errorf(domain.EINVALID, "event %s: version %d", ev.ID, version)
	}
	if err := domain.ValidateSchemaName(ev.Tenant); err != nil {
		return fmt.Errorf("event %s: tenant %q: %w", ev.ID, ev.Tenant, err)
	}
	return nil
}

// Live reports, per op, whether it should reach the index: every delete,
// and the index operations of products that still exist, found in one
// query. It returns nil and no error when the tenant is gone (deleted or
// being deleted). Errors: a permanent one for a bad tenant name; anything
// else (database down) is retryable.
func Live(ctx context.Context, db Versions, tenant string, ops []search.Op) ([]bool, error) {
	ids := make([]string, 0, len(ops))
	seen := map[string]bool{}
	for _, op := range ops {
		if !seen[op.ID] {
			seen[op.ID] = true
			ids = append(ids, op.ID)
		}
	}
	versions, err := db.ProductVersions(ctx, tenant, ids)
	switch domain.ErrorCode(err) {
	case "":
	case domain.ENOTFOUND:
		return nil, nil
	case domain.EINVALID:
		return nil, runner.Permanent(err)
	default:
		return nil, err
	}
	live := make([]bool, len(ops))
	for j, op := range ops {
		_, exists := versions[op.ID]
		live[j] = op.Delete || exists
	}
	return live, nil
}

package indexer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/search"
)

// Sources a rebuild reads from.
const (
	FromDB     = "db"
	FromStream = "stream"
)

// Progress is told how far the build of the new index is: done of total
// products (from the database) or events (from the stream).
type Progress func(done, total int)

// DefaultDedicatedAt is the default ReindexerConfig.DedicatedAt.
const DefaultDedicatedAt = 10000

// ReindexerConfig configures a Reindexer. Zero values take the defaults.
type ReindexerConfig struct {
	// Batch is the number of products or events per bulk request; default 500.
	Batch int
	// DedicatedAt is the number of products from which a tenant is given
	// an index of its own; default DefaultDedicatedAt. Below half of it a
	// rebuild puts the tenant on a shared index; in between, it stays
	// where it is, so that a tenant near the threshold does not move on
	// every rebuild.
	DedicatedAt int
}

// withDefaults returns cfg with every zero field set to its default.
func (cfg ReindexerConfig) withDefaults() ReindexerConfig {
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.DedicatedAt <= 0 {
		cfg.DedicatedAt = DefaultDedicatedAt
	}
	return cfg
}

// ReindexerDeps are a Reindexer's collaborators. DB and Search are
// required; JS is needed only to rebuild from the stream; Log defaults to
// slog.Default().
type ReindexerDeps struct {
	DB     *postgres.DB
	Search *search.Client
	// SessionDB holds the rebuild lock, a session advisory lock: a pool
	// whose connections are sessions of their own (DATABASE_DIRECT_URL).
	// Nil means DB, which must then be in session mode.
	SessionDB *postgres.DB
	JS        jetstream.JetStream
	Log       *slog.Logger
}

// Reindexer rebuilds tenants' indices, then reconciles the index with the
// database, so that what changed during the build is not lost. Where a
// tenant's documents go depends on its size (see
// ReindexerConfig.DedicatedAt):
//   - a tenant big enough for an index of its own gets a new physical
//     index, filled, then swapped in under the alias in one atomic step
//     (searches keep answering from the old place until then); the old
//     index is deleted, or, if the tenant was on a shared index, its
//     documents there are (this is the promotion of a tenant that grew);
//   - a small tenant already on a shared index is rebuilt in place: every
//     document is rewritten through to the shared index at the version the
//     source says, the alias never moves, and searches see each document
//     old or rewritten, never missing;
//   - a small tenant on an index of its own moves back to its shared index
//     the same way as a promotion, the other way round.
//
// A rebuild holds a PostgreSQL advisory lock on the tenant for as long as
// it runs, so two rebuilds of one tenant (two commands, or a command and
// the indexer's automatic promotion) never run at once.
type Reindexer struct {
	cfg  ReindexerConfig
	deps ReindexerDeps
}

// NewReindexer returns a Reindexer; see ReindexerConfig for the defaults.
// Errors: ErrMissingDependency naming ReindexerDeps.DB or
// ReindexerDeps.Search.
func NewReindexer(cfg ReindexerConfig, deps ReindexerDeps) (*Reindexer, error) {
	switch {
	case deps.DB == nil:
		return nil, fmt.Errorf("%w: ReindexerDeps.DB", ErrMissingDependency)
	case deps.Search == nil:
		return nil, fmt.Errorf("%w: ReindexerDeps.Search", ErrMissingDependency)
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	return &Reindexer{cfg: cfg.withDefaults(), deps: deps}, nil
}

// Report says what a rebuild did.
type Report struct {
	Tenant, Source string
	// Index is the physical index now behind the alias: a new one of the
	// tenant's own when Own, else a shared one.
	Index   string
	Own     bool
	Read    int // products or events read
	Skipped int // events left out: product gone, or not understood
	Written search.Outcome
	// Reconciled counts the fixes made after the swap: products written
	// because they changed during the build, documents of products that
	// no longer exist deleted.
	Reconciled struct{ Indexed, Deleted int }
	Took       time.Duration
}

// String is the one-line summary the command prints.
func (r Report) String() string {
	kind := "shared index"
	if r.Own {
		kind = "index of its own"
	}
	return fmt.Sprintf("reindexed %s from %s into %s (%s): %d read, %d written, %d skipped; reconciled %d indexed, %d deleted; in %s",
		r.Tenant, r.Source, r.Index, kind, r.Read, r.Written.Applied, r.Skipped, r.Reconciled.Indexed, r.Reconciled.Deleted,
		r.Took.Round(time.Millisecond))
}

// Reindex rebuilds one tenant's index from source (FromDB or FromStream),
// into a place chosen by the tenant's number of products (see Reindexer).
// progress may be nil. On failure before the swap a new index is deleted
// (or the tenant's documents taken out of a shared index it was moving to)
// and the old place keeps serving; a failure after the swap leaves the new
// place in service, and running Reindex again finishes the job. Errors:
// EINVALID for an unknown source, ENOTFOUND when the tenant does not
// exist, ECONFLICT when another rebuild of the tenant is running,
// EUNAVAILABLE when a dependency is down.
func (r *Reindexer) Reindex(ctx context.Context, schema, source string, progress Progress) (Report, error) {
	return r.rebuild(ctx, schema, source, progress, false)
}

// rebuild is Reindex; with onlyPromote it does nothing unless the tenant
// is to get an index of its own.
func (r *Reindexer) rebuild(ctx context.Context, schema, source string, progress Progress, onlyPromote bool) (Report, error) {
	start := time.Now()
	rep := Report{Tenant: schema, Source: source}
	if progress == nil {
		progress = func(int, int) {}
	}
	var build func(context.Context, *Report, Progress) error
	switch source {
	case FromDB:
		build = r.fromDB
	case FromStream:
		if r.deps.JS == nil {
			return rep, errors.New("indexer: reindex from the stream needs JetStream")
		}
		build = r.fromStream
	default:
		return rep, &domain.Error{Code: domain.EINVALID, Message: "invalid source", Details: map[string]string{"from": "must be db or stream"}}
	}
	// Fail early, before creating anything, for a tenant that is not there.
	if _, err := r.deps.DB.ProductVersions(ctx, schema, nil); err != nil {
		return rep, fmt.Errorf("indexer: reindex %s: %w", schema, err)
	}
	unlock, err := r.lock(ctx, schema)
	if err != nil {
		return rep, fmt.Errorf("indexer: reindex %s: %w", schema, err)
	}
	defer unlock()
	cur, err := r.deps.Search.Indices(ctx, schema)
	if err != nil {
		return rep, fmt.Errorf("indexer: reindex %s: %w", schema, err)
	}
	if rep.Own, err = r.wantOwn(ctx, schema, cur); err != nil {
		return rep, fmt.Errorf("indexer: reindex %s: %w", schema, err)
	}
	if onlyPromote && (!rep.Own || (len(cur) == 1 && !r.deps.Search.IsShared(cur[0]))) {
		return rep, nil
	}
	var idx string
	if rep.Own {
		idx, err = r.deps.Search.NewPhysicalIndex(ctx, schema)
	} else {
		idx, err = r.deps.Search.SharedTarget(ctx, schema)
	}
	if err != nil {
		return rep, fmt.Errorf("indexer: reindex %s: %w", schema, err)
	}
	rep.Index = idx
	inPlace := slices.Contains(cur, idx)
	err = build(ctx, &rep, progress)
	if err == nil {
		err = r.deps.Search.SwapAlias(ctx, schema, idx)
	}
	// In place there is nothing to undo: every document is at the version
	// it had or a rewrite of it.
	if err != nil && (inPlace || !r.cleanUp(ctx, schema, idx, err)) {
		return rep, fmt.Errorf("indexer: reindex %s: %w", schema, err)
	}
	if err := r.reconcile(ctx, schema, &rep); err != nil {
		return rep, fmt.Errorf("indexer: reindex %s: reconcile after the swap (run it again): %w", schema, err)
	}
	rep.Took = time.Since(start)
	return rep, nil
}

// wantOwn decides whether a tenant whose alias is on cur gets an index of
// its own: yes from DedicatedAt products, no below half of that, and in
// between as it is now.
func (r *Reindexer) wantOwn(ctx context.Context, schema string, cur []string) (bool, error) {
	n, err := r.deps.DB.CountProducts(ctx, schema)
	if err != nil {
		return false, err
	}
	at := r.cfg.DedicatedAt
	switch {
	case n >= at:
		return true, nil
	case n < at/2:
		return false, nil
	}
	return len(cur) == 1 && !r.deps.Search.IsShared(cur[0]), nil
}

// lock takes the tenant's rebuild lock: a session advisory lock, held on a
// connection of its own until the returned function runs. Errors:
// ECONFLICT when another rebuild of the tenant holds it.
func (r *Reindexer) lock(ctx context.Context, schema string) (func(), error) {
	db := r.deps.SessionDB
	if db == nil {
		db = r.deps.DB
	}
	if db.PoolMode() == postgres.PoolTransaction {
		// Through a transaction pooler the lock would stay on a server
		// connection that other clients go on using.
		return nil, errors.New("indexer: the rebuild lock needs a session of its own; set ReindexerDeps.SessionDB to a pool on DATABASE_DIRECT_URL")
	}
	unlock, ok, err := db.TryRebuildLock(ctx, schema)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, domain.Errorf(domain.ECONFLICT, "another rebuild of tenant %q is running", schema)
	}
	return unlock, nil
}

// PromoteLarge gives each of schemas that has DedicatedAt documents or
// more in a shared index, and as many products, an index of its own: a
// rebuild from the database (see Reindexer), so the alias moves in one
// atomic step and searches keep answering throughout. A tenant that
// another rebuild holds, or that is gone, is skipped. It returns the
// tenants promoted, and the errors of the others joined.
func (r *Reindexer) PromoteLarge(ctx context.Context, schemas []string) ([]string, error) {
	counts, err := r.deps.Search.SharedCounts(ctx, schemas)
	if err != nil {
		return nil, fmt.Errorf("indexer: promote: %w", err)
	}
	var big []string
	for s, n := range counts {
		if n >= r.cfg.DedicatedAt {
			big = append(big, s)
		}
	}
	slices.Sort(big)
	var promoted []string
	var errs []error
	for _, s := range big {
		rep, err := r.rebuild(ctx, s, FromDB, nil, true)
		switch code := domain.ErrorCode(err); {
		case code == domain.ECONFLICT || code == domain.ENOTFOUND:
			r.deps.Log.DebugContext(ctx, "promotion skipped", slog.String("tenant", s), slog.Any("error", err))
		case err != nil:
			errs = append(errs, err)
		case rep.Index != "":
			r.deps.Log.InfoContext(ctx, "tenant promoted to an index of its own", slog.String("tenant", s),
				slog.String("index", rep.Index), slog.Int("documents", counts[s]), slog.Duration("took", rep.Took))
			promoted = append(promoted, s)
		}
	}
	return promoted, errors.Join(errs...)
}

// cleanUp handles a failed build or swap. It reports true when the new
// index is in service all the same (the swap went through and what failed
// came after it, such as deleting the old index), so the rebuild goes on.
// Otherwise it deletes the new index, but only when the alias is known not
// to point to it: better an index left over than the live one deleted.
func (r *Reindexer) cleanUp(ctx context.Context, schema, idx string, cause error) bool {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	live, err := r.deps.Search.Indices(dctx, schema)
	switch {
	case err != nil:
		r.deps.Log.WarnContext(ctx, "reindex: could not tell whether the new index is in service; left in place",
			slog.String("index", idx), slog.Any("error", err))
		return false
	case slices.Contains(live, idx):
		r.deps.Log.WarnContext(ctx, "reindex: swapped to the new index, but", slog.String("index", idx), slog.Any("error", cause))
		return true
	}
	if err := r.deps.Search.DeleteIndex(dctx, schema, idx); err != nil {
		r.deps.Log.WarnContext(ctx, "reindex: could not delete the unfinished index", slog.String("index", idx), slog.Any("error", err))
	}
	return false
}

// write bulks ops into the new index; any per-item error fails the build.
func (r *Reindexer) write(ctx context.Context, rep *Report, ops []search.Op) error {
	out, errs, err := r.deps.Search.ApplyToIndex(ctx, rep.Tenant, rep.Index, ops)
	if err != nil {
		return err
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	rep.Written.Applied += out.Applied
	rep.Written.Stale += out.Stale
	return nil
}

// fromDB fills the new index from one REPEATABLE READ snapshot.
func (r *Reindexer) fromDB(ctx context.Context, rep *Report, progress Progress) error {
	return r.deps.DB.ScanProducts(ctx, rep.Tenant, r.cfg.Batch, func(total int, page []domain.Product) error {
		ops := make([]search.Op, len(page))
		for i, p := range page {
			ops[i] = search.IndexOp(search.DocFromProduct(p))
		}
		if err := r.write(ctx, rep, ops); err != nil {
			return err
		}
		rep.Read += len(page)
		progress(rep.Read, total)
		return nil
	})
}

// fromStream replays the tenant's product events, oldest first, through an
// ordered consumer, as the indexer would: events of products that no longer
// exist are left out. It stops at the last event stored when it began.
func (r *Reindexer) fromStream(ctx context.Context, rep *Report, progress Progress) error {
	filter := events.Subject(rep.Tenant, "product.*")
	stream, err := r.deps.JS.Stream(ctx, events.StreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) { // no event was ever published
		progress(0, 0)
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", events.StreamName, err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return fmt.Errorf("stream %s: %w", events.StreamName, err)
	}
	total := 0
	for _, n := range info.State.Subjects {
		total += int(n)
	}
	last := info.State.LastSeq
	if total == 0 {
		progress(0, 0)
		return nil
	}
	cons, err := r.deps.JS.OrderedConsumer(ctx, events.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("ordered consumer on %s: %w", filter, err)
	}
	for waited := false; ; {
		// Stored events come at once without waiting; only when none is
		// left before the end is reached, wait once for stragglers.
		var batch jetstream.MessageBatch
		if waited {
			batch, err = cons.Fetch(r.cfg.Batch, jetstream.FetchMaxWait(2*time.Second))
		} else {
			batch, err = cons.FetchNoWait(r.cfg.Batch)
		}
		if err != nil {
			return fmt.Errorf("fetch %s: %w", filter, err)
		}
		var evs []events.Envelope
		done := false
		n := 0
		for m := range batch.Messages() {
			n++
			if md, err := m.Metadata(); err == nil && (md.Sequence.Stream >= last || md.NumPending == 0) {
				done = true
			}
			var ev events.Envelope
			if err := json.Unmarshal(m.Data(), &ev); err != nil || ev.Tenant != rep.Tenant {
				rep.Skipped++
				continue
			}
			evs = append(evs, ev)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := batch.Error(); err != nil && n == 0 && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("fetch %s: %w", filter, err)
		}
		if n == 0 {
			if waited {
				return nil // the rest is gone (limits) or never came
			}
			waited = true
			continue
		}
		waited = false
		if err := r.replay(ctx, rep, evs); err != nil {
			return err
		}
		rep.Read += n
		progress(min(rep.Read, total), total)
		if done {
			return nil
		}
	}
}

// replay writes a page of events into the new index, in order.
func (r *Reindexer) replay(ctx context.Context, rep *Report, evs []events.Envelope) error {
	var ops []search.Op
	for _, ev := range evs {
		op, ok, err := OpOf(ev)
		if err != nil {
			r.deps.Log.WarnContext(ctx, "reindex: event left out", slog.String("event_id", ev.ID), slog.Any("error", err))
		}
		if err != nil || !ok {
			rep.Skipped++
			continue
		}
		ops = append(ops, op)
	}
	if len(ops) == 0 {
		return nil
	}
	live, err := Live(ctx, r.deps.DB, rep.Tenant, ops)
	if err != nil {
		return err
	}
	if live == nil {
		return domain.Errorf(domain.ENOTFOUND, "tenant %q not found", rep.Tenant)
	}
	var keep []search.Op
	for j, op := range ops {
		if live[j] {
			keep = append(keep, op)
		} else {
			rep.Skipped++
		}
	}
	if len(keep) == 0 {
		return nil
	}
	return r.write(ctx, rep, keep)
}

// reconcile makes the index, now behind the alias, match the database:
// events of the build's time went to the old index and were lost with it.
// First every current product is written at its version (an index already
// as new or newer ignores it); then, after a refresh, every document is
// checked against the database and deleted when its product is gone. A
// product created after the listing is not in it, so it is never touched;
// a listed product missing from the database later was deleted for good
// (ids are never reused), so deleting it is right.
func (r *Reindexer) reconcile(ctx context.Context, schema string, rep *Report) error {
	err := r.deps.DB.ScanProducts(ctx, schema, r.cfg.Batch, func(_ int, page []domain.Product) error {
		ops := make([]search.Op, len(page))
		for i, p := range page {
			ops[i] = search.IndexOp(search.DocFromProduct(p))
		}
		out, errs, err := r.deps.Search.ApplyOutcome(ctx, schema, ops)
		if err != nil {
			return err
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		rep.Reconciled.Indexed += out.Applied
		return nil
	})
	if err != nil {
		return err
	}
	if err := r.deps.Search.Refresh(ctx, schema); err != nil {
		return err
	}
	return r.deps.Search.EachVersion(ctx, schema, func(ids []string, versions []int64) error {
		valid := make([]string, 0, len(ids))
		for _, id := range ids {
			if uuid.Validate(id) == nil {
				valid = append(valid, id)
			}
		}
		exists, err := r.deps.DB.ProductVersions(ctx, schema, valid)
		if err != nil {
			return err
		}
		var ops []search.Op
		for i, id := range ids {
			if _, ok := exists[id]; !ok {
				// One past the document's version: newer than what the
				// index holds, never newer than the product's own delete.
				ops = append(ops, search.DeleteOp(id, versions[i]+1))
			}
		}
		if len(ops) == 0 {
			return nil
		}
		out, errs, err := r.deps.Search.ApplyOutcome(ctx, schema, ops)
		if err != nil {
			return err
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		rep.Reconciled.Deleted += out.Applied
		return nil
	})
}

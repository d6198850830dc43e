package tenancy

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/schema"
)

// DefaultPauseLimit bounds a move's pause of the tenant's writes: past it
// the move gives up, rolls back, and the tenant goes on where it was.
const DefaultPauseLimit = 10 * time.Second

// Mover moves live tenants between PostgreSQL clusters with logical
// replication of their schema (DESIGN.md section 12). Its work happens on
// direct connections of its own to each cluster (Cluster.DirectURL).
type Mover struct {
	db         *postgres.DB
	log        *slog.Logger
	migrations fs.FS
	pauseLimit time.Duration
	// migrationWait bounds the wait for a migration of the tenant.
	migrationWait time.Duration
	onMoved       func(context.Context)

	// Tests' hooks: paused runs once the tenant's tables are locked for
	// the pause; afterFence, on a move from a cluster other than main, once
	// the source's fence has committed, before the placement's
	// transaction on main (tm) commits.
	paused     func(context.Context)
	afterFence func(ctx context.Context, tm pgx.Tx)
}

// MoverOption configures a Mover.
type MoverOption func(*Mover)

// WithPauseLimit sets how long the tenant's writes may be paused (the
// final catch-up and the switch); d <= 0 means DefaultPauseLimit.
func WithPauseLimit(d time.Duration) MoverOption {
	return func(m *Mover) {
		if d > 0 {
			m.pauseLimit = d
		}
	}
}

// WithMigrationWait sets how long a move waits for a migration of its
// tenant's schema (saas migrate) to end before it fails; d <= 0 means
// DefaultMoveWait.
func WithMigrationWait(d time.Duration) MoverOption {
	return func(m *Mover) {
		if d > 0 {
			m.migrationWait = d
		}
	}
}

// WithMoveMigrations sets the tenant migration set the schema is brought
// to on both clusters; nil means schema.Tenant.
func WithMoveMigrations(f fs.FS) MoverOption {
	return func(m *Mover) {
		if f != nil {
			m.migrations = f
		}
	}
}

// WithOnMoved sets a function called right after a move's switch commits:
// how every process learns to drop the tenant's cached placement (the
// binary announces it as a tenancy change, see Manager.OnChange).
func WithOnMoved(fn func(context.Context)) MoverOption {
	return func(m *Mover) { m.onMoved = fn }
}

// NewMover returns a Mover for the tenants of db, whose clusters must be
// attached (postgres.DB.AttachClusters).
func NewMover(db *postgres.DB, log *slog.Logger, opts ...MoverOption) *Mover {
	m := &Mover{db: db, log: log, migrations: schema.Tenant, pauseLimit: DefaultPauseLimit, migrationWait: DefaultMoveWait}
	for _, o := range opts {
		o(m)
	}
	return m
}

// MovePhase names a step of a move, as progress reports it.
type MovePhase string

// The phases of a move, in order.
const (
	MovePrepare MovePhase = "prepare"  // migrations on both clusters, publication, subscription
	MoveCopy    MovePhase = "copy"     // the initial copy of every table, writes going on
	MovePause   MovePhase = "pause"    // writes paused: final catch-up, sequences, switch
	MoveCleanUp MovePhase = "clean-up" // subscription, publication, old schema
	MoveDone    MovePhase = "done"
)

// MoveProgress is what a move reports as it goes.
type MoveProgress struct {
	Phase MovePhase
	// TablesCopied of Tables have finished their initial copy.
	TablesCopied, Tables int
	// Rows copied so far.
	Rows int64
}

// MoveResult is what a move did and how long it took.
type MoveResult struct {
	Schema, From, To string
	// Rows is the number of rows the initial copy brought.
	Rows int64
	// Copy is the time from the subscription's creation to the end of the
	// initial copy, the tenant serving reads and writes meanwhile.
	Copy time.Duration
	// Pause is how long the tenant's writes were held: from the moment the
	// tables were locked on the source until the switch committed.
	Pause time.Duration
	// Total is the whole move.
	Total time.Duration
	// CleanUp is what could not be cleaned up after the switch (the tenant
	// is on To all the same); a later move of the tenant removes it.
	CleanUp error
}

// Move moves the tenant's schema to the cluster named to while the tenant
// keeps serving: the schema is migrated to the same version on both
// clusters, the target subscribes to a publication of the source's schema
// (initial copy, then streaming), the tenant's writes are paused (reads go
// on) while the target catches up to a marker, the sequences are carried
// over and public.tenants switches, and the old copy, fenced off by a
// rename so that no late writer can reach it, is dropped. A failure before
// the switch undoes every step: the tenant serves from where it was, with
// nothing lost, and Move can run again. progress, when not nil, is called
// at each phase and as the copy advances, from the calling goroutine.
// Each move is recorded in public.tenant_moves as it goes (see
// LatestMove).
//
// Errors: EINVALID for a bad schema or an unknown cluster; ENOTFOUND when
// no such tenant exists; ECONFLICT when the tenant is already on to, is
// not active or suspended, another move of it is in progress, or a
// migration of its schema (saas migrate) did not end within the
// migration wait (WithMigrationWait);
// EUNAVAILABLE when its writes could not be paused within the pause
// limit; the context's error when it ends first; database errors.
func (m *Mover) Move(ctx context.Context, schemaName, to string, progress func(MoveProgress)) (MoveResult, error) {
	run, err := m.Start(ctx, schemaName, to)
	if err != nil {
		return MoveResult{}, err
	}
	return run.Run(ctx, progress)
}

// MoveRun is a move that holds its tenant and is recorded pending in
// public.tenant_moves: what Start returns and Run carries out.
type MoveRun struct {
	mv    *move
	start time.Time
}

// Record is the move's record as Start wrote it.
func (r *MoveRun) Record() MoveRecord { return r.mv.rec }

// Start checks the move makes sense, takes the tenant (no other move, no
// migration of it, runs meanwhile: see Move) and records the move pending
// in public.tenant_moves; Run must follow, which releases the tenant.
// Errors: those of Move before its copy begins.
func (m *Mover) Start(ctx context.Context, schemaName, to string) (*MoveRun, error) {
	start := time.Now()
	if err := domain.ValidateSchemaName(schemaName); err != nil {
		return nil, err
	}
	mv := &move{m: m, schema: schemaName, names: moveNamesOf(schemaName)}
	if err := mv.resolve(ctx, to); err != nil {
		return nil, fmt.Errorf("tenancy: move %s: %w", schemaName, err)
	}
	if err := mv.lock(ctx); err != nil {
		mv.close()
		return nil, fmt.Errorf("tenancy: move %s: %w", schemaName, err)
	}
	if err := mv.begin(ctx); err != nil {
		mv.close()
		return nil, fmt.Errorf("tenancy: move %s: %w", schemaName, err)
	}
	return &MoveRun{mv: mv, start: start}, nil
}

// Run carries the move out (see Move) and records each step and how it
// ended in public.tenant_moves, failed when ctx ended first (the move is
// then undone).
func (r *MoveRun) Run(ctx context.Context, progress func(MoveProgress)) (MoveResult, error) {
	mv := r.mv
	defer mv.close()
	mv.progress = func(p MoveProgress) {
		switch p.Phase {
		case MoveCopy:
			mv.note(ctx, MoveCopying, p)
		case MovePause:
			mv.note(ctx, MoveStreaming, p)
		case MoveCleanUp:
			mv.note(ctx, MoveCleaning, p)
		}
		if progress != nil {
			progress(p)
		}
	}
	res, err := mv.do(ctx, r.start)
	mv.finish(ctx, res, err)
	return res, err
}

// do is Run's work.
func (mv *move) do(ctx context.Context, start time.Time) (MoveResult, error) {
	m, schemaName, progress := mv.m, mv.schema, mv.progress
	res := MoveResult{Schema: schemaName, From: mv.from.Name, To: mv.to.Name}
	switched, err := mv.run(ctx, &res)
	if err != nil && !switched {
		// Undo with a context of its own: the caller's may be what failed.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if rerr := mv.rollback(rctx); rerr != nil {
			m.log.ErrorContext(ctx, "tenant move: undo failed; the tenant serves from its cluster, run the move again to clean up",
				slog.String("tenant", schemaName), slog.String("from", mv.from.Name), slog.String("to", mv.to.Name), slog.Any("error", rerr))
			err = errors.Join(err, fmt.Errorf("undo: %w", rerr))
		}
		return MoveResult{}, fmt.Errorf("tenancy: move %s to %s: %w", schemaName, mv.to.Name, err)
	}
	if errors.Is(err, errStuck) {
		m.log.ErrorContext(ctx, "tenant move: stuck between its fence and its switch", slog.String("tenant", schemaName), slog.Any("error", err))
		return MoveResult{}, fmt.Errorf("tenancy: move %s to %s: %w", schemaName, mv.to.Name, err)
	}
	if err != nil { // the switch happened; what failed is after it
		res.CleanUp = errors.Join(res.CleanUp, err)
	}
	progress(MoveProgress{Phase: MoveCleanUp, TablesCopied: len(mv.tables), Tables: len(mv.tables), Rows: res.Rows})
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	res.CleanUp = errors.Join(res.CleanUp, mv.cleanUp(cctx))
	if res.CleanUp != nil {
		m.log.WarnContext(ctx, "tenant move: clean-up left something behind; the next move of the tenant removes it",
			slog.String("tenant", schemaName), slog.Any("error", res.CleanUp))
	}
	res.Total = time.Since(start)
	progress(MoveProgress{Phase: MoveDone, TablesCopied: len(mv.tables), Tables: len(mv.tables), Rows: res.Rows})
	return res, nil
}

// moveNames are the replication objects of a tenant's move, derived from
// its schema so that a retry finds what a failed attempt left.
type moveNames struct {
	// pub names the publication on the source and the subscription on
	// the target.
	pub string
	// slotBase plus the source database's oid names the replication
	// slot: slots are per cluster, and several databases of one cluster
	// (tests) may move tenants of the same name at once.
	slotBase string
}

func moveNamesOf(schemaName string) moveNames {
	base := schemaName
	if len(base) > 32 {
		h := fnv.New32a()
		h.Write([]byte(schemaName))
		base = fmt.Sprintf("%s_%08x", schemaName[:23], h.Sum32())
	}
	return moveNames{pub: "saas_move_" + base, slotBase: "saas_move_" + base + "_"}
}

// move is one run of Mover.Move.
type move struct {
	m        *Mover
	schema   string
	names    moveNames
	progress func(MoveProgress)

	tenantID int64
	from, to postgres.Cluster

	lockConn *pgx.Conn // main: the move's advisory lock, and the placement switch
	src, tgt *pgx.Conn // the clusters' direct sessions
	slot     string    // the replication slot on the source
	tables   []string  // the schema's tables on the source
	version  int64     // its migration version on both
	moved    string    // the old copy's name after the switch's rename

	pauseDeadline time.Time // when the pause gives up

	rec   MoveRecord // as public.tenant_moves has it
	noted time.Time  // when rec was last written
}

func (mv *move) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range []*pgx.Conn{mv.src, mv.tgt, mv.lockConn} {
		if c != nil {
			_ = c.Close(ctx)
		}
	}
}

// resolve reads the tenant and checks the move makes sense.
func (mv *move) resolve(ctx context.Context, to string) error {
	var state, cluster string
	err := mv.m.db.Pool.QueryRow(ctx, `SELECT id, state, cluster FROM public.tenants WHERE schema_name = $1`, mv.schema).
		Scan(&mv.tenantID, &state, &cluster)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Errorf(domain.ENOTFOUND, "tenant %q not found", mv.schema)
	}
	if err != nil {
		return postgres.Translate(err)
	}
	var found bool
	for _, c := range mv.m.db.Clusters() {
		switch c.Name {
		case to:
			mv.to, found = c, true
		case cluster:
			mv.from = c
		}
	}
	switch {
	case !found:
		return &domain.Error{Code: domain.EINVALID, Message: fmt.Sprintf("no cluster named %q", to),
			Details: map[string]string{"to": "is not a cluster of TENANT_DATABASES"}}
	case to == cluster:
		return &domain.Error{Code: domain.ECONFLICT, Message: fmt.Sprintf("tenant %q is already on %s", mv.schema, to)}
	case mv.from.Name == "":
		return fmt.Errorf("%w: %s is on %q", postgres.ErrUnknownCluster, mv.schema, cluster)
	case !domain.TenantLive(state):
		return &domain.Error{Code: domain.ECONFLICT, Message: fmt.Sprintf("tenant %q is %s", mv.schema, state)}
	case mv.from.DirectURL == "" || mv.to.DirectURL == "":
		return errors.New("a cluster has no direct URL")
	}
	return nil
}

// lock takes the tenant's move lock, a session advisory lock on main held
// until the move's connections close, then the tenant's lock against
// migrations (see tenantWorkKey), waiting for a migration of the tenant to
// end, then reads the placement again: a move that finished meanwhile may
// have changed it.
func (mv *move) lock(ctx context.Context) error {
	main := mv.m.db.Clusters()[0]
	c, err := connect(ctx, main.DirectURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", main.Name, err)
	}
	mv.lockConn = c
	var ok bool
	if err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended('saas.move.' || $1, 0))`, mv.schema).Scan(&ok); err != nil {
		return fmt.Errorf("move lock: %w", postgres.Translate(err))
	}
	if !ok {
		return &domain.Error{Code: domain.ECONFLICT, Message: "a move of this tenant is in progress"}
	}
	// One move at a time, whatever the tenants and clusters: creating a
	// logical replication slot waits for every transaction of the source
	// cluster that holds a transaction id, and CREATE SUBSCRIPTION creates
	// the slot on the source from inside a transaction on the target, so
	// two moves in opposite directions between two clusters each wait for
	// the other's transaction, a deadlock neither server can see. The lock
	// is the session's until its connection closes with the move.
	if _, err := c.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended('saas.moves', 0))`); err != nil {
		return fmt.Errorf("moves lock: %w", postgres.Translate(err))
	}
	if err := lockAgainstMigrations(ctx, c, mv.schema, mv.m.migrationWait); err != nil {
		return err
	}
	return mv.resolve(ctx, mv.to.Name)
}

func connect(ctx context.Context, url string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse url: %w", err)
	}
	cfg.RuntimeParams["application_name"] = "saas tenant move"
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, postgres.Translate(err)
	}
	return c, nil
}

// run does the move up to the switch and reports whether the switch
// committed: from then on the tenant is on the target, and an error is
// for the clean-up to report, not to undo.
func (mv *move) run(ctx context.Context, res *MoveResult) (switched bool, err error) {
	mv.progress(MoveProgress{Phase: MovePrepare})
	if mv.src, err = connect(ctx, mv.from.DirectURL); err != nil {
		return false, fmt.Errorf("connect to %s: %w", mv.from.Name, err)
	}
	if mv.tgt, err = connect(ctx, mv.to.DirectURL); err != nil {
		return false, fmt.Errorf("connect to %s: %w", mv.to.Name, err)
	}
	var oid uint32
	if err := mv.src.QueryRow(ctx, `SELECT oid FROM pg_database WHERE datname = current_database()`).Scan(&oid); err != nil {
		return false, fmt.Errorf("source database: %w", err)
	}
	mv.slot = fmt.Sprintf("%s%d", mv.names.slotBase, oid)
	for _, step := range []struct {
		name string
		do   func(context.Context) error
	}{{"clear leftovers", mv.clearLeftovers}, {"migrate", mv.migrate}, {"publish and subscribe", mv.replicate}} {
		began := time.Now()
		if err := step.do(ctx); err != nil {
			return false, fmt.Errorf("%s: %w", step.name, err)
		}
		mv.m.log.DebugContext(ctx, "tenant move: "+step.name, slog.String("tenant", mv.schema), slog.Duration("took", time.Since(began)))
	}
	copyStart := time.Now()
	rows, err := mv.waitCopy(ctx)
	if err != nil {
		return false, err
	}
	res.Copy, res.Rows = time.Since(copyStart), rows
	mv.progress(MoveProgress{Phase: MovePause, TablesCopied: len(mv.tables), Tables: len(mv.tables), Rows: rows})
	return mv.pauseAndSwitch(ctx, res)
}

// clearLeftovers removes what a failed or half-cleaned earlier move of the
// tenant left on either cluster. The placement says the source (checked
// under the move lock), so a schema of the tenant's name on the target is
// not live.
func (mv *move) clearLeftovers(ctx context.Context) error {
	var errs []error
	for _, c := range []*pgx.Conn{mv.tgt, mv.src} {
		errs = append(errs, dropSubscription(ctx, c, mv.names.pub))
		if _, err := c.Exec(ctx, `DROP PUBLICATION IF EXISTS `+ident(mv.names.pub)); err != nil {
			errs = append(errs, fmt.Errorf("drop publication: %w", err))
		}
		errs = append(errs, dropSlots(ctx, c, likePrefix(mv.names.slotBase)), dropOldCopies(ctx, c, mv.schema))
	}
	if _, err := mv.tgt.Exec(ctx, `DROP SCHEMA IF EXISTS `+ident(mv.schema)+` CASCADE`); err != nil {
		errs = append(errs, fmt.Errorf("drop the target's schema: %w", err))
	}
	return errors.Join(errs...)
}

// migrate brings the source's schema to the latest tenant migration and
// makes an empty one at the same version on the target.
func (mv *move) migrate(ctx context.Context) error {
	srcRunner, err := schema.NewRunner(mv.from.DirectURL, mv.m.migrations)
	if err != nil {
		return err
	}
	if mv.version, err = srcRunner.MigrateTenant(ctx, mv.schema); err != nil {
		return fmt.Errorf("migrate on %s: %w", mv.from.Name, err)
	}
	if _, err := mv.tgt.Exec(ctx, `CREATE SCHEMA `+ident(mv.schema)); err != nil {
		return fmt.Errorf("create schema on %s: %w", mv.to.Name, err)
	}
	tgtRunner, err := schema.NewRunner(mv.to.DirectURL, mv.m.migrations)
	if err != nil {
		return err
	}
	v, err := tgtRunner.MigrateTenant(ctx, mv.schema)
	if err != nil {
		return fmt.Errorf("migrate on %s: %w", mv.to.Name, err)
	}
	if v != mv.version {
		return fmt.Errorf("schema version %d on %s, %d on %s: migrations differ", mv.version, mv.from.Name, v, mv.to.Name)
	}
	// The copy brings every row, goose's version table's included.
	tables, err := tablesOf(ctx, mv.tgt, mv.schema)
	if err != nil {
		return err
	}
	if _, err := mv.tgt.Exec(ctx, `TRUNCATE `+qualified(mv.schema, tables)+` RESTART IDENTITY`); err != nil {
		return fmt.Errorf("empty the target's tables: %w", err)
	}
	return nil
}

// replicate publishes the source's schema and subscribes the target to it.
func (mv *move) replicate(ctx context.Context) error {
	rows, err := mv.src.Query(ctx, `SELECT c.relname, c.relreplident,
			EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY c.relname`, mv.schema)
	if err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	type table struct {
		name     string
		identity string
		pk       bool
	}
	ts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (table, error) {
		var t table
		return t, r.Scan(&t.name, &t.identity, &t.pk)
	})
	if err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	mv.tables = nil
	for _, t := range ts {
		mv.tables = append(mv.tables, t.name)
		// Updates and deletes of a table without a replica identity
		// would fail on the source once it is published.
		if (t.identity == "d" && !t.pk) || t.identity == "n" {
			if _, err := mv.src.Exec(ctx, `ALTER TABLE `+pgx.Identifier{mv.schema, t.name}.Sanitize()+` REPLICA IDENTITY FULL`); err != nil {
				return fmt.Errorf("replica identity of %s: %w", t.name, err)
			}
		}
	}
	if _, err := mv.src.Exec(ctx, `CREATE PUBLICATION `+ident(mv.names.pub)+` FOR TABLES IN SCHEMA `+ident(mv.schema)); err != nil {
		return fmt.Errorf("create publication on %s: %w", mv.from.Name, err)
	}
	conninfo := libpqConnInfo(mv.from.DirectURL)
	// Not in a transaction block: it creates the slot on the source. The
	// slot waits for the source's running transactions to end.
	if _, err := mv.tgt.Exec(ctx, `CREATE SUBSCRIPTION `+ident(mv.names.pub)+` CONNECTION `+literal(conninfo)+
		` PUBLICATION `+ident(mv.names.pub)+` WITH (copy_data = true, slot_name = `+literal(mv.slot)+`)`); err != nil {
		return fmt.Errorf("create subscription on %s: %w", mv.to.Name, err)
	}
	return nil
}

// copyPoll is how often the copy's state is read.
const copyPoll = 200 * time.Millisecond

// waitCopy waits until every table has finished its initial copy
// (pg_subscription_rel all 'r', ready: streaming) and returns the rows
// copied. A replication error on the target fails it: the target server's
// log says what it was.
func (mv *move) waitCopy(ctx context.Context) (int64, error) {
	mv.progress(MoveProgress{Phase: MoveCopy, Tables: len(mv.tables)})
	counted := map[string]int64{}
	last := MoveProgress{Phase: MoveCopy, Tables: len(mv.tables)}
	for {
		rows, err := mv.tgt.Query(ctx, `SELECT c.relname, sr.srsubstate
			FROM pg_subscription s
			JOIN pg_subscription_rel sr ON sr.srsubid = s.oid
			JOIN pg_class c ON c.oid = sr.srrelid
			WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`, mv.names.pub)
		if err != nil {
			return 0, fmt.Errorf("copy state: %w", err)
		}
		type state struct{ table, state string }
		states, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (state, error) {
			var s state
			return s, r.Scan(&s.table, &s.state)
		})
		if err != nil {
			return 0, fmt.Errorf("copy state: %w", err)
		}
		ready := 0
		for _, s := range states {
			if s.state != "r" && s.state != "s" {
				continue
			}
			if s.state == "r" {
				ready++
			}
			if _, ok := counted[s.table]; !ok {
				var n int64
				if err := mv.tgt.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{mv.schema, s.table}.Sanitize()).Scan(&n); err != nil {
					return 0, fmt.Errorf("count %s: %w", s.table, err)
				}
				counted[s.table] = n
			}
		}
		var inFlight, failures int64
		err = mv.tgt.QueryRow(ctx, `SELECT
			coalesce((SELECT sum(p.tuples_processed) FROM pg_stat_progress_copy p
				JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace
				WHERE n.nspname = $2 AND p.datname = current_database() AND NOT c.relname = ANY($3)), 0)::bigint,
			coalesce((SELECT apply_error_count + sync_error_count FROM pg_stat_subscription_stats WHERE subid =
				(SELECT oid FROM pg_subscription WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()))), 0)`,
			mv.names.pub, mv.schema, append([]string{}, slices.Collect(maps.Keys(counted))...)).Scan(&inFlight, &failures)
		if err != nil {
			return 0, fmt.Errorf("copy progress: %w", err)
		}
		if failures > 0 {
			return 0, fmt.Errorf("replication to %s failed (its server log says why)", mv.to.Name)
		}
		var copied int64
		for _, n := range counted {
			copied += n
		}
		p := MoveProgress{Phase: MoveCopy, TablesCopied: ready, Tables: len(mv.tables), Rows: copied + inFlight}
		if p != last {
			mv.progress(p)
			last = p
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if len(states) == len(mv.tables) && ready == len(mv.tables) {
			return copied, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(copyPoll):
		}
	}
}

package tenancy

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/audit"
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

// WithMoveMigrations sets the tenant migration set the schema is brought
// to on both clusters; nil means schema.Tenant.
func WithMoveMigrations(f fs.FS) MoverOption {
	return func(m *Mover) {
		if f != nil {
			m.migrations = f
		}
	}
}

// NewMover returns a Mover for the tenants of db, whose clusters must be
// attached (postgres.DB.AttachClusters).
func NewMover(db *postgres.DB, log *slog.Logger, opts ...MoverOption) *Mover {
	m := &Mover{db: db, log: log, migrations: schema.Tenant, pauseLimit: DefaultPauseLimit}
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
//
// Errors: EINVALID for a bad schema or an unknown cluster; ENOTFOUND when
// no such tenant exists; ECONFLICT when the tenant is already on to, is
// not active or suspended, or another move of it is in progress;
// EUNAVAILABLE when its writes could not be paused within the pause
// limit; the context's error when it ends first; database errors.
func (m *Mover) Move(ctx context.Context, schemaName, to string, progress func(MoveProgress)) (MoveResult, error) {
	start := time.Now()
	if err := domain.ValidateSchemaName(schemaName); err != nil {
		return MoveResult{}, err
	}
	if progress == nil {
		progress = func(MoveProgress) {}
	}
	mv := &move{m: m, schema: schemaName, progress: progress, names: moveNamesOf(schemaName)}
	if err := mv.resolve(ctx, to); err != nil {
		return MoveResult{}, fmt.Errorf("tenancy: move %s: %w", schemaName, err)
	}
	defer mv.close()
	if err := mv.lock(ctx); err != nil {
		return MoveResult{}, fmt.Errorf("tenancy: move %s: %w", schemaName, err)
	}
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
// until the move's connections close, then reads the placement again: a
// move that finished meanwhile may have changed it.
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

// lockTimeout bounds each attempt to lock the schema's tables: a writer
// in the middle of a transaction holds one table and may wait for another
// the move has locked, and the move, not the writer, must be the one to
// give way.
const lockTimeout = 200 * time.Millisecond

// markerPoll is how often the target is read for the marker during the
// pause.
const markerPoll = 5 * time.Millisecond

// pauseAndSwitch pauses the tenant's writes on the source, waits until the
// target has all of them, carries the sequences over and switches the
// placement.
func (mv *move) pauseAndSwitch(ctx context.Context, res *MoveResult) (switched bool, err error) {
	t1c, err := connect(ctx, mv.from.DirectURL)
	if err != nil {
		return false, fmt.Errorf("connect to %s: %w", mv.from.Name, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = t1c.Close(cctx) // rolls back T1 if it is still open
	}()
	deadline := time.Now().Add(mv.m.pauseLimit)
	mv.pauseDeadline = deadline
	pctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	t1, pauseStart, err := mv.lockTables(pctx, t1c)
	if err != nil {
		return false, err
	}
	// The marker is written outside the lock (its table is not locked) and
	// reaches the target after every write committed before the lock.
	token := uuid.NewString()
	if _, err := mv.src.Exec(pctx, `INSERT INTO `+pgx.Identifier{mv.schema, "move_marker"}.Sanitize()+` (id, token) VALUES (1, $1)
		ON CONFLICT (id) DO UPDATE SET token = excluded.token`, token); err != nil {
		return false, mv.pauseError(fmt.Errorf("write the marker: %w", err))
	}
	for {
		var got string
		err := mv.tgt.QueryRow(pctx, `SELECT token::text FROM `+pgx.Identifier{mv.schema, "move_marker"}.Sanitize()+` WHERE id = 1`).Scan(&got)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return false, mv.pauseError(fmt.Errorf("read the marker on %s: %w", mv.to.Name, err))
		}
		if got == token {
			break
		}
		select {
		case <-pctx.Done():
			return false, mv.pauseError(pctx.Err())
		case <-time.After(markerPoll):
		}
	}
	if err := mv.carrySequences(pctx, t1); err != nil {
		return false, mv.pauseError(err)
	}

	// The switch. The rename fences the old copy: a writer blocked on the
	// locks, or a process that still places the tenant here, finds no
	// schema of that name and is told to retry (postgres.DB.InTenant),
	// rather than writing where nobody will read.
	mv.moved = fmt.Sprintf("%s-moved-%s", mv.schema[:min(len(mv.schema), 40)], uuid.NewString()[:8])
	entry := audit.New(ctx, "tenant.move", tenantTarget(mv.schema), audit.Changes{"cluster": {mv.from.Name, mv.to.Name}})
	var tm pgx.Tx // the placement's transaction on main, when the source is another cluster
	if mv.from.Name == postgres.MainCluster {
		// One transaction on main: placement, entry and fence commit at once.
		if err := mv.place(pctx, t1, entry); err != nil {
			return false, mv.pauseError(err)
		}
	} else {
		if tm, err = mv.lockConn.Begin(pctx); err != nil {
			return false, mv.pauseError(fmt.Errorf("begin the placement: %w", err))
		}
		defer func() { _ = tm.Rollback(context.WithoutCancel(ctx)) }()
		if err := mv.place(pctx, tm, entry); err != nil {
			return false, mv.pauseError(err)
		}
	}
	if _, err := t1.Exec(pctx, `ALTER SCHEMA `+ident(mv.schema)+` RENAME TO `+ident(mv.moved)); err != nil {
		return false, mv.pauseError(fmt.Errorf("fence the old copy: %w", err))
	}
	if time.Now().After(deadline) {
		return false, mv.pauseError(context.DeadlineExceeded)
	}
	// The commits get a context without the pause's deadline: a commit
	// cut short would leave its outcome unknown.
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer ccancel()
	if err := t1.Commit(cctx); err != nil {
		if !mv.fenced(cctx) {
			return false, fmt.Errorf("commit the switch on %s: %w", mv.from.Name, err)
		}
	}
	if tm != nil {
		// The fence is committed: writers that woke up meanwhile wait for
		// this commit (postgres.DB.InTenant reads the placement with a
		// share lock) and are told to retry.
		if err := tm.Commit(cctx); err != nil {
			if placed, err := mv.placeAfterFence(cctx, entry, err); !placed || err != nil {
				return placed, err
			}
		}
	}
	res.Pause = time.Since(pauseStart)
	mv.m.db.ForgetPlacement(mv.schema)
	mv.m.log.InfoContext(ctx, "tenant moved", slog.String("tenant", mv.schema), slog.String("from", mv.from.Name),
		slog.String("to", mv.to.Name), slog.Duration("pause", res.Pause), slog.Duration("copy", res.Copy))
	return true, mv.wakeRelay(cctx)
}

// errStuck marks a move that could neither finish its switch nor undo it:
// nothing is cleaned up, and the error says what to do.
var errStuck = errors.New("the move could neither switch nor undo its fence")

// placeAfterFence is the way out when the placement's commit on main
// failed (commitErr) after the source's fence committed. The placement is
// read again: switched (the commit went through after all), the move is
// done; else it is tried once more; and should that fail too, the fence is
// undone, so that the tenant serves from the source again, and the move
// fails to be rolled back. Neither the target nor the fenced source took a
// write meanwhile.
func (mv *move) placeAfterFence(ctx context.Context, entry audit.Entry, commitErr error) (bool, error) {
	var cluster string
	if err := mv.m.db.Pool.QueryRow(ctx, `SELECT cluster FROM public.tenants WHERE id = $1`, mv.tenantID).Scan(&cluster); err != nil {
		return true, fmt.Errorf("%w: the old copy on %s is fenced as %s and the placement on main cannot be read (%w); "+
			"when public.tenants places the tenant on %s, rename %s back to %s there: %w", errStuck, mv.from.Name, mv.moved, err,
			mv.from.Name, mv.moved, mv.schema, commitErr)
	}
	if cluster == mv.to.Name {
		return true, nil
	}
	err := mv.m.db.InTx(ctx, func(tx pgx.Tx) error { return mv.place(ctx, tx, entry) })
	if err == nil {
		return true, nil
	}
	c, cerr := connect(ctx, mv.from.DirectURL)
	if cerr == nil {
		defer func() { _ = c.Close(ctx) }()
		_, cerr = c.Exec(ctx, `ALTER SCHEMA `+ident(mv.moved)+` RENAME TO `+ident(mv.schema))
	}
	if cerr != nil {
		return true, fmt.Errorf("%w: the old copy on %s is fenced as %s, public.tenants could not be switched (%w) "+
			"and the fence not undone (%w): rename %s back to %s on %s", errStuck, mv.from.Name, mv.moved, err, cerr,
			mv.moved, mv.schema, mv.from.Name)
	}
	return false, fmt.Errorf("switch the placement: %w", errors.Join(commitErr, err))
}

// lockTables begins T1 on c and locks every table of the schema but the
// marker IN EXCLUSIVE MODE: reads go on, writes wait (and give up after
// postgres.TenantLockTimeout by themselves). An attempt that cannot have
// every lock within lockTimeout lets go and tries again, until ctx ends.
func (mv *move) lockTables(ctx context.Context, c *pgx.Conn) (pgx.Tx, time.Time, error) {
	var names []string
	for _, t := range lockOrder(mv.tables) {
		if t != "move_marker" {
			names = append(names, t)
		}
	}
	stmt := `LOCK TABLE ` + qualified(mv.schema, names) + ` IN EXCLUSIVE MODE`
	for attempt := 1; ; attempt++ {
		tx, err := c.Begin(ctx)
		if err != nil {
			return nil, time.Time{}, mv.pauseError(fmt.Errorf("begin the pause: %w", err))
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = %d`, lockTimeout.Milliseconds())); err != nil {
			_ = tx.Rollback(ctx)
			return nil, time.Time{}, mv.pauseError(err)
		}
		start := time.Now()
		_, err = tx.Exec(ctx, stmt)
		if err == nil {
			return tx, start, nil
		}
		_ = tx.Rollback(ctx)
		if !postgres.HasCode(err, "55P03") && !postgres.HasCode(err, "40P01") { // lock_not_available, deadlock_detected
			return nil, time.Time{}, mv.pauseError(fmt.Errorf("lock the tables: %w", err))
		}
		select {
		case <-ctx.Done():
			return nil, time.Time{}, mv.pauseError(ctx.Err())
		case <-time.After(time.Duration(attempt%5+1) * 20 * time.Millisecond):
		}
	}
}

// lockOrder puts the tables writers take first, first, so that an attempt
// to lock meets a writer half way as seldom as possible.
func lockOrder(tables []string) []string {
	first := []string{"products", "outbox", "audit_log", "users", "notifications"}
	var out, rest []string
	for _, f := range first {
		for _, t := range tables {
			if t == f {
				out = append(out, t)
			}
		}
	}
outer:
	for _, t := range tables {
		for _, f := range first {
			if t == f {
				continue outer
			}
		}
		rest = append(rest, t)
	}
	return append(out, rest...)
}

// pauseError says why the pause failed: past its bound (the tenant too
// busy to pause), EUNAVAILABLE; else err as it is.
func (mv *move) pauseError(err error) error {
	if !mv.pauseDeadline.IsZero() && !time.Now().Before(mv.pauseDeadline) {
		return fmt.Errorf("%w: %w", &domain.Error{Code: domain.EUNAVAILABLE, RetryAfter: time.Minute,
			Message: "the tenant's writes could not be paused long enough to switch; nothing changed, try again"}, err)
	}
	return err
}

// carrySequences sets every sequence of the target's schema to the
// source's value, read under the locks: ids continue past every id given
// out on the source.
func (mv *move) carrySequences(ctx context.Context, t1 pgx.Tx) error {
	rows, err := t1.Query(ctx, `SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = $1 AND last_value IS NOT NULL`, mv.schema)
	if err != nil {
		return fmt.Errorf("read sequences: %w", err)
	}
	type seq struct {
		name string
		last int64
	}
	seqs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (seq, error) {
		var s seq
		return s, r.Scan(&s.name, &s.last)
	})
	if err != nil {
		return fmt.Errorf("read sequences: %w", err)
	}
	for _, s := range seqs {
		if _, err := mv.tgt.Exec(ctx, `SELECT setval($1::regclass, $2, true)`, pgx.Identifier{mv.schema, s.name}.Sanitize(), s.last); err != nil {
			return fmt.Errorf("set sequence %s on %s: %w", s.name, mv.to.Name, err)
		}
	}
	return nil
}

// place switches public.tenants to the target in tx, a transaction on
// main, with the audit entry.
func (mv *move) place(ctx context.Context, tx pgx.Tx, entry audit.Entry) error {
	if _, err := tx.Exec(ctx, `UPDATE public.tenants SET cluster = $2, schema_version = $3, updated_at = now() WHERE id = $1`,
		mv.tenantID, mv.to.Name, mv.version); err != nil {
		return fmt.Errorf("switch the placement: %w", err)
	}
	if err := postgres.WritePlatformAudit(ctx, tx, entry); err != nil {
		return fmt.Errorf("switch the placement: %w", err)
	}
	return nil
}

// fenced reports whether the source's schema has been renamed away: what
// tells whether a commit whose answer was lost went through.
func (mv *move) fenced(ctx context.Context) bool {
	c, err := connect(ctx, mv.from.DirectURL)
	if err != nil {
		return false
	}
	defer func() { _ = c.Close(ctx) }()
	var gone bool
	err = c.QueryRow(ctx, `SELECT NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)
		AND EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $2)`, mv.schema, mv.moved).Scan(&gone)
	return err == nil && gone
}

// wakeRelay marks the tenant pending on the target cluster and notifies,
// as the outbox trigger does: rows that came by replication fired no
// trigger, and the relays there must drain them. Rows a relay on the
// source published without deleting before the switch are published again;
// the stream's dedup (the event id) drops them.
func (mv *move) wakeRelay(ctx context.Context) error {
	err := mv.to.DB.InTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO public.outbox_pending (schema_name) VALUES ($1)`, mv.schema); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, postgres.OutboxChannel, mv.schema)
		return err
	})
	if err != nil {
		return fmt.Errorf("mark the outbox pending on %s: %w", mv.to.Name, err)
	}
	return nil
}

// cleanUp removes the subscription (and with it the slot), the
// publication and the old copy, after the switch.
func (mv *move) cleanUp(ctx context.Context) error {
	src, err := connect(ctx, mv.from.DirectURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", mv.from.Name, err)
	}
	defer func() { _ = src.Close(ctx) }()
	tgt, err := connect(ctx, mv.to.DirectURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", mv.to.Name, err)
	}
	defer func() { _ = tgt.Close(ctx) }()
	errs := []error{dropSubscription(ctx, tgt, mv.names.pub)}
	if _, err := src.Exec(ctx, `DROP PUBLICATION IF EXISTS `+ident(mv.names.pub)); err != nil {
		errs = append(errs, fmt.Errorf("drop publication on %s: %w", mv.from.Name, err))
	}
	errs = append(errs, dropSlots(ctx, src, likePrefix(mv.names.slotBase)), dropOldCopies(ctx, src, mv.schema))
	// The source's relays have nothing left of the tenant to drain.
	if _, err := src.Exec(ctx, `DELETE FROM public.outbox_pending WHERE schema_name = $1`, mv.schema); err != nil {
		errs = append(errs, fmt.Errorf("forget the pending outbox on %s: %w", mv.from.Name, err))
	}
	return errors.Join(errs...)
}

// rollback undoes a move that failed before its switch, on connections of
// its own (the move's may be what failed): the subscription and its slots,
// the publication, and the target's schema, once public.tenants is seen
// to still place the tenant on the source.
func (mv *move) rollback(ctx context.Context) error {
	src, err := connect(ctx, mv.from.DirectURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", mv.from.Name, err)
	}
	defer func() { _ = src.Close(ctx) }()
	tgt, err := connect(ctx, mv.to.DirectURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", mv.to.Name, err)
	}
	defer func() { _ = tgt.Close(ctx) }()
	errs := []error{dropSubscription(ctx, tgt, mv.names.pub)}
	if _, err := src.Exec(ctx, `DROP PUBLICATION IF EXISTS `+ident(mv.names.pub)); err != nil {
		errs = append(errs, fmt.Errorf("drop publication on %s: %w", mv.from.Name, err))
	}
	errs = append(errs, dropSlots(ctx, src, likePrefix(mv.names.slotBase)))
	var cluster string
	if err := mv.m.db.Pool.QueryRow(ctx, `SELECT cluster FROM public.tenants WHERE id = $1`, mv.tenantID).Scan(&cluster); err != nil {
		errs = append(errs, fmt.Errorf("read the placement: %w", err))
	} else if cluster == mv.from.Name {
		if _, err := tgt.Exec(ctx, `DROP SCHEMA IF EXISTS `+ident(mv.schema)+` CASCADE`); err != nil {
			errs = append(errs, fmt.Errorf("drop the target's schema: %w", err))
		}
	}
	return errors.Join(errs...)
}

// dropSubscription drops the named subscription of c's database, if any,
// and its slots on the publisher. When the publisher cannot be reached the
// subscription is dropped without them (dropSlots removes them later).
func dropSubscription(ctx context.Context, c *pgx.Conn, name string) error {
	var n int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_subscription
		WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`, name).Scan(&n); err != nil {
		return fmt.Errorf("find subscription: %w", err)
	}
	if n == 0 {
		return nil
	}
	if _, err := c.Exec(ctx, `DROP SUBSCRIPTION `+ident(name)); err == nil {
		return nil
	}
	for _, stmt := range []string{`ALTER SUBSCRIPTION ` + ident(name) + ` DISABLE`,
		`ALTER SUBSCRIPTION ` + ident(name) + ` SET (slot_name = NONE)`, `DROP SUBSCRIPTION ` + ident(name)} {
		if _, err := c.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("drop subscription: %w", err)
		}
	}
	return nil
}

// dropSlots drops c's replication slots of c's database whose names match
// pattern (LIKE), waiting for their senders to go (a dropped subscription's
// stop within moments).
func dropSlots(ctx context.Context, c *pgx.Conn, pattern string) error {
	for attempt := 0; ; attempt++ {
		rows, err := c.Query(ctx, `SELECT slot_name::text, active FROM pg_replication_slots
			WHERE slot_name LIKE $1 AND database = current_database()`, pattern)
		if err != nil {
			return fmt.Errorf("find slots: %w", err)
		}
		type slot struct {
			name   string
			active bool
		}
		slots, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (slot, error) {
			var s slot
			return s, r.Scan(&s.name, &s.active)
		})
		if err != nil {
			return fmt.Errorf("find slots: %w", err)
		}
		busy := false
		for _, s := range slots {
			if s.active {
				busy = true
				continue
			}
			if _, err := c.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, s.name); err != nil && !postgres.HasCode(err, "55006") { // object_in_use
				return fmt.Errorf("drop slot %s: %w", s.name, err)
			}
		}
		if !busy {
			return nil
		}
		if attempt == 100 {
			return fmt.Errorf("slots matching %s stay in use", pattern)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// dropOldCopies drops the fenced-off copies of the tenant's schema a move
// away from c's cluster left. Their names ("<schema>-moved-<random>") can
// be no tenant's.
func dropOldCopies(ctx context.Context, c *pgx.Conn, schemaName string) error {
	rows, err := c.Query(ctx, `SELECT nspname::text FROM pg_namespace WHERE nspname LIKE $1`,
		likePrefix(schemaName[:min(len(schemaName), 40)]+"-moved-"))
	if err != nil {
		return fmt.Errorf("find old copies: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("find old copies: %w", err)
	}
	for _, n := range names {
		// A reader of the old copy may still hold a table; it is not
		// waited for long.
		if _, err := c.Exec(ctx, `SET lock_timeout = '10s'`); err != nil {
			return err
		}
		_, err := c.Exec(ctx, `DROP SCHEMA `+ident(n)+` CASCADE`)
		_, _ = c.Exec(ctx, `RESET lock_timeout`)
		if err != nil {
			return fmt.Errorf("drop old copy %s: %w", n, err)
		}
	}
	return nil
}

// tablesOf lists the tables of a schema.
func tablesOf(ctx context.Context, c *pgx.Conn, schemaName string) ([]string, error) {
	rows, err := c.Query(ctx, `SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY tablename`, schemaName)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	ts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	return ts, nil
}

// likePrefix is a LIKE pattern of the names that start with prefix: its
// underscores match themselves alone.
func likePrefix(prefix string) string {
	return strings.ReplaceAll(prefix, "_", `\_`) + "%"
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// qualified spells tables of a schema as a list for LOCK or TRUNCATE.
func qualified(schemaName string, tables []string) string {
	s := ""
	for i, t := range tables {
		if i > 0 {
			s += ", "
		}
		s += pgx.Identifier{schemaName, t}.Sanitize()
	}
	return s
}

// literal quotes s as an SQL string literal, for the statements that take
// no parameters (CREATE SUBSCRIPTION).
func literal(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}

// libpqParams are the URL parameters libpq knows that a subscription's
// connection may need; the others (pgx's and the pool's) are dropped.
var libpqParams = map[string]bool{"sslmode": true, "sslrootcert": true, "sslcert": true, "sslkey": true,
	"sslpassword": true, "connect_timeout": true, "options": true, "target_session_attrs": true,
	"passfile": true, "service": true, "keepalives": true, "keepalives_idle": true}

// libpqConnInfo spells a cluster's direct URL for the server at the other
// end of a subscription: libpq reads it, not pgx.
func libpqConnInfo(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return raw // a keyword=value string: libpq's own spelling already
	}
	q := u.Query()
	for k := range q {
		if !libpqParams[k] {
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

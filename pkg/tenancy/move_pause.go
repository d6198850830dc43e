package tenancy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
)

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

	progress := MoveProgress{TablesCopied: len(mv.tables), Tables: len(mv.tables), Rows: res.Rows}
	mv.note(ctx, MovePausing, progress)
	t1, pauseStart, err := mv.lockTables(pctx, t1c)
	if err != nil {
		return false, err
	}
	if mv.m.paused != nil {
		mv.m.paused(pctx)
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

	mv.note(ctx, MoveSwitching, progress)
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
		if mv.m.afterFence != nil {
			mv.m.afterFence(cctx, tm)
		}
		if err := tm.Commit(cctx); err != nil {
			if placed, err := mv.placeAfterFence(cctx, entry, err); !placed || err != nil {
				return placed, err
			}
		}
	}
	res.Pause = time.Since(pauseStart)
	mv.m.db.ForgetPlacement(mv.schema)
	if mv.m.onMoved != nil {
		// Other processes drop their cached placement now rather than at
		// their next request's 503.
		mv.m.onMoved(cctx)
	}
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

package tenancy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
)

// MoveState is where a move stands, as public.tenant_moves records it.
type MoveState string

// The states of a move, in order; it ends done or failed.
const (
	MovePending   MoveState = "pending"   // holds the tenant; migrations, publication, subscription
	MoveCopying   MoveState = "copying"   // the initial copy, the tenant serving meanwhile
	MoveStreaming MoveState = "streaming" // copied; the target follows the source's writes
	MovePausing   MoveState = "pausing"   // the tenant's writes paused; final catch-up
	MoveSwitching MoveState = "switching" // sequences carried over; placement and fence commit
	MoveCleaning  MoveState = "cleaning"  // switched; subscription, publication, old copy go
	MoveSucceeded MoveState = "done"
	MoveFailed    MoveState = "failed" // undone: the tenant serves from where it was
)

// MoveRecord is one move of a tenant as public.tenant_moves records it.
type MoveRecord struct {
	ID           int64
	Schema       string
	From, To     string
	State        MoveState
	Rows         int64 // copied so far
	TablesCopied int
	Tables       int
	StartedAt    time.Time
	UpdatedAt    time.Time
	FinishedAt   *time.Time
	Error        string // why it failed
	CleanUpError string // what a done move's clean-up left behind
	// Copy and Pause, once known (see MoveResult).
	Copy  *time.Duration
	Pause *time.Duration
}

// Finished reports whether the move has ended, done or failed.
func (r MoveRecord) Finished() bool { return r.State == MoveSucceeded || r.State == MoveFailed }

const moveRecordColumns = `id, schema_name, from_cluster, to_cluster, state, rows_copied, tables_copied, tables,
	started_at, updated_at, finished_at, coalesce(error, ''), coalesce(cleanup_error, ''), copy_ms, pause_ms`

func scanMoveRecord(row pgx.Row) (MoveRecord, error) {
	var (
		r       MoveRecord
		copyMS  *int64
		pauseMS *float64
	)
	err := row.Scan(&r.ID, &r.Schema, &r.From, &r.To, &r.State, &r.Rows, &r.TablesCopied, &r.Tables,
		&r.StartedAt, &r.UpdatedAt, &r.FinishedAt, &r.Error, &r.CleanUpError, &copyMS, &pauseMS)
	if copyMS != nil {
		d := time.Duration(*copyMS) * time.Millisecond
		r.Copy = &d
	}
	if pauseMS != nil {
		d := time.Duration(*pauseMS * float64(time.Millisecond))
		r.Pause = &d
	}
	return r, err
}

// LatestMove returns the tenant's latest move. Errors: EINVALID for a bad
// schema name; ENOTFOUND when the tenant was never moved; database errors
// translated.
func (m *Mover) LatestMove(ctx context.Context, schemaName string) (MoveRecord, error) {
	if err := domain.ValidateSchemaName(schemaName); err != nil {
		return MoveRecord{}, err
	}
	r, err := scanMoveRecord(m.db.Pool.QueryRow(ctx, `SELECT `+moveRecordColumns+`
		FROM public.tenant_moves WHERE schema_name = $1 ORDER BY id DESC LIMIT 1`, schemaName))
	if errors.Is(err, pgx.ErrNoRows) {
		return MoveRecord{}, domain.Errorf(domain.ENOTFOUND, "tenant %q has no move", schemaName)
	}
	if err != nil {
		return MoveRecord{}, fmt.Errorf("tenancy: latest move of %s: %w", schemaName, postgres.Translate(err))
	}
	return r, nil
}

// recordTimeout bounds each write of a move's record: the record says how
// the move is doing and never holds the move up for long, nor fails it.
const recordTimeout = 5 * time.Second

// begin records the move, pending, once it holds the tenant: any earlier
// move of the tenant left unfinished (its process stopped) is recorded
// failed, as none can be running.
func (mv *move) begin(ctx context.Context) error {
	return mv.m.db.InTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE public.tenant_moves SET state = 'failed', finished_at = now(), updated_at = now(),
			error = 'interrupted: the process that ran it stopped' WHERE schema_name = $1 AND finished_at IS NULL`, mv.schema); err != nil {
			return fmt.Errorf("record the move: %w", err)
		}
		r, err := scanMoveRecord(tx.QueryRow(ctx, `INSERT INTO public.tenant_moves (schema_name, from_cluster, to_cluster)
			VALUES ($1, $2, $3) RETURNING `+moveRecordColumns, mv.schema, mv.from.Name, mv.to.Name))
		if err != nil {
			return fmt.Errorf("record the move: %w", err)
		}
		mv.rec = r
		return nil
	})
}

// note records the move's state and counts; while copying at most once a
// second. A failure to record is logged, not returned.
func (mv *move) note(ctx context.Context, state MoveState, p MoveProgress) {
	if mv.rec.ID == 0 {
		return
	}
	if state == mv.rec.State && time.Since(mv.noted) < time.Second {
		return
	}
	mv.noted = time.Now()
	mv.rec.State, mv.rec.Rows, mv.rec.TablesCopied, mv.rec.Tables = state, p.Rows, p.TablesCopied, p.Tables
	mv.write(ctx, `UPDATE public.tenant_moves SET state = $2, rows_copied = $3, tables_copied = $4, tables = $5, updated_at = now()
		WHERE id = $1`, mv.rec.ID, state, p.Rows, p.TablesCopied, p.Tables)
}

// finish records how the move ended.
func (mv *move) finish(ctx context.Context, res MoveResult, err error) {
	if mv.rec.ID == 0 {
		return
	}
	if err != nil {
		mv.write(ctx, `UPDATE public.tenant_moves SET state = 'failed', error = $2, finished_at = now(), updated_at = now()
			WHERE id = $1`, mv.rec.ID, err.Error())
		return
	}
	var cleanUp *string
	if res.CleanUp != nil {
		s := res.CleanUp.Error()
		cleanUp = &s
	}
	n := len(mv.tables)
	mv.write(ctx, `UPDATE public.tenant_moves SET state = 'done', rows_copied = $2, tables_copied = $3, tables = $3,
		copy_ms = $4, pause_ms = $5, cleanup_error = $6, finished_at = now(), updated_at = now() WHERE id = $1`,
		mv.rec.ID, res.Rows, n, res.Copy.Milliseconds(), float64(res.Pause.Microseconds())/1000, cleanUp)
}

func (mv *move) write(ctx context.Context, sql string, args ...any) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if _, err := mv.m.db.Pool.Exec(wctx, sql, args...); err != nil {
		mv.m.log.WarnContext(ctx, "tenant move: record its state", slog.String("tenant", mv.schema), slog.Any("error", err))
	}
}

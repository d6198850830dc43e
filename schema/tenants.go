package schema

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pressly/goose/v3"
	"golang.org/x/sync/errgroup"

	"github.com/tenantworks/saas/pkg/domain"
)

// TenantsOptions configures MigrateTenants.
type TenantsOptions struct {
	// Width is how many schemas migrate at once, each on a connection of
	// its own; 0 means 8.
	Width int
	// Record, when set, runs inside each tenant's migration transaction
	// after its migrations with the schema's version then, so that what
	// it writes commits or rolls back with them.
	Record func(ctx context.Context, tx pgx.Tx, schemaName string, version int64) error
	// Done, when set, is called once per schema with its version afterwards
	// or its error. Calls may come from several goroutines at once.
	Done func(schemaName string, version int64, err error)
	// Lock, when set, is called before a schema migrates; the schema
	// migrates only if it returns no error (else that error goes to Done
	// and the others go on), and unlock is called after Done. How a run
	// keeps out of the way of other work on a tenant (a move).
	Lock func(ctx context.Context, schemaName string) (unlock func(), err error)
}

// tenantStep is one tenant migration file, parsed once.
type tenantStep struct {
	version int64
	name    string
	up      string // the Up section
	// up, then goose's row for the version (an integer of the file's
	// name), run as one simple-protocol query
	upAndRecord string
	// goose must run it: NO TRANSACTION, ENVSUB, or a file this reader
	// does not understand (goose then reports what is wrong).
	gooseOnly bool
}

// MigrateTenants brings every schema in schemas up to the latest tenant
// migration, opts.Width at a time, one schema failing alone: its error goes
// to opts.Done and the others go on. The returned error is only for what
// stops the whole run (the pool cannot open, ctx ends).
//
// Each schema migrates in one transaction on a pool of opts.Width direct
// connections opened for the run: its per-schema advisory lock (the key
// goose's session lock uses, so a goose run and this one exclude each
// other) as a transaction lock, its version read from its goose version
// table, every pending migration, goose's version rows, then opts.Record;
// so a schema is at its old version or at the latest, never between. The
// commit does not wait for its WAL flush (synchronous_commit off for that
// transaction): a commit lost to a crash loses the whole schema's step
// at once, which a rerun applies again, and the run ends with one
// synchronous commit that flushes every commit before it, so that what
// Done reported is durable when MigrateTenants returns. That makes a
// schema's migration cost its statements and a few round trips, not two
// new connections, goose's bookkeeping queries and a WAL flush per
// migration.
//
// A schema without a goose version table, with a migration goose alone
// can run (NO TRANSACTION, ENVSUB) pending, or with a version missing
// below its latest, goes to goose (MigrateTenant) instead, then
// opts.Record in a transaction of its own.
func (r *Runner) MigrateTenants(ctx context.Context, schemas []string, opts TenantsOptions) error {
	if len(schemas) == 0 {
		return nil
	}
	width := opts.Width
	if width <= 0 {
		width = 8
	}
	cfg, err := pgxpool.ParseConfig(r.url)
	if err != nil {
		return fmt.Errorf("schema: migrate tenants: parse url: %w", err)
	}
	cfg.MaxConns = int32(min(width, len(schemas)))
	// Every schema's queries differ in their schema name: preparing and
	// caching each would cost a round trip and a cache slot for nothing.
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("schema: migrate tenants: open pool: %w", err)
	}
	defer pool.Close()

	done := opts.Done
	if done == nil {
		done = func(string, int64, error) {}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(width)
	for _, s := range schemas {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if opts.Lock != nil {
				unlock, err := opts.Lock(gctx, s)
				if err != nil {
					done(s, 0, err)
					return nil
				}
				defer unlock()
			}
			v, err := r.migrateTenantTx(gctx, pool, s, opts.Record)
			if err != nil {
				err = fmt.Errorf("schema: migrate tenant %s: %w", s, err)
			}
			done(s, v, err)
			return nil // one schema's failure never stops the others
		})
	}
	_ = g.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("schema: migrate tenants: %w", err)
	}
	// One synchronous commit with a transaction id writes a commit record
	// and waits for the WAL to be flushed up to it: every asynchronous
	// commit before it is then on disk too.
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "SELECT pg_current_xact_id()")
		return err
	}); err != nil {
		return fmt.Errorf("schema: migrate tenants: flush: %w", err)
	}
	return nil
}

// errToGoose sends a schema to goose's own runner.
var errToGoose = errors.New("needs goose")

// migrateTenantTx migrates one schema in one transaction (see
// MigrateTenants), or with goose when it must.
func (r *Runner) migrateTenantTx(ctx context.Context, pool *pgxpool.Pool, schemaName string,
	record func(context.Context, pgx.Tx, string, int64) error) (int64, error) {
	if err := domain.ValidateSchemaName(schemaName); err != nil {
		return 0, err
	}
	v, err := r.tenantTx(ctx, pool, schemaName, false, record)
	if !errors.Is(err, errToGoose) {
		return v, err
	}
	if v, err = r.migrate(ctx, schemaName, r.tenant); err != nil {
		return 0, err
	}
	if record != nil {
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return record(ctx, tx, schemaName, v) }); err != nil {
			return 0, fmt.Errorf("record version: %w", err)
		}
	}
	return v, nil
}

// beginner is what a tenant's migration transaction runs on: a pool or a
// connection.
type beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// gooseVersionTable is goose's own version table, as its PostgreSQL dialect
// creates it (pressly/goose internal/dialects/postgres.go), so that goose
// and MigrateTenants read a schema made by MigrateNewTenant as their own.
const gooseVersionTable = `CREATE TABLE goose_db_version (
	id integer PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,
	version_id bigint NOT NULL,
	is_applied boolean NOT NULL,
	tstamp timestamp NOT NULL DEFAULT now()
)`

// MigrateNewTenant brings a schema just created, still empty, to the latest
// tenant migration in one transaction on db: goose's version table with its
// version 0 row, as goose starts one, then every migration and goose's row
// for it. It is MigrateTenant for a tenant's creation, without goose's two
// new connections, its bookkeeping queries and a commit per migration. The
// commit is synchronous: the tenant is activated after it, possibly on
// another cluster. A migration set goose alone can run goes to
// MigrateTenant.
func (r *Runner) MigrateNewTenant(ctx context.Context, db beginner, schemaName string) (int64, error) {
	if err := domain.ValidateSchemaName(schemaName); err != nil {
		return 0, err
	}
	v, err := r.tenantTx(ctx, db, schemaName, true, nil)
	if errors.Is(err, errToGoose) {
		return r.MigrateTenant(ctx, schemaName)
	}
	if err != nil {
		return 0, fmt.Errorf("schema: migrate new tenant %s: %w", schemaName, err)
	}
	return v, nil
}

// tenantTx migrates one schema in one transaction on db. fresh says the
// schema is new: goose's version table is created instead of read, and the
// commit waits for its WAL flush.
func (r *Runner) tenantTx(ctx context.Context, db beginner, schemaName string, fresh bool,
	record func(context.Context, pgx.Tx, string, int64) error) (int64, error) {
	steps, err := r.tenantSteps()
	if err != nil {
		return 0, errToGoose
	}
	if fresh && slices.ContainsFunc(steps, func(s tenantStep) bool { return s.gooseOnly }) {
		return 0, errToGoose
	}
	synchronous := "off"
	if fresh {
		synchronous = "on"
	}
	var version int64
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		// One round trip: the transaction's settings, the schema's lock
		// (waiting at most as long as goose's session locker would) and
		// goose's reading of its version table, where the newest row of a
		// version says whether it is applied (or, for a new schema, its
		// creation). In exec mode each statement is parsed after the one
		// before it ran, so the search_path holds.
		seen := map[int64]bool{}
		applied := map[int64]bool{}
		b := &pgx.Batch{}
		b.Queue(`SELECT set_config('synchronous_commit', $2, true), set_config('search_path', $1, true),
			set_config('lock_timeout', '300s', true)`, pgx.Identifier{schemaName}.Sanitize(), synchronous)
		b.Queue(`SELECT pg_advisory_xact_lock($1)`, lockID(schemaName))
		if fresh {
			b.Queue(gooseVersionTable)
			b.Queue(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true)`)
		} else {
			b.Queue(`SELECT version_id, is_applied FROM goose_db_version ORDER BY id DESC`).Query(func(rows pgx.Rows) error {
				var (
					id int64
					ok bool
				)
				_, err := pgx.ForEachRow(rows, []any{&id, &ok}, func() error {
					if !seen[id] {
						seen[id], applied[id] = true, ok
					}
					return nil
				})
				return err
			})
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "42P01" {
				return errToGoose // undefined_table: no goose version table yet
			}
			return fmt.Errorf("lock and read versions: %w", err)
		}
		for v, ok := range applied {
			if ok && v > version {
				version = v
			}
		}
		var pending []tenantStep
		for _, s := range steps {
			if applied[s.version] {
				continue
			}
			if s.version < version || s.gooseOnly {
				// Out of order or not for a transaction: goose decides.
				return errToGoose
			}
			pending = append(pending, s)
		}
		for _, s := range pending {
			// The file and goose's row for it as one query: several
			// statements, simple protocol, one round trip.
			if _, err := tx.Exec(ctx, s.upAndRecord); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			version = s.version
		}
		if record != nil {
			if err := record(ctx, tx, schemaName, version); err != nil {
				return fmt.Errorf("record version: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return version, nil
}

// tenantSteps parses the tenant migration set once.
func (r *Runner) tenantSteps() ([]tenantStep, error) {
	r.stepsOnce.Do(func() { r.steps, r.stepsErr = parseSteps(r.tenant) })
	return r.steps, r.stepsErr
}

// parseSteps reads every *.sql file of f into its version and Up section,
// in version order.
func parseSteps(f fs.FS) ([]tenantStep, error) {
	names, err := fs.Glob(f, "*.sql")
	if err != nil {
		return nil, err
	}
	var steps []tenantStep
	for _, n := range names {
		v, err := goose.NumericComponent(path.Base(n))
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", n, err)
		}
		b, err := fs.ReadFile(f, n)
		if err != nil {
			return nil, err
		}
		up, gooseOnly := upSection(string(b))
		steps = append(steps, tenantStep{version: v, name: n, up: up, gooseOnly: gooseOnly,
			upAndRecord: up + ";\nINSERT INTO goose_db_version (version_id, is_applied) VALUES (" + strconv.FormatInt(v, 10) + ", true);\n"})
	}
	slices.SortFunc(steps, func(a, b tenantStep) int { return cmp.Compare(a.version, b.version) })
	return steps, nil
}

// upSection returns the text between "-- +goose Up" and "-- +goose Down"
// (or the end). StatementBegin/End only matter to goose's statement
// splitting, and PostgreSQL's own parser splits a simple query, dollar
// quotes included. gooseOnly is set by an annotation that changes how the
// file runs (NO TRANSACTION, ENVSUB ON), one it does not know, or a file
// without an Up section.
func upSection(sql string) (up string, gooseOnly bool) {
	var b strings.Builder
	inUp, sawUp := false, false
	sc := bufio.NewScanner(strings.NewReader(sql))
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "--") && strings.Contains(t, "+goose") {
			a := strings.TrimSpace(strings.Replace(strings.TrimPrefix(t, "--"), "+goose", "", 1))
			switch a {
			case "Up":
				inUp, sawUp = true, true
			case "Down":
				inUp = false
			case "StatementBegin", "StatementEnd", "ENVSUB OFF":
			default:
				return "", true
			}
			continue
		}
		if inUp {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	if sc.Err() != nil || !sawUp || strings.TrimSpace(b.String()) == "" {
		return "", true
	}
	return b.String(), false
}

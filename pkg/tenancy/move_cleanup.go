package tenancy

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/postgres"
)

// cleanUp removes the subscription (and with it the slot), the
// publication and the old copy, after the switch.
func (mv *move) cleanUp(ctx context.Context) error {
	src, tgt, done, err := mv.connectBoth(ctx)
	if err != nil {
		return err
	}
	defer done()
	errs := append(mv.dropReplication(ctx, src, tgt), dropOldCopies(ctx, src, mv.schema))
	// The source's relays have nothing left of the tenant to drain.
	if _, err := src.Exec(ctx, `DELETE FROM public.outbox_pending WHERE schema_name = $1`, mv.schema); err != nil {
		errs = append(errs, fmt.Errorf("forget the pending outbox on %s: %w", mv.from.Name, err))
	}
	return errors.Join(errs...)
}

// connectBoth opens direct connections of the move's own to the source and
// the target; done closes them.
func (mv *move) connectBoth(ctx context.Context) (src, tgt *pgx.Conn, done func(), err error) {
	if src, err = connect(ctx, mv.from.DirectURL); err != nil {
		return nil, nil, nil, fmt.Errorf("connect to %s: %w", mv.from.Name, err)
	}
	if tgt, err = connect(ctx, mv.to.DirectURL); err != nil {
		_ = src.Close(ctx)
		return nil, nil, nil, fmt.Errorf("connect to %s: %w", mv.to.Name, err)
	}
	return src, tgt, func() { _ = src.Close(ctx); _ = tgt.Close(ctx) }, nil
}

// dropReplication drops the subscription on the target (its slots on the
// source with it), the publication on the source, and any slot of the move
// left there; it returns what failed.
func (mv *move) dropReplication(ctx context.Context, src, tgt *pgx.Conn) []error {
	errs := []error{dropSubscription(ctx, tgt, mv.names.pub)}
	if _, err := src.Exec(ctx, `DROP PUBLICATION IF EXISTS `+ident(mv.names.pub)); err != nil {
		errs = append(errs, fmt.Errorf("drop publication on %s: %w", mv.from.Name, err))
	}
	return append(errs, dropSlots(ctx, src, likePrefix(mv.names.slotBase)))
}

// rollback undoes a move that failed before its switch, on connections of
// its own (the move's may be what failed): the subscription and its slots,
// the publication, and the target's schema, once public.tenants is seen
// to still place the tenant on the source.
func (mv *move) rollback(ctx context.Context) error {
	src, tgt, done, err := mv.connectBoth(ctx)
	if err != nil {
		return err
	}
	defer done()
	errs := mv.dropReplication(ctx, src, tgt)
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

package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/domain"
)

// WriteTenantAudit writes e into the audit trail of the transaction's
// tenant (tx's search_path is the tenant's schema: DB.InTenant).
func WriteTenantAudit(ctx context.Context, tx pgx.Tx, e audit.Entry) error {
	return writeAudit(ctx, tx, "audit_log", e)
}

// WritePlatformAudit writes e into the platform's audit trail.
func WritePlatformAudit(ctx context.Context, tx pgx.Tx, e audit.Entry) error {
	return writeAudit(ctx, tx, "public.audit_log", e)
}

// writeAudit inserts e into table (one of two constants above).
func writeAudit(ctx context.Context, tx pgx.Tx, table string, e audit.Entry) error {
	sql, args, err := auditInsert(table, e)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("insert audit entry %s: %w", e.Action, err)
	}
	return nil
}

// auditInsert returns the statement that inserts e into table, for
// writeAudit or a pipelined transaction's batch. The changes go as
// json.RawMessage under a jsonb cast, typed right behind a
// transaction-mode pooler as the outbox's payload is.
func auditInsert(table string, e audit.Entry) (string, []any, error) {
	changes, err := audit.MarshalChanges(e.Changes)
	if err != nil {
		return "", nil, fmt.Errorf("encode audit changes: %w", err)
	}
	return `INSERT INTO ` + table + ` (actor_kind, actor_id, actor_email, action, target_type, target_id, changes, request_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)`,
		[]any{e.Actor.Kind, e.Actor.ID, e.Actor.Email, e.Action, e.Target.Type, e.Target.ID, json.RawMessage(changes), e.RequestID}, nil
}

// AuditFunc builds the audit entries of a change of one row from the row
// as it was and as the change left it (a zero value for a row created or
// deleted), inside the change's transaction; it may return none. The use
// case decides what an entry says; the store only writes it.
type AuditFunc[T any] func(old, new T) []audit.Entry

// writeAudits writes the entries f builds for old -> new with write
// (WriteTenantAudit or WritePlatformAudit); a nil f writes none.
func writeAudits[T any](ctx context.Context, tx pgx.Tx, write func(context.Context, pgx.Tx, audit.Entry) error, f AuditFunc[T], old, new T) error {
	if f == nil {
		return nil
	}
	for _, e := range f(old, new) {
		if err := write(ctx, tx, e); err != nil {
			return err
		}
	}
	return nil
}

// AuditFilter selects entries of an audit trail. Empty fields match every
// entry.
type AuditFilter struct {
	Actor      string // actor id
	Action     string
	TargetType string
	TargetID   string
	Limit      int    // 1..MaxPageSize
	Cursor     string // from a previous page
}

const auditColumns = `id, at, actor_kind, actor_id, actor_email, action, target_type, target_id, changes, request_id`

// ListTenantAudit returns one page of a tenant's audit trail, newest
// first, and the next page's cursor ("" at the end). Errors: EINVALID for
// a bad limit, filter or cursor; ErrNoSchema (ENOTFOUND) when the schema
// or its audit_log does not exist.
func (db *DB) ListTenantAudit(ctx context.Context, schemaName string, f AuditFilter) ([]audit.Entry, string, error) {
	var (
		out  []audit.Entry
		next string
	)
	err := db.InTenant(ctx, schemaName, func(tx pgx.Tx) (err error) {
		out, next, err = listAudit(ctx, tx, "audit_log", f)
		return err
	})
	if isMissing(err) {
		return nil, "", fmt.Errorf("postgres: list audit of %s: %w", schemaName, ErrNoSchema)
	}
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list audit of %s: %w", schemaName, err)
	}
	return out, next, nil
}

// ListPlatformAudit returns one page of the platform's audit trail,
// newest first, and the next page's cursor. Errors as ListTenantAudit.
func (db *DB) ListPlatformAudit(ctx context.Context, f AuditFilter) ([]audit.Entry, string, error) {
	var (
		out  []audit.Entry
		next string
	)
	err := db.InTx(ctx, func(tx pgx.Tx) (err error) {
		out, next, err = listAudit(ctx, tx, "public.audit_log", f)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list platform audit: %w", Translate(err))
	}
	return out, next, nil
}

// listAudit pages table by id, newest first; each filter has an index
// that ends with id.
func listAudit(ctx context.Context, tx pgx.Tx, table string, f AuditFilter) ([]audit.Entry, string, error) {
	if err := checkLimit(f.Limit); err != nil {
		return nil, "", err
	}
	for name, v := range map[string]string{"actor": f.Actor, "action": f.Action, "target_type": f.TargetType, "target_id": f.TargetID} {
		// PostgreSQL's text refuses NUL (an error, not an empty page).
		if len(v) > 200 || strings.ContainsRune(v, 0) || !utf8.ValidString(v) {
			return nil, "", &domain.Error{Code: domain.EINVALID, Message: "invalid " + name,
				Details: map[string]string{name: "must be valid text of at most 200 bytes"}}
		}
	}
	var before int64
	if f.Cursor != "" {
		id, err := decodeIDCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		before = id
	}
	// Only the filters asked for reach the query, so the planner sees
	// plain equalities and picks their index (a generic plan of
	// "$1 = '' OR col = $1" would not).
	var (
		where []string
		args  = []any{f.Limit + 1}
	)
	for _, c := range []struct{ col, v string }{
		{"actor_id", f.Actor}, {"action", f.Action}, {"target_type", f.TargetType}, {"target_id", f.TargetID},
	} {
		if c.v != "" {
			args = append(args, c.v)
			where = append(where, fmt.Sprintf("%s = $%d", c.col, len(args)))
		}
	}
	if before > 0 {
		args = append(args, before)
		where = append(where, fmt.Sprintf("id < $%d", len(args)))
	}
	q := `SELECT ` + auditColumns + ` FROM ` + table
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := tx.Query(ctx, q+` ORDER BY id DESC LIMIT $1`, args...)
	if err != nil {
		return nil, "", err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (audit.Entry, error) {
		var (
			e       audit.Entry
			changes []byte
		)
		if err := r.Scan(&e.ID, &e.At, &e.Actor.Kind, &e.Actor.ID, &e.Actor.Email, &e.Action,
			&e.Target.Type, &e.Target.ID, &changes, &e.RequestID); err != nil {
			return e, err
		}
		e.At = e.At.UTC()
		if err := json.Unmarshal(changes, &e.Changes); err != nil {
			return e, fmt.Errorf("decode changes of audit entry %d: %w", e.ID, err)
		}
		return e, nil
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		next = encodeIDCursor(out[len(out)-1].ID)
	}
	return out, next, nil
}

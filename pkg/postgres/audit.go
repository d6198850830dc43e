package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/audit"
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

// writeAudit inserts e into table (one of two constants above). The
// changes go as json.RawMessage under a jsonb cast, typed right behind a
// transaction-mode pooler as the outbox's payload is.
func writeAudit(ctx context.Context, tx pgx.Tx, table string, e audit.Entry) error {
	changes, err := audit.MarshalChanges(e.Changes)
	if err != nil {
		return fmt.Errorf("encode audit changes: %w", err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO `+table+` (actor_kind, actor_id, actor_email, action, target_type, target_id, changes, request_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)`,
		e.Actor.Kind, e.Actor.ID, e.Actor.Email, e.Action, e.Target.Type, e.Target.ID, json.RawMessage(changes), e.RequestID)
	if err != nil {
		return fmt.Errorf("insert audit entry %s: %w", e.Action, err)
	}
	return nil
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

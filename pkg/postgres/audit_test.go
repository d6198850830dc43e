package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/testenv"
)

// writeAged writes n entries of action into a trail (a tenant's schema, or
// "" for the platform's), written age ago: through the writers when age is
// 0, else straight into the table with an older at (entries are never
// updated, so they are written old).
func writeAged(t *testing.T, db *postgres.DB, schemaName, action string, n int, age time.Duration) {
	t.Helper()
	ctx := t.Context()
	write := func(tx pgx.Tx) error {
		for i := range n {
			e := audit.Entry{Actor: audit.System, Action: action, Target: audit.Target{Type: "product", ID: fmt.Sprint(i)}}
			var err error
			switch {
			case age > 0:
				_, err = tx.Exec(ctx, `INSERT INTO audit_log (at, actor_kind, action, target_type, target_id)
					VALUES (now() - make_interval(secs => $1), 'system', $2, 'product', $3)`, age.Seconds(), action, fmt.Sprint(i))
			case schemaName == "":
				err = postgres.WritePlatformAudit(ctx, tx, e)
			default:
				err = postgres.WriteTenantAudit(ctx, tx, e)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	if schemaName == "" {
		err = db.InTx(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL search_path = public`); err != nil {
				return err
			}
			return write(tx)
		})
	} else {
		err = db.InTenant(ctx, schemaName, write)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func actions(t *testing.T, db *postgres.DB, schemaName string) map[string]int {
	t.Helper()
	list := func(f postgres.AuditFilter) ([]audit.Entry, string, error) {
		if schemaName == "" {
			return db.ListPlatformAudit(t.Context(), f)
		}
		return db.ListTenantAudit(t.Context(), schemaName, f)
	}
	out := map[string]int{}
	for cur := ""; ; {
		es, next, err := list(postgres.AuditFilter{Limit: 100, Cursor: cur})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			out[e.Action]++
		}
		if next == "" {
			return out
		}
		cur = next
	}
}

func TestPruneAuditDeletesOldEntriesAndKeepsNewOnes(t *testing.T) {
	t.Parallel()
	w := testenv.MustWorld(t)
	w.MustTenants(t, "prune_a", "prune_b", "prune_c")
	const day = 24 * time.Hour
	writeAged(t, w.DB, "prune_a", "old", 5, 40*day)
	writeAged(t, w.DB, "prune_a", "new", 3, 0)
	writeAged(t, w.DB, "prune_b", "new", 2, 0) // nothing old: only probed
	// prune_c has nothing at all.
	writeAged(t, w.DB, "", "old", 4, 40*day)
	writeAged(t, w.DB, "", "new", 1, 0)
	// A tenant row whose schema is gone is skipped, not a failure.
	if _, err := w.DB.Pool.Exec(t.Context(), `DROP SCHEMA prune_c CASCADE`); err != nil {
		t.Fatal(err)
	}

	rep, err := w.DB.PruneAudit(context.Background(), time.Now().Add(-30*day), 2) // batches of 2: several rounds
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 9 || rep.Pruned != 2 || rep.Tenants != 3 {
		t.Fatalf("report = %+v, want 9 deleted from 2 trails (prune_a and the platform's), 3 tenants looked at", rep)
	}
	for _, c := range []struct {
		trail string
		want  map[string]int
	}{
		{"prune_a", map[string]int{"new": 3}},
		{"prune_b", map[string]int{"new": 2}},
		{"", map[string]int{"new": 1, "tenant.create": 3}}, // the creations above are new too
	} {
		if got := actions(t, w.DB, c.trail); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("trail %q holds %v after pruning, want %v", c.trail, got, c.want)
		}
	}
	if rep, err := w.DB.PruneAudit(context.Background(), time.Now().Add(-30*day), 2); err != nil || rep.Deleted != 0 || rep.Pruned != 0 {
		t.Fatalf("a second pruning = %+v, %v; want nothing to do", rep, err)
	}
}

func TestAuditPagesWalkEveryEntryOnceNewestFirst(t *testing.T) {
	t.Parallel()
	w := testenv.MustWorld(t)
	w.MustTenant(t, "pages_a")
	writeAged(t, w.DB, "pages_a", "product.update", 7, 0)
	var ids []int64
	for cur := ""; ; {
		es, next, err := w.DB.ListTenantAudit(t.Context(), "pages_a", postgres.AuditFilter{Action: "product.update", Limit: 3, Cursor: cur})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			ids = append(ids, e.ID)
		}
		if next == "" {
			break
		}
		cur = next
	}
	if len(ids) != 7 {
		t.Fatalf("walked %d entries, want 7: %v", len(ids), ids)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] >= ids[i-1] {
			t.Fatalf("ids %v are not newest first", ids)
		}
	}
	if _, _, err := w.DB.ListTenantAudit(t.Context(), "pages_a", postgres.AuditFilter{Limit: 3, Cursor: "garbage!"}); err == nil {
		t.Fatal("a garbage cursor was taken")
	}
}

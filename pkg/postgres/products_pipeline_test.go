package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/pkg/testenv"
	"github.com/tenantworks/saas/schema"
)

// CreateProduct sends its transaction in two pipelined round trips (BEGIN,
// search_path and the insert; then the audit entry, the outbox row and
// COMMIT). A failure at any point of either must leave nothing behind and
// the connection clean, directly and through PgBouncer in transaction mode
// alike.
func TestCreateProductFailingMidwayLeavesNothing(t *testing.T) {
	t.Parallel()
	inBothPoolModes(t, createMidwayFailures)
}

func createMidwayFailures(t *testing.T, d *testenv.Database) {
	ctx := context.Background()
	runner, err := schema.NewRunner(d.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	const s = "pipelined"
	if _, err := tenancy.NewManager(d.DB, runner, slog.New(slog.DiscardHandler)).Create(ctx,
		tenancy.CreateParams{Schema: s, Name: "Pipelined", Domain: "pipelined.test"}); err != nil {
		t.Fatal(err)
	}
	// One connection: whatever a failure leaves on it, the next call gets.
	db, err := postgres.Open(ctx, postgres.Config{URL: d.PoolURL, PoolMode: d.PoolMode, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)

	actor := audit.Actor{Kind: audit.KindUser, ID: "u-1", Email: "a@example.test"}
	goodOutbox := func(p domain.Product) (postgres.OutboxRecord, error) {
		payload, err := json.Marshal(map[string]any{"id": p.ID, "sku": p.SKU, "version": p.Version})
		return postgres.OutboxRecord{EventID: uuid.NewString(), EventType: "product.created", AggregateID: p.ID,
			AggregateVersion: p.Version, Payload: payload, RequestID: "req-1", Actor: actor}, err
	}
	goodAudit := func(_, n *domain.Product) audit.Entry {
		return audit.Entry{Actor: actor, Action: "product.create", Target: audit.Target{Type: "product", ID: n.ID},
			Changes: audit.Changes{"sku": {nil, n.SKU}}, RequestID: "req-1"}
	}
	patch := func(sku string) domain.ProductPatch {
		return domain.ProductPatch{SKU: &sku, Name: ptr("Lamp"), Price: ptr("1.50"), Currency: ptr("EUR")}
	}
	counts := func(t *testing.T) (products, audits, outbox int) {
		t.Helper()
		if err := db.InTenant(ctx, s, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM products), (SELECT count(*) FROM audit_log),
				(SELECT count(*) FROM outbox)`).Scan(&products, &audits, &outbox)
		}); err != nil {
			t.Fatal(err)
		}
		return
	}
	clean := func(t *testing.T) {
		t.Helper()
		// The connection is out of any transaction, and the tenant's
		// search_path did not outlive the one that failed.
		var path string
		if err := db.Pool.QueryRow(ctx, `SELECT current_setting('search_path')`).Scan(&path); err != nil {
			t.Fatalf("the connection is unusable after the failure: %v", err)
		}
		if d.PoolMode != postgres.PoolTransaction && path != `"$user", public` {
			t.Fatalf("search_path after the failure = %q, want the default", path)
		}
	}

	first, err := db.CreateProduct(ctx, s, patch("TAKEN"), goodOutbox, goodAudit)
	if err != nil {
		t.Fatal(err)
	}
	if p, a, o := counts(t); p != 1 || a != 1 || o != 1 {
		t.Fatalf("after a create: %d products, %d audit entries, %d outbox rows; want 1 each", p, a, o)
	}

	errBuild := errors.New("no payload today")
	for _, tc := range []struct {
		name   string
		sku    string
		outbox postgres.OutboxFunc
		audit  postgres.ProductAuditFunc
		want   func(error) bool
	}{
		{"the insert fails (duplicate sku), first round trip", "TAKEN", goodOutbox, goodAudit,
			func(err error) bool { return domain.ErrorCode(err) == domain.ECONFLICT }},
		{"the outbox row cannot be built, between the round trips", "B-1",
			func(domain.Product) (postgres.OutboxRecord, error) { return postgres.OutboxRecord{}, errBuild }, goodAudit,
			func(err error) bool { return errors.Is(err, errBuild) }},
		{"the audit entry fails (check constraint), second round trip", "B-2", goodOutbox,
			func(o, n *domain.Product) audit.Entry {
				e := goodAudit(o, n)
				e.Actor.Kind = "nobody"
				return e
			},
			func(err error) bool { return postgres.HasCode(err, "23514") }},
		{"the outbox row fails after the audit entry went in, second round trip", "B-3",
			func(p domain.Product) (postgres.OutboxRecord, error) {
				r, err := goodOutbox(p)
				r.Payload = []byte(`{"not json`)
				return r, err
			}, goodAudit,
			func(err error) bool { return postgres.HasCode(err, "22P02") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := db.CreateProduct(ctx, s, patch(tc.sku), tc.outbox, tc.audit)
			if err == nil || !tc.want(err) {
				t.Fatalf("err = %v, not the failure expected", err)
			}
			clean(t)
			if p, a, o := counts(t); p != 1 || a != 1 || o != 1 {
				t.Fatalf("after a failed create: %d products, %d audit entries, %d outbox rows; want only the first create's", p, a, o)
			}
		})
	}

	// And the next create on that connection goes through in full.
	next, err := db.CreateProduct(ctx, s, patch("AFTER"), goodOutbox, goodAudit)
	if err != nil {
		t.Fatal(err)
	}
	if next.ID == first.ID || next.Version != 1 || next.Price != "1.50" {
		t.Fatalf("next create returned %+v", next)
	}
	var (
		auditTarget, auditChanges string
		payload, outboxActor      string
	)
	if err := db.InTenant(ctx, s, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT target_id, changes::text FROM audit_log ORDER BY id DESC LIMIT 1`).Scan(&auditTarget, &auditChanges); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT payload::text, actor::text FROM outbox ORDER BY id DESC LIMIT 1`).Scan(&payload, &outboxActor)
	}); err != nil {
		t.Fatal(err)
	}
	if auditTarget != next.ID || auditChanges != `{"sku": [null, "AFTER"]}` {
		t.Fatalf("audit entry: target %s changes %s", auditTarget, auditChanges)
	}
	if want := `{"id": "` + next.ID + `", "sku": "AFTER", "version": 1}`; payload != want {
		t.Fatalf("outbox payload %s, want %s", payload, want)
	}
	if outboxActor != `{"id": "u-1", "kind": "user", "email": "a@example.test"}` {
		t.Fatalf("outbox actor %s", outboxActor)
	}
}

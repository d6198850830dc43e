package postgres_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/pkg/testenv"
	"github.com/tenantworks/saas/schema"
)

// The store's statements run alike whichever way the pool reaches
// PostgreSQL: directly (session mode: prepared statements, binary values)
// or through PgBouncer in transaction mode (pgx's exec mode: one round
// trip, values in text, types inferred by the server). What differs between
// the two is how each Go value is encoded, so every column type the store
// writes or reads goes through both: uuid, text, numeric, integer, bigint,
// timestamptz, jsonb, uuid[].
func TestEveryValueReachesItsColumnTypedRight(t *testing.T) {
	t.Parallel()
	inBothPoolModes(t, typesRoundTrip)
}

// inBothPoolModes runs check on a fresh database reached directly and on
// one reached through PgBouncer in transaction mode, in parallel.
func inBothPoolModes(t *testing.T, check func(*testing.T, *testenv.Database)) {
	for name, open := range map[string]func(testing.TB) *testenv.Database{
		"direct":                              testenv.MustDatabase,
		"through PgBouncer, transaction mode": testenv.MustPooledDatabase,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			check(t, open(t))
		})
	}
}

func typesRoundTrip(t *testing.T, d *testenv.Database) {
	ctx := context.Background()
	runner, err := schema.NewRunner(d.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	const s = "types"
	mgr := tenancy.NewManager(d.DB, runner, slog.New(slog.DiscardHandler))
	if _, err := mgr.Create(ctx, tenancy.CreateParams{Schema: s, Name: "Types", Domain: "types.test"}); err != nil {
		t.Fatal(err)
	}
	db := d.DB
	outbox := func(p domain.Product) (postgres.OutboxRecord, error) {
		payload, err := json.Marshal(map[string]any{"id": p.ID, "sku": p.SKU, "price": p.Price, "tags": []string{"a", "b"}})
		return postgres.OutboxRecord{EventID: uuid.NewString(), EventType: "product.test", AggregateID: p.ID,
			AggregateVersion: p.Version, Payload: payload, RequestID: "req-1"}, err
	}

	t.Run("create: numeric, char, integer, defaults, and a jsonb outbox object", func(t *testing.T) {
		for _, in := range []struct {
			sku, name, price, cur string
			stock                 int64
		}{{"A-1", "Apple", "12.5", "EUR", 3}, {"B-2", "Banana", "0.99", "EUR", 0}, {"C-3", "Cherry", "1000", "USD", 7}} {
			p, err := db.CreateProduct(ctx, s, domain.ProductPatch{SKU: &in.sku, Name: &in.name, Price: &in.price, Currency: &in.cur, Stock: &in.stock}, outbox, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := uuid.Parse(p.ID); err != nil || p.Version != 1 || p.Stock != in.stock || p.Currency != in.cur ||
				time.Since(p.CreatedAt).Abs() > time.Minute || !p.UpdatedAt.Equal(p.CreatedAt) {
				t.Errorf("created %+v", p)
			}
			var typ, sku, tag, request string
			var version int64
			err = db.InTenant(ctx, s, func(tx pgx.Tx) error {
				return tx.QueryRow(ctx, `SELECT jsonb_typeof(payload), payload->>'sku', payload->'tags'->>1, aggregate_version, request_id
					FROM outbox WHERE aggregate_id = $1::uuid`, p.ID).Scan(&typ, &sku, &tag, &version, &request)
			})
			if err != nil || typ != "object" || sku != in.sku || tag != "b" || version != 1 || request != "req-1" {
				t.Errorf("outbox row of %s: %s %q %q v%d %q, %v; want an object with its sku", in.sku, typ, sku, tag, version, request, err)
			}
		}
	})

	byName := map[string]domain.Product{}
	t.Run("pages in every order, the cursor values typed by their column", func(t *testing.T) {
		want := map[string][]string{
			"name": {"A-1", "B-2", "C-3"}, "-name": {"C-3", "B-2", "A-1"},
			"price": {"B-2", "A-1", "C-3"}, "-price": {"C-3", "A-1", "B-2"},
			"stock": {"B-2", "A-1", "C-3"}, "-stock": {"C-3", "A-1", "B-2"},
			"created_at": {"A-1", "B-2", "C-3"}, "-updated_at": {"C-3", "B-2", "A-1"},
			"sku": {"A-1", "B-2", "C-3"},
		}
		for ordering, skus := range want {
			var got []string
			cursor := ""
			for range 4 {
				page, next, err := db.ListProducts(ctx, s, postgres.ListParams{Limit: 1, Ordering: ordering, Cursor: cursor})
				if err != nil {
					t.Fatalf("%s: %v", ordering, err)
				}
				for _, p := range page {
					got = append(got, p.SKU)
					byName[p.Name] = p
				}
				if cursor = next; next == "" {
					break
				}
			}
			if !slices.Equal(got, skus) {
				t.Errorf("ordering %s: %v, want %v", ordering, got, skus)
			}
		}
		if p := byName["Apple"]; p.Price != "12.50" {
			t.Errorf("Apple's price = %q, want 12.50", p.Price)
		}
		if p := byName["Cherry"]; p.Price != "1000.00" {
			t.Errorf("Cherry's price = %q, want 1000.00", p.Price)
		}
	})

	apple := byName["Apple"]
	t.Run("get, update at a version, a stale version refused", func(t *testing.T) {
		got, err := db.GetProduct(ctx, s, apple.ID)
		if err != nil || got.ID != apple.ID || got.Price != "12.50" || !got.CreatedAt.Equal(apple.CreatedAt) {
			t.Fatalf("get = %+v, %v; want %+v", got, err, apple)
		}
		price, v := "13", int64(1)
		up, err := db.UpdateProduct(ctx, s, apple.ID, domain.ProductPatch{Price: &price}, &v, outbox, nil)
		if err != nil || up.Version != 2 || up.Price != "13.00" || !up.UpdatedAt.After(up.CreatedAt) {
			t.Fatalf("update = %+v, %v", up, err)
		}
		if _, err := db.UpdateProduct(ctx, s, apple.ID, domain.ProductPatch{Price: &price}, &v, outbox, nil); domain.ErrorCode(err) != domain.ECONFLICT {
			t.Errorf("update at a stale version = %v, want %s", err, domain.ECONFLICT)
		}
	})

	t.Run("versions of a uuid[]", func(t *testing.T) {
		gone := uuid.NewString()
		vs, err := db.ProductVersions(ctx, s, []string{apple.ID, byName["Banana"].ID, gone})
		if err != nil || len(vs) != 2 || vs[apple.ID] != 2 || vs[byName["Banana"].ID] != 1 {
			t.Errorf("versions = %v, %v; want Apple at 2, Banana at 1, nothing for %s", vs, err, gone)
		}
	})

	t.Run("notifications: jsonb data, bigint ids, timestamptz read_at", func(t *testing.T) {
		u, err := db.CreateUser(ctx, s, postgres.NewUser{Email: "staff@types.test", PasswordHash: "x", IsStaff: true})
		if err != nil {
			t.Fatal(err)
		}
		data := json.RawMessage(`{"sku": "A-1", "n": 1.5, "tags": ["x"]}`)
		ns, err := db.NotifyActiveStaff(ctx, s, postgres.EventNotification{EventID: uuid.NewString(), Kind: "product.test", Title: "t", Data: data})
		if err != nil || len(ns) != 1 || ns[0].UserID != u.ID || !sameJSON(ns[0].Data, data) {
			t.Fatalf("notify = %+v, %v", ns, err)
		}
		after, err := db.NotificationsAfter(ctx, s, u.ID, 0, 10)
		if err != nil || len(after) != 1 || after[0].ID != ns[0].ID || after[0].ReadAt != nil || !sameJSON(after[0].Data, data) {
			t.Fatalf("after = %+v, %v", after, err)
		}
		read, err := db.MarkNotificationRead(ctx, s, u.ID, ns[0].ID)
		if err != nil || read.ReadAt == nil || read.ReadAt.Before(read.CreatedAt) {
			t.Errorf("read = %+v, %v", read, err)
		}
	})

	t.Run("a user's auth flags: booleans and a bigint, the id as a uuid", func(t *testing.T) {
		u, err := db.CreateUser(ctx, s, postgres.NewUser{Email: "auth@types.test", PasswordHash: "x", IsStaff: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.SetUserPassword(ctx, s, u.ID, "y", u.TokenGeneration, nil); err != nil {
			t.Fatal(err)
		}
		ua, err := db.GetUserAuth(ctx, s, u.ID)
		if want := (postgres.UserAuth{Active: true, Staff: true, Generation: u.TokenGeneration + 1}); err != nil || ua != want {
			t.Errorf("GetUserAuth = %+v, %v; want %+v", ua, err, want)
		}
		if _, err := db.GetUserAuth(ctx, s, "not-a-uuid"); domain.ErrorCode(err) != domain.ENOTFOUND {
			t.Errorf("GetUserAuth of a non-UUID = %v, want %s", err, domain.ENOTFOUND)
		}
	})

	t.Run("a snapshot scan and a delete at a version", func(t *testing.T) {
		var seen int
		if err := db.ScanProducts(ctx, s, 2, func(total int, page []domain.Product) error { seen += len(page); return nil }); err != nil || seen != 3 {
			t.Errorf("scan saw %d products, %v; want 3", seen, err)
		}
		v := int64(2)
		if err := db.DeleteProduct(ctx, s, apple.ID, &v, outbox, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := db.GetProduct(ctx, s, apple.ID); domain.ErrorCode(err) != domain.ENOTFOUND {
			t.Errorf("get after delete = %v, want %s", err, domain.ENOTFOUND)
		}
	})
}

func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return string(ja) == string(jb)
}

package tenancy_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/pkg/testenv"
	"github.com/tenantworks/saas/schema"
)

// newManager returns a Manager on a fresh database, with the given tenant
// migration set (nil: the real one) and hooks.
func newManager(t *testing.T, migrations fs.FS, hooks ...tenancy.Hook) (*tenancy.Manager, *testenv.Database) {
	t.Helper()
	w := testenv.MustWorld(t, testenv.WithTenantMigrations(migrations), testenv.WithHooks(hooks...))
	return w.Manager, w.Database
}

// tenantMigrations returns the real tenant migrations plus extra files.
func tenantMigrations(t *testing.T, extra map[string]string) fs.FS {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(schema.Tenant, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(schema.Tenant, p)
		m[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range extra {
		m[name] = &fstest.MapFile{Data: []byte(body)}
	}
	return m
}

// leftovers counts what a tenant left behind: rows in tenants and domains,
// and the schema itself.
func leftovers(t *testing.T, db *postgres.DB, schemaName, dom string) (tenants, domains, schemas int) {
	t.Helper()
	ctx := context.Background()
	err := db.Pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM public.tenants WHERE schema_name = $1),
		(SELECT count(*) FROM public.domains WHERE domain = $2),
		(SELECT count(*) FROM pg_namespace WHERE nspname = $1)`, schemaName, dom).Scan(&tenants, &domains, &schemas)
	if err != nil {
		t.Fatal(err)
	}
	return tenants, domains, schemas
}

func TestCreateMakesAnActiveTenantWithItsTables(t *testing.T) {
	t.Parallel()
	m, db := newManager(t, nil)
	ctx := context.Background()
	tn, err := m.Create(ctx, tenancy.CreateParams{Schema: "acme", Name: "Acme", Domain: "Acme.Localhost."})
	if err != nil {
		t.Fatal(err)
	}
	if tn.State != domain.TenantActive || tn.SchemaVersion < 1 {
		t.Fatalf("tenant = %+v, want active at version >= 1", tn)
	}
	got, err := m.Get(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Domains) != 1 || got.Domains[0].Domain != "acme.localhost" || !got.Domains[0].IsPrimary {
		t.Fatalf("domains = %+v, want the normalized primary domain acme.localhost", got.Domains)
	}
	// Every tenant so far lives on the catalog's cluster, and each way of
	// reading a tenant says so.
	if tn.Cluster != "main" || got.Cluster != "main" {
		t.Fatalf("cluster on create %q, on get %q; want main", tn.Cluster, got.Cluster)
	}
	if all, err := m.List(ctx); err != nil || len(all) != 1 || all[0].Cluster != "main" {
		t.Fatalf("list = %+v, %v; want acme on main", all, err)
	}
	if r, err := tenancy.NewResolver(db.DB, time.Minute).Resolve(ctx, "acme.localhost"); err != nil || r.Cluster != "main" {
		t.Fatalf("resolved %+v, %v; want acme on main", r, err)
	}
	if _, err := db.DB.Pool.Exec(ctx, `UPDATE public.tenants SET cluster = 'pg2' WHERE schema_name = 'acme'`); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Get(ctx, "acme"); err != nil || got.Cluster != "pg2" {
		t.Fatalf("after moving the row to pg2: %q, %v", got.Cluster, err)
	}
	if _, err := db.DB.Pool.Exec(ctx, `UPDATE public.tenants SET cluster = 'Not A Name' WHERE schema_name = 'acme'`); err == nil {
		t.Fatal("a cluster name TENANT_DATABASES could not hold was stored")
	}
	var tables []string
	rows, _ := db.DB.Pool.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'acme' ORDER BY 1`)
	tables, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := "audit_log,goose_db_version,move_marker,notification_events,notifications,outbox,products,users"
	if strings.Join(tables, ",") != want {
		t.Fatalf("tables in schema acme = %v, want %s", tables, want)
	}
}

type failingHook struct{ created, deleted int }

func (h *failingHook) TenantCreated(context.Context, domain.Tenant) error {
	h.created++
	return errors.New("search index could not be created")
}

func (h *failingHook) TenantDeleted(context.Context, domain.Tenant) error {
	h.deleted++
	return nil
}

func TestCreateIsAllOrNothing(t *testing.T) {
	t.Parallel()
	t.Run("a failing tenant migration leaves no tenant row, domain or schema", func(t *testing.T) {
		t.Parallel()
		broken := tenantMigrations(t, map[string]string{
			"00099_broken.sql": "-- +goose Up\nCREATE TABLE widgets (id int);\nTHIS IS NOT SQL;\n",
		})
		m, db := newManager(t, broken)
		_, err := m.Create(context.Background(), tenancy.CreateParams{Schema: "broken", Name: "Broken", Domain: "broken.localhost"})
		if err == nil {
			t.Fatal("Create succeeded with a broken migration set")
		}
		if tn, d, s := leftovers(t, db.DB, "broken", "broken.localhost"); tn+d+s != 0 {
			t.Fatalf("left behind: %d tenant rows, %d domains, %d schemas", tn, d, s)
		}
	})
	t.Run("a failing hook leaves nothing and is told to clean up", func(t *testing.T) {
		t.Parallel()
		hook := &failingHook{}
		m, db := newManager(t, nil, hook)
		_, err := m.Create(context.Background(), tenancy.CreateParams{Schema: "hooked", Name: "Hooked", Domain: "hooked.localhost"})
		if err == nil || !strings.Contains(err.Error(), "search index could not be created") {
			t.Fatalf("err = %v, want the hook's error", err)
		}
		if tn, d, s := leftovers(t, db.DB, "hooked", "hooked.localhost"); tn+d+s != 0 {
			t.Fatalf("left behind: %d tenant rows, %d domains, %d schemas", tn, d, s)
		}
		if hook.created != 1 || hook.deleted != 1 {
			t.Fatalf("hook calls: created %d, deleted %d; want 1 and 1", hook.created, hook.deleted)
		}
	})
}

func TestCreateRefusesBadSchemaNames(t *testing.T) {
	t.Parallel()
	m, db := newManager(t, nil)
	for _, name := range []string{
		"public", "pg_catalog", "pg_toast", "information_schema", "Acme", "a;drop schema public",
		"x", "ab", "1abc", "_abc", "acme-corp", "acme corp", `ac"me`, strings.Repeat("a", 64), "ünïcode", "acmé", "",
	} {
		t.Run(fmt.Sprintf("%q is refused", name), func(t *testing.T) {
			_, err := m.Create(context.Background(), tenancy.CreateParams{Schema: name, Name: "N", Domain: "n.localhost"})
			if domain.ErrorCode(err) != domain.EINVALID {
				t.Fatalf("err = %v, want %s", err, domain.EINVALID)
			}
			if domain.ErrorDetails(err)["schema"] == "" {
				t.Fatalf("details = %v, want a message for the schema field", domain.ErrorDetails(err))
			}
		})
	}
	var tenants, schemas int
	err := db.DB.Pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM public.tenants),
		(SELECT count(*) FROM pg_namespace WHERE nspname NOT IN ('public','information_schema') AND nspname NOT LIKE 'pg\_%')`).Scan(&tenants, &schemas)
	if err != nil {
		t.Fatal(err)
	}
	if tenants != 0 || schemas != 0 {
		t.Fatalf("after refused creates: %d tenants, %d extra schemas; want none", tenants, schemas)
	}
	t.Run("63 characters is accepted", func(t *testing.T) {
		if _, err := m.Create(context.Background(), tenancy.CreateParams{Schema: "a" + strings.Repeat("b", 62), Name: "Long", Domain: "long.localhost"}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCreateRefusesDuplicates(t *testing.T) {
	t.Parallel()
	m, db := newManager(t, nil)
	ctx := context.Background()
	orig, err := m.Create(ctx, tenancy.CreateParams{Schema: "first", Name: "First", Domain: "first.localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.DB.CreateUser(ctx, "first", postgres.NewUser{Email: "a@first.test", PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	// A schema that exists in PostgreSQL but is no tenant's.
	if _, err := db.DB.Pool.Exec(ctx, `CREATE SCHEMA stray`); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		p     tenancy.CreateParams
		field string
	}{
		{"same schema", tenancy.CreateParams{Schema: "first", Name: "Other", Domain: "other.localhost"}, "schema"},
		{"same domain", tenancy.CreateParams{Schema: "second", Name: "Second", Domain: "first.localhost"}, "domain"},
		{"same domain in other case", tenancy.CreateParams{Schema: "third", Name: "Third", Domain: "FIRST.localhost"}, "domain"},
		{"a non-tenant schema of that name", tenancy.CreateParams{Schema: "stray", Name: "Stray", Domain: "stray.localhost"}, "schema"},
	}
	for _, c := range cases {
		t.Run(c.name+" is a conflict naming the field", func(t *testing.T) {
			_, err := m.Create(ctx, c.p)
			if domain.ErrorCode(err) != domain.ECONFLICT || domain.ErrorDetails(err)[c.field] == "" {
				t.Fatalf("err = %v (details %v), want %s on %s", err, domain.ErrorDetails(err), domain.ECONFLICT, c.field)
			}
		})
	}
	got, err := m.Get(ctx, "first")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != orig.Name || got.State != domain.TenantActive || len(got.Domains) != 1 || got.Domains[0].Domain != "first.localhost" {
		t.Fatalf("existing tenant changed: %+v", got)
	}
	var users int
	if err := db.DB.InTenant(ctx, "first", func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&users)
	}); err != nil || users != 1 {
		t.Fatalf("existing tenant's users: %d (err %v), want 1", users, err)
	}
	if tn, d, s := leftovers(t, db.DB, "second", "second.localhost"); tn+d+s != 0 {
		t.Fatalf("refused create left %d tenant rows, %d domains, %d schemas", tn, d, s)
	}
}

func TestDeleteDropsSchemaAndRows(t *testing.T) {
	t.Parallel()
	m, db := newManager(t, nil)
	ctx := context.Background()
	if _, err := m.Create(ctx, tenancy.CreateParams{Schema: "gone", Name: "Gone", Domain: "gone.localhost"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if tn, d, s := leftovers(t, db.DB, "gone", "gone.localhost"); tn+d+s != 0 {
		t.Fatalf("delete left %d tenant rows, %d domains, %d schemas", tn, d, s)
	}
	if err := m.Delete(ctx, "gone"); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("second delete: err = %v, want %s", err, domain.ENOTFOUND)
	}
}

// TestSearchPathNeverLeaks runs 200 interleaved transactions of 8 tenants on
// a pool of 3 connections, so every connection serves many tenants in turn.
func TestSearchPathNeverLeaks(t *testing.T) {
	t.Parallel()
	m, tdb := newManager(t, nil)
	ctx := context.Background()
	// Like the test's own pool (through PgBouncer under SAAS_TEST_POOLER=1).
	db := tdb.MustPool(t, 3)
	const tenants, txs = 8, 200
	names := make([]string, tenants)
	for i := range names {
		names[i] = fmt.Sprintf("leak%02d", i)
		if _, err := m.Create(ctx, tenancy.CreateParams{Schema: names[i], Name: names[i], Domain: names[i] + ".localhost"}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, txs)
	for i := range txs {
		wg.Go(func() {
			s := names[i%tenants]
			errs <- db.InTenant(ctx, s, func(tx pgx.Tx) error {
				var cur string
				if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&cur); err != nil {
					return err
				}
				if cur != s {
					return fmt.Errorf("tx of %s runs in schema %s", s, cur)
				}
				_, err := tx.Exec(ctx, `INSERT INTO users (email, password_hash) VALUES ($1, 'x')`,
					fmt.Sprintf("u%03d@%s.test", i, s))
				return err
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range names {
		var total, own int
		err := db.InTenant(ctx, s, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE email LIKE '%@' || $1 || '.test') FROM users`, s).Scan(&total, &own)
		})
		if err != nil {
			t.Fatal(err)
		}
		if total != txs/tenants || own != total {
			t.Errorf("schema %s holds %d users, %d of them its own; want %d, all its own", s, total, own, txs/tenants)
		}
	}
	// Outside a tenant transaction, a pooled connection is back on the default path.
	for range 3 {
		var path string
		if err := db.Pool.QueryRow(ctx, `SHOW search_path`).Scan(&path); err != nil {
			t.Fatal(err)
		}
		if path != `"$user", public` {
			t.Fatalf("pooled connection's search_path = %q after tenant transactions", path)
		}
	}
	var public int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'users'`).Scan(&public); err != nil || public != 0 {
		t.Fatalf("a users table appeared in public (count %d, err %v)", public, err)
	}
}

func TestMigrateAll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, db := newManager(t, nil)
	const n = 6
	for i := range n {
		s := fmt.Sprintf("mig%02d", i)
		if _, err := m.Create(ctx, tenancy.CreateParams{Schema: s, Name: s, Domain: s + ".localhost"}); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("with nothing pending, a run changes nothing", func(t *testing.T) {
		for range 2 {
			rep, err := m.MigrateAll(ctx, tenancy.MigrateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Pending != 0 || rep.Migrated != 0 || len(rep.Failed) != 0 {
				t.Fatalf("report = %+v, want nothing pending", rep)
			}
		}
	})
	t.Run("a new tenant migration reaches every tenant, once", func(t *testing.T) {
		more := tenantMigrations(t, map[string]string{
			"00900_sku_index.sql": "-- +goose Up\nALTER TABLE products ADD COLUMN barcode text;\nCREATE INDEX products_barcode_idx ON products (barcode);\n",
		})
		runner, err := schema.NewRunner(db.URL, more)
		if err != nil {
			t.Fatal(err)
		}
		m2 := tenancy.NewManager(db.DB, runner, slog.New(slog.DiscardHandler))
		var calls int
		rep, err := m2.MigrateAll(ctx, tenancy.MigrateOptions{Width: 3, Progress: func(tenancy.MigrateProgress) { calls++ }})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Target != 900 || rep.Pending != n || rep.Migrated != n || len(rep.Failed) != 0 || calls != n {
			t.Fatalf("report = %+v, progress calls %d; want %d migrated to 900", rep, calls, n)
		}
		var cols int
		if err := db.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns
			WHERE table_schema LIKE 'mig%' AND table_name = 'products' AND column_name = 'barcode'`).Scan(&cols); err != nil || cols != n {
			t.Fatalf("barcode column in %d schemas (err %v), want %d", cols, err, n)
		}
		rep, err = m2.MigrateAll(ctx, tenancy.MigrateOptions{})
		if err != nil || rep.Pending != 0 {
			t.Fatalf("second run: report %+v, err %v; want nothing pending", rep, err)
		}
	})
	t.Run("one failing tenant is reported and the others migrate", func(t *testing.T) {
		// mig03 already has the column the next migration adds, so it fails there.
		if _, err := db.DB.Pool.Exec(ctx, `ALTER TABLE mig03.products ADD COLUMN weight int`); err != nil {
			t.Fatal(err)
		}
		more := tenantMigrations(t, map[string]string{
			"00900_sku_index.sql": "-- +goose Up\nALTER TABLE products ADD COLUMN barcode text;\nCREATE INDEX products_barcode_idx ON products (barcode);\n",
			"00901_size.sql":      "-- +goose Up\nALTER TABLE products ADD COLUMN size int;\n",
			"00902_weight.sql":    "-- +goose Up\nALTER TABLE products ADD COLUMN weight int;\n",
		})
		runner, err := schema.NewRunner(db.URL, more)
		if err != nil {
			t.Fatal(err)
		}
		m3 := tenancy.NewManager(db.DB, runner, slog.New(slog.DiscardHandler))
		rep, err := m3.MigrateAll(ctx, tenancy.MigrateOptions{Width: 2})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Migrated != n-1 || len(rep.Failed) != 1 || rep.Failed[0].Schema != "mig03" {
			t.Fatalf("report = %+v, want mig03 alone failed", rep)
		}
		var behind []string
		rows, _ := db.DB.Pool.Query(ctx, `SELECT schema_name FROM public.tenants WHERE schema_version < 902`)
		behind, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(behind) != 1 || behind[0] != "mig03" {
			t.Fatalf("tenants behind: %v (err %v), want [mig03]", behind, err)
		}
		// All or nothing: mig03 kept none of the run's migrations, 901
		// (which alone would have worked) included.
		var size, rows901 int
		if err := db.DB.Pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM information_schema.columns WHERE table_schema = 'mig03' AND table_name = 'products' AND column_name = 'size'),
			(SELECT count(*) FROM mig03.goose_db_version WHERE version_id = 901)`).Scan(&size, &rows901); err != nil {
			t.Fatal(err)
		}
		if size != 0 || rows901 != 0 {
			t.Fatalf("mig03 has the size column %d time(s) and %d goose rows of 901, want none: its migrations are one transaction", size, rows901)
		}

		// Once the cause is gone a rerun migrates mig03 alone, and a
		// third run finds nothing to do.
		if _, err := db.DB.Pool.Exec(ctx, `ALTER TABLE mig03.products DROP COLUMN weight`); err != nil {
			t.Fatal(err)
		}
		rep, err = m3.MigrateAll(ctx, tenancy.MigrateOptions{Width: 2})
		if err != nil || rep.Pending != 1 || rep.Migrated != 1 || len(rep.Failed) != 0 {
			t.Fatalf("rerun: report %+v, err %v; want mig03 migrated", rep, err)
		}
		var versions []int64
		rows, _ = db.DB.Pool.Query(ctx, `SELECT version_id FROM mig03.goose_db_version WHERE version_id >= 900 ORDER BY id`)
		if versions, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil || fmt.Sprint(versions) != "[900 901 902]" {
			t.Fatalf("mig03's goose rows from 900: %v (err %v), want [900 901 902]", versions, err)
		}
		rep, err = m3.MigrateAll(ctx, tenancy.MigrateOptions{Width: 2})
		if err != nil || rep.Pending != 0 {
			t.Fatalf("third run: report %+v, err %v; want nothing pending", rep, err)
		}
	})
	t.Run("goose runs what cannot run in a transaction, and sees the transactional runs' versions", func(t *testing.T) {
		more := tenantMigrations(t, map[string]string{
			"00900_sku_index.sql":    "-- +goose Up\nALTER TABLE products ADD COLUMN barcode text;\nCREATE INDEX products_barcode_idx ON products (barcode);\n",
			"00901_size.sql":         "-- +goose Up\nALTER TABLE products ADD COLUMN size int;\n",
			"00902_weight.sql":       "-- +goose Up\nALTER TABLE products ADD COLUMN weight int;\n",
			"00903_concurrently.sql": "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY products_weight_idx ON products (weight);\n",
		})
		runner, err := schema.NewRunner(db.URL, more)
		if err != nil {
			t.Fatal(err)
		}
		m4 := tenancy.NewManager(db.DB, runner, slog.New(slog.DiscardHandler))
		rep, err := m4.MigrateAll(ctx, tenancy.MigrateOptions{Width: 2})
		if err != nil || rep.Pending != n || rep.Migrated != n || len(rep.Failed) != 0 {
			t.Fatalf("report %+v, err %v; want %d migrated to 903", rep, err, n)
		}
		var idx int
		if err := db.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_indexes
			WHERE schemaname LIKE 'mig%' AND indexname = 'products_weight_idx'`).Scan(&idx); err != nil || idx != n {
			t.Fatalf("products_weight_idx in %d schemas (err %v), want %d", idx, err, n)
		}
		// goose itself finds every schema up to date.
		for i := range n {
			v, err := runner.MigrateTenant(ctx, fmt.Sprintf("mig%02d", i))
			if err != nil || v != 903 {
				t.Fatalf("goose on mig%02d: version %d, err %v; want 903 with nothing to apply", i, v, err)
			}
		}
	})
}

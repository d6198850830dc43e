package tenancy_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/pkg/testenv"
	"github.com/tenantworks/saas/schema"
)

// catalogRows counts the tenant's rows in public.tenants and public.domains
// on main.
func catalogRows(t *testing.T, d *testenv.Database, schemaName, dom string) (tenants, domains int) {
	t.Helper()
	if err := d.DB.Pool.QueryRow(t.Context(), `SELECT
		(SELECT count(*) FROM public.tenants WHERE schema_name = $1),
		(SELECT count(*) FROM public.domains WHERE domain = $2)`, schemaName, dom).Scan(&tenants, &domains); err != nil {
		t.Fatal(err)
	}
	return tenants, domains
}

func TestCreatePlacesTheTenantOnItsCluster(t *testing.T) {
	t.Parallel()
	w := testenv.MustWorld(t, testenv.WithClusters())
	m, d := w.Manager, w.Database
	other := d.Clusters[1].Name
	ctx := t.Context()

	t.Run("an explicit cluster holds the schema, and no other cluster does", func(t *testing.T) {
		tn, err := m.Create(ctx, tenancy.CreateParams{Schema: "placed", Name: "Placed", Domain: "placed.test", Cluster: other})
		if err != nil {
			t.Fatal(err)
		}
		if tn.Cluster != other {
			t.Fatalf("created on %q, want %s", tn.Cluster, other)
		}
		if on := d.SchemaClusters(t, "placed"); len(on) != 1 || on[0] != other {
			t.Fatalf("schema placed is on %v, want [%s]", on, other)
		}
		if got, err := m.Get(ctx, "placed"); err != nil || got.Cluster != other || got.State != domain.TenantActive {
			t.Fatalf("get = %+v, %v; want active on %s", got, err, other)
		}
		// Migrated there: its tables take work through the routing DB.
		if _, _, err := d.DB.ListProducts(ctx, "placed", postgres.ListParams{Limit: 1}); err != nil {
			t.Fatalf("products of the placed tenant: %v", err)
		}
		var tables int
		if err := d.Clusters[1].DB.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'placed'`).Scan(&tables); err != nil || tables == 0 {
			t.Fatalf("tables of placed on %s: %d (err %v), want its migrated tables", other, tables, err)
		}
	})
	t.Run("an explicit main holds it on main", func(t *testing.T) {
		if _, err := m.Create(ctx, tenancy.CreateParams{Schema: "on_main", Name: "On main", Domain: "on-main.test", Cluster: "main"}); err != nil {
			t.Fatal(err)
		}
		if on := d.SchemaClusters(t, "on_main"); len(on) != 1 || on[0] != "main" {
			t.Fatalf("schema on_main is on %v, want [main]", on)
		}
	})
	t.Run("delete drops the schema on the tenant's cluster", func(t *testing.T) {
		if err := m.Delete(ctx, "placed"); err != nil {
			t.Fatal(err)
		}
		if on := d.SchemaClusters(t, "placed"); len(on) != 0 {
			t.Fatalf("schema placed left on %v", on)
		}
		if tenants, domains := catalogRows(t, d, "placed", "placed.test"); tenants != 0 || domains != 0 {
			t.Fatalf("rows left: %d tenant(s), %d domain(s)", tenants, domains)
		}
		// The name is free again, on any cluster.
		if _, err := m.Create(ctx, tenancy.CreateParams{Schema: "placed", Name: "Again", Domain: "placed.test", Cluster: "main"}); err != nil {
			t.Fatalf("create again on main: %v", err)
		}
		if on := d.SchemaClusters(t, "placed"); len(on) != 1 || on[0] != "main" {
			t.Fatalf("schema placed is on %v, want [main]", on)
		}
		if _, _, err := d.DB.ListProducts(ctx, "placed", postgres.ListParams{Limit: 1}); err != nil {
			t.Fatalf("products of the tenant created again on main: %v", err)
		}
	})
}

func TestCreateWithoutAClusterPicksTheOneWithTheFewestTenants(t *testing.T) {
	t.Parallel()
	w := testenv.MustWorld(t, testenv.WithClusters())
	m, d := w.Manager, w.Database
	other := d.Clusters[1].Name
	ctx := t.Context()
	create := func(s, cluster string) domain.Tenant {
		t.Helper()
		tn, err := m.Create(ctx, tenancy.CreateParams{Schema: s, Name: s, Domain: s + ".test", Cluster: cluster})
		if err != nil {
			t.Fatalf("create %s: %v", s, err)
		}
		return tn
	}
	steps := []struct {
		name, schema, want string
	}{
		{"with none anywhere, the tie goes to main", "first", "main"},
		{"then the other cluster has fewer", "second", other},
		{"tied again, main", "third", "main"},
	}
	for _, s := range steps {
		if tn := create(s.schema, ""); tn.Cluster != s.want {
			t.Fatalf("%s: %s went to %s, want %s", s.name, s.schema, tn.Cluster, s.want)
		}
		if on := d.SchemaClusters(t, s.schema); len(on) != 1 || on[0] != s.want {
			t.Fatalf("%s: schema %s is on %v, want [%s]", s.name, s.schema, on, s.want)
		}
	}
	// Two more placed by hand on the other cluster: 2 on main, 3 there.
	create("fourth", other)
	create("fifth", other)
	if tn := create("sixth", ""); tn.Cluster != "main" {
		t.Fatalf("with 2 on main and 3 on %s, sixth went to %s, want main", other, tn.Cluster)
	}

	// Created all at once, tenants are spread as if one after the other.
	const n = 6
	errs := make(chan error, n)
	for i := range n {
		go func() {
			s := fmt.Sprintf("burst%d", i)
			_, err := m.Create(context.Background(), tenancy.CreateParams{Schema: s, Name: s, Domain: s + ".test"})
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var onMain, onOther int
	if err := d.DB.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE cluster = 'main'), count(*) FILTER (WHERE cluster = $1)
		FROM public.tenants`, other).Scan(&onMain, &onOther); err != nil {
		t.Fatal(err)
	}
	if onMain != 6 || onOther != 6 {
		t.Fatalf("after the burst: %d on main, %d on %s; want 6 and 6", onMain, onOther, other)
	}
}

func TestCreateOnAnUnknownClusterIsInvalidAndLeavesNothing(t *testing.T) {
	t.Parallel()
	w := testenv.MustWorld(t, testenv.WithClusters())
	m, d := w.Manager, w.Database
	for _, tc := range []struct {
		name string
		p    tenancy.CreateParams
		want map[string]string
	}{
		{"a cluster of no name given", tenancy.CreateParams{Schema: "nowhere", Name: "Nowhere", Domain: "nowhere.test", Cluster: "pg9"},
			map[string]string{"cluster": "is not one of: main, " + d.Clusters[1].Name}},
		{"with a bad schema too, both are named", tenancy.CreateParams{Schema: "pg_bad", Name: "Nowhere", Domain: "nowhere.test", Cluster: "Main"},
			map[string]string{"cluster": "is not one of: main, " + d.Clusters[1].Name}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Create(t.Context(), tc.p)
			var de *domain.Error
			if !errors.As(err, &de) || de.Code != domain.EINVALID || de.Details["cluster"] != tc.want["cluster"] {
				t.Fatalf("error %v, want EINVALID with cluster %q", err, tc.want["cluster"])
			}
			if tc.p.Schema == "pg_bad" && de.Details["schema"] == "" {
				t.Fatalf("details %v, want the schema named too", de.Details)
			}
			if on := d.SchemaClusters(t, tc.p.Schema); len(on) != 0 {
				t.Fatalf("schema left on %v", on)
			}
			if tenants, domains := catalogRows(t, d, tc.p.Schema, tc.p.Domain); tenants != 0 || domains != 0 {
				t.Fatalf("rows left: %d tenant(s), %d domain(s)", tenants, domains)
			}
		})
	}
}

func TestACreateFailingOnAnotherClusterLeavesNothingAnywhere(t *testing.T) {
	t.Parallel()
	hook := &failingHook{}
	w := testenv.MustWorld(t, testenv.WithClusters(), testenv.WithHooks(hook))
	m, d := w.Manager, w.Database
	other := d.Clusters[1]
	ctx := t.Context()

	t.Run("a hook failing after the schema was made and migrated there", func(t *testing.T) {
		_, err := m.Create(ctx, tenancy.CreateParams{Schema: "hooked", Name: "Hooked", Domain: "hooked.test", Cluster: other.Name})
		if err == nil || hook.created != 1 {
			t.Fatalf("create = %v with %d hook call(s), want the hook's error", err, hook.created)
		}
		if on := d.SchemaClusters(t, "hooked"); len(on) != 0 {
			t.Fatalf("schema hooked left on %v", on)
		}
		if tenants, domains := catalogRows(t, d, "hooked", "hooked.test"); tenants != 0 || domains != 0 {
			t.Fatalf("rows left: %d tenant(s), %d domain(s)", tenants, domains)
		}
		if hook.deleted != 1 {
			t.Fatalf("delete hook ran %d time(s), want 1 (the undo)", hook.deleted)
		}
	})
	t.Run("a schema already there is a conflict, and the one there stays", func(t *testing.T) {
		if _, err := other.DB.Pool.Exec(ctx, `CREATE SCHEMA squatter; CREATE TABLE squatter.keep (id int)`); err != nil {
			t.Fatal(err)
		}
		_, err := m.Create(ctx, tenancy.CreateParams{Schema: "squatter", Name: "Squatter", Domain: "squatter.test", Cluster: other.Name})
		var de *domain.Error
		if !errors.As(err, &de) || de.Code != domain.ECONFLICT {
			t.Fatalf("error %v, want ECONFLICT", err)
		}
		if tenants, domains := catalogRows(t, d, "squatter", "squatter.test"); tenants != 0 || domains != 0 {
			t.Fatalf("rows left: %d tenant(s), %d domain(s)", tenants, domains)
		}
		var kept int
		if err := other.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'squatter' AND tablename = 'keep'`).Scan(&kept); err != nil || kept != 1 {
			t.Fatalf("the schema that was there lost its table (%d, err %v)", kept, err)
		}
		if on := d.SchemaClusters(t, "squatter"); len(on) != 1 || on[0] != other.Name {
			t.Fatalf("schema squatter is on %v, want only the one that was on %s", on, other.Name)
		}
	})
}

func TestMigrateAllMigratesEachTenantOnItsCluster(t *testing.T) {
	t.Parallel()
	w := testenv.MustWorld(t, testenv.WithClusters())
	m, d := w.Manager, w.Database
	other := d.Clusters[1]
	ctx := t.Context()
	placed := map[string]string{"m_one": "main", "m_two": "main", "o_one": other.Name, "o_two": other.Name, "o_three": other.Name}
	for s, c := range placed {
		if _, err := m.Create(ctx, tenancy.CreateParams{Schema: s, Name: s, Domain: strings.ReplaceAll(s, "_", "-") + ".test", Cluster: c}); err != nil {
			t.Fatal(err)
		}
	}

	more := tenantMigrations(t, map[string]string{
		"00900_barcode.sql": "-- +goose Up\nALTER TABLE products ADD COLUMN barcode text;\n",
	})
	runner, err := schema.NewRunner(d.URL, more)
	if err != nil {
		t.Fatal(err)
	}
	m2 := tenancy.NewManager(d.DB, runner, slog.New(slog.DiscardHandler))
	var (
		calls    = map[string]int{}
		lastDone int
	)
	rep, err := m2.MigrateAll(ctx, tenancy.MigrateOptions{Width: 2, Progress: func(p tenancy.MigrateProgress) {
		calls[p.Cluster]++
		if p.Done != calls[p.Cluster] || p.AllDone != lastDone+1 || p.AllTotal != len(placed) {
			t.Errorf("progress %+v after %d call(s) on %s and %d in all", p, calls[p.Cluster]-1, p.Cluster, lastDone)
		}
		lastDone = p.AllDone
	}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pending != 5 || rep.Migrated != 5 || len(rep.Failed) != 0 || calls["main"] != 2 || calls[other.Name] != 3 {
		t.Fatalf("report %+v, progress calls %v; want 5 migrated, 2 on main and 3 on %s", rep, calls, other.Name)
	}
	want := []tenancy.ClusterMigrateReport{{Cluster: "main", Pending: 2, Migrated: 2}, {Cluster: other.Name, Pending: 3, Migrated: 3}}
	if fmt.Sprint(rep.Clusters) != fmt.Sprint(want) {
		t.Fatalf("per cluster %+v, want %+v", rep.Clusters, want)
	}
	for s, c := range placed {
		for _, cl := range d.Clusters {
			var cols int
			if err := cl.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns
				WHERE table_schema = $1 AND table_name = 'products' AND column_name = 'barcode'`, s).Scan(&cols); err != nil {
				t.Fatal(err)
			}
			if wantCols := map[bool]int{true: 1, false: 0}[cl.Name == c]; cols != wantCols {
				t.Fatalf("%s (on %s) has %d barcode column(s) on %s, want %d", s, c, cols, cl.Name, wantCols)
			}
		}
	}
	rows, _ := d.DB.Pool.Query(ctx, `SELECT schema_version FROM public.tenants`)
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil || len(versions) != 5 {
		t.Fatalf("versions %v, %v", versions, err)
	}
	for _, v := range versions {
		if v != 900 {
			t.Fatalf("recorded versions %v, want 900 for every tenant", versions)
		}
	}
	if rep, err := m2.MigrateAll(ctx, tenancy.MigrateOptions{}); err != nil || rep.Pending != 0 {
		t.Fatalf("second run: %+v, %v; want nothing pending", rep, err)
	}

	t.Run("a tenant on a cluster this process does not know fails alone", func(t *testing.T) {
		if _, err := d.DB.Pool.Exec(ctx, `UPDATE public.tenants SET schema_version = 5, cluster = 'pg9' WHERE schema_name = 'o_one';
			UPDATE public.tenants SET schema_version = 5 WHERE schema_name = 'm_one'`); err != nil {
			t.Fatal(err)
		}
		rep, err := m2.MigrateAll(ctx, tenancy.MigrateOptions{})
		if err != nil || rep.Pending != 2 || rep.Migrated != 1 || len(rep.Failed) != 1 ||
			rep.Failed[0].Schema != "o_one" || !errors.Is(rep.Failed[0].Err, postgres.ErrUnknownCluster) {
			t.Fatalf("report %+v, %v; want m_one migrated and o_one failed on an unknown cluster", rep, err)
		}
	})
}

func TestMigrateSharedMigratesEveryCluster(t *testing.T) {
	t.Parallel()
	w := testenv.MustWorld(t, testenv.WithClusters())
	d := w.Database
	ctx := t.Context()
	// The other cluster as a new one is: nothing in public.
	if _, err := d.Clusters[1].DB.Pool.Exec(ctx, `DROP SCHEMA public CASCADE; CREATE SCHEMA public`); err != nil {
		t.Fatal(err)
	}
	vs, err := w.Manager.MigrateShared(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].Cluster != "main" || vs[1].Cluster != d.Clusters[1].Name || vs[0].Version < 6 || vs[1].Version != vs[0].Version {
		t.Fatalf("versions %+v, want main and %s at the same latest version", vs, d.Clusters[1].Name)
	}
	// What tenant schemas there need: the outbox's queue and trigger function.
	var table, fn bool
	if err := d.Clusters[1].DB.Pool.QueryRow(ctx, `SELECT to_regclass('public.outbox_pending') IS NOT NULL,
		to_regproc('public.saas_outbox_enqueue') IS NOT NULL`).Scan(&table, &fn); err != nil || !table || !fn {
		t.Fatalf("on %s: outbox_pending %t, saas_outbox_enqueue %t (err %v); want both", d.Clusters[1].Name, table, fn, err)
	}
	if _, err := w.Manager.Create(ctx, tenancy.CreateParams{Schema: "after", Name: "After", Domain: "after.test", Cluster: d.Clusters[1].Name}); err != nil {
		t.Fatalf("a tenant on the newly migrated cluster: %v", err)
	}
}

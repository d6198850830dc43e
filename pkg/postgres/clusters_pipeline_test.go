package postgres_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/testenv"
)

func TestAnOutboxWriteIsMarkedAndDrainedOnTheTenantsCluster(t *testing.T) {
	t.Parallel()
	d := testenv.MustClusterDatabases(t)
	ctx := t.Context()
	main, other := d.Clusters[0], d.Clusters[1]
	d.MustPlaceTenant(t, "far", other.Name)
	d.MustPlaceTenant(t, "near", postgres.MainCluster)
	for i, s := range []string{"far", "far", "near"} {
		if _, err := d.DB.CreateProduct(ctx, s, domain.ProductPatch{Name: ptr("Lamp"), SKU: ptr(fmt.Sprintf("L-%d", i)), Price: ptr("1.00"), Currency: ptr("EUR")}, outboxRow, nil); err != nil {
			t.Fatal(err)
		}
	}

	pending := func(c postgres.Cluster) []string {
		t.Helper()
		got, err := c.DB.PendingTenants(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		return got
	}
	if got := pending(other); !slices.Equal(got, []string{"far"}) {
		t.Fatalf("pending on %s = %v, want [far]", other.Name, got)
	}
	if got := pending(main); !slices.Equal(got, []string{"near"}) {
		t.Fatalf("pending on main = %v, want [near]", got)
	}

	t.Run("the backlog metrics count every cluster", func(t *testing.T) {
		top, err := d.DB.OutboxBacklog(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		want := []postgres.PendingCount{{Schema: "far", Pending: 2}, {Schema: "near", Pending: 1}}
		if !slices.Equal(top, want) {
			t.Fatalf("backlog = %v, want %v", top, want)
		}
		if top, err := d.DB.OutboxBacklog(ctx, 1); err != nil || !slices.Equal(top, want[:1]) {
			t.Fatalf("backlog of 1 = %v, %v; want %v", top, err, want[:1])
		}
		if _, err := other.DB.Pool.Exec(ctx, `UPDATE public.outbox_pending SET created_at = now() - interval '1 hour'`); err != nil {
			t.Fatal(err)
		}
		if age, err := d.DB.OldestPendingOutbox(ctx); err != nil || age < time.Hour {
			t.Fatalf("oldest pending = %s, %v; want pg2's hour", age, err)
		}
	})

	drain := func(c postgres.Cluster, s string) ([]postgres.OutboxRow, error) {
		var got []postgres.OutboxRow
		_, err := c.DB.DrainOutbox(ctx, s, 100, func(rows []postgres.OutboxRow) error {
			got = append(got, rows...)
			return nil
		})
		return got, err
	}
	if _, err := drain(main, "far"); !errors.Is(err, postgres.ErrNoSchema) {
		t.Fatalf("draining far on main: %v, want ErrNoSchema (its outbox is on %s)", err, other.Name)
	}
	rows, err := drain(other, "far")
	if err != nil || len(rows) != 2 {
		t.Fatalf("draining far on %s: %d rows, %v; want its 2", other.Name, len(rows), err)
	}
	if got := pending(other); len(got) != 0 {
		t.Fatalf("pending on %s after the drain = %v, want none", other.Name, got)
	}
	if got := pending(main); !slices.Equal(got, []string{"near"}) {
		t.Fatalf("pending on main after far's drain = %v, want [near] untouched", got)
	}
}

func TestPruneAuditPrunesTenantsOnEveryCluster(t *testing.T) {
	t.Parallel()
	d := testenv.MustClusterDatabases(t)
	ctx := t.Context()
	const day = 24 * time.Hour
	d.MustPlaceTenant(t, "prune_near", postgres.MainCluster)
	d.MustPlaceTenant(t, "prune_far", d.Clusters[1].Name)
	for _, s := range []string{"prune_near", "prune_far"} {
		writeAged(t, d.DB, s, "old", 3, 40*day)
		writeAged(t, d.DB, s, "new", 2, 0)
	}

	rep, err := d.DB.PruneAudit(ctx, time.Now().Add(-30*day), 2)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 6 || rep.Pruned != 2 || rep.Tenants != 2 {
		t.Fatalf("report = %+v, want 6 deleted from 2 trails, 2 tenants looked at", rep)
	}
	for _, s := range []string{"prune_near", "prune_far"} {
		if got := actions(t, d.DB, s); len(got) != 1 || got["new"] != 2 {
			t.Errorf("trail of %s holds %v after pruning, want the 2 new entries", s, got)
		}
	}

	t.Run("a cluster this process does not know is an error that spares the others", func(t *testing.T) {
		if _, err := d.DB.Pool.Exec(ctx, `INSERT INTO public.tenants (schema_name, display_name, state, cluster)
			VALUES ('prune_lost', 'x', 'active', 'nowhere')`); err != nil {
			t.Fatal(err)
		}
		writeAged(t, d.DB, "prune_far", "old", 1, 40*day)
		rep, err := d.DB.PruneAudit(ctx, time.Now().Add(-30*day), 2)
		if !errors.Is(err, postgres.ErrUnknownCluster) {
			t.Fatalf("error %v, want ErrUnknownCluster", err)
		}
		if rep.Deleted != 1 {
			t.Fatalf("report = %+v, want prune_far's old entry deleted all the same", rep)
		}
	})
}

func TestProductVersionsOfATenantOnAnotherClusterReadItsStateOnMain(t *testing.T) {
	t.Parallel()
	d := testenv.MustClusterDatabases(t)
	ctx := t.Context()
	d.MustPlaceTenant(t, "versions_far", d.Clusters[1].Name)
	p, err := d.DB.CreateProduct(ctx, "versions_far", domain.ProductPatch{Name: ptr("Lamp"), SKU: ptr("V-1"), Price: ptr("1.00"), Currency: ptr("EUR")}, outboxRow, nil)
	if err != nil {
		t.Fatal(err)
	}
	gone := "01970000-0000-7000-8000-000000000001"
	got, err := d.DB.ProductVersions(ctx, "versions_far", []string{p.ID, gone})
	if err != nil || len(got) != 1 || got[p.ID] != 1 {
		t.Fatalf("versions = %v, %v; want %s at 1 and nothing else", got, err, p.ID)
	}
	if got, err := d.DB.ProductVersions(ctx, "versions_far", nil); err != nil || len(got) != 0 {
		t.Fatalf("versions of no ids = %v, %v; want none, no error", got, err)
	}
	if _, err := d.DB.Pool.Exec(ctx, `UPDATE public.tenants SET state = 'deleting' WHERE schema_name = 'versions_far'`); err != nil {
		t.Fatal(err)
	}
	if _, err := d.DB.ProductVersions(ctx, "versions_far", []string{p.ID}); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("versions of a tenant being deleted: %v, want ENOTFOUND", err)
	}
}

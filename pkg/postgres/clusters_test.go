package postgres_test

import (
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/testenv"
	"github.com/tenantworks/saas/schema"
)

// placeTenant records a tenant on the named cluster of d and migrates its
// schema there, as tenant create does.
func placeTenant(t *testing.T, d *testenv.Database, schemaName, cluster string) {
	t.Helper()
	ctx := t.Context()
	var direct string
	for _, c := range d.Clusters {
		if c.Name == cluster {
			direct = c.DirectURL
			if _, err := c.DB.Pool.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schemaName}.Sanitize()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := d.DB.Pool.Exec(ctx, `INSERT INTO public.tenants (schema_name, display_name, state, cluster)
		VALUES ($1, $1, 'active', $2)`, schemaName, cluster); err != nil {
		t.Fatal(err)
	}
	r, err := schema.NewRunner(direct, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.MigrateTenant(ctx, schemaName); err != nil {
		t.Fatal(err)
	}
}

// clusterHolding reports which cluster's database has a product called
// name in the tenant's schema.
func clusterHolding(t *testing.T, d *testenv.Database, schemaName, name string) []string {
	t.Helper()
	var out []string
	for _, c := range d.Clusters {
		var n int
		err := c.DB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM `+pgx.Identifier{schemaName, "products"}.Sanitize()+
			` WHERE name = $1`, name).Scan(&n)
		if err == nil && n > 0 {
			out = append(out, c.Name)
		}
	}
	return out
}

func TestTenantWorkGoesToTheClusterThatHoldsTheTenant(t *testing.T) {
	t.Parallel()
	d := testenv.MustClusterDatabases(t)
	ctx := t.Context()
	placeTenant(t, d, "on_main", postgres.MainCluster)
	placeTenant(t, d, "on_other", d.Clusters[1].Name)

	for _, tt := range []struct{ schema, want string }{{"on_main", postgres.MainCluster}, {"on_other", d.Clusters[1].Name}} {
		p, err := d.DB.CreateProduct(ctx, tt.schema, domain.ProductPatch{Name: ptr("Lamp " + tt.schema), SKU: ptr("L-1"), Price: ptr("1.00"), Currency: ptr("EUR")}, outboxRow, nil)
		if err != nil {
			t.Fatalf("create on %s: %v", tt.schema, err)
		}
		if got := clusterHolding(t, d, tt.schema, "Lamp "+tt.schema); len(got) != 1 || got[0] != tt.want {
			t.Fatalf("%s's product is on %v, want [%s]", tt.schema, got, tt.want)
		}
		if _, err := d.DB.GetProduct(ctx, tt.schema, p.ID); err != nil {
			t.Fatalf("read back on %s: %v", tt.schema, err)
		}
		_, name, err := d.DB.ForTenant(ctx, tt.schema)
		if err != nil || name != tt.want {
			t.Fatalf("ForTenant(%s) = %q, %v; want %s", tt.schema, name, err, tt.want)
		}
	}
}

func TestARequestCaughtByAMoveRunsAgainOnTheNewCluster(t *testing.T) {
	t.Parallel()
	d := testenv.MustClusterDatabases(t)
	ctx := t.Context()
	other := d.Clusters[1]
	placeTenant(t, d, "mover", postgres.MainCluster)
	if _, err := d.DB.CreateProduct(ctx, "mover", domain.ProductPatch{Name: ptr("Before"), SKU: ptr("B-1"), Price: ptr("1.00"), Currency: ptr("EUR")}, outboxRow, nil); err != nil {
		t.Fatal(err)
	}
	// What a move does at its switch, without the copy: the schema exists
	// on the target, public.tenants names it, the source's is gone. This
	// process still has main cached.
	if _, err := other.DB.Pool.Exec(ctx, `CREATE SCHEMA mover`); err != nil {
		t.Fatal(err)
	}
	r, err := schema.NewRunner(other.DirectURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.MigrateTenant(ctx, "mover"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.DB.Pool.Exec(ctx, `UPDATE public.tenants SET cluster = $1 WHERE schema_name = 'mover'`, other.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := d.DB.Pool.Exec(ctx, `DROP SCHEMA mover CASCADE`); err != nil {
		t.Fatal(err)
	}

	during, err := d.DB.CreateProduct(ctx, "mover", domain.ProductPatch{Name: ptr("During"), SKU: ptr("D-1"), Price: ptr("1.00"), Currency: ptr("EUR")}, outboxRow, nil)
	if err != nil {
		t.Fatalf("write caught by the move: %v, want it run again on %s", err, other.Name)
	}
	if got := clusterHolding(t, d, "mover", "During"); len(got) != 1 || got[0] != other.Name {
		t.Fatalf("the write caught by the move is on %v, want [%s]", got, other.Name)
	}
	// The indexer's question, caught by the move the same way: run again
	// there, never "the tenant is gone" (which drops its events).
	d.DB.ForgetPlacement("mover")
	if _, err := d.DB.Pool.Exec(ctx, `UPDATE public.tenants SET cluster = 'main' WHERE schema_name = 'mover'`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.DB.ForTenant(ctx, "mover"); err != nil { // caches main again
		t.Fatal(err)
	}
	if _, err := d.DB.Pool.Exec(ctx, `UPDATE public.tenants SET cluster = $1 WHERE schema_name = 'mover'`, other.Name); err != nil {
		t.Fatal(err)
	}
	versions, err := d.DB.ProductVersions(ctx, "mover", []string{during.ID, uuid.NewString()})
	if err != nil || len(versions) != 1 || versions[during.ID] != during.Version {
		t.Fatalf("product versions caught by the move: %v (%v), want {%s: %d} from %s", versions, err, during.ID, during.Version, other.Name)
	}
	if _, err := d.DB.CreateProduct(ctx, "mover", domain.ProductPatch{Name: ptr("After"), SKU: ptr("A-1"), Price: ptr("1.00"), Currency: ptr("EUR")}, outboxRow, nil); err != nil {
		t.Fatalf("write after the move: %v", err)
	}
	if got := clusterHolding(t, d, "mover", "After"); len(got) != 1 || got[0] != other.Name {
		t.Fatalf("the write after the move is on %v, want [%s]", got, other.Name)
	}
}

func TestATenantOnAClusterThisProcessDoesNotKnowIsAnError(t *testing.T) {
	t.Parallel()
	d := testenv.MustClusterDatabases(t)
	if _, err := d.DB.Pool.Exec(t.Context(), `INSERT INTO public.tenants (schema_name, display_name, state, cluster)
		VALUES ('elsewhere', 'x', 'active', 'nowhere')`); err != nil {
		t.Fatal(err)
	}
	_, _, err := d.DB.ListProducts(t.Context(), "elsewhere", postgres.ListParams{Limit: 10})
	if !errors.Is(err, postgres.ErrUnknownCluster) {
		t.Fatalf("error %v, want ErrUnknownCluster", err)
	}
}

func ptr[T any](v T) *T { return &v }

func outboxRow(p domain.Product) (postgres.OutboxRecord, error) {
	return postgres.OutboxRecord{EventID: uuid.NewString(), EventType: "product.created", AggregateID: p.ID,
		AggregateVersion: p.Version, Payload: []byte(`{}`)}, nil
}

func TestAWriteHeldPastTheLockTimeoutIsToldToRetry(t *testing.T) {
	t.Parallel()
	d := testenv.MustDatabase(t)
	ctx := t.Context()
	if _, err := d.DB.Pool.Exec(ctx, `CREATE SCHEMA held`); err != nil {
		t.Fatal(err)
	}
	r, err := schema.NewRunner(d.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.MigrateTenant(ctx, "held"); err != nil {
		t.Fatal(err)
	}
	// What a move's pause holds: writes wait, reads go on.
	tx, err := d.DB.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `LOCK TABLE held.products IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.DB.ListProducts(ctx, "held", postgres.ListParams{Limit: 10}); err != nil {
		t.Fatalf("a read during the pause: %v", err)
	}
	_, err = d.DB.CreateProduct(ctx, "held", domain.ProductPatch{Name: ptr("Held"), SKU: ptr("H-1"), Price: ptr("1.00"), Currency: ptr("EUR")}, outboxRow, nil)
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.EUNAVAILABLE || de.RetryAfter <= 0 {
		t.Fatalf("a write held past the lock timeout: %v, want EUNAVAILABLE with a Retry-After", err)
	}
}

func TestForgetPlacementsMakesTheNextUseReadThePlacementAgain(t *testing.T) {
	t.Parallel()
	d := testenv.MustClusterDatabases(t)
	ctx := t.Context()
	placeTenant(t, d, "placed", postgres.MainCluster)
	if _, name, err := d.DB.ForTenant(ctx, "placed"); err != nil || name != postgres.MainCluster {
		t.Fatalf("ForTenant = %s, %v", name, err)
	}
	if _, err := d.DB.Pool.Exec(ctx, `UPDATE public.tenants SET cluster = $1 WHERE schema_name = 'placed'`, d.Clusters[1].Name); err != nil {
		t.Fatal(err)
	}
	if _, name, _ := d.DB.ForTenant(ctx, "placed"); name != postgres.MainCluster {
		t.Fatalf("cached placement %s, want main until forgotten", name)
	}
	d.DB.ForgetPlacements()
	if _, name, err := d.DB.ForTenant(ctx, "placed"); err != nil || name != d.Clusters[1].Name {
		t.Fatalf("after ForgetPlacements: %s, %v; want %s", name, err, d.Clusters[1].Name)
	}
}

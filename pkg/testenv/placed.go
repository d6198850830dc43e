package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/schema"
)

// MustPlaceTenant makes schemaName a tenant held by the named cluster of
// d (see MustClusterDatabases): its row in public.tenants names the
// cluster, and its schema is created and migrated there, as tenant create
// does. Nothing else of a tenant is made (no domain, no users, no search
// index). It fails tb when d has no cluster of that name.
func (d *Database) MustPlaceTenant(tb testing.TB, schemaName, cluster string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var direct string
	for _, c := range d.Clusters {
		if c.Name != cluster {
			continue
		}
		direct = c.DirectURL
		if _, err := c.DB.Pool.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schemaName}.Sanitize()); err != nil {
			tb.Fatalf("testenv: create schema %s on %s: %v", schemaName, cluster, err)
		}
	}
	if direct == "" {
		tb.Fatalf("testenv: no cluster %q (MustClusterDatabases gives %d)", cluster, len(d.Clusters))
	}
	if _, err := d.DB.Pool.Exec(ctx, `INSERT INTO public.tenants (schema_name, display_name, state, cluster)
		VALUES ($1, $1, 'active', $2)`, schemaName, cluster); err != nil {
		tb.Fatalf("testenv: place tenant %s on %s: %v", schemaName, cluster, err)
	}
	r, err := schema.NewRunner(direct, nil)
	if err != nil {
		tb.Fatalf("testenv: runner on %s: %v", cluster, err)
	}
	if _, err := r.MigrateTenant(ctx, schemaName); err != nil {
		tb.Fatalf("testenv: migrate %s on %s: %v", schemaName, cluster, err)
	}
}

package tenancy_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/schema"
)

// layout describes a schema as a list of lines, its name written as S:
// every table's columns, constraints, indexes and triggers, the sequences,
// and goose's version rows.
func layout(t *testing.T, conn *pgxpool.Pool, schemaName string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `
		SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' null=' || is_nullable
			|| ' default=' || coalesce(column_default, '') || ' identity=' || is_identity
		FROM information_schema.columns WHERE table_schema = $1
		UNION ALL
		SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
		FROM pg_constraint WHERE connamespace = $1::regnamespace
		UNION ALL
		SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = $1
		UNION ALL
		SELECT 'trigger ' || pg_get_triggerdef(t.oid)
		FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
		WHERE c.relnamespace = $1::regnamespace AND NOT t.tgisinternal
		UNION ALL
		SELECT 'sequence ' || sequencename || ' ' || data_type::text || ' ' || increment_by FROM pg_sequences WHERE schemaname = $1`,
		schemaName)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var versions string
	err = conn.QueryRow(context.Background(),
		`SELECT string_agg(version_id || ':' || is_applied, ',' ORDER BY id) FROM `+pgx.Identifier{schemaName, "goose_db_version"}.Sanitize()).Scan(&versions)
	if err != nil {
		t.Fatal(err)
	}
	lines = append(lines, "goose "+versions)
	for i, l := range lines {
		l = strings.ReplaceAll(l, `"`+schemaName+`".`, "S.")
		lines[i] = strings.ReplaceAll(l, schemaName+".", "S.")
	}
	slices.Sort(lines)
	return lines
}

// A tenant's schema made at its creation, in one transaction, is the schema
// goose makes from the same migrations, down to goose's own version rows, so
// that goose and `saas migrate` carry on from it.
func TestCreateMakesTheSchemaGooseWould(t *testing.T) {
	t.Parallel()
	extra := map[string]string{"99001_extra.sql": "-- +goose Up\nALTER TABLE products ADD COLUMN extra int;\nCREATE INDEX products_extra ON products (extra);\n"}
	m, db := newManager(t, nil)
	ctx := context.Background()
	if _, err := m.Create(ctx, tenancy.CreateParams{Schema: "made", Name: "Made", Domain: "made.localhost"}); err != nil {
		t.Fatal(err)
	}
	runner, err := schema.NewRunner(db.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.DB.Pool.Exec(ctx, `CREATE SCHEMA goosed`); err != nil {
		t.Fatal(err)
	}
	if _, err := runner.MigrateTenant(ctx, "goosed"); err != nil {
		t.Fatal(err)
	}
	made, goosed := layout(t, db.DB.Pool, "made"), layout(t, db.DB.Pool, "goosed")
	if len(made) < 20 {
		t.Fatalf("the layout query found only %d lines: %v", len(made), made)
	}
	if !slices.Equal(made, goosed) {
		t.Fatalf("created schema differs from goose's:\ncreated: %s\ngoose:   %s", strings.Join(made, "\n  "), strings.Join(goosed, "\n  "))
	}

	// A later migration reaches both, by goose and by MigrateTenants.
	later, err := schema.NewRunner(db.URL, tenantMigrations(t, extra))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := later.MigrateTenant(ctx, "made"); err != nil || v != 99001 {
		t.Fatalf("goose after a create: version %d, %v; want 99001", v, err)
	}
	var doneErr error
	err = later.MigrateTenants(ctx, []string{"goosed"}, schema.TenantsOptions{Done: func(_ string, _ int64, err error) { doneErr = err }})
	if err != nil || doneErr != nil {
		t.Fatalf("MigrateTenants: %v, %v", err, doneErr)
	}
	if made, goosed := layout(t, db.DB.Pool, "made"), layout(t, db.DB.Pool, "goosed"); !slices.Equal(made, goosed) {
		t.Fatalf("after the later migration the schemas differ:\ncreated: %s\ngoose:   %s", strings.Join(made, "\n  "), strings.Join(goosed, "\n  "))
	}
}

package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/schema"
)

// Migration 00007 (the notification_events table) is taken back from two
// tenants: from alpha cleanly, from bravo only in its version bookkeeping,
// so that applying it again fails there (its table is still in place).
func TestMigrateReportsAFailingTenantAloneAndARerunFinishesIt(t *testing.T) {
	useServices(t)
	t.Setenv("JWT_SECRET", "")
	ctx := context.Background()
	runner, err := schema.NewRunner(os.Getenv("DATABASE_DIRECT_URL"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if latest := runner.TenantLatest(); latest != 7 {
		t.Fatalf("this test takes back tenant migration 00007 (notification_events), the latest when it was written; the latest is now %d: take back that one instead", latest)
	}
	for _, s := range []string{"alpha", "bravo", "charlie"} {
		if out, errOut, code := saas(t, "tenant", "create", "--schema", s, "--name", s, "--domain", s+".localhost"); code != 0 {
			t.Fatalf("tenant create %s exited %d:\n%s%s", s, code, out, errOut)
		}
	}
	var conn *pgx.Conn
	conn, err = pgx.Connect(ctx, os.Getenv("DATABASE_DIRECT_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`DROP TABLE alpha.notification_events`)
	exec(`DELETE FROM alpha.goose_db_version WHERE version_id = 7`)
	exec(`DELETE FROM bravo.goose_db_version WHERE version_id = 7`)
	exec(`UPDATE public.tenants SET schema_version = 6 WHERE schema_name IN ('alpha', 'bravo')`)

	steps := []struct {
		name     string
		code     int
		contains []string
	}{
		{"bravo fails alone and alpha migrates", 1, []string{"FAILED bravo", "notification_events", "2 pending, 1 migrated, 1 failed"}},
		{"with nothing left to apply but bravo, bravo alone is pending again", 1, []string{"FAILED bravo", "1 pending, 0 migrated, 1 failed"}},
	}
	for _, s := range steps {
		out, errOut, code := saas(t, "migrate", "--width", "2")
		for _, c := range s.contains {
			if code != s.code || !strings.Contains(out+errOut, c) {
				t.Fatalf("%s: saas migrate exited %d with\n%s%s\nwant exit %d and %q", s.name, code, out, errOut, s.code, c)
			}
		}
		if strings.Contains(errOut, "FAILED alpha") || strings.Contains(errOut, "FAILED charlie") {
			t.Fatalf("%s: another tenant reported failed:\n%s", s.name, errOut)
		}
	}
	var alphaTable bool
	var versions []int64
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = 'alpha' AND table_name = 'notification_events')`).Scan(&alphaTable); err != nil || !alphaTable {
		t.Fatalf("alpha.notification_events is back: %t (err %v), want true", alphaTable, err)
	}
	rows, _ := conn.Query(ctx, `SELECT schema_version FROM public.tenants ORDER BY schema_name`)
	if versions, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil || len(versions) != 3 || versions[0] != 7 || versions[1] != 6 || versions[2] != 7 {
		t.Fatalf("recorded versions alpha, bravo, charlie: %v (err %v), want [7 6 7]", versions, err)
	}

	// The cause gone, a rerun finishes bravo, and the next finds nothing.
	exec(`DROP TABLE bravo.notification_events`)
	if out, errOut, code := saas(t, "migrate"); code != 0 || !strings.Contains(out, "1 pending, 1 migrated, 0 failed") {
		t.Fatalf("rerun exited %d with\n%s%s\nwant bravo migrated", code, out, errOut)
	}
	if out, errOut, code := saas(t, "migrate"); code != 0 || !strings.Contains(out, "0 pending, 0 migrated, 0 failed") {
		t.Fatalf("third run exited %d with\n%s%s\nwant nothing pending", code, out, errOut)
	}
}

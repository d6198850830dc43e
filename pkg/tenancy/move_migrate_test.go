package tenancy_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/pkg/testenv"
	"github.com/tenantworks/saas/schema"
)

func TestAMigrationRunLeavesATenantBeingMovedAndMigratesTheOthers(t *testing.T) {
	t.Parallel()
	w := testenv.MustWorld(t, testenv.WithClusters())
	m, d := w.Manager, w.Database
	ctx := t.Context()
	other := d.Clusters[1].Name
	for _, s := range []string{"moving", "calm"} {
		if _, err := m.Create(ctx, tenancy.CreateParams{Schema: s, Name: s, Domain: s + ".test", Cluster: postgres.MainCluster}); err != nil {
			t.Fatal(err)
		}
	}
	// Both pending, as after a release with a new tenant migration.
	if _, err := d.DB.Pool.Exec(ctx, `UPDATE public.tenants SET schema_version = 0`); err != nil {
		t.Fatal(err)
	}

	var (
		rep    tenancy.MigrateReport
		migErr error
	)
	mover := newMover(d, tenancy.WithPauseLimit(time.Minute), tenancy.WithPausedHook(func(ctx context.Context) {
		rep, migErr = m.MigrateAll(ctx, tenancy.MigrateOptions{MoveWait: 200 * time.Millisecond})
	}))
	if _, err := mover.Move(ctx, "moving", other, nil); err != nil {
		t.Fatalf("move: %v", err)
	}
	if migErr != nil {
		t.Fatalf("migrate during the move: %v", migErr)
	}
	if rep.Pending != 2 || rep.Migrated != 1 || len(rep.Failed) != 1 || rep.Failed[0].Schema != "moving" {
		t.Fatalf("report %+v, want calm migrated and moving failed", rep)
	}
	if err := rep.Failed[0].Err; domain.ErrorCode(err) != domain.ECONFLICT || !strings.Contains(err.Error(), "being moved") ||
		!strings.Contains(err.Error(), "run saas migrate again") {
		t.Fatalf("moving failed with %v, want ECONFLICT saying it is being moved and to run again", err)
	}
	var calm int64
	if err := d.DB.Pool.QueryRow(ctx, `SELECT schema_version FROM public.tenants WHERE schema_name = 'calm'`).Scan(&calm); err != nil || calm != rep.Target {
		t.Fatalf("calm at version %d (%v), want %d", calm, err, rep.Target)
	}
	checkMovedTo(t, d, "moving", postgres.MainCluster, other)
}

func TestAMoveWaitsForAMigrationOfItsTenant(t *testing.T) {
	t.Parallel()
	w := testenv.MustWorld(t, testenv.WithClusters())
	m, d := w.Manager, w.Database
	ctx := t.Context()
	other := d.Clusters[1].Name
	if _, err := m.Create(ctx, tenancy.CreateParams{Schema: "migrating", Name: "migrating", Domain: "migrating.test", Cluster: postgres.MainCluster}); err != nil {
		t.Fatal(err)
	}
	fillTenant(t, d.DB, "migrating", 3)
	// A new migration that waits, in the migration's transaction, for a
	// lock the test holds: a migration caught in the middle.
	more := tenantMigrations(t, map[string]string{"00900_slow.sql": "-- +goose Up\nSELECT pg_advisory_xact_lock(4242);\n"})
	runner, err := schema.NewRunner(d.URL, more)
	if err != nil {
		t.Fatal(err)
	}
	m2 := tenancy.NewManager(d.DB, runner, slog.New(slog.DiscardHandler))
	// A session lock needs a session of its own: directly, never through
	// a pooler in transaction mode (SAAS_TEST_POOLER), where the unlock
	// could reach another server connection than the lock.
	hold, err := pgx.Connect(ctx, d.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close(context.WithoutCancel(ctx))
	if _, err := hold.Exec(ctx, `SELECT pg_advisory_lock(4242)`); err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			if _, err := hold.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(4242)`); err != nil {
				t.Error(err)
			}
		}
	}
	defer release()

	migrated := make(chan tenancy.MigrateReport, 1)
	migErr := make(chan error, 1)
	go func() {
		rep, err := m2.MigrateAll(ctx, tenancy.MigrateOptions{})
		migErr <- err
		migrated <- rep
	}()
	waitForLockWaiter(ctx, t, d.Clusters[0])

	// A move with a short wait fails, clearly, and changes nothing.
	_, err = newMover(d, tenancy.WithMoveMigrations(more), tenancy.WithMigrationWait(200*time.Millisecond)).Move(ctx, "migrating", other, nil)
	if domain.ErrorCode(err) != domain.ECONFLICT || !strings.Contains(err.Error(), "being migrated") {
		t.Fatalf("move during the migration: %v, want ECONFLICT saying the schema is being migrated", err)
	}
	if got := placement(t, d, "migrating"); got != postgres.MainCluster {
		t.Fatalf("tenant on %s after a refused move, want main", got)
	}
	if left := leftoversOfMove(t, d.Clusters[1], "migrating"); len(left) > 0 {
		t.Fatalf("a refused move left %v on %s", left, other)
	}

	// One with the default wait waits for the migration, then moves.
	moved := make(chan error, 1)
	go func() {
		_, err := newMover(d, tenancy.WithMoveMigrations(more)).Move(ctx, "migrating", other, nil)
		moved <- err
	}()
	waitForWaiter(ctx, t, d.Clusters[0], "saas tenant move")
	release()
	if err := <-migErr; err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if rep := <-migrated; rep.Migrated != 1 || len(rep.Failed) != 0 {
		t.Fatalf("migrate report %+v, want the tenant migrated", rep)
	}
	if err := <-moved; err != nil {
		t.Fatalf("move after the migration: %v", err)
	}
	checkMovedTo(t, d, "migrating", postgres.MainCluster, other)
}

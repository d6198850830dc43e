package tenancy_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/pkg/testenv"
)

// waitForLockWaiter returns once a client of c's database waits for a lock:
// a writer held by a move's pause.
func waitForLockWaiter(ctx context.Context, t *testing.T, c postgres.Cluster) {
	t.Helper()
	waitForWaiter(ctx, t, c, "")
}

// waitForWaiter returns once a client of c's database (called app when
// app is not "") waits for a lock.
func waitForWaiter(ctx context.Context, t *testing.T, c postgres.Cluster, app string) {
	t.Helper()
	for {
		var n int
		err := c.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND backend_type = 'client backend' AND wait_event_type = 'Lock'
			AND ($1 = '' OR application_name = $1)`, app).Scan(&n)
		if err != nil {
			t.Errorf("look for the held writer on %s: %v", c.Name, err)
			return
		}
		if n > 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Errorf("no writer held on %s: %v", c.Name, ctx.Err())
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// heldWrite starts a product write in the tenant from db when the move's
// pause holds the tenant's tables, and hands its outcome to the returned
// channel.
func heldWrite(t *testing.T, d *testenv.Database, db *postgres.DB, schemaName, name string, from *string) (tenancy.MoverOption, <-chan error) {
	done := make(chan error, 1)
	return tenancy.WithPausedHook(func(ctx context.Context) {
		go func() { done <- createProduct(context.WithoutCancel(ctx), db, schemaName, name) }()
		waitForLockWaiter(ctx, t, clusterOf(t, d, *from))
	}), done
}

func TestAWriteHeldByAMovesPauseIsRunAgainOnTheTargetCluster(t *testing.T) {
	t.Parallel()
	d := testenv.MustClusterDatabases(t)
	ctx := t.Context()
	other := d.Clusters[1].Name
	placeTenant(t, d, "held", postgres.MainCluster)
	fillTenant(t, d.DB, "held", 3)
	// Another process, whose cached placement no move clears.
	second := otherProcess(t, d)

	for _, leg := range []struct{ from, to, write string }{
		{postgres.MainCluster, other, "held-to-" + other},
		{other, postgres.MainCluster, "held-to-main"},
	} {
		if _, _, err := second.ListProducts(ctx, "held", postgres.ListParams{Limit: 1}); err != nil { // caches the placement
			t.Fatal(err)
		}
		from := leg.from
		hook, done := heldWrite(t, d, second, "held", leg.write, &from)
		if _, err := newMover(d, hook).Move(ctx, "held", leg.to, nil); err != nil {
			t.Fatalf("move %s -> %s: %v", leg.from, leg.to, err)
		}
		if err := <-done; err != nil {
			t.Fatalf("the write held by the pause of %s -> %s: %v, want it done on %s", leg.from, leg.to, err, leg.to)
		}
		checkMovedTo(t, d, "held", leg.from, leg.to)
		rec, err := newMover(d).LatestMove(ctx, "held")
		if err != nil || rec.State != tenancy.MoveSucceeded || rec.From != leg.from || rec.To != leg.to || rec.FinishedAt == nil ||
			rec.Pause == nil || *rec.Pause <= 0 || rec.Copy == nil || rec.Rows < 3 || rec.Error != "" {
			t.Fatalf("the move's record: %+v (%v), want it done from %s to %s with its times and rows", rec, err, leg.from, leg.to)
		}
		var n int
		if err := clusterOf(t, d, leg.to).DB.Pool.QueryRow(ctx, `SELECT count(*) FROM held.products WHERE name = $1`, leg.write).Scan(&n); err != nil || n != 1 {
			t.Fatalf("the held write on %s: %d rows (%v), want 1", leg.to, n, err)
		}
	}
}

func TestAWriteHeldByAPauseThatNeverSwitchesIsToldToRetry(t *testing.T) {
	t.Parallel()
	d := testenv.MustClusterDatabases(t)
	ctx := t.Context()
	other := d.Clusters[1].Name
	placeTenant(t, d, "stuck", postgres.MainCluster)
	fillTenant(t, d.DB, "stuck", 3)

	done := make(chan error, 1)
	// The pause outlives its limit: the writer's lock_timeout ends its
	// wait first, then the move gives up.
	hook := tenancy.WithPausedHook(func(ctx context.Context) {
		go func() { done <- createProduct(context.WithoutCancel(ctx), d.DB, "stuck", "stuck-write") }()
		waitForLockWaiter(ctx, t, d.Clusters[0])
		err := <-done
		done <- err
	})
	_, err := newMover(d, hook, tenancy.WithPauseLimit(time.Second)).Move(ctx, "stuck", other, nil)
	if domain.ErrorCode(err) != domain.EUNAVAILABLE {
		t.Fatalf("move past its pause limit: %v, want EUNAVAILABLE", err)
	}
	var de *domain.Error
	if err := <-done; !errors.As(err, &de) || de.Code != domain.EUNAVAILABLE || de.RetryAfter <= 0 {
		t.Fatalf("the held write: %v, want EUNAVAILABLE with a Retry-After", err)
	}
	if got := placement(t, d, "stuck"); got != postgres.MainCluster {
		t.Fatalf("the tenant is on %s, want main", got)
	}
	rec, err := newMover(d).LatestMove(ctx, "stuck")
	if err != nil || rec.State != tenancy.MoveFailed || rec.FinishedAt == nil || !strings.Contains(rec.Error, "could not be paused") {
		t.Fatalf("the move's record: %+v (%v), want it failed saying why", rec, err)
	}
	var n int
	if err := d.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM stuck.products WHERE name = 'stuck-write'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the refused write: %d rows (%v), want none", n, err)
	}
}

// failPlacement is an after-fence hook that makes the placement's commit
// on main fail: a statement that errors aborts the transaction, and its
// commit then rolls back.
func failPlacement(t *testing.T, calls *int) tenancy.MoverOption {
	return tenancy.WithAfterFenceHook(func(ctx context.Context, tm pgx.Tx) {
		*calls++
		if _, err := tm.Exec(ctx, `SELECT 1/0`); err == nil {
			t.Error("the statement meant to abort the placement's transaction did not fail")
		}
	})
}

func TestAMoveFromAnotherClusterWhosePlacementFailsAfterTheFence(t *testing.T) {
	t.Parallel()
	d := testenv.MustClusterDatabases(t)
	ctx := t.Context()
	other := d.Clusters[1].Name
	placeTenant(t, d, "fence", other)
	fillTenant(t, d.DB, "fence", 5)

	t.Run("the placement is written once more and the move ends", func(t *testing.T) {
		before := contents(t, clusterOf(t, d, other), "fence")
		var calls int
		if _, err := newMover(d, failPlacement(t, &calls)).Move(ctx, "fence", postgres.MainCluster, nil); err != nil {
			t.Fatalf("move with a failed placement commit: %v, want the placement written again", err)
		}
		if calls != 1 {
			t.Fatalf("the hook ran %d times, want once", calls)
		}
		checkMovedTo(t, d, "fence", other, postgres.MainCluster)
		after := contents(t, d.Clusters[0], "fence")
		for _, tbl := range movedTables {
			if !slices.Equal(before[tbl], after[tbl]) {
				t.Fatalf("%s differs after the move: %d rows before, %d after", tbl, len(before[tbl]), len(after[tbl]))
			}
		}
		if err := createProduct(ctx, d.DB, "fence", "after-first"); err != nil {
			t.Fatalf("a write after the move: %v", err)
		}
		if _, err := newMover(d).Move(ctx, "fence", other, nil); err != nil { // back, for the next case
			t.Fatal(err)
		}
	})

	t.Run("a placement that cannot be written lifts the fence and the tenant stays", func(t *testing.T) {
		// The placement's first write, in the move's transaction, passes;
		// every later change of the tenant's cluster fails, so that the
		// second attempt after the aborted commit fails too.
		if _, err := d.DB.Pool.Exec(ctx, `
			CREATE SEQUENCE public.fence_test_placements;
			CREATE FUNCTION public.fence_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				IF nextval('public.fence_test_placements') > 1 THEN
					RAISE EXCEPTION 'placement refused by the test';
				END IF;
				RETURN NEW;
			END $$;
			CREATE TRIGGER fence_test_refuse BEFORE UPDATE ON public.tenants
				FOR EACH ROW WHEN (OLD.cluster IS DISTINCT FROM NEW.cluster) EXECUTE FUNCTION public.fence_test_refuse()`); err != nil {
			t.Fatal(err)
		}
		before := contents(t, clusterOf(t, d, other), "fence")
		var calls int
		_, err := newMover(d, failPlacement(t, &calls)).Move(ctx, "fence", postgres.MainCluster, nil)
		if err == nil || !strings.Contains(err.Error(), "placement refused by the test") {
			t.Fatalf("move whose placement cannot be written: %v, want the refusal", err)
		}
		if calls != 1 {
			t.Fatalf("the hook ran %d times, want once", calls)
		}
		if got := placement(t, d, "fence"); got != other {
			t.Fatalf("the tenant is on %s, want %s", got, other)
		}
		if left := leftoversOfMove(t, d.Clusters[0], "fence"); len(left) > 0 {
			t.Fatalf("left on main: %v", left)
		}
		if left := leftoversOfMove(t, d.Clusters[1], "fence"); !slices.Equal(left, []string{"schema fence"}) {
			t.Fatalf("on %s: %v, want the schema alone, its fence lifted", other, left)
		}
		if after := contents(t, clusterOf(t, d, other), "fence"); !maps.EqualFunc(before, after, slices.Equal) {
			t.Fatalf("the tenant's rows on %s changed across the failed move", other)
		}
		if err := createProduct(ctx, d.DB, "fence", "after-failed"); err != nil {
			t.Fatalf("a write after the failed move: %v", err)
		}
		rec, err := newMover(d).LatestMove(ctx, "fence")
		if err != nil || rec.State != tenancy.MoveFailed || rec.FinishedAt == nil || !strings.Contains(rec.Error, "placement refused by the test") {
			t.Fatalf("the move's record: %+v (%v), want it failed saying why", rec, err)
		}

		if _, err := d.DB.Pool.Exec(ctx, `DROP TRIGGER fence_test_refuse ON public.tenants`); err != nil {
			t.Fatal(err)
		}
		if _, err := newMover(d).Move(ctx, "fence", postgres.MainCluster, nil); err != nil {
			t.Fatalf("the retry: %v", err)
		}
		checkMovedTo(t, d, "fence", other, postgres.MainCluster)
		var n int
		if err := d.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM fence.products WHERE name IN ('after-first', 'after-failed')`).Scan(&n); err != nil || n != 2 {
			t.Fatalf("the writes made around the moves, on main: %d (%v), want 2", n, err)
		}
	})
}

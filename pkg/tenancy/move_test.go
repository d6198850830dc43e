package tenancy_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/pkg/testenv"
	"github.com/tenantworks/saas/schema"
)

// placeTenant records an active tenant on the named cluster of d and
// migrates its schema there, as tenant create does.
func placeTenant(t testing.TB, d *testenv.Database, schemaName, cluster string) {
	t.Helper()
	if _, err := d.DB.Pool.Exec(t.Context(), `INSERT INTO public.tenants (schema_name, display_name, state, cluster)
		VALUES ($1, $1, 'active', $2)`, schemaName, cluster); err != nil {
		t.Fatal(err)
	}
	migrateOn(t, clusterOf(t, d, cluster), schemaName)
}

func clusterOf(t testing.TB, d *testenv.Database, name string) postgres.Cluster {
	t.Helper()
	for _, c := range d.Clusters {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no cluster %s", name)
	return postgres.Cluster{}
}

func ptr[T any](v T) *T { return &v }

func outboxRow(p domain.Product) (postgres.OutboxRecord, error) {
	return postgres.OutboxRecord{EventID: uuid.NewString(), EventType: "product.created", AggregateID: p.ID,
		AggregateVersion: p.Version, Payload: []byte(`{}`)}, nil
}

func productAudit(old, new *domain.Product) audit.Entry {
	return audit.Entry{Actor: audit.System, Action: "product.create", Target: audit.Target{Type: "product", ID: new.ID},
		Changes: audit.Changes{"name": {nil, new.Name}}}
}

func createProduct(ctx context.Context, db *postgres.DB, schemaName, name string) error {
	_, err := db.CreateProduct(ctx, schemaName, domain.ProductPatch{Name: ptr(name), SKU: ptr(name), Price: ptr("1.00"), Currency: ptr("EUR")},
		outboxRow, productAudit)
	return err
}

// fillTenant writes n products (with their outbox rows and audit entries),
// a user and a notification per product.
func fillTenant(t *testing.T, db *postgres.DB, schemaName string, n int) {
	t.Helper()
	ctx := t.Context()
	u, err := db.CreateUser(ctx, schemaName, postgres.NewUser{Email: "staff@example.com", PasswordHash: "x", IsStaff: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := createProduct(ctx, db, schemaName, fmt.Sprintf("P-%d-%s", i, uuid.NewString()[:6])); err != nil {
			t.Fatal(err)
		}
		addNotification(t, db, schemaName, u.ID)
	}
}

func addNotification(t *testing.T, db *postgres.DB, schemaName, userID string) int64 {
	t.Helper()
	var id int64
	err := db.InTenant(t.Context(), schemaName, func(tx pgx.Tx) error {
		if userID == "" {
			if err := tx.QueryRow(t.Context(), `SELECT id FROM users LIMIT 1`).Scan(&userID); err != nil {
				return err
			}
		}
		return tx.QueryRow(t.Context(), `INSERT INTO notifications (event_id, user_id, kind, title)
			VALUES (gen_random_uuid(), $1, 'product.created', 'New') RETURNING id`, userID).Scan(&id)
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// movedTables are the tables whose rows a move must carry, with the column
// they are ordered by.
var movedTables = []string{"products", "users", "notifications", "audit_log", "outbox"}

// contents reads every row of the tenant's tables on the cluster, as JSON.
func contents(t *testing.T, c postgres.Cluster, schemaName string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, tbl := range movedTables {
		rows, err := c.DB.Pool.Query(t.Context(), `SELECT to_jsonb(x)::text FROM `+pgx.Identifier{schemaName, tbl}.Sanitize()+` x ORDER BY id`)
		if err != nil {
			t.Fatalf("read %s on %s: %v", tbl, c.Name, err)
		}
		out[tbl], err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func maxID(t *testing.T, c postgres.Cluster, schemaName, table string) int64 {
	t.Helper()
	var n int64
	if err := c.DB.Pool.QueryRow(t.Context(), `SELECT coalesce(max(id), 0) FROM `+pgx.Identifier{schemaName, table}.Sanitize()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// leftoversOfMove lists what a move may leave on a cluster: a schema of
// the tenant's (live or fenced off), publications, subscriptions, slots.
func leftoversOfMove(t *testing.T, c postgres.Cluster, schemaName string) []string {
	t.Helper()
	rows, err := c.DB.Pool.Query(t.Context(), `
		SELECT 'schema ' || nspname FROM pg_namespace WHERE nspname = $1 OR nspname LIKE $1 || '-moved-%'
		UNION ALL SELECT 'publication ' || pubname FROM pg_publication
		UNION ALL SELECT 'subscription ' || subname FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		UNION ALL SELECT 'slot ' || slot_name FROM pg_replication_slots WHERE database = current_database()`, schemaName)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func placement(t *testing.T, d *testenv.Database, schemaName string) string {
	t.Helper()
	var c string
	if err := d.DB.Pool.QueryRow(t.Context(), `SELECT cluster FROM public.tenants WHERE schema_name = $1`, schemaName).Scan(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// checkMovedTo checks the tenant lives on cluster to alone, and nothing of
// the move is left on from.
func checkMovedTo(t *testing.T, d *testenv.Database, schemaName, from, to string) {
	t.Helper()
	if got := placement(t, d, schemaName); got != to {
		t.Fatalf("public.tenants places %s on %s, want %s", schemaName, got, to)
	}
	if _, got, err := d.DB.ForTenant(t.Context(), schemaName); err != nil || got != to {
		t.Fatalf("ForTenant(%s) = %s, %v; want %s", schemaName, got, err, to)
	}
	if left := leftoversOfMove(t, clusterOf(t, d, from), schemaName); len(left) > 0 {
		t.Fatalf("left on %s: %v", from, left)
	}
	if left := leftoversOfMove(t, clusterOf(t, d, to), schemaName); !slices.Equal(left, []string{"schema " + schemaName}) {
		t.Fatalf("on %s: %v, want the schema alone", to, left)
	}
}

func newMover(d *testenv.Database, opts ...tenancy.MoverOption) *tenancy.Mover {
	return tenancy.NewMover(d.DB, slog.New(slog.DiscardHandler), opts...)
}

func TestAMoveThereAndBackCarriesEveryRowAndIDsContinue(t *testing.T) {
	t.Parallel()
	d := testenv.MustClusterDatabases(t)
	ctx := t.Context()
	other := d.Clusters[1].Name
	placeTenant(t, d, "acme", postgres.MainCluster)
	fillTenant(t, d.DB, "acme", 20)
	mover := newMover(d)

	for _, leg := range []struct{ from, to string }{{postgres.MainCluster, other}, {other, postgres.MainCluster}} {
		before := contents(t, clusterOf(t, d, leg.from), "acme")
		var phases []tenancy.MovePhase
		res, err := mover.Move(ctx, "acme", leg.to, func(p tenancy.MoveProgress) {
			if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
				phases = append(phases, p.Phase)
			}
		})
		if err != nil {
			t.Fatalf("move %s -> %s: %v", leg.from, leg.to, err)
		}
		t.Logf("%s -> %s: copy %s, pause %s, total %s, %d rows", leg.from, leg.to, res.Copy, res.Pause, res.Total, res.Rows)
		if res.From != leg.from || res.To != leg.to || res.Pause <= 0 || res.Copy <= 0 || res.CleanUp != nil {
			t.Fatalf("result %+v", res)
		}
		want := []tenancy.MovePhase{tenancy.MovePrepare, tenancy.MoveCopy, tenancy.MovePause, tenancy.MoveCleanUp, tenancy.MoveDone}
		if !slices.Equal(phases, want) {
			t.Fatalf("phases %v, want %v", phases, want)
		}
		checkMovedTo(t, d, "acme", leg.from, leg.to)
		after := contents(t, clusterOf(t, d, leg.to), "acme")
		for _, tbl := range movedTables {
			if !slices.Equal(before[tbl], after[tbl]) || len(after[tbl]) == 0 {
				t.Fatalf("%s: %d rows before on %s, %d after on %s, or they differ", tbl, len(before[tbl]), leg.from, len(after[tbl]), leg.to)
			}
		}

		// Identity sequences continue past every id given out before.
		target := clusterOf(t, d, leg.to)
		maxOutbox, maxAudit, maxNote := maxID(t, target, "acme", "outbox"), maxID(t, target, "acme", "audit_log"), maxID(t, target, "acme", "notifications")
		if err := createProduct(ctx, d.DB, "acme", "after-"+leg.to); err != nil {
			t.Fatalf("a write after the move: %v", err)
		}
		if id := addNotification(t, d.DB, "acme", ""); id <= maxNote {
			t.Fatalf("new notification id %d, want above %d", id, maxNote)
		}
		if got := maxID(t, target, "acme", "outbox"); got <= maxOutbox {
			t.Fatalf("new outbox id %d, want above %d", got, maxOutbox)
		}
		if got := maxID(t, target, "acme", "audit_log"); got <= maxAudit {
			t.Fatalf("new audit id %d, want above %d", got, maxAudit)
		}
		// The relay on the target is told there is an outbox to drain.
		var pending int
		if err := target.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM public.outbox_pending WHERE schema_name = 'acme'`).Scan(&pending); err != nil || pending == 0 {
			t.Fatalf("outbox_pending markers of acme on %s: %d (%v), want some", leg.to, pending, err)
		}
	}

	var entries int
	if err := d.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM public.audit_log WHERE action = 'tenant.move' AND target_id = 'acme'
		AND changes IN ($1::jsonb, $2::jsonb)`, fmt.Sprintf(`{"cluster": ["main", %q]}`, other), fmt.Sprintf(`{"cluster": [%q, "main"]}`, other)).Scan(&entries); err != nil || entries != 2 {
		t.Fatalf("tenant.move entries: %d (%v), want 2", entries, err)
	}
}

func TestAMoveIsRefusedWhenItMakesNoSense(t *testing.T) {
	t.Parallel()
	d := testenv.MustClusterDatabases(t)
	ctx := t.Context()
	placeTenant(t, d, "acme", postgres.MainCluster)
	placeTenant(t, d, "gone", postgres.MainCluster)
	if _, err := d.DB.Pool.Exec(ctx, `UPDATE public.tenants SET state = 'deleting' WHERE schema_name = 'gone'`); err != nil {
		t.Fatal(err)
	}
	lock, err := pgx.Connect(ctx, d.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close(ctx)
	placeTenant(t, d, "busy", postgres.MainCluster)
	if _, err := lock.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended('saas.move.busy', 0))`); err != nil {
		t.Fatal(err)
	}
	mover := newMover(d)
	for _, tt := range []struct {
		name, schema, to string
		code             string
	}{
		{"an unknown cluster is invalid", "acme", "nowhere", domain.EINVALID},
		{"a bad schema name is invalid", "Bad-Name", d.Clusters[1].Name, domain.EINVALID},
		{"an unknown tenant is not found", "nobody", d.Clusters[1].Name, domain.ENOTFOUND},
		{"a move to where the tenant is conflicts", "acme", postgres.MainCluster, domain.ECONFLICT},
		{"a tenant being deleted conflicts", "gone", d.Clusters[1].Name, domain.ECONFLICT},
		{"a tenant another move holds conflicts", "busy", d.Clusters[1].Name, domain.ECONFLICT},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := mover.Move(ctx, tt.schema, tt.to, nil)
			if domain.ErrorCode(err) != tt.code {
				t.Fatalf("error %v, want %s", err, tt.code)
			}
		})
	}
	if left := leftoversOfMove(t, d.Clusters[1], "busy"); len(left) > 0 {
		t.Fatalf("a refused move left %v", left)
	}
}

// writer creates products in a loop until stop closes, and says which
// writes were answered nil and which failed how.
type writer struct {
	db     *postgres.DB
	schema string
	ok     []string
	failed []error
}

func (w *writer) run(ctx context.Context, stop <-chan struct{}, prefix string) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		name := fmt.Sprintf("%s-%d", prefix, i)
		if err := createProduct(ctx, w.db, w.schema, name); err != nil {
			w.failed = append(w.failed, err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		w.ok = append(w.ok, name)
		time.Sleep(5 * time.Millisecond)
	}
}

// otherProcess is a second handle on d's clusters, as another API process
// has: its placement cache is its own, and a move elsewhere does not clear it.
func otherProcess(t *testing.T, d *testenv.Database) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(t.Context(), postgres.Config{URL: d.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.AttachClusters(d.URL, d.Clusters[1:]); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestAMoveUnderWritesLosesNoAnsweredWriteAndOtherTenantsSeeNothing(t *testing.T) {
	t.Parallel()
	d := testenv.MustClusterDatabases(t)
	ctx := t.Context()
	other := d.Clusters[1].Name
	placeTenant(t, d, "busy", postgres.MainCluster)
	placeTenant(t, d, "bystander", postgres.MainCluster)
	fillTenant(t, d.DB, "busy", 10)
	fillTenant(t, d.DB, "bystander", 1)
	second := otherProcess(t, d)
	mover := newMover(d)

	for _, leg := range []struct{ from, to string }{{postgres.MainCluster, other}, {other, postgres.MainCluster}} {
		// Warm both processes' placement caches.
		for _, db := range []*postgres.DB{d.DB, second} {
			if _, _, err := db.ListProducts(ctx, "busy", postgres.ListParams{Limit: 1}); err != nil {
				t.Fatal(err)
			}
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		writers := []*writer{{db: d.DB, schema: "busy"}, {db: d.DB, schema: "busy"}, {db: second, schema: "busy"}, {db: second, schema: "busy"}}
		for i, w := range writers {
			wg.Add(1)
			go func() { defer wg.Done(); w.run(ctx, stop, fmt.Sprintf("%s-w%d", leg.to, i)) }()
		}
		bystander := &writer{db: d.DB, schema: "bystander"}
		var reads, readErrs atomic.Int64
		wg.Add(2)
		go func() { defer wg.Done(); bystander.run(ctx, stop, "by-"+leg.to) }()
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				reads.Add(1)
				if _, _, err := d.DB.ListProducts(ctx, "bystander", postgres.ListParams{Limit: 5}); err != nil {
					readErrs.Add(1)
				}
			}
		}()
		time.Sleep(200 * time.Millisecond) // some writes before the move begins
		res, err := mover.Move(ctx, "busy", leg.to, nil)
		time.Sleep(300 * time.Millisecond) // and some after it
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatalf("move %s -> %s under writes: %v", leg.from, leg.to, err)
		}
		checkMovedTo(t, d, "busy", leg.from, leg.to)

		var ok, failed []string
		for _, w := range writers {
			ok = append(ok, w.ok...)
			for _, err := range w.failed {
				var de *domain.Error
				if !errors.As(err, &de) || de.Code != domain.EUNAVAILABLE || de.RetryAfter <= 0 {
					t.Fatalf("a write during the move failed with %v, want EUNAVAILABLE with a Retry-After", err)
				}
				failed = append(failed, err.Error())
			}
		}
		t.Logf("%s -> %s: pause %s, copy %s; %d writes answered, %d told to retry", leg.from, leg.to, res.Pause, res.Copy, len(ok), len(failed))
		var missing []string
		rows, err := clusterOf(t, d, leg.to).DB.Pool.Query(ctx, `SELECT n FROM unnest($1::text[]) n
			WHERE NOT EXISTS (SELECT 1 FROM busy.products p WHERE p.name = n)`, ok)
		if err == nil {
			missing, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err != nil || len(missing) > 0 || len(ok) == 0 {
			t.Fatalf("of %d answered writes, missing on %s: %v (%v)", len(ok), leg.to, missing, err)
		}
		if len(bystander.failed) > 0 || readErrs.Load() > 0 || len(bystander.ok) == 0 || reads.Load() == 0 {
			t.Fatalf("the other tenant saw %v and %d failed reads of %d (%d writes)", bystander.failed, readErrs.Load(), reads.Load(), len(bystander.ok))
		}
	}
}

func TestAFailedMoveLeavesTheTenantWhereItWasAndARetryWorks(t *testing.T) {
	t.Parallel()
	d := testenv.MustClusterDatabases(t)
	other := d.Clusters[1].Name
	placeTenant(t, d, "acme", postgres.MainCluster)
	fillTenant(t, d.DB, "acme", 10)

	// checkUntouched checks the tenant still serves from main with
	// nothing of the move left, and takes a write.
	checkUntouched := func(t *testing.T, name string) {
		t.Helper()
		if got := placement(t, d, "acme"); got != postgres.MainCluster {
			t.Fatalf("placement %s, want main", got)
		}
		if left := leftoversOfMove(t, d.Clusters[1], "acme"); len(left) > 0 {
			t.Fatalf("left on %s: %v", other, left)
		}
		if left := leftoversOfMove(t, d.Clusters[0], "acme"); !slices.Equal(left, []string{"schema acme"}) {
			t.Fatalf("on main: %v, want the schema alone", left)
		}
		if err := createProduct(t.Context(), d.DB, "acme", name); err != nil {
			t.Fatalf("a write after the failed move: %v", err)
		}
	}

	t.Run("a move cancelled during the copy is undone", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		_, err := newMover(d).Move(ctx, "acme", other, func(p tenancy.MoveProgress) {
			if p.Phase == tenancy.MoveCopy {
				cancel()
			}
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		checkUntouched(t, "after-cancel")
	})

	t.Run("a move whose pause cannot begin within its bound is undone", func(t *testing.T) {
		ctx := t.Context()
		var held pgx.Tx
		defer func() {
			if held != nil {
				_ = held.Rollback(ctx)
			}
		}()
		// A writer that keeps its transaction open through the pause.
		_, err := newMover(d, tenancy.WithPauseLimit(time.Second)).Move(ctx, "acme", other, func(p tenancy.MoveProgress) {
			if p.Phase != tenancy.MovePause {
				return
			}
			tx, err := d.DB.Pool.Begin(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			held = tx
			if _, err := tx.Exec(ctx, `INSERT INTO acme.products (sku, name, price, currency) VALUES ('held', 'held', 1, 'EUR')`); err != nil {
				t.Error(err)
			}
		})
		var de *domain.Error
		if !errors.As(err, &de) || de.Code != domain.EUNAVAILABLE {
			t.Fatalf("error %v, want EUNAVAILABLE", err)
		}
		if err := held.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		held = nil
		checkUntouched(t, "after-pause")
	})

	t.Run("a retry moves the tenant with every write", func(t *testing.T) {
		before := contents(t, d.Clusters[0], "acme")
		if _, err := newMover(d).Move(t.Context(), "acme", other, nil); err != nil {
			t.Fatal(err)
		}
		checkMovedTo(t, d, "acme", postgres.MainCluster, other)
		after := contents(t, d.Clusters[1], "acme")
		for _, tbl := range movedTables {
			if !slices.Equal(before[tbl], after[tbl]) {
				t.Fatalf("%s differs after the retry: %d rows before, %d after", tbl, len(before[tbl]), len(after[tbl]))
			}
		}
		var held int
		if err := d.Clusters[1].DB.Pool.QueryRow(t.Context(), `SELECT count(*) FROM acme.products WHERE name IN ('held', 'after-cancel', 'after-pause')`).Scan(&held); err != nil || held != 3 {
			t.Fatalf("writes made around the failed moves on the target: %d (%v), want 3", held, err)
		}
	})
}

func TestAMoveClearsWhatACrashedAttemptLeft(t *testing.T) {
	t.Parallel()
	d := testenv.MustClusterDatabases(t)
	ctx := t.Context()
	source, target := d.Clusters[0], d.Clusters[1]
	placeTenant(t, d, "acme", postgres.MainCluster)
	fillTenant(t, d.DB, "acme", 5)
	before := contents(t, source, "acme")
	// What a move killed during its copy leaves: the publication and its
	// slot on the source, the subscription and a half-copied schema on the
	// target; and an old copy an earlier move away from the target left.
	for _, step := range []struct {
		on  postgres.Cluster
		sql string
	}{
		{source, `CREATE PUBLICATION saas_move_acme FOR TABLES IN SCHEMA acme`},
		{target, `CREATE SCHEMA "acme-moved-0badc0de"`},
		{target, `CREATE SUBSCRIPTION saas_move_acme CONNECTION '` + source.DirectURL + `' PUBLICATION saas_move_acme WITH (copy_data = false)`},
	} {
		if _, err := step.on.DB.Pool.Exec(ctx, step.sql); err != nil {
			t.Fatalf("%s: %v", step.sql, err)
		}
		if step.sql == `CREATE SCHEMA "acme-moved-0badc0de"` {
			migrateOn(t, target, "acme")
			if _, err := target.DB.Pool.Exec(ctx, `INSERT INTO acme.users (email, password_hash) VALUES ('half@example.com', 'x')`); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := newMover(d).Move(ctx, "acme", target.Name, nil); err != nil {
		t.Fatalf("a move after a crashed one: %v", err)
	}
	checkMovedTo(t, d, "acme", source.Name, target.Name)
	after := contents(t, target, "acme")
	for _, tbl := range movedTables {
		if !slices.Equal(before[tbl], after[tbl]) {
			t.Fatalf("%s: %d rows before, %d after", tbl, len(before[tbl]), len(after[tbl]))
		}
	}
}

// migrateOn makes the tenant's schema on cluster c and migrates it.
func migrateOn(t testing.TB, c postgres.Cluster, schemaName string) {
	t.Helper()
	if _, err := c.DB.Pool.Exec(t.Context(), `CREATE SCHEMA `+pgx.Identifier{schemaName}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	r, err := schema.NewRunner(c.DirectURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.MigrateTenant(t.Context(), schemaName); err != nil {
		t.Fatal(err)
	}
}

// TestAMoveAnnouncesItselfOnceSwitched: the Manager's movers call its
// change announcement (how other processes drop a cached placement) after
// the switch has committed, and a move that fails announces nothing.
func TestAMoveAnnouncesItselfOnceSwitched(t *testing.T) {
	t.Parallel()
	d := testenv.MustClusterDatabases(t)
	ctx := t.Context()
	placeTenant(t, d, "acme", postgres.MainCluster)
	other := d.Clusters[1].Name
	m := tenancy.NewManager(d.DB, nil, slog.New(slog.DiscardHandler))
	var seen []string
	m.OnChange(func(ctx context.Context) { seen = append(seen, placement(t, d, "acme")) })
	if _, err := m.NewMover().Move(ctx, "acme", "nowhere", nil); err == nil {
		t.Fatal("a move to an unknown cluster succeeded")
	}
	if len(seen) != 0 {
		t.Fatalf("a failed move announced %d changes", len(seen))
	}
	if _, err := m.NewMover().Move(ctx, "acme", other, nil); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seen, []string{other}) {
		t.Fatalf("announcements saw the placement %v, want once, on %s", seen, other)
	}
}

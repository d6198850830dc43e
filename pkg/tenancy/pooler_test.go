package tenancy_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/pkg/testenv"
	"github.com/tenantworks/saas/schema"
)

// TestTenantsShareServerConnectionsThroughThePooler runs 400 interleaved
// transactions of 8 tenants from 32 client connections through PgBouncer
// in transaction mode, which serves them on its few server connections
// (20 per database in the local stack), so every server connection runs
// many tenants' transactions one after another. Each transaction must see
// its own schema and write into it; afterwards no server connection is
// left with a tenant's search_path or a prepared statement.
func TestTenantsShareServerConnectionsThroughThePooler(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testenv.MustPooledDatabase(t)
	runner, err := schema.NewRunner(d.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := tenancy.NewManager(d.DB, runner, slog.New(slog.DiscardHandler))
	const tenants, txs = 8, 400
	names := make([]string, tenants)
	for i := range names {
		names[i] = fmt.Sprintf("pool%02d", i)
		if _, err := m.Create(ctx, tenancy.CreateParams{Schema: names[i], Name: names[i], Domain: names[i] + ".localhost"}); err != nil {
			t.Fatal(err)
		}
	}
	db := d.MustPool(t, 32)

	var (
		mu     sync.Mutex
		served = map[int32]map[string]bool{} // server backend pid -> tenants it served
		wg     sync.WaitGroup
		errs   = make(chan error, txs)
	)
	for i := range txs {
		wg.Go(func() {
			s := names[i%tenants]
			errs <- db.InTenant(ctx, s, func(tx pgx.Tx) error {
				var cur string
				var pid int32
				if err := tx.QueryRow(ctx, `SELECT current_schema(), pg_backend_pid()`).Scan(&cur, &pid); err != nil {
					return err
				}
				if cur != s {
					return fmt.Errorf("a transaction of %s runs in schema %s", s, cur)
				}
				mu.Lock()
				if served[pid] == nil {
					served[pid] = map[string]bool{}
				}
				served[pid][s] = true
				mu.Unlock()
				_, err := tx.Exec(ctx, `INSERT INTO users (email, password_hash) VALUES ($1, 'x')`, fmt.Sprintf("u%03d@%s.test", i, s))
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
	shared := 0
	for _, ts := range served {
		if len(ts) > 1 {
			shared++
		}
	}
	t.Logf("%d transactions of %d tenants from 32 client connections ran on %d server connections, %d of which served several tenants",
		txs, tenants, len(served), shared)
	if shared == 0 {
		t.Fatalf("no server connection served more than one tenant (%d server connections): the pooler was not in the way", len(served))
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
	// Outside a transaction, whichever server connection answers is on the
	// default path and holds no prepared statement.
	for range 40 {
		var path string
		var prepared int
		if err := db.Pool.QueryRow(ctx, `SELECT current_setting('search_path'), (SELECT count(*) FROM pg_prepared_statements)`).Scan(&path, &prepared); err != nil {
			t.Fatal(err)
		}
		if path != `"$user", public` || prepared != 0 {
			t.Fatalf("a server connection has search_path %q and %d prepared statements after the tenants' transactions", path, prepared)
		}
	}
}

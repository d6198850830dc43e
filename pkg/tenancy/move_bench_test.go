package tenancy_test

import (
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/pkg/testenv"
)

// BenchmarkTenantMove moves a tenant of MOVE_BENCH_PRODUCTS products
// (10,000 unless set, each with its outbox row) back and forth between
// main and the other cluster, b.N times, while 20 product writes a second
// go to it, and reports the copy and the write pause, median and worst:
//
//	go test -run '^$' -bench TenantMove -benchtime 10x ./pkg/tenancy/
func BenchmarkTenantMove(b *testing.B) {
	products := 10000
	if s := os.Getenv("MOVE_BENCH_PRODUCTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("MOVE_BENCH_PRODUCTS=%q: want a positive number", s)
		}
		products = n
	}
	d := testenv.MustClusterDatabases(b)
	ctx := b.Context()
	placeTenant(b, d, "bench", postgres.MainCluster)
	for _, q := range []string{`INSERT INTO bench.products (sku, name, price, currency, stock)
			SELECT 'B-' || i, 'Product ' || i, i % 1000, 'EUR', i % 50 FROM generate_series(1, ` + strconv.Itoa(products) + `) i`,
		`INSERT INTO bench.outbox (event_id, event_type, aggregate_id, aggregate_version, payload)
			SELECT gen_random_uuid(), 'product.created', id, 1, jsonb_build_object('name', name) FROM bench.products`} {
		if _, err := d.DB.Pool.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	mover := tenancy.NewMover(d.DB, slog.New(slog.DiscardHandler))

	stop := make(chan struct{})
	done := make(chan struct{})
	var ok, retried atomic.Int64
	go func() { // 20 writes a second
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if err := createProduct(ctx, d.DB, "bench", "w-"+strconv.Itoa(i)); err != nil {
				retried.Add(1)
			} else {
				ok.Add(1)
			}
		}
	}()
	var copies, pauses []time.Duration
	clusters := []string{d.Clusters[1].Name, postgres.MainCluster}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := mover.Move(ctx, "bench", clusters[i%2], nil)
		if err != nil {
			b.Fatal(err)
		}
		copies, pauses = append(copies, res.Copy), append(pauses, res.Pause)
	}
	b.StopTimer()
	close(stop)
	<-done
	slices.Sort(copies)
	slices.Sort(pauses)
	b.ReportMetric(float64(copies[len(copies)/2].Milliseconds()), "copy-p50-ms")
	b.ReportMetric(float64(copies[len(copies)-1].Milliseconds()), "copy-max-ms")
	b.ReportMetric(float64(pauses[len(pauses)/2].Microseconds())/1000, "pause-p50-ms")
	b.ReportMetric(float64(pauses[len(pauses)-1].Microseconds())/1000, "pause-max-ms")
	b.ReportMetric(float64(retried.Load()), "writes-told-to-retry")
	b.ReportMetric(float64(ok.Load()), "writes-answered")
}

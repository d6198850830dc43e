package cache_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/testenv"
)

// slowSource hands out a product version, optionally waiting first, so a
// test can hold a reader between its database read and its cache write.
type slowSource struct {
	version chan int64
	entered chan struct{}
}

var _ cache.ProductSource = (*slowSource)(nil)

func (s *slowSource) GetProduct(_ context.Context, _, id string) (domain.Product, error) {
	s.entered <- struct{}{}
	return domain.Product{ID: id, Name: "p", Version: <-s.version}, nil
}

func (s *slowSource) ListProducts(context.Context, string, postgres.ListParams) ([]domain.Product, string, error) {
	return nil, "", nil
}

func TestASlowReaderCannotRestoreAnOldValue(t *testing.T) {
	rdb := MustRedis(t)
	src := &slowSource{version: make(chan int64), entered: make(chan struct{})}
	c := cache.NewProducts(rdb, MustKeys(t, rdb), src, time.Minute, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	schemaName, id := "slow_"+testenv.RandomName(8), "0195b7f2-0000-7000-8000-000000000001"

	// The slow reader misses and reads version 1 from the database...
	done := make(chan domain.Product)
	go func() {
		p, _ := c.GetProduct(ctx, schemaName, id)
		done <- p
	}()
	<-src.entered
	// ...meanwhile version 2 commits and its invalidation runs...
	if err := c.Invalidate(ctx, schemaName, id); err != nil {
		t.Fatal(err)
	}
	// ...and only then does the slow reader try to cache version 1.
	src.version <- 1
	if p := <-done; p.Version != 1 {
		t.Fatalf("slow reader got version %d", p.Version)
	}
	// The next reader must miss and read version 2, not find version 1.
	go func() {
		<-src.entered
		src.version <- 2
	}()
	p, err := c.GetProduct(ctx, schemaName, id)
	if err != nil {
		t.Fatal(err)
	}
	if p.Version != 2 {
		t.Fatalf("after the invalidation the cache served version %d, want 2", p.Version)
	}
}

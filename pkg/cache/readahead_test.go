package cache_test

import (
	"slices"
	"testing"
	"time"

	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/testenv"
)

func TestAReadAheadMakesACachedRetrieveOneRoundTrip(t *testing.T) {
	t.Parallel()
	rdb := MustRedis(t)
	keys := MustKeys(t, rdb)
	var log testenv.RedisCommands
	rdb.AddHook(&log)
	ctx := t.Context()
	src := &table{name: "widget", version: 3, active: true}
	products := cache.NewProducts(rdb, keys, src, time.Minute, discard)
	users := cache.NewUsers(rdb, keys, src, time.Minute, discard)
	schemaName := "ra_" + testenv.RandomName(8)
	const userID = "0195b7f2-0000-7000-8000-0000000000bb"

	// The first retrieve fills both entries; it reads ahead all the same
	// and finds nothing, so the product goes straight to its miss path.
	rctx := cache.WithProductReadAhead(ctx, schemaName, productID)
	if ua, err := users.GetUserAuth(rctx, schemaName, userID); err != nil || !ua.Active {
		t.Fatalf("flags: %+v, %v", ua, err)
	}
	if p, err := products.GetProduct(rctx, schemaName, productID); err != nil || p.ID != productID || p.Version != 3 {
		t.Fatalf("product: %+v, %v", p, err)
	}
	if got := log.Take(); len(got) == 0 || got[0] != "mget" || slices.Contains(got, "get") {
		t.Fatalf("a cold retrieve sent %v, want an MGET first and no GET after it", got)
	}
	if n := src.reads.Load(); n != 2 {
		t.Fatalf("%d source reads for a cold retrieve, want 2", n)
	}

	// A cached retrieve: one MGET, nothing else.
	rctx = cache.WithProductReadAhead(ctx, schemaName, productID)
	if ua, err := users.GetUserAuth(rctx, schemaName, userID); err != nil || !ua.Active {
		t.Fatalf("flags: %+v, %v", ua, err)
	}
	if p, err := products.GetProduct(rctx, schemaName, productID); err != nil || p.ID != productID || p.Name != "widget" || p.Version != 3 {
		t.Fatalf("product: %+v, %v", p, err)
	}
	if got := log.Take(); !slices.Equal(got, []string{"mget"}) {
		t.Fatalf("a cached retrieve sent %v, want one MGET", got)
	}
	if n := src.reads.Load(); n != 2 {
		t.Fatalf("%d source reads after a cached retrieve, want still 2", n)
	}

	// What was read ahead serves one read: a second read of the product
	// in the same request asks Redis again and sees an invalidation.
	if err := products.Invalidate(ctx, schemaName, productID); err != nil {
		t.Fatal(err)
	}
	src.write(4, true)
	log.Take()
	if p, err := products.GetProduct(rctx, schemaName, productID); err != nil || p.Version != 4 {
		t.Fatalf("a second read with a used read-ahead: %+v, %v; want version 4 from the source", p, err)
	}
	if got := log.Take(); len(got) == 0 || got[0] != "get" {
		t.Fatalf("a second read with a used read-ahead sent %v, want a GET first", got)
	}
}

func TestAReadAheadServesOnlyTheProductAndTenantItNamed(t *testing.T) {
	t.Parallel()
	rdb := MustRedis(t)
	keys := MustKeys(t, rdb)
	ctx := t.Context()
	src := &table{name: "widget", version: 1, active: true}
	products := cache.NewProducts(rdb, keys, src, time.Minute, discard)
	users := cache.NewUsers(rdb, keys, src, time.Minute, discard)
	a, b := "ra_"+testenv.RandomName(8), "ra_"+testenv.RandomName(8)
	const userID, otherID = "0195b7f2-0000-7000-8000-0000000000bb", "0195b7f2-0000-7000-8000-0000000000cc"
	// Tenant a's product is cached with version 1; b's and a's other
	// product with version 2.
	if _, err := products.GetProduct(ctx, a, productID); err != nil {
		t.Fatal(err)
	}
	src.write(2, true)
	for _, r := range []struct{ schema, id string }{{b, productID}, {a, otherID}} {
		if _, err := products.GetProduct(ctx, r.schema, r.id); err != nil {
			t.Fatal(err)
		}
	}

	for _, r := range []struct {
		name, schema, id string
	}{
		{"another product of the tenant", a, otherID},
		{"the same id in another tenant", b, productID},
	} {
		rctx := cache.WithProductReadAhead(ctx, a, productID)
		if _, err := users.GetUserAuth(rctx, a, userID); err != nil {
			t.Fatal(err)
		}
		p, err := products.GetProduct(rctx, r.schema, r.id)
		if err != nil || p.ID != r.id || p.Version != 2 {
			t.Fatalf("%s: %+v, %v; want its own entry (version 2), not the one read ahead", r.name, p, err)
		}
	}

	// A read-ahead of tenant a is not made by a user check of tenant b.
	var log testenv.RedisCommands
	rdb.AddHook(&log)
	rctx := cache.WithProductReadAhead(ctx, a, productID)
	if _, err := users.GetUserAuth(rctx, b, userID); err != nil {
		t.Fatal(err)
	}
	if got := log.Take(); slices.Contains(got, "mget") {
		t.Fatalf("a user check of another tenant sent %v, want no MGET", got)
	}
}

package cache_test

import (
	"fmt"
	"testing"

	"github.com/tenantworks/saas/pkg/cache"
	cat "github.com/tenantworks/saas/pkg/catalog"
)

var _ cat.ManyInvalidator = (*cache.Products)(nil)

func TestInvalidateManyDropsEveryNamedItemAndTheListPages(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rdb := MustRedis(t)
	src := &table{name: "old", version: 1}
	c := cache.NewProducts(rdb, MustKeys(t, rdb), src, 0, discard)
	// More than one transaction's worth, and one product left alone.
	ids := make([]string, 1001)
	for i := range ids {
		ids[i] = fmt.Sprintf("0195b7f2-0000-7000-8000-%012d", i)
	}
	kept := "0195b7f2-0000-7000-8000-999999999999"
	for _, id := range []string{ids[0], ids[1000], kept} {
		if _, err := c.GetProduct(ctx, "acme", id); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := c.ListProducts(ctx, "acme", listAll); err != nil {
		t.Fatal(err)
	}
	src.write(2, true)

	if err := c.InvalidateMany(ctx, "acme", ids); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{ids[0], ids[1000]} {
		if p, err := c.GetProduct(ctx, "acme", id); err != nil || p.Version != 2 {
			t.Fatalf("product %s after InvalidateMany: version %d, %v; want 2 from the source", id, p.Version, err)
		}
	}
	if p, err := c.GetProduct(ctx, "acme", kept); err != nil || p.Version != 1 {
		t.Fatalf("product not named: version %d, %v; want the cached 1", p.Version, err)
	}
	if ps, _, err := c.ListProducts(ctx, "acme", listAll); err != nil || ps[0].Version != 2 {
		t.Fatalf("list after InvalidateMany: %+v, %v; want version 2 from the source", ps, err)
	}
}

func TestInvalidateManyOfNoProductsStillDropsTheListPages(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rdb := MustRedis(t)
	src := &table{name: "old", version: 1}
	c := cache.NewProducts(rdb, MustKeys(t, rdb), src, 0, discard)
	if _, _, err := c.ListProducts(ctx, "acme", listAll); err != nil {
		t.Fatal(err)
	}
	src.write(2, true)
	if err := c.InvalidateMany(ctx, "acme", nil); err != nil {
		t.Fatal(err)
	}
	if ps, _, err := c.ListProducts(ctx, "acme", listAll); err != nil || ps[0].Version != 2 {
		t.Fatalf("list after InvalidateMany(nil): %+v, %v; want version 2 from the source", ps, err)
	}
}

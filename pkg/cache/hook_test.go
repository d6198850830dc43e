package cache_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/testenv"
)

func TestDeletingATenantDropsOnlyItsKeys(t *testing.T) {
	t.Parallel()
	rdb := MustRedis(t)
	keys := MustKeys(t, rdb)
	ctx := t.Context()
	gone, kept := "gone_"+testenv.RandomName(8), "kept_"+testenv.RandomName(8)
	// The kept tenant's name starts like the deleted one's: only the
	// "<prefix>:{<schema>}:" prefix may match.
	similar := gone + "x"
	for i := range 1200 {
		for _, s := range []string{gone, kept, similar} {
			if err := rdb.Set(ctx, keys.Product(s, strconv.Itoa(i)), "v", time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	hook := cache.Hook{Client: rdb, Keys: keys}
	if err := hook.TenantDeleted(ctx, domain.Tenant{Schema: gone}); err != nil {
		t.Fatal(err)
	}
	count := func(s string) int { return len(mustScan(t, rdb, keys.Tenant(s)+"*")) }
	if n := count(gone); n != 0 {
		t.Fatalf("%d keys of the deleted tenant left", n)
	}
	if count(kept) != 1200 || count(similar) != 1200 {
		t.Fatalf("other tenants lost keys: %d and %d of 1200", count(kept), count(similar))
	}
}

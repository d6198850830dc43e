package cache_test

import (
	"testing"
	"time"

	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/testenv"
)

func TestDeletingATenantDropsOnlyItsKeys(t *testing.T) {
	rdb, err := cache.Open(testenv.Get(t).RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctx := t.Context()
	gone, kept := "gone_"+testenv.RandomName(8), "kept_"+testenv.RandomName(8)
	// The kept tenant's name starts like the deleted one's: only the
	// "<schema>:" prefix may match.
	similar := gone + "x"
	for i := range 1200 {
		for _, s := range []string{gone, kept, similar} {
			if err := rdb.Set(ctx, s+":product:"+time.Duration(i).String(), "v", time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := (cache.Hook{Client: rdb}).TenantDeleted(ctx, domain.Tenant{Schema: gone}); err != nil {
		t.Fatal(err)
	}
	count := func(s string) int {
		keys, err := rdb.Keys(ctx, s+":*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	if n := count(gone); n != 0 {
		t.Fatalf("%d keys of the deleted tenant left", n)
	}
	if count(kept) != 1200 || count(similar) != 1200 {
		t.Fatalf("other tenants lost keys: %d and %d of 1200", count(kept), count(similar))
	}
	for _, s := range []string{kept, similar} {
		if err := (cache.Hook{Client: rdb}).TenantDeleted(ctx, domain.Tenant{Schema: s}); err != nil {
			t.Fatal(err)
		}
	}
}

package cache_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/testenv"
)

// Every key the caches and the limiter write starts with the prefix and
// expires, generations included, and each generation outlives the values
// it guards.
func TestEveryKeyHasThePrefixAndATTL(t *testing.T) {
	t.Parallel()
	rdb := MustRedis(t)
	keys := MustKeys(t, rdb)
	ctx := context.Background()
	schemaName := "ttl_" + testenv.RandomName(8)
	addr := "ttl-" + testenv.RandomName(8) // a unique client address
	src := &table{name: "p", version: 1, active: true}
	products := cache.NewProducts(rdb, keys, src, time.Minute, discard)
	users := cache.NewUsers(rdb, keys, src, time.Minute, discard)
	limiter := cache.NewLimiter(rdb, keys, 10, time.Minute)
	otherUser := "0195b7f2-0000-7000-8000-0000000000bb"

	// Every writer: fills, an invalidation and the fills after it, a flags
	// change, sign-in attempts of a tenant and of the platform.
	for range 2 {
		if _, err := products.GetProduct(ctx, schemaName, productID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := products.ListProducts(ctx, schemaName, listAll); err != nil {
			t.Fatal(err)
		}
		if err := products.Invalidate(ctx, schemaName, productID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := products.GetProduct(ctx, schemaName, productID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := products.ListProducts(ctx, schemaName, listAll); err != nil {
		t.Fatal(err)
	}
	if _, err := users.GetUserAuth(ctx, schemaName, productID); err != nil {
		t.Fatal(err)
	}
	if err := users.Store(ctx, schemaName, otherUser, postgres.UserAuth{Active: true}); err != nil {
		t.Fatal(err)
	}
	for _, realm := range []string{schemaName, "public"} {
		if _, err := limiter.Allow(ctx, realm+":login:"+addr); err != nil {
			t.Fatal(err)
		}
	}

	// Nothing of this test's tenant or client lies outside the prefix.
	for _, pattern := range []string{"*" + schemaName + "*", "*" + addr + "*"} {
		for _, k := range mustScan(t, rdb, pattern) {
			if !strings.HasPrefix(k, keys.Prefix()+":") {
				t.Errorf("key %s does not start with the prefix %s:", k, keys.Prefix())
			}
		}
	}

	ttls := map[string]time.Duration{}
	for _, k := range mustScan(t, rdb, keys.Prefix()+":*") {
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 0 {
			t.Errorf("key %s has no TTL (%v)", k, ttl)
		}
		ttls[k] = ttl
	}
	listGen, err := rdb.Get(ctx, keys.ListGen(schemaName)).Result()
	if err != nil {
		t.Fatalf("no list generation: %v", err)
	}
	page := keys.Tenant(schemaName) + "products:g" + listGen + ":" + postgres.DefaultOrdering + ":10:"
	userKey := keys.Tenant(schemaName) + "user:" + productID
	// Each value and the generation that guards it.
	for value, gen := range map[string]string{
		keys.Product(schemaName, productID): keys.ProductGen(schemaName, productID),
		page:                                keys.ListGen(schemaName),
		userKey:                             userKey + ":gen",
		keys.Tenant(schemaName) + "user:" + otherUser: keys.Tenant(schemaName) + "user:" + otherUser + ":gen",
		keys.Tenant(schemaName) + "login:" + addr:     "",
		keys.Tenant("public") + "login:" + addr:       "",
	} {
		if _, ok := ttls[value]; !ok {
			t.Errorf("key %s was not written", value)
			continue
		}
		if gen == "" {
			continue
		}
		if _, ok := ttls[gen]; !ok {
			t.Errorf("generation %s was not written", gen)
		} else if ttls[gen] < ttls[value] {
			t.Errorf("generation %s expires before the value it guards (%v < %v)", gen, ttls[gen], ttls[value])
		}
	}
}

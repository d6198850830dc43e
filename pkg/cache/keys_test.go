package cache_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/testenv"
)

func TestNewKeysRefusesPrefixesThatCouldMatchOtherKeys(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", "saas:x", "sa as", "saas*", "sa?s", "[saas]", `sa\s`, "é", strings.Repeat("a", 33)} {
		if _, err := cache.NewKeys(p); !errors.Is(err, cache.ErrInvalidPrefix) {
			t.Errorf("NewKeys(%q) = %v, want ErrInvalidPrefix", p, err)
		}
	}
	for _, p := range []string{"saas", "A", "prod-eu.1_b", strings.Repeat("a", 32)} {
		k, err := cache.NewKeys(p)
		if err != nil {
			t.Errorf("NewKeys(%q) = %v", p, err)
		} else if got := k.Product("acme", "1"); got != p+":{acme}:product:1" {
			t.Errorf("NewKeys(%q).Product = %q", p, got)
		}
	}
	if got := (cache.Keys{}).Tenant("acme"); got != "saas:{acme}:" {
		t.Errorf("the zero Keys names %q, want the default prefix saas", got)
	}
}

func TestTwoPrefixesWithTheSameSchemaShareNoKey(t *testing.T) {
	t.Parallel()
	rdb := MustRedis(t)
	ka, kb := MustKeys(t, rdb), MustKeys(t, rdb)
	ctx := t.Context()
	schemaName, id := "same_"+testenv.RandomName(8), "0195b7f2-0000-7000-8000-000000000001"
	srcA, srcB := &table{name: "A", version: 1, active: true}, &table{name: "B", version: 1}
	productsA, productsB := cache.NewProducts(rdb, ka, srcA, time.Minute, discard), cache.NewProducts(rdb, kb, srcB, time.Minute, discard)
	usersA, usersB := cache.NewUsers(rdb, ka, srcA, time.Minute, discard), cache.NewUsers(rdb, kb, srcB, time.Minute, discard)

	// Each prefix fills its own keys and hits them: neither ever sees the
	// other's product, page or flags.
	for range 2 {
		if p, err := productsA.GetProduct(ctx, schemaName, id); err != nil || p.Name != "A" {
			t.Fatalf("prefix A reads %q, %v", p.Name, err)
		}
		if p, err := productsB.GetProduct(ctx, schemaName, id); err != nil || p.Name != "B" {
			t.Fatalf("prefix B reads %q, %v", p.Name, err)
		}
		if ps, _, err := productsA.ListProducts(ctx, schemaName, listAll); err != nil || ps[0].Name != "A" {
			t.Fatalf("prefix A lists %v, %v", ps, err)
		}
		if ps, _, err := productsB.ListProducts(ctx, schemaName, listAll); err != nil || ps[0].Name != "B" {
			t.Fatalf("prefix B lists %v, %v", ps, err)
		}
		if ua, err := usersA.GetUserAuth(ctx, schemaName, id); err != nil || !ua.Active {
			t.Fatalf("prefix A reads flags %+v, %v", ua, err)
		}
		if ua, err := usersB.GetUserAuth(ctx, schemaName, id); err != nil || ua.Active {
			t.Fatalf("prefix B reads flags %+v, %v", ua, err)
		}
	}
	if a, b := srcA.reads.Load(), srcB.reads.Load(); a != 3 || b != 3 {
		t.Fatalf("source reads: %d under A, %d under B; want 3 each (item, page, flags), then hits", a, b)
	}

	// A sign-in limiter at its limit under one prefix limits nobody under
	// the other.
	limA, limB := cache.NewLimiter(rdb, ka, 1, time.Minute), cache.NewLimiter(rdb, kb, 1, time.Minute)
	login := schemaName + ":login:192.0.2.1"
	for i, want := range []bool{true, false} {
		if retry, err := limA.Allow(ctx, login); err != nil || (retry == 0) != want {
			t.Fatalf("attempt %d under A: retry %v, %v", i+1, retry, err)
		}
	}
	if retry, err := limB.Allow(ctx, login); err != nil || retry != 0 {
		t.Fatalf("first attempt under B: retry %v, %v; want allowed", retry, err)
	}

	// An invalidation under A leaves B's cache alone.
	if err := productsA.Invalidate(ctx, schemaName, id); err != nil {
		t.Fatal(err)
	}
	if _, err := productsB.GetProduct(ctx, schemaName, id); err != nil {
		t.Fatal(err)
	}
	if _, _, err := productsB.ListProducts(ctx, schemaName, listAll); err != nil {
		t.Fatal(err)
	}
	if n := srcB.reads.Load(); n != 3 {
		t.Fatalf("an invalidation under A made B read its source again (%d reads)", n)
	}

	// Deleting the tenant under A drops all of A's keys of it and none of B's.
	keysOfB := mustScan(t, rdb, kb.Tenant(schemaName)+"*")
	if len(mustScan(t, rdb, ka.Tenant(schemaName)+"*")) == 0 || len(keysOfB) == 0 {
		t.Fatal("nothing was cached")
	}
	if err := (cache.Hook{Client: rdb, Keys: ka}).TenantDeleted(ctx, domain.Tenant{Schema: schemaName}); err != nil {
		t.Fatal(err)
	}
	if left := mustScan(t, rdb, ka.Prefix()+":*"); len(left) != 0 {
		t.Fatalf("keys of the deleted tenant left under A: %v", left)
	}
	after := mustScan(t, rdb, kb.Prefix()+":*")
	slices.Sort(keysOfB)
	slices.Sort(after)
	if !slices.Equal(after, keysOfB) {
		t.Fatalf("B's keys changed when A's tenant was deleted:\nbefore %v\nafter  %v", keysOfB, after)
	}
}

package cache_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/testenv"
)

const productID = "0195b7f2-0000-7000-8000-000000000001"

// evict deletes the tenant's keys that which selects, as Redis would when it
// evicts or expires them: "generations" (every key ending in :gen) or "all".
func evict(t *testing.T, rdb redis.UniversalClient, keys cache.Keys, schemaName, which string) {
	t.Helper()
	for _, k := range mustScan(t, rdb, keys.Tenant(schemaName)+"*") {
		if which == "all" || strings.HasSuffix(k, ":gen") {
			if err := rdb.Del(context.Background(), k).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// readAll reads the product, the list page and the user's flags through
// the caches and fails the test unless each shows version (and active).
func readAll(t *testing.T, products *cache.Products, users *cache.Users, schemaName string, version int64, active bool, when string) {
	t.Helper()
	ctx := context.Background()
	if p, err := products.GetProduct(ctx, schemaName, productID); err != nil || p.Version != version {
		t.Fatalf("%s: the product is served at version %d (%v), want %d", when, p.Version, err, version)
	}
	if ps, _, err := products.ListProducts(ctx, schemaName, listAll); err != nil || len(ps) != 1 || ps[0].Version != version {
		t.Fatalf("%s: the list page is served with %v (%v), want version %d", when, ps, err, version)
	}
	if ua, err := users.GetUserAuth(ctx, schemaName, productID); err != nil || ua.Active != active {
		t.Fatalf("%s: the user's flags are served as active=%v (%v), want %v", when, ua.Active, err, active)
	}
}

// A write followed by the loss of generations (evicted, expired) must never
// bring back an item, a page or flags cached before the write: a
// generation that comes back is a new one, which matches nothing older.
func TestALostGenerationNeverBringsBackWhatWasCachedBeforeAWrite(t *testing.T) {
	t.Parallel()
	rdb := MustRedis(t)
	for _, which := range []string{"generations", "all"} {
		for _, when := range []string{"after the write", "after the reads that fill the cache"} {
			t.Run("losing "+which+" "+when, func(t *testing.T) {
				t.Parallel()
				keys := MustKeys(t, rdb)
				schemaName := "lost_" + testenv.RandomName(8)
				src := &table{name: "p"}
				products := cache.NewProducts(rdb, keys, src, time.Minute, discard)
				users := cache.NewUsers(rdb, keys, src, time.Minute, discard)
				ctx := context.Background()
				for v := int64(1); v <= 6; v++ {
					// A write: committed, then the caches are told.
					active := v%2 == 1
					src.write(v, active)
					if err := products.Invalidate(ctx, schemaName, productID); err != nil {
						t.Fatal(err)
					}
					if err := users.Store(ctx, schemaName, productID, postgres.UserAuth{Active: active}); err != nil {
						t.Fatal(err)
					}
					if when == "after the write" {
						evict(t, rdb, keys, schemaName, which)
					}
					readAll(t, products, users, schemaName, v, active, "first read")
					readAll(t, products, users, schemaName, v, active, "second read")
					if when != "after the write" {
						evict(t, rdb, keys, schemaName, which)
					}
				}
			})
		}
	}
}

// A reader that read the database before a write must not store what it
// read once the write's invalidation ran, whichever keys Redis lost at any
// point of the race: before the reader noted the generation, while it was
// reading, or after the invalidation.
func TestASlowReaderNeverStoresWhatItReadBeforeAWrite(t *testing.T) {
	t.Parallel()
	rdb := MustRedis(t)
	type path struct {
		name string
		// read reads through the cache; invalidate is the writer's call
		// once its change is committed.
		read       func(c *caches) error
		invalidate func(c *caches) error
	}
	ctx := context.Background()
	invalidateProduct := func(c *caches) error { return c.products.Invalidate(ctx, c.schema, productID) }
	paths := []path{{
		name:       "the product",
		read:       func(c *caches) error { _, err := c.products.GetProduct(ctx, c.schema, productID); return err },
		invalidate: invalidateProduct,
	}, {
		name:       "the list page",
		read:       func(c *caches) error { _, _, err := c.products.ListProducts(ctx, c.schema, listAll); return err },
		invalidate: invalidateProduct,
	}, {
		name: "the user's flags",
		read: func(c *caches) error { _, err := c.users.GetUserAuth(ctx, c.schema, productID); return err },
		invalidate: func(c *caches) error {
			return c.users.Store(ctx, c.schema, productID, postgres.UserAuth{Active: false})
		},
	}}
	points := []string{"before the read", "after the database read", "after the invalidation"}
	for _, p := range paths {
		for _, which := range []string{"generations", "all"} {
			// Every subset of the points, the empty one included.
			for mask := range 1 << len(points) {
				var at []string
				for i, pt := range points {
					if mask&(1<<i) != 0 {
						at = append(at, pt)
					}
				}
				name := p.name + ", nothing lost"
				if len(at) > 0 {
					name = p.name + ", " + which + " lost " + strings.Join(at, " and ")
				} else if which != "generations" {
					continue
				}
				lost := func(t *testing.T, c *caches, point int) {
					if mask&(1<<point) != 0 {
						evict(t, rdb, c.keys, c.schema, which)
					}
				}
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					c := newCaches(t, rdb)
					// Version 1 is committed and was announced: generations
					// exist, nothing is cached.
					c.src.write(1, true)
					if err := c.products.Invalidate(ctx, c.schema, productID); err != nil {
						t.Fatal(err)
					}
					if err := c.users.Store(ctx, c.schema, productID, postgres.UserAuth{Active: true}); err != nil {
						t.Fatal(err)
					}
					if err := rdb.Del(ctx, c.keys.Tenant(c.schema)+"user:"+productID).Err(); err != nil {
						t.Fatal(err)
					}

					lost(t, c, 0)
					g := c.src.pauseNext()
					done := make(chan error, 1)
					go func() { done <- p.read(c) }()
					select { // the slow reader has read version 1
					case <-g.read:
					case err := <-done:
						t.Fatalf("the reader did not read the database (%v)", err)
					}
					lost(t, c, 1)
					c.src.write(2, false)
					if err := p.invalidate(c); err != nil {
						t.Fatal(err)
					}
					lost(t, c, 2)
					close(g.release) // the slow reader now tries to store version 1
					if err := <-done; err != nil {
						t.Fatal(err)
					}
					readAll(t, c.products, c.users, c.schema, 2, false, "after the write")
					readAll(t, c.products, c.users, c.schema, 2, false, "from the cache after the write")
				})
			}
		}
	}
}

// Reads that start after a write's invalidation returned see that write,
// while other readers race the writer and Redis keeps losing generations.
func TestReadsAfterAWriteSeeItWhileGenerationsAreLost(t *testing.T) {
	t.Parallel()
	rdb := MustRedis(t)
	c := newCaches(t, rdb)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	for range 3 {
		wg.Go(func() {
			for ctx.Err() == nil {
				_, _ = c.products.GetProduct(ctx, c.schema, productID)
				_, _, _ = c.products.ListProducts(ctx, c.schema, listAll)
				_, _ = c.users.GetUserAuth(ctx, c.schema, productID)
			}
		})
	}
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			keys := []string{c.keys.ProductGen(c.schema, productID), c.keys.ListGen(c.schema), c.keys.Tenant(c.schema) + "user:" + productID + ":gen"}
			_ = rdb.Del(ctx, keys[i%len(keys)]).Err()
			time.Sleep(time.Duration(i%3) * time.Millisecond)
		}
	})
	for v := int64(1); v <= 150; v++ {
		active := v%2 == 0
		c.src.write(v, active)
		if err := c.products.Invalidate(ctx, c.schema, productID); err != nil {
			t.Fatal(err)
		}
		if err := c.users.Store(ctx, c.schema, productID, postgres.UserAuth{Active: active}); err != nil {
			t.Fatal(err)
		}
		readAll(t, c.products, c.users, c.schema, v, active, "read after the write")
	}
}

// caches are a tenant's caches under a test prefix, in front of one table.
type caches struct {
	keys     cache.Keys
	schema   string
	src      *table
	products *cache.Products
	users    *cache.Users
}

func newCaches(t *testing.T, rdb redis.UniversalClient) *caches {
	t.Helper()
	c := &caches{keys: MustKeys(t, rdb), schema: "slow_" + testenv.RandomName(8), src: &table{name: "p"}}
	c.products = cache.NewProducts(rdb, c.keys, c.src, time.Minute, discard)
	c.users = cache.NewUsers(rdb, c.keys, c.src, time.Minute, discard)
	return c
}

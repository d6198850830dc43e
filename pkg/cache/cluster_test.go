package cache_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/testenv"
)

func TestOpenTellsAClusterURLFromAServerURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url       string
		wantAddrs []string
	}{
		{"redis-cluster://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003", []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"}},
		{"redis-cluster://u:secret@10.0.0.1:6379/0?dial_timeout=3s", []string{"10.0.0.1:6379"}},
		{"REDISS-CLUSTER://cache-1.internal:6380,cache-2.internal:6380/", []string{"cache-1.internal:6380", "cache-2.internal:6380"}},
	} {
		rdb, err := cache.Open(tc.url)
		if err != nil {
			t.Errorf("Open(%q) = %v", tc.url, err)
			continue
		}
		c, ok := rdb.(*redis.ClusterClient)
		if !ok {
			t.Errorf("Open(%q) is a %T, want a cluster client", tc.url, rdb)
			continue
		}
		if got := c.Options().Addrs; !slices.Equal(got, tc.wantAddrs) {
			t.Errorf("Open(%q) seeds %v, want %v", tc.url, got, tc.wantAddrs)
		}
		_ = c.Close()
	}
	rdb, err := cache.Open("redis-cluster://u:secret@10.0.0.1:6379?dial_timeout=3s&pool_size=7")
	if err != nil {
		t.Fatal(err)
	}
	if o := rdb.(*redis.ClusterClient).Options(); o.Username != "u" || o.Password != "secret" || o.DialTimeout != 3*time.Second || o.PoolSize != 7 {
		t.Errorf("options of the cluster URL not kept: user %q, dial timeout %v, pool size %d", o.Username, o.DialTimeout, o.PoolSize)
	}
	_ = rdb.Close()
	if o := mustTLS(t, "rediss-cluster://h:1"); o.TLSConfig == nil {
		t.Error("rediss-cluster:// gives no TLS")
	}

	rdb, err = cache.Open("redis://127.0.0.1:6379/3")
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := rdb.(*redis.Client); !ok || c.Options().DB != 3 {
		t.Errorf("Open(redis://...:6379/3) = %T, want one server's client on database 3", rdb)
	}
	_ = rdb.Close()

	for _, bad := range []string{
		"redis-cluster://127.0.0.1:7001/1",                       // a cluster has only database 0
		"redis-cluster://127.0.0.1:7001,127.0.0.1",               // a node without its port
		"redis-cluster://127.0.0.1:7001,,127.0.0.1:7002",         // an empty node
		"redis-cluster://127.0.0.1:7001?addr=127.0.0.1:7002",     // nodes go in the host part
		"redis-cluster://127.0.0.1:7001?no_such_option=1",        // unknown options are refused
		"redis-cluster://127.0.0.1:7001?dial_timeout=not-a-time", // so are bad values
		"redis-cluster://", // no node
	} {
		if rdb, err := cache.Open(bad); err == nil {
			_ = rdb.Close()
			t.Errorf("Open(%q) succeeded, want an error", bad)
		}
	}
}

func mustTLS(t *testing.T, url string) *redis.ClusterOptions {
	t.Helper()
	rdb, err := cache.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	return rdb.(*redis.ClusterClient).Options()
}

func TestEveryKeyOfATenantIsTaggedWithItsSchema(t *testing.T) {
	t.Parallel()
	keys, err := cache.NewKeys("prod-eu.1_b")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{keys.Tenant("acme"), keys.Product("acme", productID), keys.ProductGen("acme", productID), keys.ListGen("acme")} {
		if got := hashTag(k); got != "acme" {
			t.Errorf("key %s is hashed on %q, want the schema acme", k, got)
		}
		if s, _, ok := keys.Split(k); !ok || s != "acme" {
			t.Errorf("Split(%s) = %q, %v; want acme", k, s, ok)
		}
	}
	for _, k := range []string{"saas:{acme}:product:1", "prod-eu.1_b:acme:product:1", "prod-eu.1_b:{}:x", "prod-eu.1_b:{acme"} {
		if s, _, ok := keys.Split(k); ok {
			t.Errorf("Split(%s) = %q, want no key of this prefix", k, s)
		}
	}
}

// hashTag returns what Redis Cluster hashes of key: the text between the
// first '{' and the first '}' after it when that is not empty, else the
// whole key.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

// On a Redis Cluster of several masters, every operation of the caches and
// the limiter works for tenants whose slots lie on each master (a script
// or transaction over keys of two slots would fail with CROSSSLOT, which
// the caches would hide by reading the source every time), every key of a
// tenant is in its schema's slot, and deleting a tenant drops its keys
// wherever they are.
func TestATenantsKeysShareOneSlotOnARedisCluster(t *testing.T) {
	t.Parallel()
	rdb := MustRedisCluster(t)
	keys := MustKeys(t, rdb)
	ctx := t.Context()
	const tenants = 12
	schemas := make([]string, tenants)
	for i := range schemas {
		schemas[i] = "slot_" + testenv.RandomName(8)
	}
	src := &table{name: "p", version: 1, active: true}
	products := cache.NewProducts(rdb, keys, src, time.Minute, discard)
	users := cache.NewUsers(rdb, keys, src, time.Minute, discard)
	limiter := cache.NewLimiter(rdb, keys, 1, time.Minute)
	addr := "192.0.2.7"
	for _, s := range schemas {
		before := src.reads.Load()
		for range 2 { // a miss that fills, then a hit
			if _, err := products.GetProduct(ctx, s, productID); err != nil {
				t.Fatal(err)
			}
			if _, _, err := products.ListProducts(ctx, s, listAll); err != nil {
				t.Fatal(err)
			}
			if _, err := users.GetUserAuth(ctx, s, productID); err != nil {
				t.Fatal(err)
			}
		}
		if n := src.reads.Load() - before; n != 3 {
			t.Fatalf("tenant %s: %d source reads for two rounds of item, page and flags, want 3: the cache did not work on the cluster", s, n)
		}
		if err := products.Invalidate(ctx, s, productID); err != nil {
			t.Fatalf("tenant %s: invalidate: %v", s, err)
		}
		if err := users.Store(ctx, s, productID, postgres.UserAuth{Active: true}); err != nil {
			t.Fatalf("tenant %s: store flags: %v", s, err)
		}
		if _, err := products.GetProduct(ctx, s, productID); err != nil {
			t.Fatal(err)
		}
		if n := src.reads.Load() - before; n != 4 {
			t.Fatalf("tenant %s: the invalidation did not make the next read go to the source (%d reads)", s, n)
		}
		for i, allowed := range []bool{true, false} {
			retry, err := limiter.Allow(ctx, s+":login:"+addr)
			if err != nil {
				t.Fatalf("tenant %s: limiter: %v", s, err)
			}
			if (retry == 0) != allowed {
				t.Fatalf("tenant %s: attempt %d: retry after %v", s, i+1, retry)
			}
		}
	}
	if _, err := limiter.Allow(ctx, "public:login:"+addr); err != nil {
		t.Fatal(err)
	}

	// Every key written is in its tenant's slot, and the tenants' slots
	// lie on more than one master.
	slotOf := func(key string) int64 {
		t.Helper()
		n, err := rdb.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT %s: %v", key, err)
		}
		return n
	}
	masters := map[string]bool{}
	for _, s := range schemas {
		want := slotOf("{" + s + "}")
		got := mustScan(t, rdb, keys.Tenant(s)+"*")
		kinds := map[string]bool{}
		for _, k := range got {
			if n := slotOf(k); n != want {
				t.Errorf("key %s is in slot %d, its tenant's slot is %d", k, n, want)
			}
			_, rest, _ := keys.Split(k)
			kind, _, _ := strings.Cut(rest, ":")
			if strings.HasSuffix(rest, ":gen") {
				kind += ":gen"
			}
			kinds[kind] = true
		}
		for _, kind := range []string{"product", "product:gen", "products", "products:gen", "user", "user:gen", "login"} {
			if !kinds[kind] {
				t.Errorf("tenant %s: no %s key among %v", s, kind, got)
			}
		}
		node, err := rdb.MasterForKey(ctx, keys.Tenant(s))
		if err != nil {
			t.Fatal(err)
		}
		masters[node.Options().Addr] = true
	}
	if len(masters) < 2 {
		t.Fatalf("the %d tenants all live on one master (%v): the test did not cross nodes", tenants, masters)
	}

	// Deleting a tenant drops its keys only.
	hook := cache.Hook{Client: rdb, Keys: keys}
	if err := hook.TenantDeleted(ctx, domain.Tenant{Schema: schemas[0]}); err != nil {
		t.Fatal(err)
	}
	if left := mustScan(t, rdb, keys.Tenant(schemas[0])+"*"); len(left) != 0 {
		t.Fatalf("keys of the deleted tenant left: %v", left)
	}
	for _, s := range schemas[1:] {
		if len(mustScan(t, rdb, keys.Tenant(s)+"*")) == 0 {
			t.Fatalf("tenant %s lost its keys when %s was deleted", s, schemas[0])
		}
	}
	if err := (cache.Pinger{Client: rdb}).Ping(ctx); err != nil {
		t.Fatalf("readiness of the cluster: %v", err)
	}
}

// A cluster client whose nodes do not answer is unavailable, as one
// server's is.
func TestAClusterThatDoesNotAnswerIsUnavailable(t *testing.T) {
	t.Parallel()
	rdb, err := cache.Open("redis-cluster://127.0.0.1:1,127.0.0.1:2?max_retries=-1&dial_timeout=1s")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err = (cache.Pinger{Client: rdb}).Ping(ctx)
	if domain.ErrorCode(err) != domain.EUNAVAILABLE {
		t.Fatalf("ping = %v, want EUNAVAILABLE", err)
	}
	if _, err := cache.NewLimiter(rdb, cache.Keys{}, 1, time.Minute).Allow(ctx, "acme:login:x"); domain.ErrorCode(err) != domain.EUNAVAILABLE {
		t.Fatalf("limiter = %v, want EUNAVAILABLE", err)
	}
}

// Without pool_size, a client keeps DefaultPoolSize connections (per node
// of a cluster) rather than go-redis's 10 per CPU; pool_size still rules.
func TestOpenSizesThePoolUnlessTheURLDoes(t *testing.T) {
	t.Parallel()
	for url, want := range map[string]int{
		"redis://127.0.0.1:6379/0":                   cache.DefaultPoolSize,
		"redis://127.0.0.1:6379/0?pool_size=7":       7,
		"redis-cluster://127.0.0.1:7001":             cache.DefaultPoolSize,
		"redis-cluster://127.0.0.1:7001?pool_size=9": 9,
		"redis://127.0.0.1:6379/0?dial_timeout=1s":   cache.DefaultPoolSize,
	} {
		rdb, err := cache.Open(url)
		if err != nil {
			t.Fatal(err)
		}
		var got int
		switch c := rdb.(type) {
		case *redis.Client:
			got = c.Options().PoolSize
		case *redis.ClusterClient:
			got = c.Options().PoolSize
		}
		if got != want {
			t.Errorf("Open(%q) pool size %d, want %d", url, got, want)
		}
		_ = rdb.Close()
	}
}

package cache_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
)

// In a Redis whose memory is full, so that it evicts keys all along, the
// caches still serve every write once it is announced. allkeys-lru is the
// local stack's policy; allkeys-random is the worst case, where hot
// generations go as readily as cold pages.
func TestTheCachesStayRightInARedisThatEvicts(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{"allkeys-lru", "allkeys-random"} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			rdb := mustSmallRedis(t, "2mb", policy)
			ctx := context.Background()
			src := newCatalog(200)
			keys := cache.Keys{} // a private Redis: the default prefix
			products := cache.NewProducts(rdb, keys, src, time.Minute, discard)
			users := cache.NewUsers(rdb, keys, src, time.Minute, discard)
			const schemaName, rounds = "evicting", 40
			// check reads the products and users ids (and the list pages)
			// and fails unless each shows the source's latest write.
			check := func(round int, ids []string) {
				t.Helper()
				for _, id := range ids {
					p, err := products.GetProduct(ctx, schemaName, id)
					if err != nil {
						t.Fatal(err)
					}
					v, active := src.current(id)
					if p.Version != v {
						t.Fatalf("round %d: product %s served at version %d, the source has %d", round, id, p.Version, v)
					}
					ua, err := users.GetUserAuth(ctx, schemaName, id)
					if err != nil {
						t.Fatal(err)
					}
					if ua.Active != active {
						t.Fatalf("round %d: user %s served as active=%v, the source has %v", round, id, ua.Active, active)
					}
				}
				for _, ordering := range []string{"", "name", "-name", "sku"} {
					for _, limit := range []int{5, 25, 60} {
						ps, _, err := products.ListProducts(ctx, schemaName, postgres.ListParams{Limit: limit, Ordering: ordering})
						if err != nil {
							t.Fatal(err)
						}
						for _, p := range ps {
							if v, _ := src.current(p.ID); p.Version != v {
								t.Fatalf("round %d: page %q/%d lists %s at version %d, the source has %d", round, ordering, limit, p.ID, p.Version, v)
							}
						}
					}
				}
			}
			check(0, src.ids) // fills the cache
			for round := 1; round <= rounds; round++ {
				// Some writes, each announced once committed, then reads
				// of those products and of as many others.
				written := make([]string, 0, 20)
				for range 10 {
					id := src.ids[rand.IntN(len(src.ids))]
					written = append(written, id, src.ids[rand.IntN(len(src.ids))])
					active := src.write(id)
					if err := products.Invalidate(ctx, schemaName, id); err != nil {
						t.Fatal(err)
					}
					if err := users.Store(ctx, schemaName, id, postgres.UserAuth{Active: active}); err != nil {
						t.Fatal(err)
					}
				}
				check(round, written)
			}
			check(rounds, src.ids)
			info, err := rdb.Info(ctx, "stats").Result()
			if err != nil {
				t.Fatal(err)
			}
			n := infoField(info, "evicted_keys")
			if n < 100 {
				t.Fatalf("Redis evicted %d keys: the test did not fill it", n)
			}
			t.Logf("Redis evicted %d keys", n)
		})
	}
}

// catalog is a source of many products and users, each with its own
// version and flags; descriptions are long so that the cache fills Redis.
type catalog struct {
	mu       sync.Mutex
	ids      []string
	versions map[string]int64
}

func newCatalog(n int) *catalog {
	c := &catalog{versions: map[string]int64{}}
	for range n {
		id := uuid.NewString()
		c.ids = append(c.ids, id)
		c.versions[id] = 1
	}
	return c
}

var description = strings.Repeat("A long description. ", 100)

// write commits a new version of product id, and flips the user id's
// active flag (active on even versions); it returns that flag.
func (c *catalog) write(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.versions[id]++
	return c.versions[id]%2 == 0
}

func (c *catalog) current(id string) (version int64, active bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.versions[id], c.versions[id]%2 == 0
}

func (c *catalog) product(id string) domain.Product {
	v, _ := c.current(id)
	return domain.Product{ID: id, Name: "p", Description: description, Version: v}
}

func (c *catalog) GetProduct(_ context.Context, _, id string) (domain.Product, error) {
	return c.product(id), nil
}

// ListProducts returns the first p.Limit products; the order does not
// matter to the test.
func (c *catalog) ListProducts(_ context.Context, _ string, p postgres.ListParams) ([]domain.Product, string, error) {
	out := make([]domain.Product, 0, p.Limit)
	for _, id := range c.ids[:min(p.Limit, len(c.ids))] {
		out = append(out, c.product(id))
	}
	return out, "", nil
}

func (c *catalog) GetUserAuth(_ context.Context, _, id string) (postgres.UserAuth, error) {
	_, active := c.current(id)
	return postgres.UserAuth{Active: active}, nil
}

// mustSmallRedis starts a private redis-server (Debian's redis-server, as
// scripts/services.sh installs it) on a free loopback port, without
// persistence, bounded to maxmemory and evicting by policy; it stops with
// the test.
func mustSmallRedis(t *testing.T, maxmemory, policy string) *redis.Client {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed: scripts/services.sh up installs it (apt-get install redis-server)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	var out bytes.Buffer
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--dir", t.TempDir(),
		"--save", "", "--appendonly", "no", "--maxmemory", maxmemory, "--maxmemory-policy", policy)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + port})
	t.Cleanup(func() { _ = rdb.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := rdb.Ping(context.Background()).Err()
		if err == nil {
			return rdb
		}
		select {
		case <-exited:
			t.Fatalf("redis-server exited (%v): %s", waitErr, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on port %s does not answer: %v", port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// infoField returns a numeric field of an INFO answer, or -1.
func infoField(info, name string) int64 {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

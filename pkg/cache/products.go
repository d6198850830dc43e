package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/observability"
	"github.com/tenantworks/saas/pkg/postgres"
)

// ProductSource is where products come from on a miss: the database.
type ProductSource interface {
	GetProduct(ctx context.Context, schemaName, id string) (domain.Product, error)
	ListProducts(ctx context.Context, schemaName string, p postgres.ListParams) ([]domain.Product, string, error)
}

// Products is a read-through cache of a ProductSource in Redis.
//
// Keys are scoped by tenant schema (see Keys). An item lives at
// <prefix>:{<schema>}:product:<id> beside its generation
// <prefix>:{<schema>}:product:<id>:gen; list pages live under the value of the
// tenant's list generation, <prefix>:{<schema>}:products:g<gen>:<query>.
// Invalidate gives both generations fresh values and deletes the item. A
// reader notes the generation before it reads the database and stores what
// it read only if the generation still holds the value it noted (see
// newGen), so a slow reader can never put an old value back after an
// invalidation ran, even when Redis evicted the generation in between; and
// a list generation recreated after an eviction never names older pages.
// Every key expires: values after the TTL, generations after twice that.
//
// When Redis fails, reads go to the source: the failure is logged and
// counted, never returned.
type Products struct {
	rdb  redis.UniversalClient
	keys Keys
	src  ProductSource
	ttl  time.Duration
	log  *slog.Logger
	sf   singleflight.Group
}

// NewProducts returns a cache in front of src, its keys named by keys;
// ttl 0 means 10 minutes.
func NewProducts(rdb redis.UniversalClient, keys Keys, src ProductSource, ttl time.Duration, log *slog.Logger) *Products {
	if ttl <= 0 {
		ttl = 10 * time.Minute
	}
	return &Products{rdb: rdb, keys: keys, src: src, ttl: ttl, log: log}
}

// cachedProduct is the stored form of a product.
type cachedProduct struct {
	ID          string    `json:"id"`
	SKU         string    `json:"sku"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Price       string    `json:"price"`
	Currency    string    `json:"currency"`
	Stock       int64     `json:"stock"`
	Version     int64     `json:"version"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func toCached(p domain.Product) cachedProduct   { return cachedProduct(p) }
func fromCached(c cachedProduct) domain.Product { return domain.Product(c) }

// GetProduct returns the product from the cache, or from the source on a
// miss. Concurrent misses of one key make one source call.
func (c *Products) GetProduct(ctx context.Context, schemaName, id string) (domain.Product, error) {
	item, genKey := c.keys.Product(schemaName, id), c.keys.ProductGen(schemaName, id)
	// A hit needs the item alone: read ahead with the user's flags
	// (WithProductReadAhead), or one GET, cheaper for Redis than the
	// script, which only a miss needs (to note the generation).
	s, found, answered := takeReadAhead(ctx, schemaName, id)
	var err error
	switch {
	case !answered:
		s, err = c.rdb.Get(ctx, item).Result()
	case !found:
		err = redis.Nil
	}
	if err == nil {
		var cp cachedProduct
		if err := json.Unmarshal([]byte(s), &cp); err == nil {
			observability.CacheRequests.WithLabelValues("product", "hit").Inc()
			return fromCached(cp), nil
		}
	} else if !errors.Is(err, redis.Nil) {
		c.failed(ctx, "product", err)
		return c.src.GetProduct(ctx, schemaName, id)
	}
	vals, err := valueAndGen.Run(ctx, c.rdb, []string{item, genKey}, newGen(), genTTL(c.ttl).Milliseconds()).Slice()
	if err == nil && len(vals) != 2 {
		err = fmt.Errorf("cache: unexpected reply %v", vals)
	}
	if err != nil {
		c.failed(ctx, "product", err)
		return c.src.GetProduct(ctx, schemaName, id)
	}
	if s, ok := vals[0].(string); ok {
		var cp cachedProduct
		if err := json.Unmarshal([]byte(s), &cp); err == nil {
			observability.CacheRequests.WithLabelValues("product", "hit").Inc()
			return fromCached(cp), nil
		}
	}
	observability.CacheRequests.WithLabelValues("product", "miss").Inc()
	gen, _ := vals[1].(string)
	v, err, _ := c.sf.Do(item+"@"+gen, func() (any, error) {
		// Shared by every waiter: one caller's cancellation must not fail the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		p, err := c.src.GetProduct(ctx, schemaName, id)
		if err != nil {
			return nil, err
		}
		b, _ := json.Marshal(toCached(p))
		if err := c.store(ctx, item, genKey, gen, b); err != nil {
			c.failed(ctx, "product", err)
		}
		return p, nil
	})
	if err != nil {
		return domain.Product{}, err
	}
	return v.(domain.Product), nil
}

// cachedPage is the stored form of a list page.
type cachedPage struct {
	Products []cachedProduct `json:"p"`
	Next     string          `json:"n"`
}

// ListProducts returns a page from the cache, or from the source on a miss.
// Bad parameters are refused before the cache is consulted.
func (c *Products) ListProducts(ctx context.Context, schemaName string, p postgres.ListParams) ([]domain.Product, string, error) {
	if _, err := postgres.ValidateListParams(&p); err != nil {
		return nil, "", err
	}
	genKey := c.keys.ListGen(schemaName)
	gen, err := getGen.Run(ctx, c.rdb, []string{genKey}, newGen(), genTTL(c.ttl).Milliseconds()).Text()
	if err != nil {
		c.failed(ctx, "list", err)
		return c.src.ListProducts(ctx, schemaName, p)
	}
	key := c.keys.listPage(schemaName, gen, p.Ordering, p.Limit, p.Cursor)
	if s, err := c.rdb.Get(ctx, key).Result(); err == nil {
		var cp cachedPage
		if err := json.Unmarshal([]byte(s), &cp); err == nil {
			observability.CacheRequests.WithLabelValues("list", "hit").Inc()
			out := make([]domain.Product, len(cp.Products))
			for i, x := range cp.Products {
				out[i] = fromCached(x)
			}
			return out, cp.Next, nil
		}
	} else if !errors.Is(err, redis.Nil) {
		c.failed(ctx, "list", err)
		return c.src.ListProducts(ctx, schemaName, p)
	}
	observability.CacheRequests.WithLabelValues("list", "miss").Inc()
	type page struct {
		ps   []domain.Product
		next string
	}
	v, err, _ := c.sf.Do(key, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		ps, next, err := c.src.ListProducts(ctx, schemaName, p)
		if err != nil {
			return nil, err
		}
		cp := cachedPage{Products: make([]cachedProduct, len(ps)), Next: next}
		for i, x := range ps {
			cp.Products[i] = toCached(x)
		}
		b, _ := json.Marshal(cp)
		// The generation is part of the key, and the page is stored only
		// while it is current: a page read before an invalidation is
		// dropped, or at worst lands under a generation no one reads.
		if err := c.store(ctx, key, genKey, gen, b); err != nil {
			c.failed(ctx, "list", err)
		}
		return page{ps, next}, nil
	})
	if err != nil {
		return nil, "", err
	}
	pg := v.(page)
	return pg.ps, pg.next, nil
}

// store caches b at key for the TTL if the generation at genKey still
// holds gen.
func (c *Products) store(ctx context.Context, key, genKey, gen string, b []byte) error {
	return setIfGen.Run(ctx, c.rdb, []string{key, genKey}, gen, b, c.ttl.Milliseconds(), genTTL(c.ttl).Milliseconds()).Err()
}

// Invalidate drops a product's cached item and every cached list page of its
// tenant, in one transaction: both generations get fresh values (so no
// reader that started before can store what it read) and the item is
// deleted. It is idempotent. Errors: EUNAVAILABLE when Redis does not answer.
func (c *Products) Invalidate(ctx context.Context, schemaName, productID string) error {
	gen, ttl := newGen(), genTTL(c.ttl)
	_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, c.keys.ProductGen(schemaName, productID), gen, ttl)
		p.Del(ctx, c.keys.Product(schemaName, productID))
		p.Set(ctx, c.keys.ListGen(schemaName), gen, ttl)
		return nil
	})
	if err != nil {
		// EUNAVAILABLE: the invalidation waits for Redis, it is never
		// dead-lettered for Redis being down.
		return fmt.Errorf("cache: invalidate %s/%s: %w: %w", schemaName, productID,
			domain.Errorf(domain.EUNAVAILABLE, "redis unavailable"), err)
	}
	return nil
}

func (c *Products) failed(ctx context.Context, cache string, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	observability.CacheRequests.WithLabelValues(cache, "error").Inc()
	c.log.WarnContext(ctx, "cache unavailable, reading from the database", slog.String("cache", cache), slog.Any("error", err))
}

// invalidateBatch is how many products one InvalidateMany transaction
// names: a bound on the size of one MULTI.
const invalidateBatch = 1000

// InvalidateMany is Invalidate for many products of one tenant at once
// (an import): the list generation gets a fresh value and every product's
// item is dropped as Invalidate drops it, in transactions of up to 1,000
// products. With no products, only the list pages are dropped. Errors:
// EUNAVAILABLE when Redis does not answer.
func (c *Products) InvalidateMany(ctx context.Context, schemaName string, productIDs []string) error {
	ttl := genTTL(c.ttl)
	for start := 0; start == 0 || start < len(productIDs); start += invalidateBatch {
		batch := productIDs[start:min(start+invalidateBatch, len(productIDs))]
		_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for _, id := range batch {
				p.Set(ctx, c.keys.ProductGen(schemaName, id), newGen(), ttl)
				p.Del(ctx, c.keys.Product(schemaName, id))
			}
			// Last: a list read from now on sees every item dropped.
			p.Set(ctx, c.keys.ListGen(schemaName), newGen(), ttl)
			return nil
		})
		if err != nil {
			return fmt.Errorf("cache: invalidate %d products of %s: %w: %w", len(productIDs), schemaName,
				domain.Errorf(domain.EUNAVAILABLE, "redis unavailable"), err)
		}
	}
	return nil
}

// Package cache is the Redis side of the system: tenant-scoped read-through
// caching for the API and the rate limiter's counters.
package cache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/tenantworks/saas/pkg/domain"
)

// The URL schemes that name a Redis Cluster rather than one server.
const (
	ClusterScheme    = "redis-cluster"
	ClusterTLSScheme = "rediss-cluster"
)

// Open returns a Redis client for rawURL, without contacting the server:
//
//	redis://[user:password@]host:port[/db][?option=value...]      one server (rediss:// with TLS)
//	redis-cluster://[user:password@]host:port[,host:port...][?option=value...]
//	                                                               a Redis Cluster (rediss-cluster:// with TLS)
//
// The nodes of a cluster URL are seeds: the client learns the others, and
// which holds each slot, from any of them. A cluster has only database 0.
// Options are go-redis's, in snake case (dial_timeout=3s, pool_size=20,
// max_retries=-1 ...). Both kinds of client satisfy redis.UniversalClient,
// which is what every user of this package takes.
//
// Without pool_size, a client keeps up to DefaultPoolSize connections (per
// node of a cluster), not go-redis's 10 per CPU.
func Open(rawURL string) (redis.UniversalClient, error) {
	sized := strings.Contains(rawURL, "pool_size=")
	if IsClusterURL(rawURL) {
		opt, err := parseClusterURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("cache: parse cluster url: %w", err)
		}
		if !sized {
			opt.PoolSize = DefaultPoolSize
		}
		return redis.NewClusterClient(opt), nil
	}
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("cache: parse url: %w", err)
	}
	if !sized {
		opt.PoolSize = DefaultPoolSize
	}
	return redis.NewClient(opt), nil
}

// DefaultPoolSize is how many connections a client keeps to a Redis
// server when the URL sets no pool_size. Every authenticated request makes
// one or two sequential round trips (the user's flags, then a cached
// product), and with go-redis's default of 10 per CPU (20 on two) the
// requests in flight beyond it queue for a connection: bench/api's 64
// readers spent more time waiting in the pool than in Redis.
const DefaultPoolSize = 128

// IsClusterURL reports whether rawURL names a Redis Cluster (its scheme is
// ClusterScheme or ClusterTLSScheme).
func IsClusterURL(rawURL string) bool {
	scheme, _, _ := strings.Cut(rawURL, "://")
	scheme = strings.ToLower(scheme)
	return scheme == ClusterScheme || scheme == ClusterTLSScheme
}

// parseClusterURL turns our spelling (every node in the host part) into
// go-redis's (the first node as the host, the others as addr= options)
// and lets redis.ParseClusterURL read the options.
func parseClusterURL(rawURL string) (*redis.ClusterOptions, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	switch strings.ToLower(u.Scheme) {
	case ClusterScheme:
		u.Scheme = "redis"
	case ClusterTLSScheme:
		u.Scheme = "rediss"
	default:
		return nil, fmt.Errorf("scheme %q is not %s or %s", u.Scheme, ClusterScheme, ClusterTLSScheme)
	}
	if p := strings.TrimPrefix(u.Path, "/"); p != "" && p != "0" {
		return nil, fmt.Errorf("database %q: a Redis Cluster has only database 0", p)
	}
	u.Path = ""
	q := u.Query()
	if q.Has("addr") {
		return nil, errors.New("list the nodes in the host part (host:port,host:port), not as addr= options")
	}
	nodes := strings.Split(u.Host, ",")
	for _, n := range nodes {
		if host, port, err := net.SplitHostPort(n); err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("node %q is not host:port", n)
		}
	}
	u.Host = nodes[0]
	for _, n := range nodes[1:] {
		q.Add("addr", n)
	}
	u.RawQuery = q.Encode()
	return redis.ParseClusterURL(u.String())
}

// Pinger adapts a Redis client to a readiness check.
type Pinger struct{ Client redis.UniversalClient }

// Ping returns an EUNAVAILABLE error when Redis does not answer; on a
// cluster, when any master does not (the tenants whose slots it holds
// would have no cache).
func (p Pinger) Ping(ctx context.Context) error {
	var err error
	if c, ok := p.Client.(*redis.ClusterClient); ok {
		err = c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return node.Ping(ctx).Err()
		})
	} else {
		err = p.Client.Ping(ctx).Err()
	}
	if err != nil {
		return fmt.Errorf("cache: ping: %w: %w", domain.Errorf(domain.EUNAVAILABLE, "cache unavailable"), err)
	}
	return nil
}

// forEachNode calls fn with every server that holds keys: the client
// itself, or each master of a cluster (SCAN sees one server's keys only).
func forEachNode(ctx context.Context, rdb redis.UniversalClient, fn func(ctx context.Context, node redis.UniversalClient) error) error {
	if c, ok := rdb.(*redis.ClusterClient); ok {
		return c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return fn(ctx, node) })
	}
	return fn(ctx, rdb)
}

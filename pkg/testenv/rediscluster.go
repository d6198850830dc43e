package testenv

import (
	"os"
	"testing"
)

// RedisClusterEnv is the environment variable that, set to 1, makes
// RedisURL hand out the Redis Cluster's URL instead of the single
// server's: `go tool task test:rediscluster` runs the suites that use
// Redis that way.
const RedisClusterEnv = "SAAS_TEST_REDIS_CLUSTER"

// RedisClusterURLEnv names the URL of the test Redis Cluster
// (redis-cluster://host:port,...; scripts/services.sh env exports it).
const RedisClusterURLEnv = "REDIS_CLUSTER_URL"

// RedisURL returns the Redis tests should use: the Redis Cluster's URL
// (MustRedisClusterURL) when SAAS_TEST_REDIS_CLUSTER=1, the single
// server's (Get) otherwise.
func RedisURL(tb testing.TB) string {
	tb.Helper()
	if os.Getenv(RedisClusterEnv) == "1" {
		return MustRedisClusterURL(tb)
	}
	return Get(tb).RedisURL
}

// MustRedisClusterURL returns the URL of the test Redis Cluster
// (REDIS_CLUSTER_URL). It fails tb when that is not set.
func MustRedisClusterURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(RedisClusterURLEnv)
	if u == "" {
		tb.Fatalf("testenv: %s is not set: start the local Redis Cluster and load its URL with "+
			`scripts/services.sh up && eval "$(scripts/services.sh env)"`, RedisClusterURLEnv)
	}
	return u
}

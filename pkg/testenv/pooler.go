package testenv

import (
	"os"
	"testing"
)

// PoolerEnv is the environment variable that, set to 1, makes
// MustDatabase hand out databases reached through the pooler
// (MustPooledDatabase): `go tool task test:pooler` runs the suites that
// way.
const PoolerEnv = "SAAS_TEST_POOLER"

// PoolerURLEnv names the URL of PgBouncer in transaction mode in front of
// the test PostgreSQL (scripts/services.sh env exports it).
const PoolerURLEnv = "DATABASE_POOLER_URL"

// MustPooledDatabase is MustDatabase with the pool opened through
// PgBouncer in transaction mode (DATABASE_POOLER_URL, its database name
// replaced by the test's), as DATABASE_POOL_MODE=transaction opens it:
// the code under test then shares a few server connections, one
// transaction at a time, with every other client. The database is made,
// migrated and dropped directly (Database.URL), as the binary does with
// DATABASE_DIRECT_URL. It fails tb when DATABASE_POOLER_URL is not set.
func MustPooledDatabase(tb testing.TB) *Database {
	tb.Helper()
	u := os.Getenv(PoolerURLEnv)
	if u == "" {
		tb.Fatalf("testenv: %s is not set: start PgBouncer and load its URL with "+
			`scripts/services.sh up && eval "$(scripts/services.sh env)"`, PoolerURLEnv)
	}
	return mustDatabase(tb, u)
}

// Package testenv gives tests the real services: their URLs come from the
// environment (DATABASE_URL, REDIS_URL, NATS_URL, ELASTICSEARCH_URL); when
// none is set and a Docker engine answers, containers are started with
// testcontainers-go; when neither, the test fails saying how to start them.
// It also hands out isolated resources so tests run in parallel and leave
// nothing behind: a fresh database per test (MustDatabase), a private NATS
// server (MustNATSServer, MustStreams), and the World most integration
// tests start from (MustWorld: a database, its schema runner, a
// tenancy.Manager, tenants made with MustTenant, and optionally streams).
package testenv

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// Services are the URLs of the four services.
type Services struct {
	DatabaseURL      string
	RedisURL         string
	NatsURL          string
	ElasticsearchURL string
	// TenantDatabases names the other PostgreSQL clusters, as
	// TENANT_DATABASES does ("pg2=url"); optional in the environment.
	TenantDatabases string
}

var envNames = [...]string{"DATABASE_URL", "REDIS_URL", "NATS_URL", "ELASTICSEARCH_URL"}

const howToStart = `no services for tests: set DATABASE_URL, REDIS_URL, NATS_URL and ELASTICSEARCH_URL
(run: scripts/services.sh up && eval "$(scripts/services.sh env)"), or run the whole suite with
"go tool task test", which does both; or start a Docker engine so that testcontainers-go can start them`

var (
	once     sync.Once
	services Services
	startErr error
)

// Get returns the services, starting containers on first use when the
// environment names none. It fails tb when no service can be had.
func Get(tb testing.TB) Services {
	tb.Helper()
	once.Do(func() { services, startErr = resolve() })
	if startErr != nil {
		tb.Fatalf("testenv: %v", startErr)
	}
	return services
}

func resolve() (Services, error) {
	s := Services{
		DatabaseURL:      os.Getenv("DATABASE_URL"),
		RedisURL:         os.Getenv("REDIS_URL"),
		NatsURL:          os.Getenv("NATS_URL"),
		ElasticsearchURL: os.Getenv("ELASTICSEARCH_URL"),
		TenantDatabases:  os.Getenv(TenantDatabasesEnv),
	}
	set := 0
	for _, n := range envNames {
		if os.Getenv(n) != "" {
			set++
		}
	}
	switch set {
	case len(envNames):
		return s, nil
	case 0:
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		s, err := startContainers(ctx)
		if err != nil {
			return Services{}, fmt.Errorf("%s\n(docker: %v)", howToStart, err)
		}
		return s, nil
	default:
		return Services{}, fmt.Errorf("only some service URLs are set; set all of %v\n%s", envNames, howToStart)
	}
}

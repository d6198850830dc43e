package testenv

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Images match docker-compose.yml.
const (
	postgresImage      = "postgres:15.10"
	redisImage         = "redis:7.4.2"
	natsImage          = "nats:2.12.2"
	elasticsearchImage = "docker.elastic.co/elasticsearch/elasticsearch:8.19.21"
)

// startContainers starts the services in Docker, PostgreSQL twice (main
// and pg2). The containers are
// reaped by testcontainers' reaper when the test binary exits.
func startContainers(ctx context.Context) (Services, error) {
	provider, err := testcontainers.ProviderDefault.GetProvider()
	if err != nil {
		return Services{}, fmt.Errorf("no container provider: %w", err)
	}
	defer provider.Close()
	if err := provider.Health(ctx); err != nil {
		return Services{}, fmt.Errorf("docker engine does not answer: %w", err)
	}

	type spec struct {
		image string
		port  string
		opts  []testcontainers.ContainerCustomizer
	}
	specs := []spec{
		{postgresImage, "5432/tcp", []testcontainers.ContainerCustomizer{
			testcontainers.WithEnv(map[string]string{"POSTGRES_USER": "saas", "POSTGRES_PASSWORD": "saas", "POSTGRES_DB": "saas"}),
			testcontainers.WithCmd("postgres", "-c", "max_connections=300", "-c", "fsync=off", "-c", "wal_level=logical"),
			testcontainers.WithWaitStrategy(wait.ForLog("database system is ready to accept connections").WithOccurrence(2).WithStartupTimeout(time.Minute)),
		}},
		{redisImage, "6379/tcp", []testcontainers.ContainerCustomizer{
			testcontainers.WithWaitStrategy(wait.ForListeningPort("6379/tcp")),
		}},
		{natsImage, "4222/tcp", []testcontainers.ContainerCustomizer{
			testcontainers.WithCmd("-js"),
			testcontainers.WithWaitStrategy(wait.ForLog("Server is ready")),
		}},
		{elasticsearchImage, "9200/tcp", []testcontainers.ContainerCustomizer{
			testcontainers.WithEnv(map[string]string{
				"discovery.type": "single-node", "xpack.security.enabled": "false",
				"ES_JAVA_OPTS": "-Xms512m -Xmx512m", "action.destructive_requires_name": "false",
			}),
			testcontainers.WithWaitStrategy(wait.ForHTTP("/_cluster/health?wait_for_status=yellow").WithPort("9200/tcp").WithStartupTimeout(3 * time.Minute)),
		}},
	}
	// pg2: a second cluster (DESIGN.md section 12), last so the indices
	// above keep their meaning.
	specs = append(specs, specs[0])
	endpoints := make([]string, len(specs))
	for i, sp := range specs {
		opts := append([]testcontainers.ContainerCustomizer{testcontainers.WithExposedPorts(sp.port)}, sp.opts...)
		c, err := testcontainers.Run(ctx, sp.image, opts...)
		if err != nil {
			return Services{}, fmt.Errorf("start %s: %w", sp.image, err)
		}
		ep, err := c.PortEndpoint(ctx, sp.port, "")
		if err != nil {
			return Services{}, fmt.Errorf("endpoint of %s: %w", sp.image, err)
		}
		endpoints[i] = ep
	}
	if len(endpoints) != 5 {
		return Services{}, errors.New("not every service started")
	}
	return Services{
		DatabaseURL:      "postgres://saas:saas@" + endpoints[0] + "/saas?sslmode=disable",
		RedisURL:         "redis://" + endpoints[1] + "/0",
		NatsURL:          "nats://" + endpoints[2],
		ElasticsearchURL: "http://" + endpoints[3],
		TenantDatabases:  "pg2=postgres://saas:saas@" + endpoints[4] + "/saas?sslmode=disable",
	}, nil
}

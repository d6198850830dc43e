// Package config reads the process configuration from the environment.
// Every variable has a default that works against the local stack brought
// up by scripts/services.sh; see .env.example.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// DefaultJWTSecret is the development secret; production mode refuses it.
const DefaultJWTSecret = "dev-only-insecure-secret-change-me"

// Config is the whole configuration of the binary.
type Config struct {
	Env                      string // "development" or "production"
	DatabaseURL              string
	DatabasePoolMode         string // "session" (default) or "transaction": what answers at DatabaseURL (pkg/postgres.PoolMode)
	DatabaseDirectURL        string // PostgreSQL with a session of its own, for LISTEN, session locks, migrations; default DatabaseURL
	RedisURL                 string
	NatsURL                  string
	ElasticsearchURL         string
	ElasticsearchIndexPrefix string
	// ElasticsearchSharedIndices is how many shared indices small
	// tenants are spread over (0: the search package's default).
	ElasticsearchSharedIndices int
	// ElasticsearchDedicatedAt is the number of products from which a
	// tenant gets an index of its own (0: the indexer's default).
	ElasticsearchDedicatedAt int
	HTTPAddr                 string
	PublicDomain             string
	JWTSecret                string
	LogLevel                 string
	LogFormat                string // "auto", "text" or "json"
}

// FromEnv reads the configuration, applying defaults, and validates it.
func FromEnv() (Config, error) {
	c := Config{
		Env:                      get("APP_ENV", "development"),
		DatabaseURL:              get("DATABASE_URL", "postgres://saas:saas@127.0.0.1:5432/saas?sslmode=disable"),
		RedisURL:                 get("REDIS_URL", "redis://127.0.0.1:6379/0"),
		NatsURL:                  get("NATS_URL", "nats://127.0.0.1:4222"),
		ElasticsearchURL:         get("ELASTICSEARCH_URL", "http://127.0.0.1:9200"),
		ElasticsearchIndexPrefix: get("ELASTICSEARCH_INDEX_PREFIX", "saas"),
		HTTPAddr:                 get("HTTP_ADDR", ":8080"),
		PublicDomain:             strings.ToLower(get("PUBLIC_DOMAIN", "localhost")),
		JWTSecret:                get("JWT_SECRET", DefaultJWTSecret),
		LogLevel:                 get("LOG_LEVEL", "info"),
		LogFormat:                get("LOG_FORMAT", "auto"),
	}
	var errs []error
	c.DatabasePoolMode = get("DATABASE_POOL_MODE", "session")
	c.DatabaseDirectURL = get("DATABASE_DIRECT_URL", c.DatabaseURL)
	for key, dst := range map[string]*int{
		"ELASTICSEARCH_SHARED_INDICES": &c.ElasticsearchSharedIndices,
		"ELASTICSEARCH_DEDICATED_AT":   &c.ElasticsearchDedicatedAt,
	} {
		if v := get(key, ""); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				errs = append(errs, fmt.Errorf("%s must be a positive whole number, not %q", key, v))
			}
			*dst = n
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	return c, c.Validate()
}

func get(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

// Production reports whether the process runs in production mode.
func (c Config) Production() bool { return c.Env == "production" }

// Validate checks the values that would otherwise fail late or unsafely.
func (c Config) Validate() error {
	var errs []error
	switch c.DatabasePoolMode {
	case "", "session":
	case "transaction":
		// Left to default, the direct URL would be the pooler's: LISTEN,
		// session locks and migrations would quietly go through it.
		if c.DatabaseDirectURL == c.DatabaseURL {
			errs = append(errs, errors.New("DATABASE_POOL_MODE=transaction needs DATABASE_DIRECT_URL set to reach PostgreSQL with a session of its own, not the pooler at DATABASE_URL"))
		}
	default:
		errs = append(errs, fmt.Errorf("DATABASE_POOL_MODE must be session or transaction, not %q", c.DatabasePoolMode))
	}
	switch c.Env {
	case "development", "production", "test":
	default:
		errs = append(errs, fmt.Errorf("APP_ENV must be development, production or test, not %q", c.Env))
	}
	if c.Production() && (c.JWTSecret == DefaultJWTSecret || len(c.JWTSecret) < 32) {
		errs = append(errs, errors.New("JWT_SECRET must be set to a random value of at least 32 characters in production"))
	}
	for name, v := range map[string]string{"DATABASE_URL": c.DatabaseURL, "DATABASE_DIRECT_URL": c.DatabaseDirectURL, "REDIS_URL": c.RedisURL, "NATS_URL": c.NatsURL, "ELASTICSEARCH_URL": c.ElasticsearchURL} {
		if u, err := url.Parse(v); err != nil || u.Scheme == "" {
			errs = append(errs, fmt.Errorf("%s is not a URL", name))
		}
	}
	switch c.LogFormat {
	case "auto", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("LOG_FORMAT must be auto, text or json, not %q", c.LogFormat))
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("LOG_LEVEL must be debug, info, warn or error, not %q", c.LogLevel))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// Redacted returns a copy safe to log: secrets and URL passwords masked.
func (c Config) Redacted() Config {
	r := c
	if r.JWTSecret != "" {
		r.JWTSecret = "***"
	}
	r.DatabaseURL = redactURL(r.DatabaseURL)
	r.DatabaseDirectURL = redactURL(r.DatabaseDirectURL)
	r.RedisURL = redactURL(r.RedisURL)
	r.NatsURL = redactURL(r.NatsURL)
	r.ElasticsearchURL = redactURL(r.ElasticsearchURL)
	return r
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "***"
	}
	return u.Redacted()
}

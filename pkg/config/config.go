// Package config reads the process configuration from the environment.
// Every variable but the token secrets has a default that works against the
// local stack brought up by scripts/services.sh; see .env.example.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/tenantworks/saas/pkg/auth"
)

// Config is the whole configuration of the binary.
type Config struct {
	Env                      string // "development" or "production"
	DatabaseURL              string
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
	JWTSecret                string // signs and verifies tokens; no default (see CheckTokenSecrets)
	JWTSecretPrevious        string // when set, verifies tokens only: the secret being rotated out
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
		JWTSecret:                get("JWT_SECRET", ""),
		JWTSecretPrevious:        get("JWT_SECRET_PREVIOUS", ""),
		LogLevel:                 get("LOG_LEVEL", "info"),
		LogFormat:                get("LOG_FORMAT", "auto"),
	}
	var errs []error
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
	switch c.Env {
	case "development", "production", "test":
	default:
		errs = append(errs, fmt.Errorf("APP_ENV must be development, production or test, not %q", c.Env))
	}
	for name, v := range map[string]string{"DATABASE_URL": c.DatabaseURL, "REDIS_URL": c.RedisURL, "NATS_URL": c.NatsURL, "ELASTICSEARCH_URL": c.ElasticsearchURL} {
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

// publishedSecrets are the SHA-256 sums (hex) of token secrets that were
// once published as examples: whoever copied one into a deployment would
// sign tokens that anyone can forge, so they are refused like a missing
// secret. Only the sums are kept, never the values.
var publishedSecrets = map[string]bool{
	"65795ca3364794b8d8afefb7ff3eb15124d8b4915016632385b931687e425af8": true, // .env.example until secrets became mandatory
}

// CheckTokenSecrets reports whether the process can sign and verify tokens:
// JWT_SECRET set to a value of at least auth.MinSecretLen (32) bytes, and
// JWT_SECRET_PREVIOUS (verification only, while rotating) the same when
// set; neither may be a published example value. It holds in every APP_ENV:
// there is no default secret. Only the roles that sign or verify tokens call
// it, so that operator commands (migrate, tenant, user...) need no secret.
func (c Config) CheckTokenSecrets() error {
	var errs []error
	for _, v := range []struct {
		name, value string
		required    bool
	}{{"JWT_SECRET", c.JWTSecret, true}, {"JWT_SECRET_PREVIOUS", c.JWTSecretPrevious, false}} {
		sum := sha256.Sum256([]byte(v.value))
		switch {
		case v.value == "" && !v.required:
		case v.value == "":
			errs = append(errs, fmt.Errorf("%s is not set: the processes that sign or verify tokens share one random value of at least %d bytes "+
				"(for example from `openssl rand -base64 48`; the local stack's is printed by scripts/services.sh env)", v.name, auth.MinSecretLen))
		case len(v.value) < auth.MinSecretLen:
			errs = append(errs, fmt.Errorf("%s is %d bytes long: it must be a random value of at least %d bytes", v.name, len(v.value), auth.MinSecretLen))
		case publishedSecrets[hex.EncodeToString(sum[:])]:
			errs = append(errs, fmt.Errorf("%s is a value published as an example: anyone could sign tokens with it; set a random value of at least %d bytes", v.name, auth.MinSecretLen))
		}
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
	if r.JWTSecretPrevious != "" {
		r.JWTSecretPrevious = "***"
	}
	r.DatabaseURL = redactURL(r.DatabaseURL)
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

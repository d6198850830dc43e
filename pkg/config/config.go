// Package config reads the process configuration from the environment.
// Every variable but the token secrets has a default that works against the
// local stack brought up by scripts/services.sh; see .env.example.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tenantworks/saas/pkg/auth"
)

// Config is the whole configuration of the binary.
type Config struct {
	Env               string // "development" or "production"
	DatabaseURL       string
	DatabasePoolMode  string // "session" (default) or "transaction": what answers at DatabaseURL (pkg/postgres.PoolMode)
	DatabaseDirectURL string // PostgreSQL with a session of its own, for LISTEN, session locks, migrations; default DatabaseURL
	// TenantDatabases are the PostgreSQL clusters tenant schemas may live
	// on (TENANT_DATABASES, name=url,...): main, the catalog's, first,
	// defaulting to DatabaseURL. Nothing routes by it yet.
	TenantDatabases          TenantDatabases
	RedisURL                 string
	RedisKeyPrefix           string // starts every Redis key: <prefix>:{<schema>}:... (pkg/cache.Keys)
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
	// MetricsAddr is where the long-running roles serve Prometheus metrics,
	// on a listener of their own (METRICS_ADDR, default 127.0.0.1:9090);
	// "off" serves none.
	MetricsAddr string
	// HTTPReadTimeout is how long a client has to send a whole request,
	// headers and body (HTTP_READ_TIMEOUT, default 30s).
	HTTPReadTimeout time.Duration
	// WSMaxPerUser and WSMaxPerNode cap the WebSocket connections of one
	// user and of the whole process on a push node (WS_MAX_PER_USER,
	// default 10; WS_MAX_PER_NODE, default 100000).
	WSMaxPerUser int
	WSMaxPerNode int
	// TrustedProxies are the peers whose X-Forwarded-For names the client
	// (TRUSTED_PROXIES, comma-separated CIDRs, default none: the client is
	// the peer).
	TrustedProxies []netip.Prefix
	// BenchCeiling (SAAS_BENCH_CEILING, a boolean, default false) serves
	// GET /api/_bench/fixed/, a fixed product-sized body behind the tenant
	// API's middleware: the ceiling bench/api measures the cached retrieve
	// against. Refused in production.
	BenchCeiling bool
	// AuditRetention is how long audit entries are kept before the relay
	// (or `saas audit prune`) deletes them (AUDIT_RETENTION, a duration,
	// default 8760h = 365 days; 0 keeps them for ever).
	AuditRetention time.Duration
}

// DefaultAuditRetention is AUDIT_RETENTION's default: 365 days.
const DefaultAuditRetention = 365 * 24 * time.Hour

// MetricsOff is the METRICS_ADDR that serves no metrics.
const MetricsOff = "off"

// FromEnv reads the configuration, applying defaults, and validates it.
func FromEnv() (Config, error) {
	c := Config{
		Env:                      get("APP_ENV", "development"),
		DatabaseURL:              get("DATABASE_URL", "postgres://saas:saas@127.0.0.1:5432/saas?sslmode=disable"),
		RedisURL:                 get("REDIS_URL", "redis://127.0.0.1:6379/0"),
		RedisKeyPrefix:           get("REDIS_KEY_PREFIX", "saas"),
		NatsURL:                  get("NATS_URL", "nats://127.0.0.1:4222"),
		ElasticsearchURL:         get("ELASTICSEARCH_URL", "http://127.0.0.1:9200"),
		ElasticsearchIndexPrefix: get("ELASTICSEARCH_INDEX_PREFIX", "saas"),
		HTTPAddr:                 get("HTTP_ADDR", ":8080"),
		PublicDomain:             strings.ToLower(get("PUBLIC_DOMAIN", "localhost")),
		JWTSecret:                get("JWT_SECRET", ""),
		JWTSecretPrevious:        get("JWT_SECRET_PREVIOUS", ""),
		LogLevel:                 get("LOG_LEVEL", "info"),
		LogFormat:                get("LOG_FORMAT", "auto"),
		MetricsAddr:              get("METRICS_ADDR", "127.0.0.1:9090"),
		HTTPReadTimeout:          30 * time.Second,
		WSMaxPerUser:             10,
		WSMaxPerNode:             100000,
		AuditRetention:           DefaultAuditRetention,
	}
	var errs []error
	c.DatabasePoolMode = get("DATABASE_POOL_MODE", "session")
	c.DatabaseDirectURL = get("DATABASE_DIRECT_URL", c.DatabaseURL)
	dbs, err := ParseTenantDatabases(get("TENANT_DATABASES", ""), c.DatabaseURL)
	if err != nil {
		errs = append(errs, fmt.Errorf("TENANT_DATABASES: %w", err))
	}
	c.TenantDatabases = dbs
	for key, dst := range map[string]*int{
		"ELASTICSEARCH_SHARED_INDICES": &c.ElasticsearchSharedIndices,
		"ELASTICSEARCH_DEDICATED_AT":   &c.ElasticsearchDedicatedAt,
		"WS_MAX_PER_USER":              &c.WSMaxPerUser,
		"WS_MAX_PER_NODE":              &c.WSMaxPerNode,
	} {
		if v := get(key, ""); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				errs = append(errs, fmt.Errorf("%s must be a positive whole number, not %q", key, v))
			}
			*dst = n
		}
	}
	if v := get("HTTP_READ_TIMEOUT", ""); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("HTTP_READ_TIMEOUT must be a positive duration such as 30s, not %q", v))
		}
		c.HTTPReadTimeout = d
	}
	if v := get("AUDIT_RETENTION", ""); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("AUDIT_RETENTION must be a duration such as 8760h (365 days), or 0 to keep entries for ever, not %q", v))
		}
		c.AuditRetention = d
	}
	prefixes, err := ParseCIDRs(get("TRUSTED_PROXIES", ""))
	if err != nil {
		errs = append(errs, fmt.Errorf("TRUSTED_PROXIES: %w", err))
	}
	c.TrustedProxies = prefixes
	if v := get("SAAS_BENCH_CEILING", ""); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("SAAS_BENCH_CEILING must be true or false (1 or 0), not %q", v))
		}
		c.BenchCeiling = b
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	return c, c.Validate()
}

// ParseCIDRs parses a comma-separated list of CIDRs ("10.0.0.0/8,
// fd00::/8"); blanks around the commas are ignored and "" is none. An
// IPv4-mapped IPv6 prefix is taken as its IPv4 prefix, so that it matches
// IPv4 peers. It returns an error naming the first entry that is not a CIDR.
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8", f)
		}
		if a := p.Addr(); a.Is4In6() {
			if p.Bits() < 96 {
				return nil, fmt.Errorf("%q is wider than the IPv4-mapped range", f)
			}
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func get(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

var redisKeyPrefix = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)

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
	if c.Production() && c.BenchCeiling {
		errs = append(errs, errors.New("SAAS_BENCH_CEILING is for benchmarks: not in production"))
	}
	for name, v := range map[string]string{"DATABASE_URL": c.DatabaseURL, "DATABASE_DIRECT_URL": c.DatabaseDirectURL, "REDIS_URL": c.RedisURL, "NATS_URL": c.NatsURL, "ELASTICSEARCH_URL": c.ElasticsearchURL} {
		if u, err := url.Parse(v); err != nil || u.Scheme == "" {
			errs = append(errs, fmt.Errorf("%s is not a URL", name))
		}
	}
	if c.HTTPReadTimeout <= 0 {
		errs = append(errs, errors.New("HTTP_READ_TIMEOUT must be a positive duration"))
	}
	if c.WSMaxPerUser < 1 || c.WSMaxPerNode < 1 {
		errs = append(errs, errors.New("WS_MAX_PER_USER and WS_MAX_PER_NODE must be positive whole numbers"))
	}
	if c.MetricsAddr != MetricsOff {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("METRICS_ADDR must be host:port or %q, not %q", MetricsOff, c.MetricsAddr))
		}
	}
	// The rule of pkg/cache.NewKeys, checked here to fail at start with the
	// variable's name.
	if !redisKeyPrefix.MatchString(c.RedisKeyPrefix) {
		errs = append(errs, fmt.Errorf("REDIS_KEY_PREFIX must be 1 to 32 letters, digits, '_', '.' or '-', not %q", c.RedisKeyPrefix))
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
	r.DatabaseDirectURL = redactURL(r.DatabaseDirectURL)
	r.TenantDatabases = r.TenantDatabases.redacted()
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

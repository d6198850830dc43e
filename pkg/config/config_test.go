package config_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantworks/saas/pkg/config"
)

// limitVars are the variables of the limits; each test starts with none set.
var limitVars = []string{"HTTP_READ_TIMEOUT", "WS_MAX_PER_USER", "WS_MAX_PER_NODE", "TRUSTED_PROXIES", "METRICS_ADDR", "APP_ENV"}

func clearLimits(t *testing.T) {
	t.Helper()
	for _, k := range limitVars {
		t.Setenv(k, "")
	}
}

func TestLimitsHaveTheirDefaults(t *testing.T) {
	clearLimits(t)
	c, err := config.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPReadTimeout != 30*time.Second || c.WSMaxPerUser != 10 || c.WSMaxPerNode != 100000 ||
		len(c.TrustedProxies) != 0 || c.MetricsAddr != "127.0.0.1:9090" {
		t.Errorf("defaults: read timeout %v, per user %d, per node %d, proxies %v, metrics %q",
			c.HTTPReadTimeout, c.WSMaxPerUser, c.WSMaxPerNode, c.TrustedProxies, c.MetricsAddr)
	}
}

func TestLimitsAreReadFromTheEnvironment(t *testing.T) {
	clearLimits(t)
	t.Setenv("HTTP_READ_TIMEOUT", "1m30s")
	t.Setenv("WS_MAX_PER_USER", "3")
	t.Setenv("WS_MAX_PER_NODE", "500")
	t.Setenv("TRUSTED_PROXIES", " 10.1.2.3/8 , fd00::/8,::ffff:192.0.2.0/120 ")
	t.Setenv("METRICS_ADDR", "off")
	c, err := config.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("192.0.2.0/24")}
	if c.HTTPReadTimeout != 90*time.Second || c.WSMaxPerUser != 3 || c.WSMaxPerNode != 500 ||
		!slices.Equal(c.TrustedProxies, want) || c.MetricsAddr != config.MetricsOff {
		t.Errorf("read timeout %v, per user %d, per node %d, proxies %v, metrics %q",
			c.HTTPReadTimeout, c.WSMaxPerUser, c.WSMaxPerNode, c.TrustedProxies, c.MetricsAddr)
	}
}

func TestInvalidLimitsAreRefusedAtStart(t *testing.T) {
	for name, tc := range map[string]struct{ key, value, says string }{
		"a read timeout without a unit":   {"HTTP_READ_TIMEOUT", "30", "HTTP_READ_TIMEOUT"},
		"a zero read timeout":             {"HTTP_READ_TIMEOUT", "0s", "HTTP_READ_TIMEOUT"},
		"a negative read timeout":         {"HTTP_READ_TIMEOUT", "-5s", "HTTP_READ_TIMEOUT"},
		"zero connections per user":       {"WS_MAX_PER_USER", "0", "WS_MAX_PER_USER"},
		"a word for connections per node": {"WS_MAX_PER_NODE", "many", "WS_MAX_PER_NODE"},
		"a bare address as a proxy":       {"TRUSTED_PROXIES", "10.0.0.1", `"10.0.0.1"`},
		"a bad CIDR among good ones":      {"TRUSTED_PROXIES", "10.0.0.0/8,300.0.0.0/8", `"300.0.0.0/8"`},
		"a prefix length out of range":    {"TRUSTED_PROXIES", "10.0.0.0/33", "TRUSTED_PROXIES"},
		"a metrics address without port":  {"METRICS_ADDR", "127.0.0.1", "METRICS_ADDR"},
	} {
		t.Run(name, func(t *testing.T) {
			clearLimits(t)
			t.Setenv(tc.key, tc.value)
			_, err := config.FromEnv()
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("FromEnv with %s=%q: %v, want an error naming %s", tc.key, tc.value, err, tc.says)
			}
		})
	}
}

func TestRedisKeyPrefixDefaultsToSaasAndRefusesWhatCouldMatchOtherKeys(t *testing.T) {
	t.Setenv("REDIS_KEY_PREFIX", "")
	c, err := config.FromEnv()
	if err != nil || c.RedisKeyPrefix != "saas" {
		t.Fatalf("unset REDIS_KEY_PREFIX = %q, %v; want saas", c.RedisKeyPrefix, err)
	}
	t.Setenv("REDIS_KEY_PREFIX", "prod-eu.1_b")
	if c, err := config.FromEnv(); err != nil || c.RedisKeyPrefix != "prod-eu.1_b" {
		t.Fatalf("REDIS_KEY_PREFIX=prod-eu.1_b = %q, %v", c.RedisKeyPrefix, err)
	}
	for _, bad := range []string{"sa as", "saas:x", "saas*", "[a]", strings.Repeat("a", 33)} {
		t.Setenv("REDIS_KEY_PREFIX", bad)
		if _, err := config.FromEnv(); err == nil || !strings.Contains(err.Error(), "REDIS_KEY_PREFIX") {
			t.Errorf("REDIS_KEY_PREFIX=%q = %v, want an error naming the variable", bad, err)
		}
	}
}

func TestAuditRetention(t *testing.T) {
	for name, tc := range map[string]struct {
		value string
		want  time.Duration
		bad   bool
	}{
		"unset is 365 days":       {"", 365 * 24 * time.Hour, false},
		"a duration":              {"720h", 720 * time.Hour, false},
		"0 keeps entries forever": {"0", 0, false},
		"days are no Go unit":     {"30d", 0, true},
		"a negative duration":     {"-1h", 0, true},
	} {
		t.Run(name, func(t *testing.T) {
			clearLimits(t)
			t.Setenv("AUDIT_RETENTION", tc.value)
			c, err := config.FromEnv()
			if tc.bad {
				if err == nil || !strings.Contains(err.Error(), "AUDIT_RETENTION") {
					t.Fatalf("err = %v, want one naming AUDIT_RETENTION", err)
				}
				return
			}
			if err != nil || c.AuditRetention != tc.want {
				t.Fatalf("AuditRetention = %v, %v; want %v", c.AuditRetention, err, tc.want)
			}
		})
	}
}

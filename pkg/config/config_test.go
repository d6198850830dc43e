package config_test

import (
	"strings"
	"testing"

	"github.com/tenantworks/saas/pkg/config"
)

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

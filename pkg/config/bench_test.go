package config_test

import (
	"strings"
	"testing"

	"github.com/tenantworks/saas/pkg/config"
)

func TestBenchCeilingIsReadFromTheEnvironment(t *testing.T) {
	for _, c := range []struct {
		name, value, env string
		want             bool
		err              string
	}{
		{"unset is off", "", "development", false, ""},
		{"1 is on", "1", "development", true, ""},
		{"true is on", "true", "development", true, ""},
		{"0 is off", "0", "development", false, ""},
		{"a word that is no boolean is refused", "yes please", "development", false, "SAAS_BENCH_CEILING must be true or false"},
		{"production refuses it", "1", "production", true, "not in production"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("SAAS_BENCH_CEILING", c.value)
			t.Setenv("APP_ENV", c.env)
			t.Setenv("JWT_SECRET", strings.Repeat("s", 40))
			cfg, err := config.FromEnv()
			if c.err == "" && err != nil {
				t.Fatalf("FromEnv: %v", err)
			}
			if c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Fatalf("FromEnv: error %v, want one saying %q", err, c.err)
			}
			if cfg.BenchCeiling != c.want {
				t.Errorf("BenchCeiling = %v, want %v", cfg.BenchCeiling, c.want)
			}
		})
	}
}

package config

import (
	"strings"
	"testing"
)

func TestDatabasePoolModeAndDirectURL(t *testing.T) {
	t.Run("defaults: session mode, the direct URL is DATABASE_URL", func(t *testing.T) {
		t.Setenv("DATABASE_URL", "postgres://u:secret@db:6432/app")
		t.Setenv("DATABASE_POOL_MODE", "")
		t.Setenv("DATABASE_DIRECT_URL", "")
		c, err := FromEnv()
		if err != nil {
			t.Fatal(err)
		}
		if c.DatabasePoolMode != "session" || c.DatabaseDirectURL != c.DatabaseURL {
			t.Errorf("mode %q, direct URL %q; want session and %q", c.DatabasePoolMode, c.DatabaseDirectURL, c.DatabaseURL)
		}
	})
	t.Run("both set, and the direct URL's password masked when printed", func(t *testing.T) {
		t.Setenv("DATABASE_URL", "postgres://u:secret@pooler:6432/app")
		t.Setenv("DATABASE_POOL_MODE", "transaction")
		t.Setenv("DATABASE_DIRECT_URL", "postgres://u:secret@db:5432/app")
		c, err := FromEnv()
		if err != nil {
			t.Fatal(err)
		}
		if c.DatabasePoolMode != "transaction" || c.DatabaseDirectURL != "postgres://u:secret@db:5432/app" {
			t.Errorf("mode %q, direct URL %q", c.DatabasePoolMode, c.DatabaseDirectURL)
		}
		if r := c.Redacted(); strings.Contains(r.DatabaseDirectURL, "secret") {
			t.Errorf("redacted direct URL %q shows the password", r.DatabaseDirectURL)
		}
	})
	t.Run("transaction mode without a direct URL of its own is refused", func(t *testing.T) {
		t.Setenv("DATABASE_URL", "postgres://u:secret@pooler:6432/app")
		t.Setenv("DATABASE_POOL_MODE", "transaction")
		t.Setenv("DATABASE_DIRECT_URL", "")
		if _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), "DATABASE_DIRECT_URL") {
			t.Errorf("FromEnv = %v, want an error naming DATABASE_DIRECT_URL", err)
		}
	})
	t.Run("an unknown mode is refused by name", func(t *testing.T) {
		t.Setenv("DATABASE_POOL_MODE", "statement")
		if _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), "DATABASE_POOL_MODE") {
			t.Errorf("FromEnv = %v, want an error naming DATABASE_POOL_MODE", err)
		}
	})
}

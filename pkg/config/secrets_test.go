package config

import (
	"crypto/rand"
	"strings"
	"testing"
)

// publishedExample is the token secret .env.example once showed. It is no
// default of anything any more; deployments that copied it must be refused.
const publishedExample = "dev-only-insecure-secret-change-me"

func TestTokenSecretsAreRequiredAndChecked(t *testing.T) {
	t.Parallel()
	good, other := rand.Text()+rand.Text(), rand.Text()+rand.Text()
	cases := []struct {
		name, secret, previous string
		complaint              string // "" when valid
	}{
		{"a random secret of 32 bytes or more is enough", good, "", ""},
		{"a random previous secret beside it is accepted", good, other, ""},
		{"no secret is refused", "", "", "JWT_SECRET is not set"},
		{"a previous secret without a current one is refused", "", other, "JWT_SECRET is not set"},
		{"a secret of 31 bytes is refused", strings.Repeat("x", 31), "", "JWT_SECRET is 31 bytes long"},
		{"a short previous secret is refused", good, "short", "JWT_SECRET_PREVIOUS is 5 bytes long"},
		{"the secret .env.example once published is refused", publishedExample, "", "JWT_SECRET is a value published as an example"},
		{"so is it as the previous secret", good, publishedExample, "JWT_SECRET_PREVIOUS is a value published as an example"},
	}
	for _, env := range []string{"development", "test", "production"} {
		for _, c := range cases {
			t.Run(env+": "+c.name, func(t *testing.T) {
				cfg := Config{Env: env, JWTSecret: c.secret, JWTSecretPrevious: c.previous}
				err := cfg.CheckTokenSecrets()
				switch {
				case c.complaint == "" && err != nil:
					t.Fatalf("CheckTokenSecrets = %v, want nil", err)
				case c.complaint != "" && (err == nil || !strings.Contains(err.Error(), c.complaint)):
					t.Fatalf("CheckTokenSecrets = %v, want an error saying %q", err, c.complaint)
				}
				if err != nil && ((c.secret != "" && strings.Contains(err.Error(), c.secret)) || (c.previous != "" && strings.Contains(err.Error(), c.previous))) {
					t.Fatalf("the error shows the secret: %v", err)
				}
			})
		}
	}
}

func TestFromEnvNeedsNoSecret(t *testing.T) {
	// Operator commands read the configuration too and must run without a
	// secret; the roles that use tokens check them on their own.
	for _, env := range []string{"development", "test", "production"} {
		t.Run("in "+env, func(t *testing.T) {
			t.Setenv("APP_ENV", env)
			t.Setenv("JWT_SECRET", "")
			t.Setenv("JWT_SECRET_PREVIOUS", "")
			cfg, err := FromEnv()
			if err != nil {
				t.Fatalf("FromEnv = %v, want no error", err)
			}
			if cfg.JWTSecret != "" {
				t.Fatalf("JWTSecret = %q without JWT_SECRET, want empty: there is no default", cfg.JWTSecret)
			}
			if cfg.CheckTokenSecrets() == nil {
				t.Fatal("CheckTokenSecrets accepts no secret")
			}
		})
	}
}

func TestRedactedMasksBothSecrets(t *testing.T) {
	t.Parallel()
	r := Config{JWTSecret: "current-secret", JWTSecretPrevious: "previous-secret"}.Redacted()
	if r.JWTSecret != "***" || r.JWTSecretPrevious != "***" {
		t.Fatalf("Redacted = %q, %q; want both masked", r.JWTSecret, r.JWTSecretPrevious)
	}
}

package main

import (
	"strings"
	"testing"

	"github.com/tenantworks/saas/pkg/testenv"
)

func TestTenantMoveMovesATenantAndSaysHowLongItsWritesPaused(t *testing.T) {
	useServices(t)
	d := testenv.MustClusterDatabases(t)
	t.Setenv("DATABASE_URL", d.URL)
	t.Setenv("DATABASE_POOL_MODE", "")
	t.Setenv("DATABASE_DIRECT_URL", d.URL)
	t.Setenv("TENANT_DATABASES", d.TenantDatabases)
	t.Setenv("JWT_SECRET", "")
	other := d.Clusters[1].Name
	if _, errOut, code := saas(t, "tenant", "create", "--schema", "shop", "--name", "Shop", "--domain", "shop.localhost"); code != 0 {
		t.Fatalf("tenant create: %s", errOut)
	}
	steps := []struct {
		name     string
		args     []string
		code     int
		contains []string
	}{
		{"a move says what it did and how long the writes paused", []string{"tenant", "move", "--schema", "shop", "--to", other}, 0,
			[]string{"copy: ", "pause\n", "moved tenant shop from main to " + other, "writes paused"}},
		{"the tenant shows on its new cluster", []string{"tenant", "show", "--schema", "shop"}, 0, []string{"cluster         " + other}},
		{"a move to where the tenant is is a conflict", []string{"tenant", "move", "--schema", "shop", "--to", other}, 3, []string{"already on " + other}},
		{"a cluster nobody named is bad input", []string{"tenant", "move", "--schema", "shop", "--to", "nowhere"}, 2, []string{`no cluster named "nowhere"`}},
		{"an unknown tenant is not found", []string{"tenant", "move", "--schema", "nobody", "--to", "main"}, 4, []string{"not found"}},
		{"--to is required", []string{"tenant", "move", "--schema", "shop"}, 2, []string{"--to"}},
		{"and back", []string{"tenant", "move", "--schema", "shop", "--to", "main"}, 0, []string{"moved tenant shop from " + other + " to main"}},
	}
	for _, s := range steps {
		out, errOut, code := saas(t, s.args...)
		for _, c := range s.contains {
			if code != s.code || !strings.Contains(out+errOut, c) {
				t.Fatalf("%s: saas %v exited %d with\n%s%s\nwant exit %d and %q", s.name, s.args, code, out, errOut, s.code, c)
			}
		}
	}
}

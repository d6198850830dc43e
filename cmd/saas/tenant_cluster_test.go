package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// The commands place tenants on the clusters of TENANT_DATABASES, show
// where each is, and `saas migrate` covers every cluster.
func TestTenantCommandsOnManyClusters(t *testing.T) {
	d := useClusterServices(t)
	t.Setenv("JWT_SECRET", "")
	other := d.Clusters[1].Name
	ctx := context.Background()

	steps := []struct {
		name     string
		args     []string
		code     int
		contains []string
	}{
		{"shared migrations apply on every cluster", []string{"migrate", "--shared"}, 0,
			[]string{"on main", "on " + other}},
		{"a tenant is placed on a named cluster", []string{"tenant", "create", "--schema", "far", "--name", "Far", "--domain", "far.localhost", "--cluster", other}, 0,
			[]string{"created tenant far", "cluster " + other}},
		{"an unknown cluster is bad input", []string{"tenant", "create", "--schema", "lost", "--name", "Lost", "--domain", "lost.localhost", "--cluster", "pg9"}, 2,
			[]string{"is not one of: main, " + other}},
		{"without --cluster, the one with the fewest tenants", []string{"tenant", "create", "--schema", "near", "--name", "Near", "--domain", "near.localhost"}, 0,
			[]string{"created tenant near", "cluster main"}},
		{"and again, tied, main", []string{"tenant", "create", "--schema", "third", "--name", "Third", "--domain", "third.localhost"}, 0,
			[]string{"cluster main"}},
		{"then the other", []string{"tenant", "create", "--schema", "fourth", "--name", "Fourth", "--domain", "fourth.localhost"}, 0,
			[]string{"cluster " + other}},
		{"the list shows each tenant's cluster", []string{"tenant", "list"}, 0,
			[]string{"CLUSTER", "far", other, "near"}},
		{"show names the cluster", []string{"tenant", "show", "--schema", "far"}, 0,
			[]string{"cluster         " + other}},
		{"a tenant there is suspended", []string{"tenant", "suspend", "--schema", "far"}, 0, []string{"tenant far is suspended"}},
		{"and resumed", []string{"tenant", "resume", "--schema", "far"}, 0, []string{"tenant far is active"}},
	}
	for _, s := range steps {
		out, errOut, code := saas(t, s.args...)
		for _, c := range s.contains {
			if code != s.code || !strings.Contains(out+errOut, c) {
				t.Fatalf("%s: saas %v exited %d with\n%s%s\nwant exit %d and %q", s.name, s.args, code, out, errOut, s.code, c)
			}
		}
	}
	want := map[string]string{"far": other, "near": "main", "third": "main", "fourth": other, "lost": ""}
	for s, c := range want {
		if on := d.SchemaClusters(t, s); strings.Join(on, ",") != c {
			t.Fatalf("schema %s is on %v, want [%s]", s, on, c)
		}
	}

	// Every tenant recorded as behind: each is found on its own cluster,
	// where its schema is already at the latest version, and recorded so.
	if _, err := d.DB.Pool.Exec(ctx, `UPDATE public.tenants SET schema_version = 0`); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := saas(t, "migrate", "--width", "1")
	for _, c := range []string{"4 pending, 4 migrated, 0 failed", "on main: 2 pending, 2 migrated, 0 failed",
		fmt.Sprintf("on %s: 2 pending, 2 migrated, 0 failed", other)} {
		if code != 0 || !strings.Contains(out, c) {
			t.Fatalf("saas migrate exited %d with\n%s%s\nwant %q", code, out, errOut, c)
		}
	}
	var behind int
	if err := d.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM public.tenants WHERE schema_version = 0`).Scan(&behind); err != nil || behind != 0 {
		t.Fatalf("%d tenant(s) still recorded at version 0 (err %v)", behind, err)
	}
	// A schema of the other cluster's tenant taken back there fails it alone.
	if _, err := d.Clusters[1].DB.Pool.Exec(ctx, `DROP TABLE fourth.goose_db_version; CREATE TABLE fourth.goose_db_version (junk int)`); err != nil {
		t.Fatal(err)
	}
	if _, err := d.DB.Pool.Exec(ctx, `UPDATE public.tenants SET schema_version = 0 WHERE schema_name = 'fourth'`); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = saas(t, "migrate")
	if code != 1 || !strings.Contains(errOut, "FAILED fourth on "+other) || strings.Count(errOut, "FAILED") != 1 ||
		!strings.Contains(out, "1 pending, 0 migrated, 1 failed") {
		t.Fatalf("saas migrate exited %d with\n%s%s\nwant fourth alone failed on %s", code, out, errOut, other)
	}

	if out, errOut, code := saas(t, "tenant", "delete", "--schema", "far"); code != 0 {
		t.Fatalf("delete exited %d:\n%s%s", code, out, errOut)
	}
	if on := d.SchemaClusters(t, "far"); len(on) != 0 {
		t.Fatalf("schema far left on %v after its delete", on)
	}
}

package api_test

import (
	"net/http"
	"testing"

	"github.com/tenantworks/saas/pkg/testenv"
)

// A superuser places tenants on the clusters of TENANT_DATABASES, or lets
// the one with the fewest tenants take it, and the API says where each is.
func TestPlatformPlacesTenantsOnClusters(t *testing.T) {
	t.Parallel()
	d := testenv.MustClusterDatabases(t)
	e := newAdminEnvOn(t, d)
	_, su := e.superuser("root@platform.test")
	other := d.Clusters[1].Name
	post := func(body map[string]string) response {
		return e.do(req{method: "POST", host: publicDomain, path: "/api/platform/tenants/", token: su, body: body})
	}

	for _, s := range []struct {
		name string
		body map[string]string
		want string
	}{
		{"on the cluster named", map[string]string{"schema": "far", "name": "Far", "domain": "far.example.test", "cluster": other}, other},
		{"on the one with the fewest tenants when none is named", map[string]string{"schema": "near", "name": "Near", "domain": "near.example.test"}, "main"},
		{"an empty name is none", map[string]string{"schema": "tied", "name": "Tied", "domain": "tied.example.test", "cluster": ""}, "main"},
		{"and then the other again", map[string]string{"schema": "next", "name": "Next", "domain": "next.example.test"}, other},
	} {
		r := post(s.body)
		if r.Code != http.StatusCreated || r.JSON["cluster"] != s.want {
			t.Fatalf("%s: create = %d %s, want 201 on %s", s.name, r.Code, r.Raw, s.want)
		}
		if on := d.SchemaClusters(t, s.body["schema"]); len(on) != 1 || on[0] != s.want {
			t.Fatalf("%s: schema on %v, want [%s]", s.name, on, s.want)
		}
	}

	r := post(map[string]string{"schema": "lost", "name": "Lost", "domain": "lost.example.test", "cluster": "pg9"})
	if r.Code != http.StatusUnprocessableEntity || r.errorDetails()["cluster"] != "is not one of: main, "+other {
		t.Fatalf("unknown cluster = %d %s, want 422 naming the clusters", r.Code, r.Raw)
	}
	if on := d.SchemaClusters(t, "lost"); len(on) != 0 {
		t.Fatalf("a refused create left its schema on %v", on)
	}

	r = e.do(req{method: "GET", host: publicDomain, path: "/api/platform/tenants/far/", token: su})
	if r.Code != http.StatusOK || r.JSON["cluster"] != other {
		t.Fatalf("get = %d %s, want far on %s", r.Code, r.Raw, other)
	}
	list := e.walk(publicDomain, "/api/platform/tenants/?ordering=schema", su, 100)
	got := map[string]any{}
	for _, it := range list {
		got[it["schema"].(string)] = it["cluster"]
	}
	if len(got) != 4 || got["far"] != other || got["near"] != "main" || got["tied"] != "main" || got["next"] != other {
		t.Fatalf("list clusters %v", got)
	}

	if r := e.do(req{method: "DELETE", host: publicDomain, path: "/api/platform/tenants/far/", token: su}); r.Code != http.StatusNoContent {
		t.Fatalf("delete = %d %s", r.Code, r.Raw)
	}
	if on := d.SchemaClusters(t, "far"); len(on) != 0 {
		t.Fatalf("the deleted tenant's schema is left on %v", on)
	}
}

package config_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/tenantworks/saas/pkg/config"
)

const (
	mainURL = "postgres://saas:secret@db-a:5432/saas?sslmode=disable"
	pg2URL  = "postgres://saas:secret@db-b:5433/saas?sslmode=disable"
)

func TestTenantDatabasesAlwaysHoldMain(t *testing.T) {
	for _, tc := range []struct {
		name, list string
		want       config.TenantDatabases
	}{
		{"unset: main alone, at DATABASE_URL", "", config.TenantDatabases{{Name: "main", URL: mainURL}}},
		{"another cluster: main first, at DATABASE_URL", "pg2=" + pg2URL,
			config.TenantDatabases{{Name: "main", URL: mainURL}, {Name: "pg2", URL: pg2URL}}},
		{"main listed: its own URL, still first", " pg2=" + pg2URL + " , main=postgresql://saas@db-c/saas ,",
			config.TenantDatabases{{Name: "main", URL: "postgresql://saas@db-c/saas"}, {Name: "pg2", URL: pg2URL}}},
		{"several, in the order listed", "eu_2=" + pg2URL + ",b9=" + mainURL,
			config.TenantDatabases{{Name: "main", URL: mainURL}, {Name: "eu_2", URL: pg2URL}, {Name: "b9", URL: mainURL}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := config.ParseTenantDatabases(tc.list, mainURL)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTenantDatabasesRefuseWhatCannotBeRouted(t *testing.T) {
	for _, tc := range []struct{ list, wantInError string }{
		{"pg2", "entry 1 is not name=url"},
		{"pg2=" + pg2URL + ",pg3", "entry 2 is not name=url"},
		{"PG2=" + pg2URL, `name "PG2"`},
		{"2pg=" + pg2URL, `name "2pg"`},
		{"pg-2=" + pg2URL, `name "pg-2"`},
		{"=" + pg2URL, `name ""`},
		{strings.Repeat("a", 32) + "=" + pg2URL, "up to 30"},
		{"pg2=" + pg2URL + ",pg2=" + mainURL, "pg2 is listed twice"},
		{"main=" + pg2URL + ",main=" + mainURL, "main is listed twice"},
		{"pg2=", "no URL"},
		{"pg2=redis://db-b:6379/0", `scheme is "redis"`},
		{"pg2=db-b:5433", "scheme"},
		{"pg2=postgres:///saas", "no host"},
	} {
		t.Run(tc.list, func(t *testing.T) {
			_, err := config.ParseTenantDatabases(tc.list, mainURL)
			if err == nil || !strings.Contains(err.Error(), tc.wantInError) {
				t.Fatalf("error %v, want one saying %q", err, tc.wantInError)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("the error shows a password: %v", err)
			}
		})
	}
}

func TestTenantDatabasesFromTheEnvironment(t *testing.T) {
	t.Setenv("DATABASE_URL", mainURL)
	t.Setenv("TENANT_DATABASES", "pg2="+pg2URL)
	c, err := config.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.TenantDatabases.Names(), []string{"main", "pg2"}) {
		t.Fatalf("clusters %v, want main and pg2", c.TenantDatabases.Names())
	}
	if u, ok := c.TenantDatabases.URL("pg2"); !ok || u != pg2URL {
		t.Fatalf("pg2 at %q (%v)", u, ok)
	}
	if _, ok := c.TenantDatabases.URL("pg3"); ok {
		t.Fatal("a cluster that is not listed has a URL")
	}
	for _, db := range c.Redacted().TenantDatabases {
		if strings.Contains(db.URL, "secret") {
			t.Errorf("the redacted configuration shows %s's password: %s", db.Name, db.URL)
		}
	}
	if u, _ := c.TenantDatabases.URL("main"); u != mainURL {
		t.Fatal("redacting changed the configuration itself")
	}

	t.Setenv("TENANT_DATABASES", "pg2="+pg2URL+",Bad=x")
	if _, err := config.FromEnv(); err == nil || !strings.Contains(err.Error(), "TENANT_DATABASES") {
		t.Fatalf("a bad TENANT_DATABASES = %v, want an error naming the variable", err)
	}
}

package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/tenantworks/saas/pkg/catalog"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/search"
	"github.com/tenantworks/saas/pkg/testenv"
)

// Every command run by this package's tests works under an index prefix
// of the run's own: `tenant create` and `tenant delete` create and drop
// search indices, and must never touch those of a local stack ("saas").
func init() {
	os.Setenv("ELASTICSEARCH_INDEX_PREFIX", "t"+testenv.RandomName(8))
}

func TestTenantCommandsManageTheSearchIndexAndReindexRebuildsIt(t *testing.T) {
	useServices(t)
	t.Setenv("NATS_URL", testenv.MustNATSServer(t).URL) // a stream of this test's own
	ctx := context.Background()
	es, err := search.New(search.Config{URL: os.Getenv("ELASTICSEARCH_URL"), IndexPrefix: os.Getenv("ELASTICSEARCH_INDEX_PREFIX")})
	if err != nil {
		t.Fatal(err)
	}
	schemaName := "cli_" + testenv.RandomName(8)
	t.Cleanup(func() { _ = es.DeleteTenant(context.Background(), schemaName) })
	indices := func() []string {
		t.Helper()
		got, err := es.Indices(ctx, schemaName)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	run := func(code int, contains string, args ...string) {
		t.Helper()
		out, errOut, got := saas(t, args...)
		if got != code || !strings.Contains(out+errOut, contains) {
			t.Fatalf("saas %v exited %d with\n%s%s\nwant exit %d and %q", args, got, out, errOut, code, contains)
		}
	}

	run(0, "shared schema", "migrate", "--shared")
	run(0, "created tenant "+schemaName, "tenant", "create", "--schema", schemaName, "--name", "CLI", "--domain", strings.ReplaceAll(schemaName, "_", "-")+".localhost")
	shared := indices()
	if len(shared) != 1 || !es.IsShared(shared[0]) {
		t.Fatalf("after tenant create the alias points to %v, want a shared index", shared)
	}

	db, err := postgres.Open(ctx, postgres.Config{URL: os.Getenv("DATABASE_DIRECT_URL")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cat, err := catalog.New(catalog.Deps{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		sku, name, price, cur := fmt.Sprintf("CLI-%d", i), fmt.Sprintf("Widget %d", i), "1.00", "EUR"
		if _, err := cat.Create(ctx, schemaName, domain.ProductPatch{SKU: &sku, Name: &name, Price: &price, Currency: &cur}, catalog.Meta{}); err != nil {
			t.Fatal(err)
		}
	}
	searchable := func() int {
		t.Helper()
		_, total, err := es.Search(ctx, schemaName, "widget", 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		return total
	}

	// 3 products, far below the default threshold: rebuilt in place.
	run(0, "reindexed "+schemaName+" from db into "+shared[0]+" (shared index)", "reindex", "--tenant", schemaName)
	if got := indices(); !slices.Equal(got, shared) || searchable() != 3 {
		t.Fatalf("after reindex: alias on %v, %d products searchable; want %v with the 3 products", got, searchable(), shared)
	}
	// Past a threshold of 2: promoted to an index of its own.
	t.Setenv("ELASTICSEARCH_DEDICATED_AT", "2")
	run(0, "reindexed 1 of 1 tenants, 0 failed", "reindex", "--all", "--from", "stream")
	first := indices()
	if len(first) != 1 || es.IsShared(first[0]) || searchable() != 3 {
		t.Fatalf("after reindex --all: alias on %v, %d searchable; want an index of its own with the 3 products", first, searchable())
	}
	run(0, "(index of its own)", "reindex", "--tenant", schemaName)
	if got := indices(); len(got) != 1 || got[0] == first[0] || es.IsShared(got[0]) || searchable() != 3 {
		t.Fatalf("after reindex: alias on %v, %d searchable; want a new index of its own", got, searchable())
	}
	t.Setenv("ELASTICSEARCH_DEDICATED_AT", "lots")
	run(2, "ELASTICSEARCH_DEDICATED_AT must be a positive whole number", "reindex", "--tenant", schemaName)
	t.Setenv("ELASTICSEARCH_DEDICATED_AT", "")

	run(2, "either --tenant or --all", "reindex")
	run(2, "either --tenant or --all", "reindex", "--tenant", schemaName, "--all")
	run(2, "--from must be db or stream", "reindex", "--tenant", schemaName, "--from", "elsewhere")
	run(4, "not found", "reindex", "--tenant", "nobody_here")

	run(0, "deleted tenant "+schemaName, "tenant", "delete", "--schema", schemaName)
	if got := indices(); len(got) != 0 {
		t.Fatalf("after tenant delete the alias points to %v", got)
	}
	if n, err := es.SharedCounts(ctx, []string{schemaName}); err != nil || n[schemaName] != 0 {
		t.Fatalf("after tenant delete %d documents (%v) are left in the shared indices", n[schemaName], err)
	}
}

package tenancy_test

import (
	"fmt"
	"sort"
	"testing"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/tenancy"
)

func TestTenantPagesWalkEveryMatchOnceInOrder(t *testing.T) {
	t.Parallel()
	m, _ := newManager(t, nil)
	ctx := t.Context()
	names := map[string]string{}
	for i := range 7 {
		schemaName := fmt.Sprintf("page_%c%d", 'a'+rune(6-i), i) // schema order is not creation order
		name := fmt.Sprintf("Shop %d", i%3)                      // ties on name, broken by id
		names[schemaName] = name
		if _, err := m.Create(ctx, tenancy.CreateParams{Schema: schemaName, Name: name, Domain: fmt.Sprintf("host%d.pages.test", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Suspend(ctx, "page_a6"); err != nil {
		t.Fatal(err)
	}
	walk := func(t *testing.T, p tenancy.ListParams) []domain.Tenant {
		t.Helper()
		var all []domain.Tenant
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("more pages than tenants")
			}
			ts, next, err := m.Page(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, ts...)
			if next == "" {
				return all
			}
			p.Cursor = next
		}
	}
	for _, ordering := range []string{"", "schema", "-schema", "name", "-name", "created_at", "-created_at"} {
		t.Run("ordering "+ordering+" by twos", func(t *testing.T) {
			ts := walk(t, tenancy.ListParams{Ordering: ordering, Limit: 2})
			if len(ts) != 7 {
				t.Fatalf("walked %d tenants, want 7", len(ts))
			}
			seen := map[string]bool{}
			for _, x := range ts {
				if seen[x.Schema] {
					t.Fatalf("%s twice", x.Schema)
				}
				seen[x.Schema] = true
			}
			less := map[string]func(a, b domain.Tenant) bool{
				"":            func(a, b domain.Tenant) bool { return a.CreatedAt.Before(b.CreatedAt) },
				"schema":      func(a, b domain.Tenant) bool { return a.Schema < b.Schema },
				"-schema":     func(a, b domain.Tenant) bool { return a.Schema > b.Schema },
				"name":        func(a, b domain.Tenant) bool { return a.Name < b.Name || a.Name == b.Name && a.ID < b.ID },
				"-name":       func(a, b domain.Tenant) bool { return a.Name > b.Name || a.Name == b.Name && a.ID > b.ID },
				"created_at":  func(a, b domain.Tenant) bool { return a.CreatedAt.Before(b.CreatedAt) },
				"-created_at": func(a, b domain.Tenant) bool { return a.CreatedAt.After(b.CreatedAt) },
			}[ordering]
			if !sort.SliceIsSorted(ts, func(i, j int) bool { return less(ts[i], ts[j]) }) {
				t.Fatalf("not in %q order: %v", ordering, schemas(ts))
			}
		})
	}
	t.Run("q matches the schema, the name or a domain, ignoring case", func(t *testing.T) {
		for q, want := range map[string]int{"PAGE_B": 1, "shop 1": 2, "HOST3.pages": 1, "pages.test": 7, "%": 0, "_": 7, "nothing": 0} {
			if got := walk(t, tenancy.ListParams{Q: q, Limit: 3}); len(got) != want {
				t.Errorf("q=%q found %v, want %d", q, schemas(got), want)
			}
		}
	})
	t.Run("state keeps one state", func(t *testing.T) {
		got := walk(t, tenancy.ListParams{State: domain.TenantSuspended, Limit: 5})
		if len(got) != 1 || got[0].Schema != "page_a6" {
			t.Fatalf("suspended = %v, want page_a6", schemas(got))
		}
		if got := walk(t, tenancy.ListParams{State: domain.TenantActive, Limit: 5}); len(got) != 6 {
			t.Fatalf("active = %v, want 6", schemas(got))
		}
	})
	t.Run("bad parameters are invalid, each named", func(t *testing.T) {
		for field, p := range map[string]tenancy.ListParams{
			"ordering": {Ordering: "id", Limit: 5},
			"state":    {State: "gone", Limit: 5},
			"limit":    {Limit: 101},
			"cursor":   {Cursor: "bm90IGEgY3Vyc29y", Limit: 5},
		} {
			_, _, err := m.Page(ctx, p)
			if domain.ErrorCode(err) != domain.EINVALID || domain.ErrorDetails(err)[field] == "" {
				t.Errorf("%s: %v, want invalid naming it", field, err)
			}
		}
	})
}

func schemas(ts []domain.Tenant) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Schema
	}
	return out
}

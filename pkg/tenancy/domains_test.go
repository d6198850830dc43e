package tenancy_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/tenancy"
)

func primaryOf(t *testing.T, m *tenancy.Manager, schemaName string) []string {
	t.Helper()
	tn, err := m.Get(context.Background(), schemaName)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range tn.Domains {
		if d.IsPrimary {
			out = append(out, d.Domain)
		}
	}
	return out
}

func TestDomainChanges(t *testing.T) {
	t.Parallel()
	m, db := newManager(t, nil)
	ctx := context.Background()
	var changes atomic.Int64
	m.OnChange(func(context.Context) { changes.Add(1) })
	for _, s := range []string{"dom_a", "dom_b"} {
		if _, err := m.Create(ctx, tenancy.CreateParams{Schema: s, Name: s, Domain: s[4:] + ".localhost"}); err != nil {
			t.Fatal(err)
		}
	}
	changed := func(t *testing.T, want int64) {
		t.Helper()
		if got := changes.Swap(0); got != want {
			t.Fatalf("OnChange called %d times, want %d", got, want)
		}
	}
	changed(t, 2)

	t.Run("a rename trims and validates the name and announces itself", func(t *testing.T) {
		tn, err := m.Rename(ctx, "dom_a", "  Alpha  ")
		if err != nil || tn.Name != "Alpha" || len(tn.Domains) != 1 {
			t.Fatalf("rename = %+v, %v", tn, err)
		}
		changed(t, 1)
		if _, err := m.Rename(ctx, "dom_a", " "); domain.ErrorCode(err) != domain.EINVALID {
			t.Fatalf("empty name: err = %v, want %s", err, domain.EINVALID)
		}
		if _, err := m.Rename(ctx, "nobody", "X"); domain.ErrorCode(err) != domain.ENOTFOUND {
			t.Fatalf("unknown tenant: err = %v, want %s", err, domain.ENOTFOUND)
		}
		changed(t, 0)
	})

	t.Run("an added domain is normalized; one added as primary takes the flag", func(t *testing.T) {
		d, err := m.AddDomain(ctx, "dom_a", "WWW.A.Localhost.", false)
		if err != nil || d.Domain != "www.a.localhost" || d.IsPrimary {
			t.Fatalf("add = %+v, %v", d, err)
		}
		if _, err := m.AddDomain(ctx, "dom_a", "shop.a.localhost", true); err != nil {
			t.Fatal(err)
		}
		if got := primaryOf(t, m, "dom_a"); len(got) != 1 || got[0] != "shop.a.localhost" {
			t.Fatalf("primaries = %v, want [shop.a.localhost]", got)
		}
		changed(t, 2)
		for name, c := range map[string]struct {
			schema, domain, code string
		}{
			"its own domain again": {"dom_a", "www.a.localhost", domain.ECONFLICT},
			"another tenant's":     {"dom_a", "b.localhost", domain.ECONFLICT},
			"an invalid name":      {"dom_a", "no such host", domain.EINVALID},
			"to an unknown tenant": {"nobody", "free.localhost", domain.ENOTFOUND},
		} {
			if _, err := m.AddDomain(ctx, c.schema, c.domain, false); domain.ErrorCode(err) != c.code {
				t.Errorf("adding %s: err = %v, want %s", name, err, c.code)
			}
		}
		changed(t, 0)
	})

	t.Run("the primary flag moves, and the primary domain is never removed", func(t *testing.T) {
		if err := m.RemoveDomain(ctx, "dom_a", "shop.a.localhost"); domain.ErrorCode(err) != domain.ECONFLICT {
			t.Fatalf("removing the primary: err = %v, want %s", err, domain.ECONFLICT)
		}
		if _, err := m.SetPrimaryDomain(ctx, "dom_a", "a.localhost"); err != nil {
			t.Fatal(err)
		}
		if got := primaryOf(t, m, "dom_a"); len(got) != 1 || got[0] != "a.localhost" {
			t.Fatalf("primaries = %v, want [a.localhost]", got)
		}
		if _, err := m.SetPrimaryDomain(ctx, "dom_a", "b.localhost"); domain.ErrorCode(err) != domain.ENOTFOUND {
			t.Fatalf("making another tenant's domain primary: err = %v, want %s", err, domain.ENOTFOUND)
		}
		for _, d := range []string{"SHOP.a.localhost", "www.a.localhost"} {
			if err := m.RemoveDomain(ctx, "dom_a", d); err != nil {
				t.Fatalf("remove %s: %v", d, err)
			}
		}
		if err := m.RemoveDomain(ctx, "dom_a", "b.localhost"); domain.ErrorCode(err) != domain.ENOTFOUND {
			t.Fatalf("removing another tenant's domain: err = %v, want %s", err, domain.ENOTFOUND)
		}
		if tn, _ := m.Get(ctx, "dom_b"); len(tn.Domains) != 1 {
			t.Fatalf("the other tenant's domains changed: %+v", tn.Domains)
		}
		changed(t, 3)
	})

	t.Run("concurrent primary changes leave exactly one primary", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 10)
		for i := range 10 {
			wg.Go(func() {
				_, err := m.AddDomain(ctx, "dom_b", fmt.Sprintf("p%d.b.localhost", i), true)
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if got := primaryOf(t, m, "dom_b"); len(got) != 1 {
			t.Fatalf("primaries = %v, want exactly one", got)
		}
	})

	t.Run("a tenant being deleted takes no domain changes", func(t *testing.T) {
		if _, err := db.DB.Pool.Exec(ctx, `UPDATE public.tenants SET state = 'deleting' WHERE schema_name = 'dom_a'`); err != nil {
			t.Fatal(err)
		}
		if _, err := m.AddDomain(ctx, "dom_a", "late.a.localhost", false); domain.ErrorCode(err) != domain.ECONFLICT {
			t.Fatalf("add: err = %v, want %s", err, domain.ECONFLICT)
		}
		if _, err := m.Rename(ctx, "dom_a", "Late"); domain.ErrorCode(err) != domain.ECONFLICT {
			t.Fatalf("rename: err = %v, want %s", err, domain.ECONFLICT)
		}
	})
}

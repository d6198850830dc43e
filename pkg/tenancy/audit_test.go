package tenancy_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/tenancy"
)

func TestEveryTenantAndDomainChangeLeavesOnePlatformEntry(t *testing.T) {
	t.Parallel()
	m, db := newManager(t, nil)
	sue := audit.Actor{Kind: audit.KindSuperuser, ID: "0197a000-0000-7000-8000-0000000000bb", Email: "sue@platform.test"}
	as := func(req string) context.Context {
		return audit.WithCause(t.Context(), audit.Cause{Actor: sue, RequestID: req})
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := m.Create(as("r1"), tenancy.CreateParams{Schema: "aud_a", Name: "Acme", Domain: "acme.localhost"})
	must(err)
	// Refused changes leave nothing: a taken domain, a taken schema.
	if _, err := m.Create(as("r-dup"), tenancy.CreateParams{Schema: "aud_b", Name: "B", Domain: "acme.localhost"}); domain.ErrorCode(err) != domain.ECONFLICT {
		t.Fatalf("duplicate domain = %v, want a conflict", err)
	}
	if _, err := m.AddDomain(as("r-dup2"), "aud_a", "acme.localhost", false); domain.ErrorCode(err) != domain.ECONFLICT {
		t.Fatalf("duplicate domain = %v, want a conflict", err)
	}
	_, err = m.Rename(as("r2"), "aud_a", "Acme Inc")
	must(err)
	_, err = m.Rename(as("r-same"), "aud_a", "Acme Inc") // nothing changes: no entry
	must(err)
	_, err = m.Suspend(as("r3"), "aud_a")
	must(err)
	_, err = m.Suspend(as("r-again"), "aud_a") // already suspended: no entry
	must(err)
	_, err = m.Resume(as("r4"), "aud_a")
	must(err)
	_, err = m.AddDomain(as("r5"), "aud_a", "acme2.localhost", false)
	must(err)
	_, err = m.SetPrimaryDomain(as("r6"), "aud_a", "acme2.localhost")
	must(err)
	must(m.RemoveDomain(as("r7"), "aud_a", "acme.localhost"))
	must(m.Delete(as("r8"), "aud_a"))

	got, _, err := db.DB.ListPlatformAudit(t.Context(), postgres.AuditFilter{Limit: 100})
	must(err)
	want := []struct {
		action, req string
		target      audit.Target
		changes     audit.Changes
	}{ // newest first
		{"tenant.delete", "r8", audit.Target{Type: "tenant", ID: "aud_a"}, audit.Changes{"schema": {"aud_a", nil}, "name": {"Acme Inc", nil}}},
		{"domain.remove", "r7", audit.Target{Type: "domain", ID: "acme.localhost"}, audit.Changes{"tenant": {"aud_a", nil}, "is_primary": {false, nil}}},
		{"domain.set_primary", "r6", audit.Target{Type: "domain", ID: "acme2.localhost"}, audit.Changes{"tenant": {"aud_a", "aud_a"}, "is_primary": {false, true}}},
		{"domain.add", "r5", audit.Target{Type: "domain", ID: "acme2.localhost"}, audit.Changes{"tenant": {nil, "aud_a"}, "is_primary": {nil, false}}},
		{"tenant.resume", "r4", audit.Target{Type: "tenant", ID: "aud_a"}, audit.Changes{"state": {"suspended", "active"}}},
		{"tenant.suspend", "r3", audit.Target{Type: "tenant", ID: "aud_a"}, audit.Changes{"state": {"active", "suspended"}}},
		{"tenant.rename", "r2", audit.Target{Type: "tenant", ID: "aud_a"}, audit.Changes{"name": {"Acme", "Acme Inc"}}},
		{"tenant.create", "r1", audit.Target{Type: "tenant", ID: "aud_a"}, audit.Changes{"schema": {nil, "aud_a"}, "name": {nil, "Acme"}, "domain": {nil, "acme.localhost"}}},
	}
	if len(got) != len(want) {
		t.Fatalf("platform audit has %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i, wt := range want {
		g := got[i]
		if g.Action != wt.action || g.RequestID != wt.req || g.Actor != sue || g.Target != wt.target || !reflect.DeepEqual(g.Changes, wt.changes) {
			t.Errorf("entry %d = %+v, want %s %v %v by %v in %s", i, g, wt.action, wt.target, wt.changes, sue, wt.req)
		}
	}
}

func TestAnUndoneCreateLeavesNoEntry(t *testing.T) {
	t.Parallel()
	m, db := newManager(t, nil, &failingHook{})
	if _, err := m.Create(t.Context(), tenancy.CreateParams{Schema: "aud_x", Name: "X", Domain: "x.localhost"}); err == nil {
		t.Fatal("Create succeeded with a failing hook")
	}
	got, _, err := db.DB.ListPlatformAudit(t.Context(), postgres.AuditFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("platform audit = %+v, want nothing for a create that was undone", got)
	}
}

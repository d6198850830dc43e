package events_test

import (
	"testing"

	"github.com/tenantworks/saas/events"
)

func TestParsePushSubjectReadsBackPushSubject(t *testing.T) {
	tenant, user, ok := events.ParsePushSubject(events.PushSubject("t_acme", "0192-user"))
	if !ok || tenant != "t_acme" || user != "0192-user" {
		t.Errorf("got %q %q %v, want t_acme 0192-user true", tenant, user, ok)
	}
	for _, s := range []string{"push", "push.", "push.t_acme", "push.t_acme.", "push..u", "push.t.u.extra", "tenant.t.u", "saas.tenancy.suspended"} {
		if tenant, user, ok := events.ParsePushSubject(s); ok {
			t.Errorf("%q parsed as %q %q, want not a push subject", s, tenant, user)
		}
	}
}

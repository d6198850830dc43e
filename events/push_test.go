package events_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/domain"
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

func TestParsePushTenantSubjectReadsBackPushTenantSubject(t *testing.T) {
	if tenant, ok := events.ParsePushTenantSubject(events.PushTenantSubject("t_acme")); !ok || tenant != "t_acme" {
		t.Errorf("got %q %v, want t_acme true", tenant, ok)
	}
	for _, s := range []string{"push", "push.", events.PushSubject("t_acme", "u"), "tenant.t_acme"} {
		if tenant, ok := events.ParsePushTenantSubject(s); ok {
			t.Errorf("%q parsed as %q, want not a tenant push subject", s, tenant)
		}
	}
}

func TestNotificationEncoderWritesWhatMarshalWrites(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 891000, time.FixedZone("x", 3600))
	for _, f := range []events.PushFanout{
		{Type: events.PushFanoutType, EventID: "0190a7e4-0000-7000-8000-000000000001", Kind: "product.created",
			Title: `New product: "Lamp" <b>&</b> \u2028`, Data: json.RawMessage(`{ "a": [1, 2], "b": "x" }`), CreatedAt: at,
			Users: []string{"u1", "u2"}, IDs: []int64{1, 9223372036854775807}},
		{Type: events.PushFanoutType, EventID: "e", Kind: "k", Title: "", CreatedAt: at, Users: []string{"u"}, IDs: []int64{42}},
	} {
		encode, err := f.NotificationEncoder()
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range f.IDs {
			want, err := json.Marshal(f.Notification(i))
			if err != nil {
				t.Fatal(err)
			}
			if got := encode(id); !bytes.Equal(got, want) {
				t.Errorf("encode(%d) = %s, want %s", id, got, want)
			}
		}
	}
}

func TestFanoutsOfGroupsRowsByEventAndWrite(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var rows []domain.Notification
	row := func(id int64, event, user string, at time.Time) {
		rows = append(rows, domain.Notification{ID: id, EventID: event, UserID: user, Kind: "k", Title: "t " + event,
			Data: json.RawMessage(`{}`), CreatedAt: at})
	}
	row(1, "e1", "u1", t0) // an earlier delivery's row of e1
	row(2, "e2", "u1", t0.Add(time.Second))
	row(3, "e2", "u2", t0.Add(time.Second))
	row(4, "e1", "u2", t0.Add(time.Second)) // e1's rows of this delivery
	for i := range events.PushFanoutMax + 1 {
		row(int64(10+i), "e3", fmt.Sprintf("u%d", i), t0.Add(time.Second))
	}
	got := events.FanoutsOf(rows)
	type msg struct {
		event string
		ids   int
		first int64
	}
	var summary []msg
	for _, f := range got {
		if err := f.Check(); err != nil {
			t.Fatal(err)
		}
		if f.Title != "t "+f.EventID {
			t.Errorf("fan-out of %s has title %q", f.EventID, f.Title)
		}
		summary = append(summary, msg{f.EventID, len(f.IDs), f.IDs[0]})
	}
	want := []msg{{"e1", 1, 1}, {"e2", 2, 2}, {"e1", 1, 4}, {"e3", events.PushFanoutMax, 10}, {"e3", 1, 10 + events.PushFanoutMax}}
	if !slices.Equal(summary, want) {
		t.Errorf("fan-outs %v, want %v", summary, want)
	}
	if got[1].Users[1] != "u2" || got[1].IDs[1] != 3 {
		t.Errorf("e2's second recipient = %s with %d, want u2 with 3", got[1].Users[1], got[1].IDs[1])
	}
}

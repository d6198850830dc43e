package notifier

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/workers/runner"
)

// FuzzNotifierEvent decodes arbitrary bytes as an envelope the way the
// runner does (json.Unmarshal; id and tenant not empty) and hands it to
// Handle with a store and a NATS connection that record what reaches
// them. Run it with
//
//	go test -run '^$' -fuzz '^FuzzNotifierEvent$' -fuzztime 10s ./workers/notifier
//
// Properties: no panic; only a product.created event of a valid tenant,
// whose id is a UUID as the relay writes it (the notification rows' key)
// and whose payload names a product id and a name, reaches the store, with
// the title and data made of that payload; every push goes to the subject
// of the tenant and user of a stored row; an event that cannot be handled
// is a permanent error (the fakes never fail, so no error is retryable).
func FuzzNotifierEvent(f *testing.F) {
	const eid = "0190a7e4-2222-7000-8000-000000000001"
	env := func(id, typ, tenant, payload string) []byte {
		b, _ := json.Marshal(events.Envelope{ID: id, Type: typ, Tenant: tenant, AggregateID: "0190a7e4-1111-7000-8000-000000000001",
			Version: 1, OccurredAt: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), Payload: json.RawMessage(payload)})
		return b
	}
	product := `{"id":"0190a7e4-1111-7000-8000-000000000001","sku":"SKU-1","name":"Widget","price":"12.50","currency":"EUR"}`
	for _, b := range [][]byte{
		env(eid, events.ProductCreated, "acme", product),
		env(eid, events.ProductUpdated, "acme", product),
		env(eid, events.ProductCreated, "acme.x", product),
		env(eid, events.ProductCreated, "pg_catalog", product),
		env("e1", events.ProductCreated, "acme", product),
		env(eid, events.ProductCreated, "acme", `{"id":"x"}`),
		env(eid, events.ProductCreated, "acme", `{"name":"x"}`),
		env(eid, events.ProductCreated, "acme", `[]`),
		env(eid, events.ProductCreated, "acme", `{"id":"x","name":"<script>\"'\u2028"}`),
		// Event ids uuid.Parse takes and PostgreSQL refuses.
		env("urn:uuid:"+eid, events.ProductCreated, "acme", product),
		env("("+eid+")", events.ProductCreated, "acme", product),
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev events.Envelope
		if err := json.Unmarshal(data, &ev); err != nil || ev.ID == "" || ev.Tenant == "" {
			return // the runner dead-letters it (FuzzEnvelope)
		}
		st, nc := &recordingStore{}, &recordingNATS{}
		log := slog.New(slog.DiscardHandler)
		n := &Notifier{cfg: Config{FlushTimeout: time.Second}.withDefaults(), deps: Deps{Store: st, NATS: nc, Log: log}, log: log}
		errs := n.Handle(t.Context(), []events.Envelope{ev})
		if len(errs) != 1 {
			t.Fatalf("%d results for one event", len(errs))
		}
		if err := errs[0]; err != nil && !runner.IsPermanent(err) {
			t.Fatalf("event %q: retryable error %v with a store and NATS that never fail", data, err)
		}
		if len(st.calls) == 0 {
			if len(nc.subjects) > 0 {
				t.Fatalf("pushes %v without a stored notification", nc.subjects)
			}
			return
		}
		var p events.Product
		_ = json.Unmarshal(ev.Payload, &p)
		c := st.calls[0]
		switch {
		case len(st.calls) != 1 || errs[0] != nil:
			t.Fatalf("%d store calls, error %v", len(st.calls), errs[0])
		case ev.Type != events.ProductCreated:
			t.Fatalf("event of type %q reached the store", ev.Type)
		case domain.ValidateSchemaName(c.schema) != nil || c.schema != ev.Tenant:
			t.Fatalf("store called for schema %q (event tenant %q)", c.schema, ev.Tenant)
		case !canonicalUUID(c.n.EventID) || c.n.EventID != ev.ID:
			t.Fatalf("store called with event id %q (event %q), not a UUID as the relay writes it", c.n.EventID, ev.ID)
		case p.ID == "" || p.Name == "" || c.n.Title != "New product: "+p.Name || c.n.Kind != events.ProductCreated:
			t.Fatalf("notification %+v from payload %+v", c.n, p)
		}
		var d productData
		if err := json.Unmarshal(c.n.Data, &d); err != nil || d.ProductID != p.ID || d.Name != p.Name {
			t.Fatalf("notification data %s, %v; payload %+v", c.n.Data, err, p)
		}
		if want := events.PushTenantSubject(ev.Tenant); len(nc.subjects) != 1 || nc.subjects[0] != want || strings.Count(want, ".") != 1 {
			t.Fatalf("pushes %v, want one to %s", nc.subjects, want)
		}
		var f events.PushFanout
		if err := json.Unmarshal(nc.data[0], &f); err != nil || f.Check() != nil {
			t.Fatalf("push %s: %v", nc.data[0], err)
		}
		if got := f.Notification(0); len(f.Users) != 1 || f.Users[0] != recordedUser || got.ID != 1 || got.EventID != ev.ID || got.Title != c.n.Title {
			t.Fatalf("push %+v, want notification 1 of event %s to %s", f, ev.ID, recordedUser)
		}
	})
}

// canonicalUUID reports whether s is a UUID as PostgreSQL writes it.
func canonicalUUID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

const recordedUser = "0190a7e4-3333-7000-8000-000000000001"

// recordingStore stores one notification per event, for recordedUser.
type recordingStore struct {
	calls []struct {
		schema string
		n      postgres.EventNotification
	}
}

func (s *recordingStore) NotifyActiveStaffMany(_ context.Context, schema string, ns []postgres.EventNotification) ([]domain.Notification, error) {
	var out []domain.Notification
	for _, n := range ns {
		s.calls = append(s.calls, struct {
			schema string
			n      postgres.EventNotification
		}{schema, n})
		out = append(out, domain.Notification{ID: int64(len(s.calls)), EventID: n.EventID, UserID: recordedUser, Kind: n.Kind,
			Title: n.Title, Data: n.Data, CreatedAt: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)})
	}
	return out, nil
}

type recordingNATS struct {
	subjects []string
	data     [][]byte
}

func (p *recordingNATS) Publish(subject string, data []byte) error {
	p.subjects = append(p.subjects, subject)
	p.data = append(p.data, data)
	return nil
}

func (p *recordingNATS) FlushWithContext(context.Context) error { return nil }

var (
	_ Store     = (*recordingStore)(nil)
	_ Publisher = (*recordingNATS)(nil)
)

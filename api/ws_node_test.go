package api_test

import (
	"encoding/json"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/tenantworks/saas/api"
	"github.com/tenantworks/saas/events"
)

// hubNode starts a push node on a NATS connection the test can look at.
func (p *pushEnv) hubNode(t *testing.T, name string) (*api.PushHub, *nats.Conn, *httptest.Server) {
	t.Helper()
	nc := p.natsConn(name)
	hub := api.NewPushHub(api.PushConfig{}, nc)
	hub.ResyncOnReconnect(nc)
	deps := p.deps
	deps.Push = hub
	return hub, nc, p.serve(api.New(p.cfg, deps).Handler(), hub)
}

func TestWebSocketNodeHoldsOneSubscriptionForAllItsConnections(t *testing.T) {
	t.Parallel()
	p := newPushEnv(t, api.PushConfig{})
	a, b := p.tenant("wsone"), p.tenant("wsoneb")
	hub, nc, srv := p.hubNode(t, "push-node-one")
	var staff, plain, other []*wsClient
	for range 4 {
		staff = append(staff, connect(t, srv, dialOpts{host: a.Host, token: a.StaffToken}))
		plain = append(plain, connect(t, srv, dialOpts{host: a.Host, token: a.UserToken}))
		other = append(other, connect(t, srv, dialOpts{host: b.Host, token: b.StaffToken}))
	}
	if n := nc.NumSubscriptions(); n != 1 {
		t.Fatalf("the node holds %d NATS subscriptions for 12 connections, want 1", n)
	}

	t.Run("every connection of a user gets each of its notifications, and only those", func(t *testing.T) {
		mine := []int64{
			p.push(a.Schema, a.StaffID, "test.staff", json.RawMessage(`{}`)),
			p.push(a.Schema, a.UserID, "test.plain", json.RawMessage(`{}`)),
			p.push(b.Schema, b.StaffID, "test.other", json.RawMessage(`{}`)),
			p.push(a.Schema, a.StaffID, "test.staff", json.RawMessage(`{}`)),
		}
		// One marker per user: every connection of the user receives it.
		staffMark, plainMark, otherMark := p.mark(a.Schema, a.StaffID), p.mark(a.Schema, a.UserID), p.mark(b.Schema, b.StaffID)
		for i, c := range staff {
			if got := notificationIDs(c.until(staffMark)); !slices.Equal(got, []int64{mine[0], mine[3]}) {
				t.Errorf("staff connection %d received %v, want %v", i, got, []int64{mine[0], mine[3]})
			}
		}
		for i, c := range plain {
			if got := notificationIDs(c.until(plainMark)); !slices.Equal(got, []int64{mine[1]}) {
				t.Errorf("plain connection %d received %v, want %v", i, got, []int64{mine[1]})
			}
		}
		for i, c := range other {
			if got := notificationIDs(c.until(otherMark)); !slices.Equal(got, []int64{mine[2]}) {
				t.Errorf("other tenant's connection %d received %v, want %v", i, got, []int64{mine[2]})
			}
		}
	})

	t.Run("a push to a user with the same id in another tenant stays there", func(t *testing.T) {
		p.push(b.Schema, a.StaffID, "test.foreign", json.RawMessage(`{}`))
		if got := staff[0].until(p.mark(a.Schema, a.StaffID)); len(got) != 0 {
			t.Errorf("staff received %v", got)
		}
	})

	t.Run("closed connections leave the one subscription", func(t *testing.T) {
		for _, c := range append(staff, plain...) {
			_ = c.conn.CloseNow()
		}
		wsEventually(t, "the closed connections are released", func() bool { return hub.Connections() == 4 })
		if n := nc.NumSubscriptions(); n != 1 {
			t.Errorf("the node holds %d NATS subscriptions, want 1", n)
		}
	})
}

func TestWebSocketNodeSubscriptionSurvivesANATSReconnect(t *testing.T) {
	t.Parallel()
	p := newPushEnv(t, api.PushConfig{})
	a := p.tenant("wsreconn")
	_, nc, srv := p.hubNode(t, "push-node-reconnect")
	before := connect(t, srv, dialOpts{host: a.Host, token: a.StaffToken})
	if got := before.until(p.mark(a.Schema, a.StaffID)); len(got) != 0 {
		t.Fatalf("received %v", got)
	}

	p.natsSrv.Stop()
	wsEventually(t, "the node notices NATS is gone", func() bool { return !nc.IsConnected() })
	t.Run("a connection is refused while NATS is away", func(t *testing.T) {
		refused(t, srv, dialOpts{host: a.Host, token: a.StaffToken}, 503, "unavailable")
	})
	p.natsSrv.Start(t)
	wsEventually(t, "the node and the test are back on NATS", func() bool { return nc.IsConnected() && p.nc.IsConnected() })

	after := connect(t, srv, dialOpts{host: a.Host, token: a.StaffToken})
	live := p.push(a.Schema, a.StaffID, "test.after", json.RawMessage(`{}`))
	marker := p.mark(a.Schema, a.StaffID)
	for name, c := range map[string]*wsClient{"the connection from before": before, "a new connection": after} {
		if got := notificationIDs(c.until(marker)); !slices.Equal(got, []int64{live}) {
			t.Errorf("%s received %v, want the live %d", name, got, live)
		}
	}
	if n := nc.NumSubscriptions(); n != 1 {
		t.Errorf("the node holds %d NATS subscriptions, want 1", n)
	}
}

// fanout publishes one event's notification to users, as the notifier
// does (one message on the tenant's subject), and returns their ids.
func (p *pushEnv) fanout(t *testing.T, schemaName string, users ...string) (events.PushFanout, []int64) {
	t.Helper()
	f := events.PushFanout{Type: events.PushFanoutType, EventID: uuid.NewString(), Kind: "test.fanout", Title: "to many",
		Data: json.RawMessage(`{"n":1}`), CreatedAt: time.Now().UTC().Truncate(time.Microsecond), Users: users}
	for range users {
		f.IDs = append(f.IDs, 1<<50+markerSeq.Add(1))
	}
	p.publishFanout(t, schemaName, f)
	return f, f.IDs
}

func (p *pushEnv) publishFanout(t *testing.T, schemaName string, f events.PushFanout) {
	t.Helper()
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.nc.Publish(events.PushTenantSubject(schemaName), b); err != nil {
		t.Fatal(err)
	}
	if err := p.nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestWebSocketNodeFansAnEventOutToTheRecipientsItHolds(t *testing.T) {
	t.Parallel()
	p := newPushEnv(t, api.PushConfig{})
	a, b := p.tenant("wsfan"), p.tenant("wsfanb")
	_, _, srv := p.hubNode(t, "push-node-fanout")
	staff := []*wsClient{connect(t, srv, dialOpts{host: a.Host, token: a.StaffToken}), connect(t, srv, dialOpts{host: a.Host, token: a.StaffToken})}
	plain := connect(t, srv, dialOpts{host: a.Host, token: a.UserToken})
	other := connect(t, srv, dialOpts{host: b.Host, token: b.StaffToken})

	t.Run("each recipient's connections get the notification with the recipient's id", func(t *testing.T) {
		// The plain user is not a recipient; a user of another node is.
		f, ids := p.fanout(t, a.Schema, "0190a7e4-0000-7000-8000-00000000000f", a.StaffID)
		mark := p.mark(a.Schema, a.StaffID)
		for i, c := range staff {
			got := c.until(mark)
			if len(got) != 1 || got[0].ID != ids[1] {
				t.Fatalf("staff connection %d received %v, want notification %d", i, notificationIDs(got), ids[1])
			}
			n := got[0]
			if n.Type != events.PushNotification || n.EventID != f.EventID || n.Kind != f.Kind || n.Title != f.Title ||
				string(n.Data) != `{"n":1}` || !n.CreatedAt.Equal(f.CreatedAt) {
				t.Errorf("staff connection %d received %+v, want the fan-out's fields %+v", i, n, f)
			}
		}
		if got := plain.until(p.mark(a.Schema, a.UserID)); len(got) != 0 {
			t.Errorf("the plain user, not a recipient, received %v", notificationIDs(got))
		}
	})

	t.Run("a fan-out stays in its tenant", func(t *testing.T) {
		p.fanout(t, a.Schema, b.StaffID)
		if got := other.until(p.mark(b.Schema, b.StaffID)); len(got) != 0 {
			t.Errorf("the other tenant's user received %v", notificationIDs(got))
		}
	})

	t.Run("a redelivered fan-out is not sent twice", func(t *testing.T) {
		f, ids := p.fanout(t, a.Schema, a.StaffID, a.UserID)
		p.publishFanout(t, a.Schema, f)
		if got := notificationIDs(plain.until(p.mark(a.Schema, a.UserID))); !slices.Equal(got, ids[1:]) {
			t.Errorf("received %v, want %v once", got, ids[1:])
		}
	})

	t.Run("a fan-out whose users and ids do not pair up is dropped", func(t *testing.T) {
		p.publishFanout(t, a.Schema, events.PushFanout{Type: events.PushFanoutType, EventID: uuid.NewString(), Kind: "test.bad",
			Title: "bad", Data: json.RawMessage(`{}`), CreatedAt: time.Now().UTC(), Users: []string{a.StaffID, a.UserID}, IDs: []int64{1 << 51}})
		if got := plain.until(p.mark(a.Schema, a.UserID)); len(got) != 0 {
			t.Errorf("received %v from a broken fan-out", notificationIDs(got))
		}
	})
}

package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/api"
	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/auth"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/pkg/testenv"
	"github.com/tenantworks/saas/workers/notifier"
)

// pushEnv is an env whose API is also a push node on the shared NATS
// server, served over a real HTTP server so that WebSockets can dial it.
type pushEnv struct {
	*env
	tb      *testing.T
	natsURL string
	natsSrv *testenv.NATSServer
	nc      *nats.Conn // the test's own: markers and observers
	js      jetstream.JetStream
	hub     *api.PushHub
	srv     *httptest.Server
	cfg     api.Config
	deps    api.Deps
}

func newPushEnv(t *testing.T, pc api.PushConfig) *pushEnv {
	t.Helper()
	ns := testenv.MustNATSServer(t)
	p := &pushEnv{tb: t, natsURL: ns.URL, natsSrv: ns}
	p.hub = api.NewPushHub(pc, p.natsConn("push-node"))
	p.env = newEnv(t, func(w *wiring) { w.Push = p.hub })
	p.cfg, p.deps = p.env.cfg, p.env.deps
	p.srv = p.serve(p.handler, p.hub)
	p.nc = p.natsConn("push-test")
	var err error
	if p.js, err = jetstream.New(p.nc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := events.EnsureStreams(ctx, p.js, events.StreamConfig{}); err != nil {
		t.Fatalf("%v (is NATS up? scripts/services.sh up)", err)
	}
	return p
}

func (p *pushEnv) natsConn(name string) *nats.Conn {
	p.tb.Helper()
	nc, err := events.Connect(p.natsURL, name)
	if err != nil {
		p.tb.Fatal(err)
	}
	p.tb.Cleanup(nc.Close)
	return nc
}

// serve runs h on a real HTTP server until the test ends; the hub is
// closed first, since httptest does not wait for hijacked connections.
func (p *pushEnv) serve(h http.Handler, hub *api.PushHub) *httptest.Server {
	srv := httptest.NewServer(h)
	p.tb.Cleanup(srv.Close)
	p.tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := hub.Close(ctx); err != nil {
			p.tb.Errorf("hub close: %v", err)
		}
	})
	return srv
}

// node starts another push node: the same API on its own hub, NATS
// connection and HTTP server.
func (p *pushEnv) node(pc api.PushConfig) (*api.PushHub, *httptest.Server) {
	hub := api.NewPushHub(pc, p.natsConn("push-node-2"))
	deps := p.deps
	deps.Push = hub
	return hub, p.serve(api.New(p.cfg, deps).Handler(), hub)
}

// startNotifier runs the notifier worker for these tenants on a durable
// consumer of the test's own, with its own NATS connection.
func (p *pushEnv) startNotifier(schemas ...string) {
	t := p.tb
	t.Helper()
	nc := p.natsConn("notifier")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	durable := "notifier_test_" + testenv.RandomName(10)
	cc := events.ConsumerConfig(durable)
	cc.FilterSubject = ""
	for _, s := range schemas {
		cc.FilterSubjects = append(cc.FilterSubjects, "tenant."+s+".product.*")
	}
	cc.InactiveThreshold = 5 * time.Minute
	n, err := notifier.New(notifier.Config{ConsumerConfig: &cc, Batch: 10},
		notifier.Deps{Store: p.db.DB, JS: js, NATS: nc, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = n.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer dcancel()
		_ = p.js.DeleteConsumer(dctx, events.StreamName, durable)
	})
}

// created publishes a product.created event as the relay does.
func (p *pushEnv) created(schemaName, name string) events.Envelope {
	t := p.tb
	t.Helper()
	prod := events.Product{ID: uuid.NewString(), SKU: "WS-" + testenv.RandomName(6), Name: name, Price: "3.00", Currency: "EUR",
		Version: 1, CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
	payload, _ := json.Marshal(prod)
	ev := events.Envelope{ID: uuid.Must(uuid.NewV7()).String(), Type: events.ProductCreated, Tenant: schemaName,
		AggregateID: prod.ID, Version: 1, OccurredAt: time.Now().UTC(), Payload: payload}
	b, _ := json.Marshal(ev)
	m := nats.NewMsg(events.Subject(schemaName, ev.Type))
	m.Data = b
	m.Header.Set(nats.MsgIdHdr, ev.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	return ev
}

var markerSeq atomic.Int64

// mark pushes a marker straight to a user's subject and returns its id:
// once a client receives it, everything pushed before it to that user,
// from any connection whose pushes the server had routed, came first.
func (p *pushEnv) mark(schemaName, userID string) int64 {
	return p.push(schemaName, userID, "test.marker", json.RawMessage(`{}`))
}

func (p *pushEnv) push(schemaName, userID, kind string, data json.RawMessage) int64 {
	t := p.tb
	t.Helper()
	id := 1<<50 + markerSeq.Add(1)
	b, _ := json.Marshal(events.Notification{Type: "notification", ID: id, EventID: uuid.NewString(), Kind: kind,
		Title: kind, Data: data, CreatedAt: time.Now().UTC()})
	if err := p.nc.Publish(events.PushSubject(schemaName, userID), b); err != nil {
		t.Fatal(err)
	}
	if err := p.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return id
}

// observer counts the pushes NATS carries to a user: those on the user's
// subject (markers) and the notifier's fan-outs that name the user.
type observer struct{ n atomic.Int64 }

func (p *pushEnv) observe(schemaName, userID string) *observer {
	t := p.tb
	t.Helper()
	o := &observer{}
	sub, err := p.nc.Subscribe(events.PushSubject(schemaName, userID), func(*nats.Msg) { o.n.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	fsub, err := p.nc.Subscribe(events.PushTenantSubject(schemaName), func(m *nats.Msg) {
		var f events.PushFanout
		if json.Unmarshal(m.Data, &f) == nil && slices.Contains(f.Users, userID) {
			o.n.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fsub.Unsubscribe() })
	if err := p.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return o
}

// waitPushes waits until the observer has seen n pushes (markers included).
func (o *observer) waitPushes(t *testing.T, n int64) {
	t.Helper()
	wsEventually(t, "the notifier pushed", func() bool { return o.n.Load() >= n })
}

func wsEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// via is where a client puts its token.
type via int

const (
	viaHeader via = iota
	viaSubprotocol
	viaPair
	viaQuery
)

// dialOpts describe one WebSocket dial.
type dialOpts struct {
	host, token string
	via         via
	since       string // "" for none
	client      *http.Client
}

func dialWS(t *testing.T, srv *httptest.Server, o dialOpts) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	q := url.Values{}
	opts := &websocket.DialOptions{Host: o.host, HTTPClient: o.client}
	switch o.via {
	case viaHeader:
		opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + o.token}}
	case viaSubprotocol:
		opts.Subprotocols = []string{"bearer." + o.token}
	case viaPair:
		opts.Subprotocols = []string{"bearer", o.token}
	case viaQuery:
		q.Set("token", o.token)
	}
	if o.since != "" {
		q.Set("since", o.since)
	}
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws/notifications/"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, u, opts)
	if conn != nil {
		conn.SetReadLimit(8 << 20)
		t.Cleanup(func() { _ = conn.CloseNow() })
	}
	return conn, resp, err
}

// wsClient reads every message of a connection in the background.
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
	msgs chan wsMsg
	done chan struct{}
	err  error // the read error that ended it, set before done closes
}

type wsMsg struct {
	raw []byte
	n   events.Notification
}

func read(t *testing.T, conn *websocket.Conn) *wsClient {
	c := &wsClient{t: t, conn: conn, msgs: make(chan wsMsg, 10000), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			_, b, err := conn.Read(context.Background())
			if err != nil {
				c.err = err
				return
			}
			var n events.Notification
			_ = json.Unmarshal(b, &n)
			c.msgs <- wsMsg{raw: b, n: n}
		}
	}()
	t.Cleanup(func() { _ = conn.CloseNow(); <-c.done })
	return c
}

// connect dials with o and starts reading; the dial must succeed.
func connect(t *testing.T, srv *httptest.Server, o dialOpts) *wsClient {
	t.Helper()
	conn, resp, err := dialWS(t, srv, o)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial: %v (status %d)", err, status)
	}
	return read(t, conn)
}

func (c *wsClient) next() wsMsg {
	c.t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-c.done:
		c.t.Fatalf("connection ended: %v", c.err)
	case <-time.After(20 * time.Second):
		c.t.Fatal("no message within 20 seconds")
	}
	return wsMsg{}
}

// until returns the notifications received before the marker.
func (c *wsClient) until(marker int64) []events.Notification {
	c.t.Helper()
	var out []events.Notification
	for {
		m := c.next()
		if m.n.ID == marker {
			return out
		}
		out = append(out, m.n)
	}
}

// closed waits for the connection to end and returns the read error.
func (c *wsClient) closed() error {
	c.t.Helper()
	select {
	case <-c.done:
		return c.err
	case <-time.After(20 * time.Second):
		c.t.Fatal("the connection was not closed within 20 seconds")
	}
	return nil
}

func notificationIDs(ns []events.Notification) []int64 {
	out := make([]int64, len(ns))
	for i, n := range ns {
		out[i] = n.ID
	}
	return out
}

// userNotificationIDs returns a user's notification ids, in id order.
func (p *pushEnv) userNotificationIDs(schemaName, userID string) []int64 {
	t := p.tb
	t.Helper()
	var ids []int64
	after := int64(0)
	for {
		page, err := p.db.DB.NotificationsAfter(context.Background(), schemaName, userID, after, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range page {
			ids = append(ids, n.ID)
			after = n.ID
		}
		if len(page) < 100 {
			return ids
		}
	}
}

func (p *pushEnv) deactivate(schemaName, userID string) {
	t := p.tb
	t.Helper()
	if _, err := p.db.DB.Pool.Exec(t.Context(), `UPDATE "`+schemaName+`".users SET is_active = false WHERE id = $1`, userID); err != nil {
		t.Fatal(err)
	}
	// What the admin API does after committing a deactivation.
	if err := cacheUsers(p.env).Store(t.Context(), schemaName, userID, userAuth(false, false)); err != nil {
		t.Fatal(err)
	}
}

func TestWebSocketUpgradesOnlyWithAValidTokenOfTheTenant(t *testing.T) {
	t.Parallel()
	p := newPushEnv(t, api.PushConfig{})
	a, b := p.tenant("wsauth"), p.tenant("wsauthb")
	sign := func(exp time.Time) string {
		c := auth.Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "saas", Subject: a.StaffID,
			Audience: jwt.ClaimStrings{a.Schema}, ExpiresAt: jwt.NewNumericDate(exp)}, Tenant: a.Schema}
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(testSecret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	deactivated, _, _ := p.tokens.Issue(a.Schema, a.UserID, false)
	p.deactivate(a.Schema, a.UserID)

	refused := map[string]dialOpts{
		"no token":                     {host: a.Host, via: viaHeader},
		"a garbage token":              {host: a.Host, token: "not.a.token"},
		"an expired token":             {host: a.Host, token: sign(time.Now().Add(-time.Minute))},
		"another tenant's token":       {host: a.Host, token: b.StaffToken},
		"a deactivated user's token":   {host: a.Host, token: deactivated},
		"a bad token as subprotocol":   {host: a.Host, token: "not.a.token", via: viaSubprotocol},
		"another tenant's token in ?":  {host: a.Host, token: b.StaffToken, via: viaQuery},
		"a token for the other tenant": {host: b.Host, token: a.StaffToken, via: viaPair},
	}
	for name, o := range refused {
		t.Run(name+" is 401 before the upgrade", func(t *testing.T) {
			conn, resp, err := dialWS(t, p.srv, o)
			if err == nil {
				conn.CloseNow()
				t.Fatal("upgraded")
			}
			if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("dial error %v, response %+v, want 401", err, resp)
			}
			var body struct {
				Error struct{ Code string } `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error.Code != "unauthorized" {
				t.Errorf("body: %+v, %v; want a JSON unauthorized error", body, err)
			}
		})
	}

	t.Run("a Basic Authorization header is not replaced by ?token=", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		u := "ws" + strings.TrimPrefix(p.srv.URL, "http") + "/ws/notifications/?token=" + url.QueryEscape(a.StaffToken)
		_, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{Host: a.Host, HTTPHeader: http.Header{"Authorization": {"Basic eDp5"}}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("= %v %+v, want 401", err, resp)
		}
	})

	t.Run("?token= is not accepted outside a WebSocket upgrade", func(t *testing.T) {
		for _, path := range []string{"/ws/notifications/?token=", "/api/catalog/products/?token="} {
			if r := p.do(req{method: "GET", host: a.Host, path: path + url.QueryEscape(a.StaffToken)}); r.Code != http.StatusUnauthorized {
				t.Errorf("GET %s<token> = %d %s, want 401", path, r.Code, r.Raw)
			}
		}
	})

	t.Run("a valid token without an upgrade is 426", func(t *testing.T) {
		if r := p.do(req{method: "GET", host: a.Host, path: "/ws/notifications/", token: a.StaffToken}); r.Code != http.StatusUpgradeRequired {
			t.Errorf("= %d %s, want 426", r.Code, r.Raw)
		}
	})

	t.Run("a since that is not an id is 422 before the upgrade", func(t *testing.T) {
		for _, since := range []string{"abc", "-1", "1.5", "99999999999999999999"} {
			_, resp, err := dialWS(t, p.srv, dialOpts{host: a.Host, token: a.StaffToken, since: since})
			if err == nil || resp == nil || resp.StatusCode != http.StatusUnprocessableEntity {
				t.Errorf("since=%s: %v %+v, want 422", since, err, resp)
			}
		}
	})

	t.Run("the public domain and unknown hosts are 404", func(t *testing.T) {
		for _, host := range []string{publicDomain, "nobody.example.test"} {
			_, resp, err := dialWS(t, p.srv, dialOpts{host: host, token: a.StaffToken})
			if err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
				t.Errorf("host %s: %v %+v, want 404", host, err, resp)
			}
		}
	})

	for name, v := range map[string]via{"header": viaHeader, "subprotocol bearer.<token>": viaSubprotocol,
		"subprotocol pair bearer, <token>": viaPair, "?token=": viaQuery} {
		t.Run("a token in the "+name+" is accepted", func(t *testing.T) {
			c := connect(t, p.srv, dialOpts{host: a.Host, token: a.StaffToken, via: v})
			switch v {
			case viaSubprotocol:
				if c.conn.Subprotocol() != "bearer."+a.StaffToken {
					t.Errorf("negotiated subprotocol %q", c.conn.Subprotocol())
				}
			case viaPair:
				if c.conn.Subprotocol() != "bearer" {
					t.Errorf("negotiated subprotocol %q, want bearer", c.conn.Subprotocol())
				}
			}
			m := p.mark(a.Schema, a.StaffID)
			if got := c.until(m); len(got) != 0 {
				t.Errorf("received %v before the marker", got)
			}
		})
	}
}

func TestWebSocketDeliversEachNotificationToItsUserOnly(t *testing.T) {
	t.Parallel()
	p := newPushEnv(t, api.PushConfig{})
	a, b := p.tenant("wslive"), p.tenant("wsliveb")
	staff := connect(t, p.srv, dialOpts{host: a.Host, token: a.StaffToken})
	plain := connect(t, p.srv, dialOpts{host: a.Host, token: a.UserToken, via: viaQuery})
	otherStaff := connect(t, p.srv, dialOpts{host: b.Host, token: b.StaffToken, via: viaSubprotocol})
	seen := p.observe(a.Schema, a.StaffID)
	p.startNotifier(a.Schema, b.Schema)

	var evs []events.Envelope
	for _, name := range []string{"Red mug", "Blue mug", "Green mug"} {
		evs = append(evs, p.created(a.Schema, name))
	}
	seen.waitPushes(t, 3)
	got := staff.until(p.mark(a.Schema, a.StaffID))
	if len(got) != 3 {
		t.Fatalf("staff received %d notifications, want exactly 3: %+v", len(got), got)
	}
	dbIDs := p.userNotificationIDs(a.Schema, a.StaffID)
	ids := notificationIDs(got)
	slices.Sort(ids)
	if !slices.Equal(ids, dbIDs) {
		t.Errorf("received ids %v, want the staff user's notifications %v", ids, dbIDs)
	}
	byEvent := map[string]events.Notification{}
	for _, n := range got {
		byEvent[n.EventID] = n
	}
	for _, ev := range evs {
		n, ok := byEvent[ev.ID]
		var prod events.Product
		_ = json.Unmarshal(ev.Payload, &prod)
		if !ok || n.Kind != "product.created" || n.Title != "New product: "+prod.Name {
			t.Errorf("event %s: notification %+v (found %v)", ev.ID, n, ok)
		}
	}

	t.Run("the message has the documented shape", func(t *testing.T) {
		evs = append(evs, p.created(a.Schema, "Shape"))
		seen.waitPushes(t, 5) // 3, the marker, this one
		m := staff.next()
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(m.raw, &raw); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for k := range raw {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if want := []string{"created_at", "data", "event_id", "id", "kind", "title", "type"}; !slices.Equal(keys, want) {
			t.Errorf("keys %v, want %v", keys, want)
		}
		var shape struct {
			Type      string         `json:"type"`
			ID        int64          `json:"id"`
			EventID   string         `json:"event_id"`
			Kind      string         `json:"kind"`
			Title     string         `json:"title"`
			Data      map[string]any `json:"data"`
			CreatedAt string         `json:"created_at"`
		}
		if err := json.Unmarshal(m.raw, &shape); err != nil {
			t.Fatal(err)
		}
		ts, err := time.Parse(time.RFC3339Nano, shape.CreatedAt)
		var prod events.Product
		_ = json.Unmarshal(evs[3].Payload, &prod)
		if shape.Type != "notification" || shape.ID <= 0 || shape.EventID != evs[3].ID || shape.Kind != "product.created" ||
			shape.Title != "New product: Shape" || err != nil || !strings.HasSuffix(shape.CreatedAt, "Z") || ts.IsZero() ||
			shape.Data["product_id"] != prod.ID || shape.Data["sku"] != prod.SKU || shape.Data["name"] != "Shape" ||
			shape.Data["price"] != "3.00" || shape.Data["currency"] != "EUR" {
			t.Errorf("message %s", m.raw)
		}
	})

	t.Run("a plain user and another tenant's staff receive nothing", func(t *testing.T) {
		if got := plain.until(p.mark(a.Schema, a.UserID)); len(got) != 0 {
			t.Errorf("the plain user received %+v", got)
		}
		if got := otherStaff.until(p.mark(b.Schema, b.StaffID)); len(got) != 0 {
			t.Errorf("the other tenant's staff received %+v", got)
		}
	})
}

func TestWebSocketSinceSendsWhatWasMissedThenLiveWithoutDuplicates(t *testing.T) {
	t.Parallel()
	p := newPushEnv(t, api.PushConfig{})
	a := p.tenant("wssince")
	seen := p.observe(a.Schema, a.StaffID)
	p.startNotifier(a.Schema)

	first := connect(t, p.srv, dialOpts{host: a.Host, token: a.StaffToken})
	p.created(a.Schema, "One")
	seen.waitPushes(t, 1)
	n1 := first.next().n
	_ = first.conn.Close(websocket.StatusNormalClosure, "")

	// Missed while away: the pushes go nowhere, the rows stay.
	p.created(a.Schema, "Two")
	p.created(a.Schema, "Three")
	seen.waitPushes(t, 3)
	missed := p.userNotificationIDs(a.Schema, a.StaffID)[1:]

	again := connect(t, p.srv, dialOpts{host: a.Host, token: a.StaffToken, since: jsonInt(n1.ID)})
	if got := notificationIDs([]events.Notification{again.next().n, again.next().n}); !slices.Equal(got, missed) {
		t.Fatalf("after reconnecting received %v, want the missed %v in id order", got, missed)
	}
	p.created(a.Schema, "Four")
	seen.waitPushes(t, 4)
	rest := again.until(p.mark(a.Schema, a.StaffID))
	all := p.userNotificationIDs(a.Schema, a.StaffID)
	if got := notificationIDs(rest); !slices.Equal(got, all[3:]) {
		t.Errorf("then received %v, want only the live %v", got, all[3:])
	}

	t.Run("no gap and no duplicate when events keep coming during the catch-up", func(t *testing.T) {
		before := int64(len(all)) + 1 // the marker
		since := all[len(all)-1]
		const burst = 30
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range burst {
				p.created(a.Schema, "Burst "+jsonInt(int64(i)))
			}
		}()
		// Connect somewhere in the middle of the burst.
		seen.waitPushes(t, before+burst/3)
		c := connect(t, p.srv, dialOpts{host: a.Host, token: a.StaffToken, since: jsonInt(since)})
		wg.Wait()
		seen.waitPushes(t, before+burst)
		got := notificationIDs(c.until(p.mark(a.Schema, a.StaffID)))
		want := p.userNotificationIDs(a.Schema, a.StaffID)[len(all):]
		sortedGot := slices.Clone(got)
		slices.Sort(sortedGot)
		if !slices.Equal(sortedGot, want) || len(slices.Compact(slices.Clone(sortedGot))) != len(got) {
			t.Errorf("received %v, want each of %v exactly once", got, want)
		}
	})
}

// TestWebSocketCatchesUpWhenNATSComesBack: notifications written while the
// push node's NATS connection was down were pushed nowhere; the node reads
// them from the database for its open connections once it reconnects.
func TestWebSocketCatchesUpWhenNATSComesBack(t *testing.T) {
	t.Parallel()
	p := newPushEnv(t, api.PushConfig{})
	a := p.tenant("wsresync")
	nc := p.natsConn("push-node-resync")
	hub := api.NewPushHub(api.PushConfig{}, nc)
	hub.ResyncOnReconnect(nc)
	deps := p.deps
	deps.Push = hub
	srv := p.serve(api.New(p.cfg, deps).Handler(), hub)
	notify := func() int64 {
		t.Helper()
		rows, err := p.db.DB.NotifyActiveStaff(context.Background(), a.Schema, postgres.EventNotification{
			EventID: uuid.NewString(), Kind: events.ProductCreated, Title: "written while NATS was away", Data: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r.UserID == a.StaffID {
				return r.ID
			}
		}
		t.Fatal("no notification for the staff user")
		return 0
	}

	first := notify()
	c := connect(t, srv, dialOpts{host: a.Host, token: a.StaffToken, since: "0"})
	if got := c.next().n.ID; got != first {
		t.Fatalf("catch-up sent %d, want %d", got, first)
	}
	p.natsSrv.Stop()
	missed := []int64{notify(), notify()}
	p.natsSrv.Start(t)
	if got := notificationIDs([]events.Notification{c.next().n, c.next().n}); !slices.Equal(got, missed) {
		t.Fatalf("after NATS came back received %v, want %v", got, missed)
	}

	// Another resync sends only what is new: nothing twice.
	later := notify()
	hub.Resync()
	if got := c.next().n.ID; got != later {
		t.Fatalf("next received %d, want only the new %d", got, later)
	}
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestWebSocketSinceRevealsNothingOfOtherUsers(t *testing.T) {
	t.Parallel()
	p := newPushEnv(t, api.PushConfig{})
	a := p.tenant("wsspy")
	ctx := context.Background()
	staffRows, err := p.db.DB.NotifyActiveStaff(ctx, a.Schema, postgres.EventNotification{
		EventID: uuid.NewString(), Kind: "product.created", Title: "for staff only", Data: json.RawMessage(`{}`)})
	if err != nil || len(staffRows) != 1 {
		t.Fatalf("%d rows, %v", len(staffRows), err)
	}
	var own int64
	if err := p.db.DB.Pool.QueryRow(ctx, `INSERT INTO "`+a.Schema+`".notifications (event_id, user_id, kind, title)
		VALUES ($1, $2, 'product.created', 'mine') RETURNING id`, uuid.NewString(), a.UserID).Scan(&own); err != nil {
		t.Fatal(err)
	}
	for _, since := range []int64{0, staffRows[0].ID - 1, staffRows[0].ID} {
		c := connect(t, p.srv, dialOpts{host: a.Host, token: a.UserToken, since: jsonInt(since)})
		got := c.until(p.mark(a.Schema, a.UserID))
		if ids := notificationIDs(got); !slices.Equal(ids, []int64{own}) {
			t.Errorf("since=%d: the plain user received %v, want only their own [%d]", since, ids, own)
		}
	}
}

func TestWebSocketReachesTheUserOnWhicheverNode(t *testing.T) {
	t.Parallel()
	p := newPushEnv(t, api.PushConfig{})
	a := p.tenant("wsnodes")
	hubB, nodeB := p.node(api.PushConfig{})
	onB := connect(t, nodeB, dialOpts{host: a.Host, token: a.StaffToken})
	onA := connect(t, p.srv, dialOpts{host: a.Host, token: a.StaffToken})
	if hubB.Connections() != 1 || p.hub.Connections() != 1 {
		t.Fatalf("connections: node A %d, node B %d", p.hub.Connections(), hubB.Connections())
	}
	seen := p.observe(a.Schema, a.StaffID)
	p.startNotifier(a.Schema) // a process of its own: its own NATS connection
	ev := p.created(a.Schema, "Everywhere")
	seen.waitPushes(t, 1)
	marker := p.mark(a.Schema, a.StaffID)
	for name, c := range map[string]*wsClient{"node B": onB, "node A": onA} {
		got := c.until(marker)
		if len(got) != 1 || got[0].EventID != ev.ID {
			t.Errorf("%s received %+v, want the one notification of event %s", name, got, ev.ID)
		}
	}
}

func TestWebSocketCutsOffASlowClientOnly(t *testing.T) {
	t.Parallel()
	p := newPushEnv(t, api.PushConfig{QueueSize: 1})
	a := p.tenant("wsslow")
	// The slow client's socket takes little, so the node's writes to it
	// block soon and its queue fills.
	slowConn, resp, err := dialWS(t, p.srv, dialOpts{host: a.Host, token: a.UserToken, client: smallReceiveBufferClient()})
	if err != nil {
		t.Fatalf("dial: %v %+v", err, resp)
	}
	fast := connect(t, p.srv, dialOpts{host: a.Host, token: a.StaffToken})

	big := json.RawMessage(`{"blob":"` + strings.Repeat("x", 256<<10) + `"}`)
	for range 48 { // 12 MiB: more than the socket buffers hold
		p.push(a.Schema, a.UserID, "test.big", big)
	}
	if got := fast.until(p.mark(a.Schema, a.StaffID)); len(got) != 0 {
		t.Errorf("the other client received %v", got)
	}
	slow := read(t, slowConn) // start reading: the node can finish its write and close
	err = slow.closed()
	if websocket.CloseStatus(err) != api.StatusTooSlow {
		t.Fatalf("slow client ended with %v, want close status %d", err, api.StatusTooSlow)
	}
	if got := fast.until(p.mark(a.Schema, a.StaffID)); len(got) != 0 {
		t.Errorf("the other client received %v", got)
	}
	wsEventually(t, "the slow connection is released", func() bool { return p.hub.Connections() == 1 })
}

func TestWebSocketDropsAClientThatDoesNotAnswerPings(t *testing.T) {
	t.Parallel()
	p := newPushEnv(t, api.PushConfig{PingInterval: 100 * time.Millisecond})
	a := p.tenant("wsping")
	answering := connect(t, p.srv, dialOpts{host: a.Host, token: a.StaffToken})
	silent, _, err := dialWS(t, p.srv, dialOpts{host: a.Host, token: a.UserToken}) // never reads, so never answers
	if err != nil {
		t.Fatal(err)
	}
	wsEventually(t, "the silent client is dropped", func() bool { return p.hub.Connections() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := silent.Read(ctx); err == nil || ctx.Err() != nil {
		t.Errorf("silent client read = %v, want the connection gone", err)
	}
	if got := answering.until(p.mark(a.Schema, a.StaffID)); len(got) != 0 {
		t.Errorf("the answering client received %v", got)
	}

	t.Run("a user deactivated while connected is disconnected", func(t *testing.T) {
		p.deactivate(a.Schema, a.StaffID)
		if err := answering.closed(); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Errorf("ended with %v, want policy violation", err)
		}
	})
}

func TestWebSocketDrainClosesWithGoingAway(t *testing.T) {
	t.Parallel()
	p := newPushEnv(t, api.PushConfig{})
	a := p.tenant("wsdrain")
	c := connect(t, p.srv, dialOpts{host: a.Host, token: a.StaffToken, since: "0"})
	p.hub.Drain()
	if err := c.closed(); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("ended with %v, want going away", err)
	}
	_, resp, err := dialWS(t, p.srv, dialOpts{host: a.Host, token: a.StaffToken})
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("dial while draining: %v %+v, want 503", err, resp)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.hub.Close(ctx); err != nil || p.hub.Connections() != 0 {
		t.Fatalf("close: %v, %d connections left", err, p.hub.Connections())
	}
}

func TestPushNodeServesOnlyTheWebSocketAndHealth(t *testing.T) {
	t.Parallel()
	p := newPushEnv(t, api.PushConfig{})
	a := p.tenant("wsnode")
	push := api.NewPush(p.cfg, p.deps).Handler()
	do := func(host, path, token string) int {
		r := httptest.NewRequest("GET", path, nil)
		r.Host = host
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		push.ServeHTTP(w, r)
		return w.Code
	}
	for _, tc := range []struct {
		host, path string
		want       int
	}{
		{publicDomain, "/health/", http.StatusOK},
		{publicDomain, "/ready", http.StatusOK},
		{publicDomain, "/metrics", http.StatusNotFound}, // on METRICS_ADDR only
		{a.Host, "/api/catalog/products/", http.StatusNotFound},
		{a.Host, "/api/notifications/", http.StatusNotFound},
		{a.Host, "/ws/notifications/", http.StatusUpgradeRequired}, // routed: a plain GET is not an upgrade
	} {
		if got := do(tc.host, tc.path, a.StaffToken); got != tc.want {
			t.Errorf("GET %s%s = %d, want %d", tc.host, tc.path, got, tc.want)
		}
	}
}

func TestWebSocketOfASuspendedTenantClosesWith4003(t *testing.T) {
	t.Parallel()
	p := newPushEnv(t, api.PushConfig{})
	a, b := p.tenant("wssusp"), p.tenant("wssuspother")
	// As cmd/saas wires it over NATS: a suspension reaches the resolver and
	// the push node.
	resolver := p.deps.Tenants.(*tenancy.Resolver)
	p.mgr.OnChange(func(context.Context) { resolver.Purge() })
	p.mgr.OnSuspend(func(_ context.Context, schemaName string) { p.hub.CloseTenant(schemaName) })
	suspended := connect(t, p.srv, dialOpts{host: a.Host, token: a.StaffToken, since: "0"})
	other := connect(t, p.srv, dialOpts{host: b.Host, token: b.StaffToken, since: "0"})
	if _, err := p.mgr.Suspend(t.Context(), a.Schema); err != nil {
		t.Fatal(err)
	}
	if err := suspended.closed(); websocket.CloseStatus(err) != api.StatusTenantSuspended {
		t.Fatalf("ended with %v, want close status %d", err, api.StatusTenantSuspended)
	}
	_, resp, err := dialWS(t, p.srv, dialOpts{host: a.Host, token: a.StaffToken})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("dial of a suspended tenant: %v %+v, want 403", err, resp)
	}
	if got := other.until(p.mark(b.Schema, b.StaffID)); len(got) != 0 {
		t.Errorf("the other tenant's client received %v before its mark", got)
	}
}

package notifier_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/testenv"
	"github.com/tenantworks/saas/workers/notifier"
	"github.com/tenantworks/saas/workers/runner"
)

// world is a world of the test's own (a fresh database, a private NATS
// server) with two tenants. Tenant A has two active staff users, an
// inactive staff user and a plain user; tenant B has one staff user.
type world struct {
	*testenv.World
	t        *testing.T
	a, b     string // schemas
	staff    []string
	inactive string
	plain    string
	staffB   string
	durable  string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	// A private server: test events never reach the shared stream.
	w := &world{World: testenv.MustWorld(t, testenv.WithNATS()), t: t}
	w.a = w.tenant("nta")
	w.b = w.tenant("ntb")
	w.staff = []string{w.user(w.a, "staff1@a.test", true), w.user(w.a, "staff2@a.test", true)}
	w.inactive = w.user(w.a, "gone@a.test", true)
	off := false
	if _, err := w.DB.UpdateUser(context.Background(), w.a, w.inactive, postgres.UserPatch{IsActive: &off}); err != nil {
		t.Fatal(err)
	}
	w.plain = w.user(w.a, "plain@a.test", false)
	w.staffB = w.user(w.b, "staff@b.test", true)
	return w
}

// tenant creates a tenant named prefix and random letters.
func (w *world) tenant(prefix string) string {
	w.t.Helper()
	name := prefix + "_" + testenv.RandomName(8)
	w.MustTenant(w.t, name)
	return name
}

func (w *world) user(schemaName, email string, staff bool) string {
	w.t.Helper()
	u, err := w.DB.CreateUser(context.Background(), schemaName, postgres.NewUser{Email: email, PasswordHash: "x", IsStaff: staff})
	if err != nil {
		w.t.Fatal(err)
	}
	return u.ID
}

// notifier returns a notifier on a durable consumer of this test's own,
// filtered to its two tenants (the NATS server is shared), not started.
func (w *world) notifier(store notifier.Store) *notifier.Notifier {
	w.t.Helper()
	durable := "notifier_test_" + testenv.RandomName(10)
	w.durable = durable
	cc := events.ConsumerConfig(durable)
	cc.FilterSubject = ""
	cc.FilterSubjects = []string{"tenant." + w.a + ".product.*", "tenant." + w.b + ".product.*"}
	cc.InactiveThreshold = 5 * time.Minute // a consumer left by a killed test goes away
	w.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = w.JS.DeleteConsumer(ctx, events.StreamName, durable)
	})
	n, err := notifier.New(notifier.Config{ConsumerConfig: &cc, Batch: 10},
		notifier.Deps{Store: store, JS: w.JS, NATS: w.Conn, Log: w.Log})
	if err != nil {
		w.t.Fatal(err)
	}
	return n
}

// start runs a notifier until the test ends.
func (w *world) start() {
	w.t.Helper()
	n := w.notifier(w.DB)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := n.Run(ctx); err != nil {
			w.t.Errorf("notifier: %v", err)
		}
	}()
	w.t.Cleanup(func() { cancel(); wg.Wait() })
}

func productCreated(schemaName, name string) events.Envelope {
	p := events.Product{ID: uuid.NewString(), SKU: "SKU-" + testenv.RandomName(6), Name: name, Price: "12.50",
		Currency: "EUR", Version: 1, CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
	payload, _ := json.Marshal(p)
	return events.Envelope{ID: uuid.Must(uuid.NewV7()).String(), Type: events.ProductCreated, Tenant: schemaName,
		AggregateID: p.ID, Version: 1, OccurredAt: time.Now().UTC(), Payload: payload}
}

// publish puts ev on the stream as the relay does; msgID is the
// deduplication id (the event id, or another one to deliver it again).
func (w *world) publish(ev events.Envelope, msgID string) {
	w.t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		w.t.Fatal(err)
	}
	m := nats.NewMsg(events.Subject(ev.Tenant, ev.Type))
	m.Data = b
	m.Header.Set(nats.MsgIdHdr, msgID)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := w.JS.PublishMsg(ctx, m); err != nil {
		w.t.Fatal(err)
	}
}

// pushes subscribes to every push of a tenant.
func (w *world) pushes(schemaName string) chan *nats.Msg {
	w.t.Helper()
	ch := make(chan *nats.Msg, 100)
	sub, err := w.Conn.ChanSubscribe(events.PushTenantSubject(schemaName), ch)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := w.Conn.Flush(); err != nil {
		w.t.Fatal(err)
	}
	return ch
}

type row struct {
	ID      int64
	UserID  string
	Kind    string
	Title   string
	Data    map[string]any
	EventID string
}

func (w *world) rows(schemaName, eventID string) []row {
	w.t.Helper()
	ctx := context.Background()
	var out []row
	err := w.DB.InTenant(ctx, schemaName, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, user_id, kind, title, data, event_id FROM notifications WHERE event_id::text = $1 OR $1 = '' ORDER BY id`, eventID)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
			var x row
			err := r.Scan(&x.ID, &x.UserID, &x.Kind, &x.Title, &x.Data, &x.EventID)
			return x, err
		})
		return err
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

// eventually polls cond until it holds or 20 seconds pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// receive takes n notifications from the fan-out messages of ch, failing
// after 20 seconds, and checks that each went to its user.
func receive(t *testing.T, ch chan *nats.Msg, n int, userOf func(id int64) string) []events.Notification {
	t.Helper()
	var out []events.Notification
	timeout := time.After(20 * time.Second)
	for len(out) < n {
		select {
		case m := <-ch:
			for i, p := range fanout(t, m) {
				var f events.PushFanout
				_ = json.Unmarshal(m.Data, &f)
				if userOf != nil && f.Users[i] != userOf(p.ID) {
					t.Errorf("notification %d pushed to %s, not to its user %s", p.ID, f.Users[i], userOf(p.ID))
				}
				out = append(out, p)
			}
		case <-timeout:
			t.Fatalf("received %d pushes, want %d", len(out), n)
		}
	}
	return out
}

// fanout decodes a push message into its recipients' notifications.
func fanout(t *testing.T, m *nats.Msg) []events.Notification {
	t.Helper()
	var f events.PushFanout
	if err := json.Unmarshal(m.Data, &f); err != nil {
		t.Fatalf("push %s is not a fan-out: %v", m.Data, err)
	}
	if err := f.Check(); err != nil {
		t.Fatalf("push %s: %v", m.Data, err)
	}
	out := make([]events.Notification, len(f.Users))
	for i := range f.Users {
		out[i] = f.Notification(i)
	}
	return out
}

func userIDs(rs []row) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.UserID)
	}
	slices.Sort(out)
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestProductCreatedNotifiesEveryActiveStaffUserOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	pushA, pushB := w.pushes(w.a), w.pushes(w.b)
	w.start()

	ev := productCreated(w.a, "Desk lamp")
	updated := productCreated(w.a, "Desk lamp")
	updated.Type = events.ProductUpdated
	w.publish(ev, ev.ID)
	w.publish(updated, updated.ID)

	eventually(t, "both staff users have their notification", func() bool { return len(w.rows(w.a, ev.ID)) == 2 })
	rows := w.rows(w.a, ev.ID)
	if got, want := userIDs(rows), sorted(w.staff); !slices.Equal(got, want) {
		t.Fatalf("notified users = %v, want the active staff %v (not the inactive %s nor the plain %s)", got, want, w.inactive, w.plain)
	}
	var p events.Product
	_ = json.Unmarshal(ev.Payload, &p)
	for _, r := range rows {
		wantData := map[string]any{"product_id": p.ID, "sku": p.SKU, "name": "Desk lamp", "price": "12.50", "currency": "EUR"}
		if r.Kind != "product.created" || r.Title != "New product: Desk lamp" || !mapsEqual(r.Data, wantData) {
			t.Errorf("row = %+v, want kind product.created, title %q, data %v", r, "New product: Desk lamp", wantData)
		}
	}

	owner := map[int64]string{}
	for _, r := range rows {
		owner[r.ID] = r.UserID
	}
	userOf := func(id int64) string { return owner[id] }
	got := receive(t, pushA, 2, userOf)
	byID := map[int64]events.Notification{}
	for _, n := range got {
		byID[n.ID] = n
	}
	for _, r := range rows {
		n, ok := byID[r.ID]
		if !ok || n.Type != "notification" || n.EventID != ev.ID || n.Kind != "product.created" || n.Title != r.Title || n.CreatedAt.Location() != time.UTC {
			t.Errorf("push of row %d = %+v (found %v)", r.ID, n, ok)
		}
	}

	t.Run("a redelivered event adds no row and is pushed again", func(t *testing.T) {
		w.publish(ev, "again-"+ev.ID) // another message id: the stream keeps it
		again := receive(t, pushA, 2, userOf)
		ids := func(ns []events.Notification) []int64 {
			var out []int64
			for _, n := range ns {
				out = append(out, n.ID)
			}
			slices.Sort(out)
			return out
		}
		if !slices.Equal(ids(again), ids(got)) {
			t.Errorf("pushed again %v, want the same notifications %v", ids(again), ids(got))
		}
		if n := len(w.rows(w.a, ev.ID)); n != 2 {
			t.Errorf("rows after redelivery = %d, want 2", n)
		}
	})

	t.Run("other events and other tenants get nothing", func(t *testing.T) {
		if n := len(w.rows(w.a, updated.ID)); n != 0 {
			t.Errorf("product.updated wrote %d rows", n)
		}
		if n := len(w.rows(w.a, "")); n != 2 {
			t.Errorf("tenant A has %d notifications, want 2", n)
		}
		if n := len(w.rows(w.b, "")); n != 0 {
			t.Errorf("tenant B has %d notifications, want 0", n)
		}
		if len(pushB) != 0 {
			t.Errorf("tenant B received %d pushes", len(pushB))
		}
	})
}

func mapsEqual(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// A delivery that crashed after its insert and before its push left rows
// and pushed nothing: the next delivery pushes them.
func TestRowsOfAnEarlierDeliveryArePushed(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	pushA := w.pushes(w.a)
	ev := productCreated(w.a, "Chair")
	written, err := w.DB.NotifyActiveStaff(context.Background(), w.a, postgres.EventNotification{
		EventID: ev.ID, Kind: events.ProductCreated, Title: "New product: Chair", Data: json.RawMessage(`{}`)})
	if err != nil || len(written) != 2 {
		t.Fatalf("first delivery's insert = %d rows, %v", len(written), err)
	}
	w.start()
	w.publish(ev, ev.ID)
	got := receive(t, pushA, 2, nil)
	want := []int64{written[0].ID, written[1].ID}
	ids := []int64{got[0].ID, got[1].ID}
	slices.Sort(ids)
	if !slices.Equal(ids, want) {
		t.Fatalf("pushed %v, want the rows written before %v", ids, want)
	}
	if n := len(w.rows(w.a, ev.ID)); n != 2 {
		t.Errorf("rows = %d, want 2", n)
	}
}

func TestUndecodableEventGoesToTheDeadLetterStream(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start()
	bad := productCreated(w.a, "Broken")
	bad.Payload = json.RawMessage(`"not a product"`)
	w.publish(bad, bad.ID)
	dlq, err := w.JS.Stream(context.Background(), events.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	subject := "dlq." + w.durable + "." + events.Subject(w.a, events.ProductCreated)
	eventually(t, "the event is dead-lettered", func() bool {
		m, err := dlq.GetLastMsgForSubject(context.Background(), subject)
		return err == nil && strings.Contains(m.Header.Get(events.HeaderError), "decode product payload")
	})
	if n := len(w.rows(w.a, "")); n != 0 {
		t.Errorf("%d rows written for an undecodable event", n)
	}
}

func TestHandleMapsOutcomes(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	n := w.notifier(w.DB)

	// A tenant deleted after its event was written.
	dropped := w.tenant("ntgone")
	if err := w.Manager.Delete(context.Background(), dropped); err != nil {
		t.Fatal(err)
	}
	// A database that does not answer: nothing listens on port 1.
	pool, err := pgxpool.New(context.Background(), "postgres://saas:saas@127.0.0.1:1/saas?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	down := w.notifier(&postgres.DB{Pool: pool})

	badPayload := productCreated(w.a, "x")
	badPayload.Payload = json.RawMessage(`[1, 2]`)
	badID := productCreated(w.a, "x")
	badID.ID = "not-a-uuid"
	other := productCreated(w.a, "x")
	other.Type = events.ProductDeleted

	tests := []struct {
		name      string
		n         *notifier.Notifier
		ev        events.Envelope
		ok        bool // acked
		permanent bool
		code      string
	}{
		{"an event of another type is acked and ignored", n, other, true, false, ""},
		{"an event of a tenant whose schema is gone is acked and dropped", n, productCreated(dropped, "x"), true, false, ""},
		{"an undecodable payload is permanent", n, badPayload, false, true, ""},
		{"an event id that is not a UUID is permanent", n, badID, false, true, ""},
		{"a database that is down is retryable", down, productCreated(w.a, "x"), false, false, domain.EUNAVAILABLE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			errs := tt.n.Handle(ctx, []events.Envelope{tt.ev})
			err := errs[0]
			if tt.ok {
				if err != nil {
					t.Fatalf("error %v, want nil (ack)", err)
				}
				return
			}
			if err == nil {
				t.Fatal("nil error, want a failure")
			}
			if runner.IsPermanent(err) != tt.permanent {
				t.Errorf("permanent = %v, want %v (%v)", runner.IsPermanent(err), tt.permanent, err)
			}
			if tt.code != "" && domain.ErrorCode(err) != tt.code {
				t.Errorf("code = %s, want %s (%v)", domain.ErrorCode(err), tt.code, err)
			}
		})
	}
	if n := len(w.rows(w.a, "")); n != 0 {
		t.Errorf("%d rows written by failing events", n)
	}
}

func TestNewNamesTheMissingDependency(t *testing.T) {
	t.Parallel()
	store, js, nc := &postgres.DB{}, struct{ jetstream.JetStream }{}, &nats.Conn{} // never called
	tests := []struct {
		name    string
		deps    notifier.Deps
		missing string // "" when New must succeed
	}{
		{"no store is refused", notifier.Deps{JS: js, NATS: nc}, "Deps.Store"},
		{"no stream is refused", notifier.Deps{Store: store, NATS: nc}, "Deps.JS"},
		{"no NATS connection is refused", notifier.Deps{Store: store, JS: js}, "Deps.NATS"},
		{"no logger takes the default", notifier.Deps{Store: store, JS: js, NATS: nc}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := notifier.New(notifier.Config{}, tt.deps)
			if tt.missing == "" {
				if err != nil || n == nil {
					t.Fatalf("error %v, want none", err)
				}
				return
			}
			if !errors.Is(err, notifier.ErrMissingDependency) || !strings.Contains(err.Error(), tt.missing) || n != nil {
				t.Fatalf("New = %v, %v; want ErrMissingDependency naming %s", n, err, tt.missing)
			}
		})
	}
}

// countingStore records how many events each write of the store took.
type countingStore struct {
	notifier.Store
	mu    sync.Mutex
	sizes []string // tenant:events
}

func (c *countingStore) NotifyActiveStaffMany(ctx context.Context, schemaName string, ns []postgres.EventNotification) ([]domain.Notification, error) {
	c.mu.Lock()
	c.sizes = append(c.sizes, schemaName+":"+strconv.Itoa(len(ns)))
	c.mu.Unlock()
	return c.Store.NotifyActiveStaffMany(ctx, schemaName, ns)
}

// A fetched batch holds events of several tenants, and now and then the
// same event twice: each tenant's first event is written alone, the next
// ones as many to a transaction as TxRows holds at the rows the first
// wrote; each event once per staff user, ids in the batch's order, and
// each event is pushed as one message.
func TestABatchIsWrittenPerTenantAndPushedOneMessageAnEvent(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	pushA, pushB := w.pushes(w.a), w.pushes(w.b)
	store := &countingStore{Store: w.DB}
	n, err := notifier.New(notifier.Config{TxRows: 4}, notifier.Deps{Store: store, JS: w.JS, NATS: w.Conn, Log: w.Log})
	if err != nil {
		t.Fatal(err)
	}
	a1, b1, a2, a3, b2 := productCreated(w.a, "a1"), productCreated(w.b, "b1"), productCreated(w.a, "a2"), productCreated(w.a, "a3"), productCreated(w.b, "b2")
	a4 := productCreated(w.a, "a4")
	batch := []events.Envelope{a1, b1, a2, a1, a3, b2, a4}
	errs := n.Handle(t.Context(), batch)
	for i, err := range errs {
		if err != nil {
			t.Errorf("event %d (%s): %v", i, batch[i].Tenant, err)
		}
	}
	// A's events write 2 rows each (2 staff users): 1, then 4/2 = 2 a
	// transaction; B's 1 row each: 1, then the rest.
	if want := []string{w.a + ":1", w.a + ":2", w.a + ":1", w.b + ":1", w.b + ":1"}; !slices.Equal(store.sizes, want) {
		t.Errorf("transactions %v, want %v", store.sizes, want)
	}
	var lastID int64
	for _, ev := range []events.Envelope{a1, a2, a3, a4} {
		rows := w.rows(w.a, ev.ID)
		if got, want := userIDs(rows), sorted(w.staff); !slices.Equal(got, want) {
			t.Errorf("event %s went to %v, want the active staff %v once each", ev.ID, got, want)
		}
		if len(rows) > 0 && rows[0].ID < lastID {
			t.Errorf("event %s's ids start at %d, before the previous event's %d", ev.ID, rows[0].ID, lastID)
		}
		for _, r := range rows {
			lastID = max(lastID, r.ID)
		}
	}
	for _, ev := range []events.Envelope{b1, b2} {
		if got := userIDs(w.rows(w.b, ev.ID)); !slices.Equal(got, []string{w.staffB}) {
			t.Errorf("event %s went to %v, want %s", ev.ID, got, w.staffB)
		}
	}

	pushesOf := func(ch chan *nats.Msg, want int) map[string][]events.Notification {
		t.Helper()
		out := map[string][]events.Notification{}
		timeout := time.After(20 * time.Second)
		for range want {
			select {
			case m := <-ch:
				ns := fanout(t, m)
				if _, seen := out[ns[0].EventID]; seen {
					t.Errorf("event %s pushed in two messages", ns[0].EventID)
				}
				out[ns[0].EventID] = ns
			case <-timeout:
				t.Fatalf("received %d push messages, want %d", len(out), want)
			}
		}
		return out
	}
	gotA := pushesOf(pushA, 4)
	for _, ev := range []events.Envelope{a1, a2, a3, a4} {
		var ids, want []int64
		for _, p := range gotA[ev.ID] {
			ids = append(ids, p.ID)
		}
		for _, r := range w.rows(w.a, ev.ID) {
			want = append(want, r.ID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, want) {
			t.Errorf("event %s pushed %v, want its rows %v", ev.ID, ids, want)
		}
	}
	if gotB := pushesOf(pushB, 2); len(gotB[b1.ID]) != 1 || len(gotB[b2.ID]) != 1 {
		t.Errorf("tenant B's pushes %v, want one notification for each of its 2 events", gotB)
	}
	select {
	case m := <-pushA:
		t.Errorf("an extra push %s", m.Data)
	case <-time.After(200 * time.Millisecond):
	}
}

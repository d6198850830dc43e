package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/catalog"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/testenv"
	"github.com/tenantworks/saas/workers/relay"
)

// fixture is a world of the test's own: a fresh database and a private
// NATS server, which a test may stop and start again.
type fixture struct {
	*testenv.World
	t *testing.T
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return &fixture{World: testenv.MustWorld(t, testenv.WithNATS()), t: t}
}

// newClusterFixture is newFixture on every cluster of TENANT_DATABASES
// (see testenv.MustClusterDatabases): place tenants with
// f.MustPlaceTenant.
func newClusterFixture(t *testing.T) *fixture {
	t.Helper()
	d := testenv.MustClusterDatabases(t)
	s := testenv.MustStreams(t)
	return &fixture{World: &testenv.World{Database: d, Log: slog.New(slog.DiscardHandler), NATS: s.Server, Conn: s.Conn, JS: s.JS}, t: t}
}

// clusters is every cluster of the fixture, as the relay is given them.
func (f *fixture) clusters() []relay.Cluster {
	if f.Clusters == nil {
		return []relay.Cluster{{Name: postgres.MainCluster, Outbox: f.DB, ListenURL: f.URL}}
	}
	return relay.ClustersOf(f.Clusters)
}

// tenants creates n tenants named prefix and a number, and returns their
// schema names.
func (f *fixture) tenants(n int, prefix string) []string {
	f.t.Helper()
	names := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("%s%05d", prefix, i)
	}
	f.MustTenants(f.t, names...)
	return names
}

// startRelay runs a relay on every cluster of the fixture until the
// returned stop is called (or its ctx is cancelled from a hook).
func (f *fixture) startRelay(ctx context.Context, cfg relay.Config) (stop func()) {
	f.t.Helper()
	return f.startRelayOn(ctx, cfg, f.clusters())
}

// startRelayOn is startRelay on the given clusters.
func (f *fixture) startRelayOn(ctx context.Context, cfg relay.Config, clusters []relay.Cluster) (stop func()) {
	f.t.Helper()
	if cfg.Sweep == 0 {
		cfg.Sweep = 200 * time.Millisecond
	}
	r, err := relay.New(cfg, relay.Deps{Clusters: clusters, JS: f.JS, Log: f.Log})
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Run(ctx); err != nil {
			f.t.Errorf("relay: %v", err)
		}
	}()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	f.t.Cleanup(stop)
	return stop
}

// catalog writes products as the API does (no cache in front).
func (f *fixture) catalog() *catalog.Service {
	f.t.Helper()
	c, err := catalog.New(catalog.Deps{Store: f.DB})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) create(schemaName, sku string) domain.Product {
	f.t.Helper()
	name, price, cur := "Product "+sku, "1.00", "EUR"
	p, err := f.catalog().Create(context.Background(), schemaName, domain.ProductPatch{SKU: &sku, Name: &name, Price: &price, Currency: &cur}, catalog.Meta{})
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

// streamEvents reads every message of the stream (for the given tenant, or
// all with "").
func (f *fixture) streamEvents(tenant string) []events.Envelope {
	f.t.Helper()
	ctx := context.Background()
	filter := "tenant.>"
	if tenant != "" {
		filter = events.TenantSubjects(tenant)
	}
	s, err := f.JS.Stream(ctx, events.StreamName)
	if err != nil {
		f.t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		f.t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	if n == 0 {
		return nil
	}
	c, err := f.JS.OrderedConsumer(ctx, events.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []events.Envelope
	for uint64(len(out)) < n {
		batch, err := c.Fetch(int(n)-len(out), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			f.t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			var ev events.Envelope
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				f.t.Fatal(err)
			}
			if m.Subject() != events.Subject(ev.Tenant, ev.Type) {
				f.t.Fatalf("subject %s carries a %s event of %s", m.Subject(), ev.Type, ev.Tenant)
			}
			out = append(out, ev)
			got++
		}
		if got == 0 {
			f.t.Fatalf("read %d of %d stream messages", len(out), n)
		}
	}
	return out
}

func (f *fixture) streamCount() uint64 {
	f.t.Helper()
	s, err := f.JS.Stream(context.Background(), events.StreamName)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return 0
		}
		f.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return info.State.Msgs
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pending counts a tenant's markers, on every cluster, and outbox rows.
func (f *fixture) pending(schemaName string) int {
	f.t.Helper()
	var n int
	for _, c := range f.clusters() {
		var m int
		err := c.Outbox.(*postgres.DB).Pool.QueryRow(context.Background(),
			`SELECT count(*) FROM public.outbox_pending WHERE schema_name = $1`, schemaName).Scan(&m)
		if err != nil {
			f.t.Fatal(err)
		}
		n += m
	}
	var rows int
	_ = f.DB.InTenant(context.Background(), schemaName, func(tx pgx.Tx) error {
		return tx.QueryRow(context.Background(), `SELECT count(*) FROM outbox`).Scan(&rows)
	})
	return n + rows
}

func TestRelayPublishesEveryEventInOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.tenants(1, "rel")[0]
	f.startRelay(t.Context(), relay.Config{})
	var want []string
	for i := range 20 {
		p := f.create(s, fmt.Sprintf("SKU-%02d", i))
		want = append(want, p.ID)
	}
	waitFor(t, 10*time.Second, "20 events on the stream", func() bool { return f.streamCount() == 20 })
	got := f.streamEvents(s)
	for i, ev := range got {
		if ev.AggregateID != want[i] || ev.Type != events.ProductCreated || ev.Tenant != s || ev.Version != 1 {
			t.Fatalf("event %d = %+v, want product.created of %s in write order", i, ev, want[i])
		}
		var p events.Product
		if err := json.Unmarshal(ev.Payload, &p); err != nil || p.ID != want[i] {
			t.Fatalf("event %d payload = %s", i, ev.Payload)
		}
	}
	waitFor(t, 5*time.Second, "the outbox and markers to empty", func() bool { return f.pending(s) == 0 })
}

func TestRelayCrashBetweenPublishAndMarkPublishesOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.tenants(1, "crash")[0]
	for i := range 10 {
		f.create(s, fmt.Sprintf("C-%02d", i))
	}
	crashed := make(chan struct{})
	ctx, crash := context.WithCancel(t.Context())
	var once sync.Once
	stop := f.startRelay(ctx, relay.Config{AfterPublish: func(string, int) {
		once.Do(func() { crash(); close(crashed) })
	}})
	<-crashed
	stop()
	if f.pending(s) == 0 {
		t.Fatal("the crashed relay marked its batch done")
	}
	if n := f.streamCount(); n != 10 {
		t.Fatalf("after the crash the stream holds %d events, want the 10 published", n)
	}
	f.startRelay(t.Context(), relay.Config{})
	waitFor(t, 10*time.Second, "the restarted relay to finish", func() bool { return f.pending(s) == 0 })
	if n := f.streamCount(); n != 10 {
		t.Fatalf("stream holds %d events, want each of the 10 exactly once", n)
	}
	// A consumer sees each once too.
	seen := map[string]int{}
	for _, ev := range f.streamEvents(s) {
		seen[ev.ID]++
	}
	if len(seen) != 10 {
		t.Fatalf("distinct events %d, want 10", len(seen))
	}
}

func TestRelayDoesNotSkipOutOfOrderCommits(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.tenants(1, "ooo")[0]
	f.startRelay(t.Context(), relay.Config{})
	ctx := context.Background()
	insert := func(tx pgx.Tx, sku string) {
		if err := postgres.SetSearchPath(ctx, tx, s); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO outbox (event_id, event_type, aggregate_id, aggregate_version, payload)
			VALUES (gen_random_uuid(), 'product.created', gen_random_uuid(), 1, jsonb_build_object('sku', $1::text))`, sku); err != nil {
			t.Fatal(err)
		}
	}
	tx1, err := f.DB.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	insert(tx1, "first") // takes the lower outbox id
	tx2, err := f.DB.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	insert(tx2, "second") // takes a higher id, commits first
	if err := tx2.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the later id to be published", func() bool { return f.streamCount() == 1 })
	if err := tx1.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the earlier id to be published too", func() bool { return f.streamCount() == 2 })
	waitFor(t, 5*time.Second, "the outbox to empty", func() bool { return f.pending(s) == 0 })
}

func TestRelayCatchesUpAfterNATSOutage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.tenants(1, "outage")[0]
	f.startRelay(t.Context(), relay.Config{PublishTimeout: time.Second})
	f.create(s, "BEFORE")
	waitFor(t, 10*time.Second, "the first event", func() bool { return f.streamCount() == 1 })

	f.NATS.Stop()
	for i := range 15 {
		f.create(s, fmt.Sprintf("DURING-%02d", i))
	}
	time.Sleep(1500 * time.Millisecond) // let the relay fail against the dead server
	if f.pending(s) == 0 {
		t.Fatal("events were marked done while NATS was down")
	}
	f.NATS.Start(t)
	f.create(s, "AFTER")
	waitFor(t, 30*time.Second, "every event after NATS returned", func() bool {
		return f.pending(s) == 0 && f.streamCount() == 17
	})
	if n := len(f.streamEvents(s)); n != 17 {
		t.Fatalf("stream holds %d events, want 17", n)
	}
}

func TestTwoRelaysLoseNothingAndKeepTenantOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.twoRelaysLoseNothing(f.tenants(5, "two"))
}

// twoRelaysLoseNothing runs two relays on every cluster of f while the
// tenants are written to concurrently, and checks that the stream holds
// every event exactly once, in each tenant's write order.
func (f *fixture) twoRelaysLoseNothing(tenants []string) {
	t := f.t
	f.startRelay(t.Context(), relay.Config{Workers: 2, Batch: 7})
	f.startRelay(t.Context(), relay.Config{Workers: 2, Batch: 7})
	const perTenant = 40
	written := map[string][]string{} // tenant -> "id@version" in commit order
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range tenants {
		wg.Go(func() {
			var p domain.Product
			for i := range perTenant {
				var key string
				if i%4 == 3 { // every fourth write updates the last product
					name := fmt.Sprintf("renamed %d", i)
					var err error
					p, err = f.catalog().Patch(context.Background(), s, p.ID, domain.ProductPatch{Name: &name}, nil, catalog.Meta{})
					if err != nil {
						t.Error(err)
						return
					}
				} else {
					p = f.create(s, fmt.Sprintf("T-%03d", i))
				}
				key = fmt.Sprintf("%s@%d", p.ID, p.Version)
				mu.Lock()
				written[s] = append(written[s], key)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	total := uint64(len(tenants) * perTenant)
	waitFor(t, 30*time.Second, "every event", func() bool { return f.streamCount() >= total })
	time.Sleep(300 * time.Millisecond) // a duplicate, if any, would land now
	if n := f.streamCount(); n != total {
		t.Fatalf("stream holds %d events, want %d exactly", n, total)
	}
	for _, s := range tenants {
		got := f.streamEvents(s)
		if len(got) != perTenant {
			t.Fatalf("%s: %d events, want %d", s, len(got), perTenant)
		}
		for i, ev := range got {
			if k := fmt.Sprintf("%s@%d", ev.AggregateID, ev.Version); k != written[s][i] {
				t.Fatalf("%s: event %d is %s, want %s (write order)", s, i, k, written[s][i])
			}
		}
	}
}

// latency writes n products in each active tenant, one at a time, and
// returns the median time from commit to the event appearing on NATS.
func (f *fixture) latency(active []string, n int) time.Duration {
	f.t.Helper()
	seen := make(chan string, 1024)
	sub, err := f.Conn.Subscribe("tenant.>", func(m *nats.Msg) {
		var ev events.Envelope
		if json.Unmarshal(m.Data, &ev) == nil {
			seen <- ev.AggregateID
		}
	})
	if err != nil {
		f.t.Fatal(err)
	}
	defer sub.Unsubscribe()
	var lat []time.Duration
	for i := range n {
		for _, s := range active {
			p := f.create(s, fmt.Sprintf("L-%s-%03d", s, i))
			start := time.Now()
			timeout := time.After(10 * time.Second)
			for got := ""; got != p.ID; {
				select {
				case got = <-seen:
				case <-timeout:
					f.t.Fatalf("event of %s not published within 10s", p.ID)
				}
			}
			lat = append(lat, time.Since(start))
		}
	}
	slices.Sort(lat)
	return lat[len(lat)/2]
}

// TestIdleTenantsDoNotSlowTheRelay compares commit-to-publish latency with 2
// tenants in all against 2 active among 2,000.
func TestIdleTenantsDoNotSlowTheRelay(t *testing.T) {
	t.Parallel()
	small := newFixture(t)
	activeSmall := small.tenants(2, "few")
	small.startRelay(t.Context(), relay.Config{})
	base := small.latency(activeSmall, 20)

	big := newFixture(t)
	start := time.Now()
	all := big.tenants(2000, "many")
	t.Logf("created 2000 tenants in %s", time.Since(start).Round(time.Millisecond))
	big.startRelay(t.Context(), relay.Config{})
	withIdle := big.latency(all[:2], 20)

	t.Logf("median commit-to-publish: %s with 2 tenants, %s with 2 active of 2000", base, withIdle)
	// Generous: twice the small case plus scheduling noise on a busy machine.
	if withIdle > 2*base+20*time.Millisecond {
		t.Fatalf("2000 idle tenants slowed the relay: %s vs %s", withIdle, base)
	}
}

func TestNewNamesTheMissingDependency(t *testing.T) {
	t.Parallel()
	db, js := &postgres.DB{}, struct{ jetstream.JetStream }{} // never called
	main := relay.Cluster{Name: "main", Outbox: db, ListenURL: "postgres://localhost/x"}
	tests := []struct {
		name    string
		deps    relay.Deps
		missing string // "" when New must succeed
	}{
		{"no cluster is refused", relay.Deps{JS: js}, "Deps.Clusters"},
		{"a cluster without its pool is refused", relay.Deps{JS: js, Clusters: []relay.Cluster{main, {Name: "pg2", ListenURL: "postgres://pg2/x"}}}, "Deps.Clusters[1].Outbox (pg2)"},
		{"a cluster without a URL for its LISTEN connection is refused", relay.Deps{JS: js, Clusters: []relay.Cluster{{Name: "main", Outbox: db}}}, "Deps.Clusters[0].ListenURL (main)"},
		{"no stream is refused", relay.Deps{Clusters: []relay.Cluster{main}}, "Deps.JS"},
		{"no logger takes the default", relay.Deps{Clusters: []relay.Cluster{main}, JS: js}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := relay.New(relay.Config{}, tt.deps)
			if tt.missing == "" {
				if err != nil || r == nil {
					t.Fatalf("error %v, want none", err)
				}
				return
			}
			if !errors.Is(err, relay.ErrMissingDependency) || !strings.Contains(err.Error(), tt.missing) || r != nil {
				t.Fatalf("New = %v, %v; want ErrMissingDependency naming %s", r, err, tt.missing)
			}
		})
	}
}

func TestEventsCarryTheirActorToTheStream(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.tenants(1, "act")[0]
	f.startRelay(t.Context(), relay.Config{})
	ann := audit.Actor{Kind: audit.KindUser, ID: "0197a000-0000-7000-8000-0000000000aa", Email: "ann@acme.test"}
	ctx := audit.WithCause(t.Context(), audit.Cause{Actor: ann, RequestID: "req-ann"})
	sku, name, price, cur := "ACT-1", "Lamp", "1.00", "EUR"
	if _, err := f.catalog().Create(ctx, s, domain.ProductPatch{SKU: &sku, Name: &name, Price: &price, Currency: &cur}, catalog.Meta{}); err != nil {
		t.Fatal(err)
	}
	f.create(s, "ACT-2") // no cause: the system's
	waitFor(t, 10*time.Second, "2 events on the stream", func() bool { return f.streamCount() == 2 })
	got := f.streamEvents(s)
	if len(got) != 2 {
		t.Fatalf("stream holds %d events, want 2", len(got))
	}
	if got[0].Actor == nil || *got[0].Actor != ann || got[0].RequestID != "req-ann" {
		t.Errorf("first event actor %v, request %q; want %v and req-ann", got[0].Actor, got[0].RequestID, ann)
	}
	if got[1].Actor == nil || *got[1].Actor != audit.System {
		t.Errorf("second event actor %v, want the system", got[1].Actor)
	}
}

func TestTheRelayPrunesOldAuditEntries(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.relayPrunes(f.tenants(1, "prn"))
}

// relayPrunes writes an old and a new audit entry in each tenant's trail,
// runs a relay that keeps a year, and checks that only the new entries
// stay.
func (f *fixture) relayPrunes(tenants []string) {
	t := f.t
	ctx := t.Context()
	for _, s := range tenants {
		err := f.DB.InTenant(ctx, s, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO audit_log (at, actor_kind, action, target_type, target_id)
				VALUES (now() - interval '400 days', 'system', 'old', 'product', '1')`); err != nil {
				return err
			}
			return postgres.WriteTenantAudit(ctx, tx, audit.Entry{Actor: audit.System, Action: "new", Target: audit.Target{Type: "product", ID: "2"}})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	cfg := relay.Config{AuditRetention: 365 * 24 * time.Hour}
	r, err := relay.New(cfg, relay.Deps{Clusters: f.clusters(), JS: f.JS, Log: f.Log, Audit: f.DB})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for _, s := range tenants {
		actions := func() []string {
			es, _, err := f.DB.ListTenantAudit(ctx, s, postgres.AuditFilter{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, e := range es {
				out = append(out, e.Action)
			}
			return out
		}
		waitFor(t, 20*time.Second, s+"'s old entry to go", func() bool { return !slices.Contains(actions(), "old") })
		if got := actions(); !slices.Equal(got, []string{"new"}) {
			t.Fatalf("%s's trail = %v, want the new entry only", s, got)
		}
	}
}

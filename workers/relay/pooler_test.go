package relay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/catalog"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/pkg/testenv"
	"github.com/tenantworks/saas/schema"
	"github.com/tenantworks/saas/workers/relay"
)

// TestRelayDrainsThroughThePoolerAndListensDirectly runs the relay as a
// deployment behind PgBouncer does: its pool (drains under a
// transaction-scoped advisory lock, marker sweeps) through the pooler in
// transaction mode, its LISTEN connection straight to PostgreSQL (the
// direct URL). The sweep is an hour apart, so the events written after the
// relay listens reach the stream by their notifications alone: in order,
// each once, with their payloads whole.
func TestRelayDrainsThroughThePoolerAndListensDirectly(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := testenv.MustPooledDatabase(t)
	ns := testenv.MustNATSServer(t)
	nc, err := events.Connect(ns.URL, "relay-pooler-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	runner, err := schema.NewRunner(d.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	mgr := tenancy.NewManager(d.DB, runner, slog.New(slog.DiscardHandler))
	tenants := []string{"poola", "poolb"}
	for _, s := range tenants {
		if _, err := mgr.Create(ctx, tenancy.CreateParams{Schema: s, Name: s, Domain: s + ".test"}); err != nil {
			t.Fatal(err)
		}
	}
	cat, err := catalog.New(catalog.Deps{Store: d.DB})
	if err != nil {
		t.Fatal(err)
	}

	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r, err := relay.New(relay.Config{Sweep: time.Hour}, relay.Deps{Clusters: []relay.Cluster{{Name: "main", Outbox: d.DB, ListenURL: d.URL}},
			JS: js, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Errorf("relay: %v", err)
			return
		}
		if err := r.Run(rctx); err != nil {
			t.Errorf("relay: %v", err)
		}
	}()
	t.Cleanup(func() { stop(); <-done })

	// Until the relay's session listens, a notification would be lost.
	direct, err := pgx.Connect(ctx, d.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = direct.Close(context.Background()) })
	waitFor(t, 10*time.Second, "the relay's LISTEN session", func() bool {
		var n int
		err := direct.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN '||$1::text`, relay.Channel).Scan(&n)
		return err == nil && n == 1
	})

	const each = 15
	want := map[string][]string{}
	for i := range each {
		for _, s := range tenants {
			sku, name, price, cur := fmt.Sprintf("P-%02d", i), "Product", "2.50", "EUR"
			p, err := cat.Create(ctx, s, domain.ProductPatch{SKU: &sku, Name: &name, Price: &price, Currency: &cur}, catalog.Meta{})
			if err != nil {
				t.Fatal(err)
			}
			want[s] = append(want[s], p.ID)
		}
	}
	stream, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, fmt.Sprintf("%d events on the stream", each*len(tenants)), func() bool {
		info, err := stream.Info(ctx)
		return err == nil && info.State.Msgs == uint64(each*len(tenants))
	})
	for _, s := range tenants {
		c, err := js.OrderedConsumer(ctx, events.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.TenantSubjects(s)}})
		if err != nil {
			t.Fatal(err)
		}
		batch, err := c.Fetch(each, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for m := range batch.Messages() {
			var ev events.Envelope
			var p events.Product
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(ev.Payload, &p); err != nil || p.ID != ev.AggregateID || p.Price != "2.50" {
				t.Fatalf("event %s of %s carries payload %s (%v)", ev.ID, s, ev.Payload, err)
			}
			got = append(got, ev.AggregateID)
		}
		if fmt.Sprint(got) != fmt.Sprint(want[s]) {
			t.Errorf("%s's events: %v, want %v in write order", s, got, want[s])
		}
	}
}

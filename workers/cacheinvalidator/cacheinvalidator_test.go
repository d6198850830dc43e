package cacheinvalidator_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/testenv"
	"github.com/tenantworks/saas/workers/cacheinvalidator"
)

func TestEventsDropCachedItemsAndLists(t *testing.T) {
	js := testenv.MustStreams(t).JS
	ctx := t.Context()
	rdb, err := cache.Open(testenv.Get(t).RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	log := slog.New(slog.DiscardHandler)
	schemaName, productID := "inv_"+testenv.RandomName(8), uuid.NewString()
	keys := cache.Keys{}
	itemKey := keys.Product(schemaName, productID)
	if err := rdb.Set(ctx, itemKey, `{"id":"stale"}`, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}

	w, err := cacheinvalidator.New(cacheinvalidator.Config{}, cacheinvalidator.Deps{JS: js, Invalidator: cache.NewProducts(rdb, keys, nil, 0, log), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- w.Run(wctx)
	}()
	publish := func(msgID string) {
		env := events.Envelope{ID: uuid.NewString(), Type: events.ProductUpdated, Tenant: schemaName, AggregateID: productID, Version: 2, OccurredAt: time.Now()}
		b, _ := json.Marshal(env)
		m := nats.NewMsg(events.Subject(schemaName, env.Type))
		m.Data = b
		if _, err := js.PublishMsg(ctx, m, jetstream.WithMsgID(msgID)); err != nil {
			t.Fatal(err)
		}
	}
	// The list generation holds a fresh token after every invalidation.
	gen := func() string { g, _ := rdb.Get(ctx, keys.ListGen(schemaName)).Result(); return g }

	publish("one")
	deadline := time.Now().Add(10 * time.Second)
	for gen() == "" {
		if time.Now().After(deadline) {
			t.Fatal("the list generation did not move after an event")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n, _ := rdb.Exists(ctx, itemKey).Result(); n != 0 {
		t.Fatal("the cached item survived its product's event")
	}
	// A redelivery (a new message id) is harmless: one more bump, no error.
	first := gen()
	publish("two")
	for gen() == first {
		if time.Now().After(deadline) {
			t.Fatal("the redelivered event was not handled")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c, err := js.Consumer(ctx, events.StreamName, events.ConsumerCache)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.NumPending != 0 {
		t.Fatalf("consumer left %d unacked and %d pending", info.NumAckPending, info.NumPending)
	}
}

func TestNewNamesTheMissingDependency(t *testing.T) {
	t.Parallel()
	js, inv := struct{ jetstream.JetStream }{}, &cache.Products{} // never called
	tests := []struct {
		name    string
		deps    cacheinvalidator.Deps
		missing string // "" when New must succeed
	}{
		{"no stream is refused", cacheinvalidator.Deps{Invalidator: inv}, "Deps.JS"},
		{"no invalidator is refused", cacheinvalidator.Deps{JS: js}, "Deps.Invalidator"},
		{"no logger takes the default", cacheinvalidator.Deps{JS: js, Invalidator: inv}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := cacheinvalidator.New(cacheinvalidator.Config{}, tt.deps)
			if tt.missing == "" {
				if err != nil || w == nil {
					t.Fatalf("error %v, want none", err)
				}
				return
			}
			if !errors.Is(err, cacheinvalidator.ErrMissingDependency) || !strings.Contains(err.Error(), tt.missing) || w != nil {
				t.Fatalf("New = %v, %v; want ErrMissingDependency naming %s", w, err, tt.missing)
			}
		})
	}
}

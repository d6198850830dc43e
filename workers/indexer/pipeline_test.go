package indexer_test

import (
	"context"
	"sync"
	"testing"

	"github.com/tenantworks/saas/pkg/search"
	"github.com/tenantworks/saas/workers/relay"
)

// TestTheRelaysEventsReachTheIndex runs the real pipeline: product writes
// in the database, their outbox rows published by the relay, indexed by the
// indexer. It holds the indexer to the envelopes the relay really sends.
func TestTheRelaysEventsReachTheIndex(t *testing.T) {
	t.Parallel()
	h := newHarness(t, search.Config{})
	rl, err := relay.New(relay.Config{}, relay.Deps{Clusters: []relay.Cluster{{Name: "main", Outbox: h.DB, ListenURL: h.URL}}, JS: h.JS, Log: h.Log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() {
		if err := rl.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("relay: %v", err)
		}
	})
	name, cc := h.consumer()
	h.start(name, cc, h.es)

	kept := h.create("Kept lamp")
	renamed := h.rename(h.create("Old lamp"), "Renamed lamp")
	gone := h.create("Gone lamp")
	h.remove(gone)

	h.eventually("the index holds exactly the database", func() bool {
		got, want := h.indexed(), h.stored()
		return len(got) == 2 && got[kept.ID] == want[kept.ID] && got[renamed.ID] == 2 && want[renamed.ID] == 2
	})
}

package events_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/testenv"
)

func TestEnsureStreamsCreatesThenFollowsConfigChanges(t *testing.T) {
	ctx := context.Background()
	nc, err := events.Connect(testenv.MustNATSServer(t).URL, "streams-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	// Copies of every role start together: all must succeed, on a server
	// with no streams yet and on one that has them.
	for _, state := range []string{"new server", "streams exist"} {
		var wg sync.WaitGroup
		errs := make(chan error, 6)
		for range 6 {
			wg.Go(func() { errs <- events.EnsureStreams(ctx, js, events.StreamConfig{}) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("concurrent ensure, %s: %v", state, err)
			}
		}
	}
	s, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != 7*24*time.Hour {
		t.Fatalf("default max age = %v", got)
	}
	if _, err := js.Stream(ctx, events.DLQStream); err != nil {
		t.Fatalf("dead-letter stream: %v", err)
	}

	// A changed setting reaches the stored stream.
	if err := events.EnsureStreams(ctx, js, events.StreamConfig{MaxAge: 48 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	s, err = js.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != 48*time.Hour {
		t.Fatalf("max age after change = %v, want 48h", got)
	}
}

package runner_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/testenv"
	"github.com/tenantworks/saas/workers/runner"
)

func setup(t *testing.T) jetstream.JetStream {
	t.Helper()
	ns := testenv.MustNATSServer(t)
	nc, err := events.Connect(ns.URL, "runner-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	if err := events.EnsureStreams(t.Context(), js, events.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	return js
}

func publish(t *testing.T, js jetstream.JetStream, id string, data []byte) {
	t.Helper()
	if data == nil {
		data, _ = json.Marshal(events.Envelope{ID: id, Type: events.ProductCreated, Tenant: "acme", AggregateID: "p", Version: 1})
	}
	m := nats.NewMsg("tenant.acme.product.created")
	m.Data = data
	if _, err := js.PublishMsg(t.Context(), m, jetstream.WithMsgID(id)); err != nil {
		t.Fatal(err)
	}
}

func TestPoisonEventsGoToTheDeadLetterStream(t *testing.T) {
	js := setup(t)
	var mu sync.Mutex
	tries := map[string]int{}
	handled := map[string]bool{}
	h := func(_ context.Context, ev events.Envelope) error {
		mu.Lock()
		defer mu.Unlock()
		tries[ev.ID]++
		switch ev.ID {
		case "always-fails":
			return errors.New("elasticsearch says no")
		case "permanent":
			return runner.Permanent(errors.New("payload makes no sense"))
		case "flaky":
			if tries[ev.ID] < 3 {
				return errors.New("try again")
			}
		}
		handled[ev.ID] = true
		return nil
	}
	r := runner.New(runner.Config{Consumer: "test", MaxDeliver: 4, Backoff: func(uint64) time.Duration { return 10 * time.Millisecond }},
		js, runner.Each(h), slog.New(slog.DiscardHandler))
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	publish(t, js, "always-fails", nil)
	publish(t, js, "permanent", nil)
	publish(t, js, "flaky", nil)
	publish(t, js, "garbage", []byte("{not json"))
	publish(t, js, "fine", nil)

	deadline := time.Now().Add(15 * time.Second)
	var letters []events.DeadLetter
	for {
		var err error
		letters, err = events.ListDeadLetters(t.Context(), js, 100)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		ok := len(letters) == 3 && handled["flaky"] && handled["fine"]
		mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead letters %d, handled %v", len(letters), handled)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if tries["always-fails"] != 4 || tries["permanent"] != 1 || tries["flaky"] != 3 {
		t.Fatalf("tries = %v; want 4 for the failing one (MaxDeliver), 1 for the permanent one, 3 for the flaky one", tries)
	}
	byError := map[string]events.DeadLetter{}
	for _, l := range letters {
		byError[l.Error] = l
		if l.Consumer != "test" || l.Subject != "tenant.acme.product.created" {
			t.Fatalf("dead letter %+v lacks its consumer or subject", l)
		}
	}
	if l, ok := byError["elasticsearch says no"]; !ok || l.Deliveries != 4 {
		t.Fatalf("dead letters = %+v, want the failing event after 4 deliveries", letters)
	}
	if _, ok := byError["payload makes no sense"]; !ok {
		t.Fatalf("dead letters = %+v, want the permanent failure", letters)
	}
	var garbage bool
	for e := range byError {
		garbage = garbage || strings.HasPrefix(e, "decode envelope")
	}
	if !garbage {
		t.Fatalf("dead letters = %+v, want the undecodable message", letters)
	}

	// Redrive puts a letter back on its subject and out of the DLQ.
	if err := events.Redrive(t.Context(), js, byError["payload makes no sense"].Seq); err != nil {
		t.Fatal(err)
	}
	left, err := events.ListDeadLetters(t.Context(), js, 100)
	if err != nil || len(left) != 2 {
		t.Fatalf("after redrive %d letters (err %v), want 2", len(left), err)
	}
	s, _ := js.Stream(t.Context(), events.StreamName)
	info, _ := s.Info(t.Context())
	if info.State.Msgs != 6 {
		t.Fatalf("stream holds %d messages, want the 5 plus the redriven one", info.State.Msgs)
	}
}

// TestSlowHandlerKeepsItsEvents: a handler slower than the consumer's ack
// wait still gets each event once; the runner marks the batch in progress.
func TestSlowHandlerKeepsItsEvents(t *testing.T) {
	js := setup(t)
	cc := events.ConsumerConfig("slow")
	cc.AckWait = time.Second
	var mu sync.Mutex
	deliveries := map[string]int{}
	h := func(ctx context.Context, evs []events.Envelope) []error {
		mu.Lock()
		for _, ev := range evs {
			deliveries[ev.ID]++
		}
		mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(3500 * time.Millisecond): // three and a half ack waits
		}
		return make([]error, len(evs))
	}
	r := runner.New(runner.Config{Consumer: "slow", ConsumerConfig: &cc, InProgressEvery: 250 * time.Millisecond},
		js, h, slog.New(slog.DiscardHandler))
	// Two copies: without the marks, the second would get the first's
	// events once their ack wait ran out.
	r2 := runner.New(runner.Config{Consumer: "slow", ConsumerConfig: &cc, InProgressEvery: 250 * time.Millisecond},
		js, h, slog.New(slog.DiscardHandler))
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.Run(ctx) })
	wg.Go(func() { _ = r2.Run(ctx) })
	defer func() { stop(); wg.Wait() }()

	for _, id := range []string{"a", "b", "c"} {
		publish(t, js, id, nil)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := js.Consumer(t.Context(), events.StreamName, "slow")
		if err == nil {
			if ci := c.CachedInfo(); ci.AckFloor.Stream >= 3 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the events were not acknowledged within 20 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range []string{"a", "b", "c"} {
		if deliveries[id] != 1 {
			t.Errorf("event %s delivered %d times, want 1 (%v)", id, deliveries[id], deliveries)
		}
	}
}

// TestADependencyDownIsWaitedOutNotDeadLettered: an event that fails only
// because a dependency is down (EUNAVAILABLE) is retried past MaxDeliver
// and handled once the dependency is back; it never reaches the DLQ.
func TestADependencyDownIsWaitedOutNotDeadLettered(t *testing.T) {
	js := setup(t)
	var mu sync.Mutex
	tries := 0
	handled := false
	h := func(_ context.Context, ev events.Envelope) error {
		mu.Lock()
		defer mu.Unlock()
		tries++
		if tries <= 6 { // twice MaxDeliver
			return fmt.Errorf("index: %w", domain.Errorf(domain.EUNAVAILABLE, "search unavailable"))
		}
		handled = true
		return nil
	}
	r := runner.New(runner.Config{Consumer: "down", MaxDeliver: 3, Backoff: func(uint64) time.Duration { return 10 * time.Millisecond }},
		js, runner.Each(h), slog.New(slog.DiscardHandler))
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	publish(t, js, "waits", nil)
	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		ok := handled
		mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not handled after %d tries", tries)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	letters, err := events.ListDeadLetters(t.Context(), js, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 0 {
		t.Fatalf("dead letters %+v, want none", letters)
	}
}

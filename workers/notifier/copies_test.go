package notifier_test

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/workers/notifier"
)

// TestTwoCopiesShareTheWorkWithoutDuplicates runs two notifiers on one
// durable consumer, as two `saas worker notifier` processes would, while
// events of two tenants flow: every staff user gets exactly one row per
// event, and every row is pushed.
func TestTwoCopiesShareTheWorkWithoutDuplicates(t *testing.T) {
	w := newWorld(t)
	first := w.notifier(w.DB)
	cc := events.ConsumerConfig(w.durable)
	cc.FilterSubject = ""
	cc.FilterSubjects = []string{"tenant." + w.a + ".product.*", "tenant." + w.b + ".product.*"}
	cc.InactiveThreshold = 5 * time.Minute
	second, err := notifier.New(notifier.Config{ConsumerConfig: &cc, Batch: 10},
		notifier.Deps{Store: w.DB, JS: w.JS, NATS: w.Conn, Log: w.Log})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	pushed := map[string]int{} // subject, user and notification id (ids are per tenant) -> pushes
	sub, err := w.Conn.Subscribe("push.>", func(m *nats.Msg) {
		var f events.PushFanout
		if json.Unmarshal(m.Data, &f) == nil && f.Check() == nil {
			mu.Lock()
			for i, u := range f.Users {
				pushed[m.Subject+"/"+u+"/"+strconv.FormatInt(f.IDs[i], 10)]++
			}
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, n := range []*notifier.Notifier{first, second} {
		wg.Go(func() {
			if err := n.Run(ctx); err != nil {
				t.Errorf("notifier: %v", err)
			}
		})
	}
	defer func() { cancel(); wg.Wait() }()

	const perTenant = 30
	for i := range perTenant {
		for _, s := range []string{w.a, w.b} {
			ev := productCreated(s, "Item")
			w.publish(ev, ev.ID)
			if i%10 == 0 { // and some redeliveries, as after a crash
				w.publish(ev, ev.ID+"-again")
			}
		}
	}
	wantA, wantB := perTenant*len(w.staff), perTenant
	eventually(t, "every row", func() bool { return len(w.rows(w.a, "")) == wantA && len(w.rows(w.b, "")) == wantB })
	time.Sleep(300 * time.Millisecond) // a duplicate row, if any, would land now
	if a, b := len(w.rows(w.a, "")), len(w.rows(w.b, "")); a != wantA || b != wantB {
		t.Fatalf("rows: %d in A, %d in B; want %d and %d", a, b, wantA, wantB)
	}
	eventually(t, "every row pushed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(pushed) == wantA+wantB
	})
}

package notifier_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantworks/saas/pkg/postgres"
)

// TestNotificationsCommitInIDOrder writes one tenant's notifications from
// several writers at once (as copies of the notifier do), several events
// to a transaction, while a reader
// follows them the way a reconnecting WebSocket does: "ids above the last
// one I saw". Ids that committed after a greater one would be skipped by
// such a reader; it must see every row.
func TestNotificationsCommitInIDOrder(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	user := w.staff[0]
	const writers, perWriter = 6, 40

	seen := map[int64]bool{}
	done := make(chan struct{})
	var readErr error
	var rg sync.WaitGroup
	rg.Go(func() {
		var last int64
		for {
			finished := false
			select {
			case <-done:
				finished = true // one more read after the last commit
			default:
			}
			for {
				rows, err := w.DB.NotificationsAfter(ctx, w.a, user, last, 100)
				if err != nil {
					readErr = err
					return
				}
				for _, r := range rows {
					seen[r.ID] = true
					last = max(last, r.ID)
				}
				if len(rows) < 100 {
					break
				}
			}
			if finished {
				return
			}
		}
	})

	// Each writer writes its events one, two or three to a transaction,
	// as the notifier writes a batch's events of a tenant.
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			for written := 0; written < perWriter; {
				k := min(1+(i+written)%3, perWriter-written)
				var ns []postgres.EventNotification
				for range k {
					ns = append(ns, postgres.EventNotification{
						EventID: uuid.NewString(), Kind: "product.created", Title: "t", Data: json.RawMessage(`{}`)})
				}
				if _, err := w.DB.NotifyActiveStaffMany(ctx, w.a, ns); err != nil {
					t.Error(err)
					return
				}
				written += k
			}
		})
	}
	wg.Wait()
	close(done)
	rg.Wait()
	if readErr != nil {
		t.Fatal(readErr)
	}
	total := 0
	for last := int64(0); ; {
		all, err := w.DB.NotificationsAfter(ctx, w.a, user, last, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range all {
			total++
			if !seen[r.ID] {
				t.Errorf("notification %d was skipped by the reader following ids", r.ID)
			}
			last = r.ID
		}
		if len(all) < 100 {
			break
		}
	}
	if total != writers*perWriter {
		t.Fatalf("%d notifications, want %d", total, writers*perWriter)
	}
}

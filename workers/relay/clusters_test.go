package relay_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tenantworks/saas/workers/relay"
)

// placed places a tenant on each cluster of f, named prefix and the
// cluster's name, and returns their schema names, main's first.
func (f *fixture) placed(prefix string) []string {
	f.t.Helper()
	var out []string
	for _, c := range f.Clusters {
		s := prefix + "_" + c.Name
		f.MustPlaceTenant(f.t, s, c.Name)
		out = append(out, s)
	}
	return out
}

// waitListening waits until the relay's LISTEN session is up on every
// cluster: until then a notification would be lost.
func (f *fixture) waitListening(n int) {
	f.t.Helper()
	for _, c := range f.Clusters {
		waitFor(f.t, 10*time.Second, "the relay's LISTEN session on "+c.Name, func() bool {
			var got int
			err := c.DB.Pool.QueryRow(f.t.Context(), `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND query = 'LISTEN '||$1::text`, relay.Channel).Scan(&got)
			return err == nil && got == n
		})
	}
}

// checkRelayed waits for want (tenant -> product ids in write order) on the
// stream, each event once, and for every outbox and marker to empty.
func (f *fixture) checkRelayed(want map[string][]string) {
	f.t.Helper()
	total := 0
	for _, ids := range want {
		total += len(ids)
	}
	waitFor(f.t, 20*time.Second, fmt.Sprintf("%d events on the stream", total), func() bool { return f.streamCount() == uint64(total) })
	for s, ids := range want {
		var got []string
		for _, ev := range f.streamEvents(s) {
			got = append(got, ev.AggregateID)
		}
		if !slices.Equal(got, ids) {
			f.t.Errorf("%s's events: %v, want %v in write order", s, got, ids)
		}
		waitFor(f.t, 5*time.Second, s+"'s outbox and markers to empty", func() bool { return f.pending(s) == 0 })
	}
}

func TestARelayGivenEveryClusterRelaysTheTenantsOfEach(t *testing.T) {
	t.Parallel()
	f := newClusterFixture(t)
	tenants := f.placed("every")
	// An hour between sweeps: the events written once the relay listens
	// reach the stream by their own cluster's notifications alone.
	f.startRelay(t.Context(), relay.Config{Sweep: time.Hour})
	f.waitListening(1)
	want := map[string][]string{}
	for i := range 10 {
		for _, s := range tenants {
			want[s] = append(want[s], f.create(s, fmt.Sprintf("E-%02d", i)).ID)
		}
	}
	f.checkRelayed(want)
}

func TestARelayCatchesUpOnEveryClusterAtStart(t *testing.T) {
	t.Parallel()
	f := newClusterFixture(t)
	tenants := f.placed("late")
	// Written while no relay listens: the first sweep of each cluster
	// finds them.
	want := map[string][]string{}
	for i := range 5 {
		for _, s := range tenants {
			want[s] = append(want[s], f.create(s, fmt.Sprintf("B-%02d", i)).ID)
		}
	}
	for _, c := range f.Clusters {
		got, err := c.DB.PendingTenants(t.Context())
		if err != nil || !slices.Equal(got, []string{"late_" + c.Name}) {
			t.Fatalf("pending on %s = %v, %v; want [late_%s]: the marker is on the tenant's cluster", c.Name, got, err, c.Name)
		}
	}
	f.startRelay(t.Context(), relay.Config{Sweep: time.Hour})
	f.checkRelayed(want)
}

func TestARelayGivenMainAloneLeavesTheOtherClustersEventsWaiting(t *testing.T) {
	t.Parallel()
	f := newClusterFixture(t)
	tenants := f.placed("alone")
	near, far := tenants[0], tenants[1]
	farFirst := f.create(far, "F-1")
	nearFirst := f.create(near, "N-1")
	f.startRelayOn(t.Context(), relay.Config{}, f.clusters()[:1])
	// The main relay's drain of near is done once its event is on the
	// stream and its marker gone; far's marker, on the other cluster, was
	// never seen.
	waitFor(t, 10*time.Second, "near's event", func() bool { return f.streamCount() == 1 && f.pending(near) == 0 })
	if got := f.streamEvents(""); len(got) != 1 || got[0].AggregateID != nearFirst.ID {
		t.Fatalf("stream = %v, want near's event alone", got)
	}
	if f.pending(far) == 0 {
		t.Fatalf("%s's event left its cluster with no relay on it", far)
	}
	// Given its cluster, a relay takes it.
	f.startRelayOn(t.Context(), relay.Config{}, f.clusters()[1:])
	f.checkRelayed(map[string][]string{near: {nearFirst.ID}, far: {farFirst.ID}})
}

func TestTwoRelaysOnEveryClusterLoseNothingAndKeepTenantOrder(t *testing.T) {
	t.Parallel()
	f := newClusterFixture(t)
	var tenants []string
	for i := range 2 {
		tenants = append(tenants, f.placed(fmt.Sprintf("two%d", i))...)
	}
	f.twoRelaysLoseNothing(tenants)
}

func TestTheRelayPrunesOldAuditEntriesOnEveryCluster(t *testing.T) {
	t.Parallel()
	f := newClusterFixture(t)
	f.relayPrunes(f.placed("prn"))
}

// TestEventsLeftOnTheClusterATenantMovedToAreRelayed sets up what a move
// leaves when it switches a tenant with events not yet relayed: their rows
// copied into the new cluster's outbox with no marker there, a marker on
// the old cluster whose schema is gone. The relay finds the schema gone on
// the old cluster and drains the tenant on the others.
func TestEventsLeftOnTheClusterATenantMovedToAreRelayed(t *testing.T) {
	t.Parallel()
	f := newClusterFixture(t)
	main, other := f.Clusters[0], f.Clusters[1]
	f.MustPlaceTenant(t, "moved", other.Name)
	p := f.create("moved", "M-1")
	ctx := t.Context()
	if _, err := other.DB.Pool.Exec(ctx, `DELETE FROM public.outbox_pending`); err != nil {
		t.Fatal(err)
	}
	if _, err := main.DB.Pool.Exec(ctx, `INSERT INTO public.outbox_pending (schema_name) VALUES ('moved')`); err != nil {
		t.Fatal(err)
	}
	f.startRelay(t.Context(), relay.Config{Sweep: time.Hour})
	f.checkRelayed(map[string][]string{"moved": {p.ID}})
}

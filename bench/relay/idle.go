//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/bench/internal/benchenv"
	"github.com/tenantworks/saas/bench/internal/stack"
	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/catalog"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/tenancy"
)

// idleOptions configure the idle mode.
type idleOptions struct {
	idle, active, width int
	rate                float64
	idleWindow, window  time.Duration
	settle              time.Duration
}

// appName tags the relay's PostgreSQL connections, so that its backends'
// CPU can be told from everyone else's.
const appName = "bench_relay_idle"

// runIdle measures `saas relay`, run as its own process, with o.idle idle
// tenants and o.active active ones: its CPU (the process and its
// PostgreSQL backends) over a window with no writes at all, then
// commit-to-publish latency and CPU while each active tenant writes
// products at o.rate a second.
func runIdle(ctx context.Context, o idleOptions, natsServer string) error {
	fmt.Fprintf(os.Stderr, "load average at start: %s\n", benchenv.LoadAvg())
	st, err := stack.New(ctx, stack.Options{Name: "bench_relay", NATSServer: natsServer})
	if err != nil {
		return err
	}
	defer st.Close()
	natsURL, db, mgr := st.NATSURL(), st.DB(), st.Manager()
	start := time.Now()
	active, err := createTenants(ctx, mgr, o)
	if err != nil {
		return err
	}
	created := time.Since(start)
	fmt.Fprintf(os.Stderr, "created %d tenants in %s\n", o.idle+o.active, created.Round(time.Second))

	u, _ := url.Parse(st.DatabaseURL())
	q := u.Query()
	q.Set("application_name", appName)
	u.RawQuery = q.Encode()
	relayProc, err := st.Start(ctx, "relay", "DATABASE_URL="+u.String())
	if err != nil {
		return err
	}
	defer func() {
		relayProc.Stop()
		if s := strings.TrimSpace(relayProc.LogTail(1 << 20)); s != "" {
			fmt.Fprintf(os.Stderr, "relay log:\n%s\n", s)
		}
	}()

	nc, err := events.Connect(natsURL, "bench-relay-idle")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	// The relay makes the stream when it starts.
	for {
		if _, err := js.Stream(ctx, events.StreamName); err == nil {
			break
		}
		if ctx.Err() != nil {
			return errors.New("the relay did not create the stream")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(o.settle)

	pid := relayProc.PID()
	idleCPU, err := cpuOver(ctx, db, pid, o.idleWindow, nil)
	if err != nil {
		return err
	}

	lat, missing, activeCPU, err := activeWindow(ctx, db, nc, pid, active, o)
	if err != nil {
		return err
	}

	fmt.Printf("%d idle + %d active tenants (created in %s, %d at a time), `saas relay` as its own process (default config: 4 workers, sweep every 2 s), load average at the end %s\n\n",
		o.idle, o.active, created.Round(time.Second), o.width, benchenv.LoadAvg())
	fmt.Println("| window | length | relay process CPU | its PostgreSQL backends' CPU | together, share of one core |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: |")
	for _, w := range []struct {
		name string
		c    cpu
	}{{"idle: no writes at all", idleCPU}, {fmt.Sprintf("active: %d tenants writing %.0f/s each", o.active, o.rate), activeCPU}} {
		fmt.Printf("| %s | %s | %s | %s | %.2f%% |\n", w.name, w.c.wall.Round(time.Second), w.c.relay, w.c.backends,
			100*float64(w.c.relay+w.c.backends)/float64(w.c.wall))
	}
	slices.Sort(lat)
	fmt.Println()
	fmt.Println("| commit-to-publish (write returned to the event on NATS) | writes | missing | p50 | p99 | max |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: |")
	fmt.Printf("| %d active among %d tenants, %.0f writes/s each | %d | %d | %s | %s | %s |\n", o.active, o.idle+o.active, o.rate,
		len(lat), missing, pctD(lat, 50), pctD(lat, 99), lat[len(lat)-1].Round(10*time.Microsecond))
	return nil
}

// createTenants creates o.idle + o.active tenants, o.width at a time, and
// returns the active ones' schemas.
func createTenants(ctx context.Context, mgr *tenancy.Manager, o idleOptions) ([]string, error) {
	n := o.idle + o.active
	var done atomic.Int64
	errs := make(chan error, 1)
	sem := make(chan struct{}, o.width)
	var wg sync.WaitGroup
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s := fmt.Sprintf("t%05d", i)
			if _, err := mgr.Create(ctx, tenancy.CreateParams{Schema: s, Name: s, Domain: s + ".bench.localhost"}); err != nil {
				select {
				case errs <- err:
				default:
				}
				return
			}
			if k := done.Add(1); k%1000 == 0 {
				fmt.Fprintf(os.Stderr, "created %d tenants\n", k)
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	// The active ones are spread over the list, not its first few.
	var active []string
	for k := range o.active {
		active = append(active, fmt.Sprintf("t%05d", k*n/o.active))
	}
	return active, nil
}

// cpu is CPU time over a window.
type cpu struct {
	wall, relay, backends time.Duration
}

// cpuOver measures the relay's CPU over d, running during (when not nil)
// meanwhile. The backends are the relay's connections, found by their
// application_name at both ends of the window; one that came or went in
// between is counted from zero or not at all.
func cpuOver(ctx context.Context, db *postgres.DB, pid int, d time.Duration, during func(context.Context)) (cpu, error) {
	before, err := backendCPU(ctx, db)
	if err != nil {
		return cpu{}, err
	}
	r0 := benchenv.ProcessCPU(pid)
	t0 := time.Now()
	if during != nil {
		wctx, cancel := context.WithTimeout(ctx, d)
		during(wctx)
		cancel()
	} else {
		select {
		case <-ctx.Done():
			return cpu{}, ctx.Err()
		case <-time.After(d):
		}
	}
	c := cpu{wall: time.Since(t0), relay: benchenv.ProcessCPU(pid) - r0}
	after, err := backendCPU(ctx, db)
	if err != nil {
		return cpu{}, err
	}
	for p, t := range after {
		c.backends += t - before[p]
	}
	return c, nil
}

// backendCPU returns the CPU time of each of the relay's PostgreSQL
// backends, by pid.
func backendCPU(ctx context.Context, db *postgres.DB) (map[int]time.Duration, error) {
	rows, err := db.Pool.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, appName)
	if err != nil {
		return nil, err
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, err
	}
	out := map[int]time.Duration{}
	for _, p := range pids {
		out[int(p)] = benchenv.ProcessCPU(int(p))
	}
	return out, nil
}

// activeWindow has each active tenant write a product every 1/o.rate
// seconds for o.window, and measures the time from each write's return
// (its commit) to its event on NATS, and the relay's CPU meanwhile.
func activeWindow(ctx context.Context, db *postgres.DB, nc *nats.Conn, pid int, active []string, o idleOptions) ([]time.Duration, int, cpu, error) {
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	sub, err := nc.Subscribe("tenant.>", func(m *nats.Msg) {
		t := time.Now()
		var ev events.Envelope
		if json.Unmarshal(m.Data, &ev) == nil {
			mu.Lock()
			arrived[ev.AggregateID] = t
			mu.Unlock()
		}
	})
	if err != nil {
		return nil, 0, cpu{}, err
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		return nil, 0, cpu{}, err
	}
	cat, err := catalog.New(catalog.Deps{Store: db})
	if err != nil {
		return nil, 0, cpu{}, err
	}
	committed := map[string]time.Time{}
	var werr error
	write := func(wctx context.Context) {
		var wg sync.WaitGroup
		every := time.Duration(float64(time.Second) / o.rate)
		for k, s := range active {
			wg.Go(func() {
				// Spread the tenants' writes over the period.
				next := time.Now().Add(every * time.Duration(k) / time.Duration(len(active)))
				for i := 0; ; i++ {
					select {
					case <-wctx.Done():
						return
					case <-time.After(time.Until(next)):
					}
					next = next.Add(every)
					sku, name, price, cur := fmt.Sprintf("S-%d", i), fmt.Sprintf("Product %d", i), "1.00", "EUR"
					p, err := cat.Create(ctx, s, domain.ProductPatch{SKU: &sku, Name: &name, Price: &price, Currency: &cur}, catalog.Meta{})
					t := time.Now()
					mu.Lock()
					if err != nil {
						werr = errors.Join(werr, err)
					} else {
						committed[p.ID] = t
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	c, err := cpuOver(ctx, db, pid, o.window, write)
	if err != nil {
		return nil, 0, cpu{}, err
	}
	if werr != nil {
		return nil, 0, cpu{}, werr
	}
	// The last events may still be on their way.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := 0
		for id := range committed {
			if _, ok := arrived[id]; ok {
				n++
			}
		}
		mu.Unlock()
		if n == len(committed) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	var lat []time.Duration
	missing := 0
	for id, t := range committed {
		a, ok := arrived[id]
		if !ok {
			missing++
			continue
		}
		lat = append(lat, a.Sub(t))
	}
	if len(lat) == 0 {
		return nil, 0, cpu{}, errors.New("no event arrived")
	}
	return lat, missing, c, nil
}

func pctD(sorted []time.Duration, p int) time.Duration {
	return benchenv.Percentile(sorted, float64(p)).Round(10 * time.Microsecond)
}

//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/tenancy"
)

// report is what a run did and found.
type report struct {
	o         options
	loadStart time.Time
	loadTook  time.Duration
	drainTook time.Duration
	windows   []*window
	statuses  string
	skipped   int64
	committed int
	created   int
	inStream  int
	products  int
	items     int
	pages     int
	stored    int
	received  int
	connects  int
	crashes   map[string]int
	maxRSS    map[string]int64
	restarts  map[string]int
	// PgBouncer server connections the PostgreSQL faults ended (-pooler)
	poolerKills int
	moves       []tenancy.MoveResult
	findings    findings
	err         error // the run stopped early
}

func run(ctx context.Context, o options) (*report, error) {
	rep := &report{o: o, crashes: map[string]int{}, maxRSS: map[string]int64{}, restarts: map[string]int{}}
	logf("setting up: %d tenants, %d nats node(s), pooler mode %t", o.tenants, o.natsNodes, o.pooler)
	s, err := setup(ctx, o)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	o.clusters = len(s.DB().Clusters())
	rep.o = o
	nc, err := events.Connect(s.NATSURL(), "soak")
	if err != nil {
		return nil, err
	}
	s.nc = nc
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	mon := &monitor{s: s, js: js}

	// The supervisor restarts a role that died by itself (and counts it),
	// and samples every role's memory.
	supCtx, stopSup := context.WithCancel(ctx)
	var supWG sync.WaitGroup
	supWG.Go(func() { supervise(supCtx, s, rep) })
	defer func() { stopSup(); supWG.Wait() }()

	l := newLoad(s)
	lisCtx, stopListeners := context.WithCancel(ctx)
	var lisWG sync.WaitGroup
	for _, w := range l.listeners {
		lisWG.Go(func() { w.run(lisCtx, s.push) })
	}
	defer func() { stopListeners(); lisWG.Wait() }()
	// Let the sockets open before the first write, so that every
	// notification has a live listener or a catch-up to reach it.
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		open := 0
		for _, w := range l.listeners {
			w.mu.Lock()
			if w.connects > 0 {
				open++
			}
			w.mu.Unlock()
		}
		if open == len(l.listeners) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	logf("load for %s: %.0f writes/s, %.0f reads/s, %d listeners", o.duration, o.rate, o.readRate, len(l.listeners))
	loadStart := time.Now()
	rep.loadStart = loadStart
	loadCtx, stopLoad := context.WithTimeout(ctx, o.duration)
	var loadWG sync.WaitGroup
	loadWG.Go(func() { l.paced(loadCtx, o.rate, o.inflight, l.write) })
	loadWG.Go(func() { l.paced(loadCtx, o.readRate, o.inflight, l.read) })
	rep.windows = schedule(ctx, s, mon, o, loadStart)
	<-loadCtx.Done()
	stopLoad()
	loadWG.Wait()
	rep.loadTook = time.Since(loadStart)
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}

	logf("load done; draining the pipeline")
	f := &rep.findings
	if rep.drainTook, err = mon.drain(ctx, o.drainLimit); err != nil {
		f.fail("%v", err)
	}
	logf("checking")
	all := map[string]committed{}
	for _, t := range s.tenants {
		c, err := s.committed(ctx, t.schema)
		if err != nil {
			return rep, fmt.Errorf("audit log of %s: %w", t.schema, err)
		}
		all[t.schema] = c
		rep.committed += len(c.events)
		rep.created += len(c.created)
	}
	// Right after a cluster node came back the stream's leader may still
	// be settling: retry the read a while.
	for attempt := 1; ; attempt++ {
		var sf findings
		rep.inStream, err = s.checkStream(ctx, js, all, &sf)
		if err == nil {
			f.problems = append(f.problems, sf.problems...)
			break
		}
		if attempt == 10 {
			return rep, fmt.Errorf("read the stream: %w", err)
		}
		logf("read the stream: %v; retrying", err)
		if err := sleep(ctx, 3*time.Second); err != nil {
			return rep, err
		}
	}
	for _, t := range s.tenants {
		if err := s.checkIndex(ctx, t.schema, f); err != nil {
			return rep, fmt.Errorf("check index of %s: %w", t.schema, err)
		}
		vs, err := s.productVersions(ctx, t.schema)
		if err != nil {
			return rep, err
		}
		rep.products += len(vs)
	}
	if rep.items, rep.pages, err = s.checkCache(ctx, f); err != nil {
		return rep, fmt.Errorf("check the cache: %w", err)
	}
	if rep.stored, rep.received, err = s.checkNotifications(ctx, l, all, f); err != nil {
		return rep, fmt.Errorf("check notifications: %w", err)
	}
	for _, w := range l.listeners {
		w.mu.Lock()
		rep.connects += w.connects
		for code, n := range w.refused {
			if code != 503 {
				f.fail("websocket %s: upgrade refused with %d ×%d", w.u.Email, code, n)
			}
		}
		w.mu.Unlock()
	}
	l.checkAnswers(rep.windows, o.grace, f)
	rep.statuses = l.statusTable()
	rep.skipped = l.skipped.Load()

	stopSup()
	supWG.Wait()
	s.mu.Lock()
	for name := range s.roles {
		rep.restarts[name] = s.kills[name]
		if s.maxRSS[name] > o.maxRSS {
			f.fail("%s used %d MiB of memory, bound %d MiB", name, s.maxRSS[name]>>20, o.maxRSS>>20)
		}
		rep.maxRSS[name] = s.maxRSS[name]
	}
	rep.poolerKills = s.poolerKills
	rep.moves = s.moves
	s.mu.Unlock()
	for name, n := range rep.crashes {
		f.fail("%s exited by itself %d times", name, n)
	}
	for _, w := range rep.windows {
		if w.err != nil {
			f.fail("fault %q could not be injected: %v", w.fault, w.err)
		}
		if w.catchUp < 0 {
			f.fail("fault %q at %s: the pipeline did not catch up within %s", w.fault, w.start.Format("15:04:05"), o.catchUpLimit)
		}
	}
	if rep.created == 0 {
		f.fail("no product was created: the load did not run")
	}
	return rep, nil
}

// supervise restarts roles that exited without being killed by a fault,
// and samples their resident memory, every half second.
func supervise(ctx context.Context, s *soak, rep *report) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for name, p := range s.roles {
			if rss := residentBytes(p.PID()); rss > 0 {
				s.mu.Lock()
				s.maxRSS[name] = max(s.maxRSS[name], rss)
				s.mu.Unlock()
			}
			if p.Crashed() {
				rep.crashes[name]++
				logf("%s exited by itself; restarting it", name)
				if err := p.Start(ctx); err != nil {
					logf("restart %s: %v", name, err)
				}
			}
		}
	}
}

// residentBytes reads VmRSS of a process (0 if it is gone).
func residentBytes(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func (r *report) String() string {
	var b strings.Builder
	o := r.o
	fmt.Fprintf(&b, "\n# Soak report\n\n")
	fmt.Fprintf(&b, "%d tenants, %d staff WebSocket listeners; %s of load at %.0f writes/s and %.0f reads/s; %d nats-server node(s); outages of %s; each fault ×%d.\n\n",
		o.tenants, o.tenants*o.staff, r.loadTook.Round(time.Second), o.rate, o.readRate, o.natsNodes, o.outage, o.repeat)
	if o.pooler {
		fmt.Fprintf(&b, "Every role through PgBouncer in transaction mode (session work direct); the PostgreSQL faults ended %d of PgBouncer's server connections.\n\n", r.poolerKills)
	}
	b.WriteString(movesReport(r.moves))
	fmt.Fprintf(&b, "## Faults (%d)\n\nAt: since the load started; took: from the break to the repair.\n\n| # | fault | at | took | catch-up |\n| --- | --- | --- | --- | --- |\n", len(r.windows))
	byKind := map[string][]time.Duration{}
	var kinds []string
	var all []time.Duration
	for i, w := range r.windows {
		cu := "not caught up"
		if w.catchUp >= 0 {
			cu = w.catchUp.Round(10 * time.Millisecond).String()
			if byKind[w.fault] == nil {
				kinds = append(kinds, w.fault)
			}
			byKind[w.fault] = append(byKind[w.fault], w.catchUp)
			all = append(all, w.catchUp)
		}
		fmt.Fprintf(&b, "| %d | %s | +%s | %s | %s |\n", i+1, w.fault, w.start.Sub(r.loadStart).Round(time.Second),
			w.healed.Sub(w.start).Round(10*time.Millisecond), cu)
	}
	fmt.Fprintf(&b, "\nCatch-up is the time from the repair until every write committed before it was published and handled by the indexer, cache invalidator and notifier.\n\n")
	fmt.Fprintf(&b, "| fault | n | max catch-up | p99 catch-up |\n| --- | --- | --- | --- |\n")
	for _, k := range kinds {
		mx, p99 := durationStats(byKind[k])
		fmt.Fprintf(&b, "| %s | %d | %s | %s |\n", k, len(byKind[k]), mx.Round(10*time.Millisecond), p99.Round(10*time.Millisecond))
	}
	mx, p99 := durationStats(all)
	fmt.Fprintf(&b, "| all | %d | %s | %s |\n", len(all), mx.Round(10*time.Millisecond), p99.Round(10*time.Millisecond))
	fmt.Fprintf(&b, "\n## Data\n\n")
	fmt.Fprintf(&b, "- events committed: %d (%d products created); in the stream: %d distinct; pipeline drained %s after the load\n",
		r.committed, r.created, r.inStream, r.drainTook.Round(10*time.Millisecond))
	fmt.Fprintf(&b, "- products in the databases at the end: %d, each compared with its search document\n", r.products)
	fmt.Fprintf(&b, "- cache entries compared with the database: %d products, %d list pages of the current generation\n", r.items, r.pages)
	fmt.Fprintf(&b, "- notifications stored: %d; received over WebSocket: %d in %d connections\n", r.stored, r.received, r.connects)
	fmt.Fprintf(&b, "- writes skipped because %d were in flight: %d\n", o.inflight, r.skipped)
	fmt.Fprintf(&b, "\nAnswers by operation and status (no-answer: the API process was down):\n\n```\n%s```\n", r.statuses)
	fmt.Fprintf(&b, "\n## Processes\n\n| role | kills | max RSS |\n| --- | --- | --- |\n")
	for _, name := range roleNames {
		fmt.Fprintf(&b, "| %s | %d | %d MiB |\n", name, r.restarts[name], r.maxRSS[name]>>20)
	}
	fmt.Fprintf(&b, "\n## Result\n\n")
	if r.err != nil {
		fmt.Fprintf(&b, "ERROR: the run stopped before its checks were done: %v\n", r.err)
	} else if len(r.findings.problems) == 0 {
		fmt.Fprintf(&b, "PASS: nothing lost, duplicated or leaked.\n")
	} else {
		fmt.Fprintf(&b, "FAIL: %d problems\n\n", len(r.findings.problems))
		for _, p := range r.findings.problems {
			fmt.Fprintf(&b, "- %s\n", p)
		}
	}
	return b.String()
}

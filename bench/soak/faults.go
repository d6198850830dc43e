//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/bench/internal/benchenv"
	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/postgres"
)

// fault is one injected failure: it breaks something, waits if it must,
// and repairs it. Dependency faults make 503s legitimate while they last.
type fault struct {
	key        string // what -skip names
	name       string
	dependency bool
	inject     func(ctx context.Context, s *soak) error
}

// window is when a fault was in force, and how long the pipeline took to
// catch up with everything written before it was repaired.
type window struct {
	fault         string
	dependency    bool
	start, healed time.Time
	catchUp       time.Duration // -1: not caught up in time
	err           error
}

func killRole(name string) fault {
	return fault{key: name, name: "kill -9 " + name, inject: func(ctx context.Context, s *soak) error {
		p := s.roles[name]
		s.mu.Lock()
		s.kills[name]++
		s.mu.Unlock()
		p.Kill()
		// A moment down, as a supervisor's restart would take.
		time.Sleep(time.Second)
		return p.Start(ctx)
	}}
}

// faults returns the schedule's kinds of fault.
func faults(o options) []fault {
	fs := []fault{
		killRole("relay"), killRole("indexer"), killRole("cache"), killRole("notifier"),
		killRole("push"), killRole("api"),
		{key: "nats", name: "restart nats-server", dependency: true, inject: restartNATS},
		{key: "elasticsearch", name: fmt.Sprintf("stop elasticsearch %s", o.outage), dependency: true, inject: stopElasticsearch},
		{key: "redis", name: fmt.Sprintf("stop redis %s", o.outage), dependency: true, inject: stopRedis},
		{key: "postgres", name: "pg_terminate_backend", dependency: true, inject: terminateBackends},
	}
	if o.clusters > 1 {
		fs = append(fs, fault{key: "move", name: fmt.Sprintf("move %d tenants to another cluster", movesPerFault),
			dependency: true, inject: moveTenants})
	}
	skip := strings.Split(o.skip, ",")
	return slices.DeleteFunc(fs, func(f fault) bool { return slices.Contains(skip, f.key) })
}

// restartNATS restarts the single node gracefully, or kills -9 one node
// of a cluster (each time the next one) and restarts it 10 s later.
func restartNATS(ctx context.Context, s *soak) error {
	nodes := s.NATS()
	if len(nodes) == 1 {
		nodes[0].Stop()
		time.Sleep(2 * time.Second)
		return nodes[0].Start(ctx)
	}
	s.mu.Lock()
	v := nodes[s.natsVictim%len(nodes)]
	s.natsVictim++
	s.mu.Unlock()
	v.Kill()
	time.Sleep(10 * time.Second)
	return v.Start(ctx)
}

func stopRedis(ctx context.Context, s *soak) error {
	s.Redis().Stop()
	if err := sleep(ctx, s.o.outage); err != nil {
		return errors.Join(err, s.Redis().Start(context.Background()))
	}
	return s.Redis().Start(ctx)
}

// stopElasticsearch stops the shared Elasticsearch's process with SIGSTOP
// and continues it after the outage: clients see it hang, not refuse, the
// harder case (every call must time out). Its data and other users' indices
// are untouched.
func stopElasticsearch(ctx context.Context, s *soak) error {
	pid, err := esPID(ctx, s.ElasticsearchURL())
	if err != nil {
		return err
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	if err := proc.Signal(syscall.SIGSTOP); err != nil {
		return fmt.Errorf("SIGSTOP elasticsearch (pid %d): %w", pid, err)
	}
	// Whatever happens, Elasticsearch is continued.
	defer func() { _ = proc.Signal(syscall.SIGCONT) }()
	s.Defer(func() { _ = proc.Signal(syscall.SIGCONT) })
	return sleep(ctx, s.o.outage)
}

// esPID asks Elasticsearch for the process id of the local node.
func esPID(ctx context.Context, base string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/_nodes/_local/process", nil)
	if err != nil {
		return 0, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("elasticsearch process id: %w", err)
	}
	defer res.Body.Close()
	var out struct {
		Nodes map[string]struct {
			Process struct {
				ID int `json:"id"`
			} `json:"process"`
		} `json:"nodes"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return 0, fmt.Errorf("elasticsearch process id: %w", err)
	}
	for _, n := range out.Nodes {
		if n.Process.ID > 0 {
			return n.Process.ID, nil
		}
	}
	return 0, errors.New("elasticsearch did not say its process id")
}

// terminateBackends ends every PostgreSQL connection to the soak's
// database (the roles' pools reconnect). In pooler mode these are also
// PgBouncer's server connections: PgBouncer keeps its clients, fails the
// transactions in flight and opens new server connections. The fault then
// fails unless it hit at least one of them, proof that the roles' work
// does go through the pooler.
func terminateBackends(ctx context.Context, s *soak) error {
	var pooled map[int]bool
	if s.o.pooler {
		var err error
		if pooled, err = poolerServerPIDs(ctx, s.DatabaseName()); err != nil {
			return err
		}
	}
	conn, err := pgx.Connect(ctx, s.AdminURL())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid()`, s.DatabaseName())
	if err != nil {
		return fmt.Errorf("pg_terminate_backend: %w", err)
	}
	var pids []int32
	var pid int32
	var ended bool
	_, err = pgx.ForEachRow(rows, []any{&pid, &ended}, func() error {
		if ended {
			pids = append(pids, pid)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pg_terminate_backend: %w", err)
	}
	if !s.o.pooler {
		logf("terminated %d connections", len(pids))
		return nil
	}
	viaPooler := 0
	for _, pid := range pids {
		if pooled[int(pid)] {
			viaPooler++
		}
	}
	logf("terminated %d connections, %d of them PgBouncer's server connections", len(pids), viaPooler)
	s.mu.Lock()
	s.poolerKills += viaPooler
	s.mu.Unlock()
	if viaPooler == 0 {
		return fmt.Errorf("none of the %d connections ended was PgBouncer's (it held %d for the database): the roles do not go through the pooler", len(pids), len(pooled))
	}
	return nil
}

// poolerServerPIDs asks PgBouncer's admin console (SHOW SERVERS, open to
// its stats_users) for the backend pids of its server connections to the
// database.
func poolerServerPIDs(ctx context.Context, database string) (map[int]bool, error) {
	u, err := url.Parse(os.Getenv("DATABASE_POOLER_URL"))
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_POOLER_URL: %w", err)
	}
	u.Path = "/pgbouncer"
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("pgbouncer admin console: %w", err)
	}
	// The console speaks only the simple query protocol.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgbouncer admin console: %w", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SHOW SERVERS")
	if err != nil {
		return nil, fmt.Errorf("pgbouncer SHOW SERVERS: %w", err)
	}
	servers, err := pgx.CollectRows(rows, pgx.RowToMap)
	if err != nil {
		return nil, fmt.Errorf("pgbouncer SHOW SERVERS: %w", err)
	}
	pids := map[int]bool{}
	for _, sv := range servers {
		if fmt.Sprint(sv["database"]) != database {
			continue
		}
		pid, err := strconv.Atoi(fmt.Sprint(sv["remote_pid"]))
		if err == nil && pid > 0 {
			pids[pid] = true
		}
	}
	return pids, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// schedule runs every fault o.repeat times, one after the other, spread
// over the load's duration, and measures each one's catch-up.
func schedule(ctx context.Context, s *soak, mon *monitor, o options, loadStart time.Time) []*window {
	kinds := faults(o)
	var plan []fault
	for range o.repeat {
		plan = append(plan, kinds...)
	}
	if len(plan) == 0 {
		return nil
	}
	// Leave the first and last tenth of the run fault-free: a warm start
	// and a clean finish.
	span := o.duration * 8 / 10
	step := span / time.Duration(len(plan))
	var (
		ws []*window
		wg sync.WaitGroup
	)
	defer wg.Wait()
	for i, f := range plan {
		at := loadStart.Add(o.duration/10 + time.Duration(i)*step)
		if err := sleep(ctx, time.Until(at)); err != nil {
			return ws
		}
		w := &window{fault: f.name, dependency: f.dependency, start: time.Now()}
		logf("fault %d/%d: %s", i+1, len(plan), f.name)
		w.err = f.inject(ctx, s)
		w.healed = time.Now()
		if w.err != nil {
			logf("fault %s: %v", f.name, w.err)
		}
		ws = append(ws, w)
		wg.Go(func() { w.catchUp = mon.catchUp(ctx, w.healed, o.catchUpLimit) })
	}
	return ws
}

// monitor watches the pipeline: the relay's backlog in the database and
// the consumers' progress in the stream.
type monitor struct {
	s  *soak
	js jetstream.JetStream
}

var durables = []string{events.ConsumerIndexer, events.ConsumerCache, events.ConsumerNotifier}

// catchUp returns how long after healed every write committed by then was
// published and handled by every consumer (-1 past limit).
func (m *monitor) catchUp(ctx context.Context, healed time.Time, limit time.Duration) time.Duration {
	var target uint64 // the stream sequence that covers every write up to healed
	for ctx.Err() == nil && time.Since(healed) < limit {
		if target == 0 {
			n, err := m.unpublishedBefore(ctx, healed)
			if err == nil && n == 0 {
				if si, err := m.streamInfo(ctx); err == nil {
					target = max(si.State.LastSeq, 1)
				}
			}
		}
		if target != 0 && m.consumersPast(ctx, target) {
			return time.Since(healed)
		}
		if sleep(ctx, 200*time.Millisecond) != nil {
			break
		}
	}
	return -1
}

func (m *monitor) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := m.js.Stream(ctx, events.StreamName)
	if err != nil {
		return nil, err
	}
	return st.CachedInfo(), nil
}

// consumersPast reports whether every durable has acknowledged everything
// up to seq.
func (m *monitor) consumersPast(ctx context.Context, seq uint64) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, d := range durables {
		c, err := m.js.Consumer(ctx, events.StreamName, d)
		if err != nil {
			return false
		}
		ci := c.CachedInfo()
		if ci.AckFloor.Stream < seq && (ci.NumPending > 0 || ci.NumAckPending > 0) {
			return false
		}
	}
	return true
}

// unpublishedBefore counts outbox rows committed by t and not yet
// published, over every tenant.
func (m *monitor) unpublishedBefore(ctx context.Context, t time.Time) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	// One query per cluster, over the tenants it holds now.
	parts := map[*postgres.DB][]string{}
	for _, tn := range m.s.tenants {
		on, err := m.s.onTenant(ctx, tn.schema)
		if err != nil {
			return 0, err
		}
		parts[on] = append(parts[on], fmt.Sprintf("SELECT count(*) AS n FROM %s.outbox WHERE published_at IS NULL AND occurred_at <= $1",
			pgx.Identifier{tn.schema}.Sanitize()))
	}
	total := 0
	for on, p := range parts {
		var n int
		if err := on.Pool.QueryRow(ctx, "SELECT coalesce(sum(n), 0)::int FROM ("+strings.Join(p, " UNION ALL ")+") x", t).Scan(&n); err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// durationStats is max and nearest-rank p99 of the measured catch-ups.
func durationStats(ds []time.Duration) (maxD, p99 time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Sorted(slices.Values(ds))
	return s[len(s)-1], benchenv.Percentile(s, 99)
}

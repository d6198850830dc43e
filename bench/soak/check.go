//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/schema"
)

// The soak's event log: every committed outbox row of every tenant, in a
// table of the soak's own, written by a trigger in the writing
// transaction (the relay deletes outbox rows once published, and the end
// checks need every event ever committed). The table and its function are
// in a schema of their own on every cluster, never in a tenant's schema,
// so that a tenant's move (which copies exactly what the migrations make)
// neither carries nor misses them; the trigger on the tenant's outbox is
// made by soakMigrations, which a move applies on the target too.
const eventLogDDL = `
CREATE SCHEMA IF NOT EXISTS soak_log;
CREATE TABLE IF NOT EXISTS soak_log.outbox_log (
    schema_name text NOT NULL,
    event_id    uuid NOT NULL,
    event_type  text NOT NULL,
    product_id  uuid NOT NULL,
    PRIMARY KEY (schema_name, event_id)
);
CREATE OR REPLACE FUNCTION soak_log.record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO soak_log.outbox_log VALUES (TG_TABLE_SCHEMA, NEW.event_id, NEW.event_type, NEW.aggregate_id);
    RETURN NULL;
END $$;`

// eventLogTrigger is the tenant migration that hooks the log to a
// tenant's outbox.
const eventLogTrigger = `-- +goose Up
CREATE OR REPLACE TRIGGER soak_outbox_log AFTER INSERT ON outbox
    FOR EACH ROW EXECUTE FUNCTION soak_log.record();

-- +goose Down
DROP TRIGGER soak_outbox_log ON outbox;
`

// soakMigrations are the tenant migrations plus the event log's trigger,
// numbered past any real one.
func soakMigrations() fs.FS {
	m := fstest.MapFS{"99000_soak_outbox_log.sql": {Data: []byte(eventLogTrigger)}}
	entries, err := fs.ReadDir(schema.Tenant, ".")
	if err != nil {
		panic(err) // embedded: cannot fail
	}
	for _, e := range entries {
		b, err := fs.ReadFile(schema.Tenant, e.Name())
		if err != nil {
			panic(err)
		}
		m[e.Name()] = &fstest.MapFile{Data: b}
	}
	return m
}

// makeEventLogs makes the log's table and function on every cluster.
func makeEventLogs(ctx context.Context, db *postgres.DB) error {
	for _, c := range db.Clusters() {
		if _, err := c.DB.Pool.Exec(ctx, eventLogDDL); err != nil {
			return fmt.Errorf("event log on %s: %w", c.Name, err)
		}
	}
	return nil
}

// auditLog hooks the tenant's outbox to the event log, on its cluster.
func (s *soak) auditLog(ctx context.Context, schemaName string) error {
	on, name, err := s.DB().ForTenant(ctx, schemaName)
	if err != nil {
		return err
	}
	url := s.DatabaseURL()
	if on != s.DB() {
		for _, c := range s.DB().Clusters() {
			if c.Name == name {
				url = c.DirectURL
			}
		}
	}
	r, err := schema.NewRunner(url, soakMigrations())
	if err != nil {
		return err
	}
	if _, err := r.MigrateTenant(ctx, schemaName); err != nil {
		return fmt.Errorf("audit log of %s: %w", schemaName, err)
	}
	return nil
}

// onTenant returns the pool of the cluster that holds the tenant now.
func (s *soak) onTenant(ctx context.Context, schemaName string) (*postgres.DB, error) {
	on, _, err := s.DB().ForTenant(ctx, schemaName)
	return on, err
}

// findings collects what the end checks found wrong.
type findings struct {
	problems []string
}

func (f *findings) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	f.problems = append(f.problems, msg)
	logf("FAIL: %s", msg)
}

// drain waits until the outbox is empty and every consumer has handled
// everything in the stream.
func (m *monitor) drain(ctx context.Context, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		n, err := m.unpublishedBefore(ctx, time.Now().Add(time.Hour))
		if err == nil && n == 0 {
			if si, err := m.streamInfo(ctx); err == nil && m.consumersDone(ctx, si.State.LastSeq) {
				return time.Since(start), nil
			}
		}
		if time.Since(start) > limit {
			return time.Since(start), fmt.Errorf("pipeline not drained after %s (outbox rows left: %d, %v)", limit, n, err)
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return time.Since(start), err
		}
	}
}

func (m *monitor) consumersDone(ctx context.Context, last uint64) bool {
	for _, d := range durables {
		c, err := m.js.Consumer(ctx, events.StreamName, d)
		if err != nil {
			return false
		}
		ci := c.CachedInfo()
		if ci.NumPending > 0 || ci.NumAckPending > 0 || ci.Delivered.Stream < last {
			return false
		}
	}
	return true
}

// committed is what the audit log says was written in one tenant.
type committed struct {
	events  map[string]string // event id -> type
	created map[string]bool   // event ids of product.created
}

func (s *soak) committed(ctx context.Context, schemaName string) (committed, error) {
	c := committed{events: map[string]string{}, created: map[string]bool{}}
	// A tenant that moved has its events logged on every cluster it was
	// on.
	for _, cl := range s.DB().Clusters() {
		if err := s.committedOn(ctx, cl.DB, schemaName, &c); err != nil {
			return c, fmt.Errorf("%s: %w", cl.Name, err)
		}
	}
	return c, nil
}

func (s *soak) committedOn(ctx context.Context, db *postgres.DB, schemaName string, c *committed) error {
	rows, err := db.Pool.Query(ctx, "SELECT event_id::text, event_type FROM soak_log.outbox_log WHERE schema_name = $1", schemaName)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, typ string
		if err := rows.Scan(&id, &typ); err != nil {
			return err
		}
		c.events[id] = typ
		if typ == events.ProductCreated {
			c.created[id] = true
		}
	}
	return rows.Err()
}

// checkStream reads the whole stream: each committed event is there
// exactly once, and nothing else; the dead-letter stream is empty.
func (s *soak) checkStream(ctx context.Context, js jetstream.JetStream, all map[string]committed, f *findings) (int, error) {
	want := map[string]string{} // event id -> subject prefix (its tenant)
	for schemaName, c := range all {
		for id := range c.events {
			want[id] = "tenant." + schemaName + "."
		}
	}
	st, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		return 0, err
	}
	last := st.CachedInfo().State.LastSeq
	seen := map[string]int{}
	if last > 0 {
		cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
		if err != nil {
			return 0, err
		}
		for n := uint64(0); n < last; {
			batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				return 0, err
			}
			got := 0
			for msg := range batch.Messages() {
				got++
				md, err := msg.Metadata()
				if err != nil {
					return 0, err
				}
				n = md.Sequence.Stream
				id := msg.Headers().Get(nats.MsgIdHdr)
				seen[id]++
				if p, ok := want[id]; !ok {
					f.fail("stream: event %s (%s) was never committed", id, msg.Subject())
				} else if !strings.HasPrefix(msg.Subject(), p) {
					f.fail("stream: event %s on %s, not under %s", id, msg.Subject(), p)
				}
			}
			if batch.Error() != nil {
				return 0, batch.Error()
			}
			if got == 0 {
				return 0, fmt.Errorf("stream: read stalled at %d of %d", n, last)
			}
		}
	}
	dups, missing := 0, 0
	for id, n := range seen {
		if n > 1 {
			dups++
			if dups <= 5 {
				f.fail("stream: event %s is there %d times", id, n)
			}
		}
	}
	for id := range want {
		if seen[id] == 0 {
			missing++
			if missing <= 5 {
				f.fail("stream: committed event %s is missing", id)
			}
		}
	}
	if dups > 5 || missing > 5 {
		f.fail("stream: %d duplicated and %d missing events in all", dups, missing)
	}
	dlq, err := js.Stream(ctx, events.DLQStream)
	if err != nil {
		return 0, fmt.Errorf("dead-letter stream: %w", err)
	}
	if n := dlq.CachedInfo().State.Msgs; n > 0 {
		f.fail("dead-letter stream holds %d messages", n)
	}
	return len(seen), nil
}

// checkIndex compares each tenant's search index with its products table.
func (s *soak) checkIndex(ctx context.Context, schemaName string, f *findings) error {
	db, err := s.productVersions(ctx, schemaName)
	if err != nil {
		return err
	}
	if err := s.Search().Refresh(ctx, schemaName); err != nil {
		return err
	}
	idx := map[string]int64{}
	err = s.Search().EachVersion(ctx, schemaName, func(ids []string, versions []int64) error {
		for i, id := range ids {
			idx[id] = versions[i]
		}
		return nil
	})
	if err != nil {
		return err
	}
	bad := 0
	for id, v := range db {
		if iv, ok := idx[id]; !ok {
			bad++
			f.fail("index %s: product %s (version %d) is missing", schemaName, id, v)
		} else if iv != v {
			bad++
			f.fail("index %s: product %s has version %d, the database %d", schemaName, id, iv, v)
		}
		if bad > 5 {
			return nil
		}
	}
	for id, v := range idx {
		if _, ok := db[id]; !ok {
			f.fail("index %s: document %s (version %d) is not in the database", schemaName, id, v)
			if bad++; bad > 5 {
				return nil
			}
		}
	}
	return nil
}

func (s *soak) productVersions(ctx context.Context, schemaName string) (map[string]int64, error) {
	on, err := s.onTenant(ctx, schemaName)
	if err != nil {
		return nil, err
	}
	rows, err := on.Pool.Query(ctx, fmt.Sprintf("SELECT id::text, version FROM %s.products", pgx.Identifier{schemaName}.Sanitize()))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var v int64
		if err := rows.Scan(&id, &v); err != nil {
			return nil, err
		}
		out[id] = v
	}
	return out, rows.Err()
}

// cachedProduct and cachedPage are the cache's stored forms (pkg/cache).
type cachedProduct struct {
	ID          string    `json:"id"`
	SKU         string    `json:"sku"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Price       string    `json:"price"`
	Currency    string    `json:"currency"`
	Stock       int64     `json:"stock"`
	Version     int64     `json:"version"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

type cachedPage struct {
	Products []cachedProduct `json:"p"`
	Next     string          `json:"n"`
}

// checkCache compares every cached product, and every list page cached
// under a tenant's current generation, with the database.
func (s *soak) checkCache(ctx context.Context, f *findings) (items, pages int, err error) {
	rdb := redis.NewClient(&redis.Options{Addr: s.Redis().Addr()})
	defer rdb.Close()
	keys := cache.Keys{} // the default prefix, which stack.env sets
	iter := rdb.Scan(ctx, 0, keys.Prefix()+":*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		schemaName, rest, ok := keys.Split(key)
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(rest, "product:") && !strings.HasSuffix(rest, ":gen"):
			items++
			id := strings.TrimPrefix(rest, "product:")
			raw, err := rdb.Get(ctx, key).Result()
			if errors.Is(err, redis.Nil) {
				continue
			} else if err != nil {
				return items, pages, err
			}
			var cp cachedProduct
			if err := json.Unmarshal([]byte(raw), &cp); err != nil {
				f.fail("cache %s: undecodable: %v", key, err)
				continue
			}
			p, err := s.DB().GetProduct(ctx, schemaName, id)
			if domain.ErrorCode(err) == domain.ENOTFOUND {
				f.fail("cache %s: product deleted in the database, still cached (version %d)", key, cp.Version)
				continue
			} else if err != nil {
				return items, pages, err
			}
			if !sameProduct(p, domain.Product(cp)) {
				f.fail("cache %s: cached version %d, database version %d", key, cp.Version, p.Version)
			}
		case strings.HasPrefix(rest, "products:g"):
			// products:g<gen>:<ordering>:<limit>:<cursor>
			parts := strings.SplitN(strings.TrimPrefix(rest, "products:g"), ":", 4)
			if len(parts) != 4 {
				continue
			}
			cur, err := rdb.Get(ctx, keys.ListGen(schemaName)).Result()
			if errors.Is(err, redis.Nil) {
				cur = "0"
			} else if err != nil {
				return items, pages, err
			}
			if parts[0] != cur {
				continue // an old generation: no reader looks there
			}
			pages++
			limit, _ := strconv.Atoi(parts[2])
			raw, err := rdb.Get(ctx, key).Result()
			if errors.Is(err, redis.Nil) {
				continue
			} else if err != nil {
				return items, pages, err
			}
			var cp cachedPage
			if err := json.Unmarshal([]byte(raw), &cp); err != nil {
				f.fail("cache %s: undecodable: %v", key, err)
				continue
			}
			ps, next, err := s.DB().ListProducts(ctx, schemaName, postgres.ListParams{Limit: limit, Ordering: parts[1], Cursor: parts[3]})
			if err != nil {
				return items, pages, err
			}
			if next != cp.Next || len(ps) != len(cp.Products) {
				f.fail("cache %s: page of %d products (next %q), the database has %d (next %q)", key, len(cp.Products), cp.Next, len(ps), next)
				continue
			}
			for i := range ps {
				if !sameProduct(ps[i], domain.Product(cp.Products[i])) {
					f.fail("cache %s: row %d is %s v%d, the database has %s v%d", key, i, cp.Products[i].ID, cp.Products[i].Version, ps[i].ID, ps[i].Version)
					break
				}
			}
		}
	}
	return items, pages, iter.Err()
}

func sameProduct(a, b domain.Product) bool {
	return a.ID == b.ID && a.Version == b.Version && a.SKU == b.SKU && a.Name == b.Name &&
		a.Price == b.Price && a.Stock == b.Stock && a.UpdatedAt.Equal(b.UpdatedAt)
}

// checkNotifications: every staff user holds exactly one notification per
// created product, and what their WebSocket received is exactly that.
func (s *soak) checkNotifications(ctx context.Context, l *load, all map[string]committed, f *findings) (stored, received int, err error) {
	byUser := map[string]map[int64]bool{} // user id -> notification ids in the database
	for _, t := range s.tenants {
		c := all[t.schema]
		on, err := s.onTenant(ctx, t.schema)
		if err != nil {
			return stored, received, err
		}
		for _, u := range t.staff {
			rows, err := on.Pool.Query(ctx, fmt.Sprintf("SELECT id, event_id::text FROM %s.notifications WHERE user_id = $1",
				pgx.Identifier{t.schema}.Sanitize()), u.ID)
			if err != nil {
				return stored, received, err
			}
			ids := map[int64]bool{}
			perEvent := map[string]int{}
			for rows.Next() {
				var id int64
				var ev string
				if err := rows.Scan(&id, &ev); err != nil {
					rows.Close()
					return stored, received, err
				}
				ids[id] = true
				perEvent[ev]++
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return stored, received, err
			}
			stored += len(ids)
			byUser[u.ID] = ids
			bad := 0
			for ev := range c.created {
				if n := perEvent[ev]; n != 1 {
					bad++
					if bad <= 3 {
						f.fail("notifications %s/%s: %d for created event %s, want 1", t.schema, u.Email, n, ev)
					}
				}
			}
			for ev := range perEvent {
				if !c.created[ev] {
					bad++
					if bad <= 3 {
						f.fail("notifications %s/%s: one for event %s, which created nothing", t.schema, u.Email, ev)
					}
				}
			}
			if bad > 3 {
				f.fail("notifications %s/%s: %d wrong in all", t.schema, u.Email, bad)
			}
		}
	}
	// The last pushes may still be on their way: give the sockets a while.
	deadline := time.Now().Add(30 * time.Second)
	for {
		missing := 0
		for _, w := range l.listeners {
			w.mu.Lock()
			for id := range byUser[w.u.ID] {
				if w.got[id] == 0 {
					missing++
				}
			}
			w.mu.Unlock()
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return stored, received, err
		}
	}
	for _, w := range l.listeners {
		w.mu.Lock()
		want := byUser[w.u.ID]
		bad := 0
		for id, n := range w.got {
			received += n
			if n > 1 {
				bad++
				f.fail("websocket %s: notification %d received %d times", w.u.Email, id, n)
			}
			if !want[id] {
				bad++
				f.fail("websocket %s: notification %d is not this user's", w.u.Email, id)
			}
			if bad > 3 {
				break
			}
		}
		var missing []int64
		for id := range want {
			if w.got[id] == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			f.fail("websocket %s: %d of %d notifications never received: ids %v", w.u.Email, len(missing), len(want), missing[:min(len(missing), 5)])
		}
		w.mu.Unlock()
	}
	return stored, received, nil
}

// checkAnswers: no 5xx but 503, and 503 only while a dependency was down;
// no refusal but 404 (the load sends only valid requests).
func (l *load) checkAnswers(ws []*window, grace time.Duration, f *findings) {
	l.mu.Lock()
	defer l.mu.Unlock()
	outside := 0
	for _, a := range l.fivexx {
		if a.status != 503 {
			f.fail("%s answered %d: %s", a.op, a.status, a.body)
			continue
		}
		in := false
		for _, w := range ws {
			if w.dependency && !a.at.Before(w.start.Add(-time.Second)) && !a.at.After(w.healed.Add(grace)) {
				in = true
				break
			}
		}
		if !in {
			outside++
			if outside <= 5 {
				f.fail("%s answered 503 at %s while no dependency was down: %s", a.op, a.at.Format("15:04:05.000"), a.body)
			}
		}
	}
	if outside > 5 {
		f.fail("%d answers of 503 while no dependency was down", outside)
	}
	// A request without an answer is the API process being killed; at any
	// other time it is a hang or a crash.
	hung := 0
	for _, a := range l.silent {
		in := false
		for _, w := range ws {
			if w.fault == "kill -9 api" && !a.at.Before(w.start.Add(-time.Second)) && !a.at.After(w.healed.Add(2*time.Second)) {
				in = true
				break
			}
		}
		if !in {
			if hung++; hung <= 5 {
				f.fail("%s got no answer at %s while the API was up: %s", a.op, a.at.Format("15:04:05.000"), a.body)
			}
		}
	}
	if hung > 5 {
		f.fail("%d requests got no answer while the API was up", hung)
	}
	for op, m := range l.statuses {
		for code, n := range m {
			if code >= 400 && code < 500 && code != 404 {
				f.fail("%s answered %d ×%d", op, code, n)
			}
		}
	}
}

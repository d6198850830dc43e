package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tenantworks/saas/bench/internal/stack"
	"github.com/tenantworks/saas/pkg/postgres"
)

func findPgbench(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p, nil
	}
	const debian = "/usr/lib/postgresql/15/bin/pgbench"
	if _, err := os.Stat(debian); err == nil {
		return debian, nil
	}
	return "", errors.New("pgbench not found: install postgresql-contrib (Debian) or pass -pgbench")
}

// uuidV7SQL makes a time-ordered UUID (version 7) in SQL, as the API's
// newID does in Go, so that both sides insert into their unique indexes in
// the same (append-mostly) pattern. PostgreSQL 15 has no uuidv7().
const uuidV7SQL = `encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing ` +
	`substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3) from 1 for 6), 52, 1), 53, 1), 'hex')::uuid`

// pgbenchScript is the transaction of postgres.DB.CreateProduct, statement
// for statement as the API's request makes it: BEGIN; set_config of
// search_path and lock_timeout (InTenant's SetSearchPath); INSERT INTO
// products ... RETURNING the product columns; INSERT INTO audit_log of the
// product.create entry (the actor, the six fields as [null, new], the
// request id); INSERT INTO outbox with the product as its JSON payload, the
// request id and the actor; COMMIT. Values have the API workload's sizes: a
// 36-character time-ordered SKU, the same name and description, the staff
// user's id and email, a 32-character request id. Triggers on the tables
// (the outbox's enqueue-and-NOTIFY) fire on both sides alike. The API
// sends audit changes and payload as JSON text under a jsonb cast; here
// the server builds them from the returned row (jsonb_build_object), as
// pgbench cannot build JSON itself.
func pgbenchScript(schemaName string, actor stack.User) string {
	requestID := strings.Repeat("r", 32)
	actorJSON := fmt.Sprintf(`{"kind":"user","id":"%s","email":"%s"}`, actor.ID, actor.Email)
	return fmt.Sprintf(`BEGIN;
SELECT set_config('search_path', '"%s"', true), set_config('lock_timeout', '%s', true);
INSERT INTO products (id, sku, name, description, price, currency, stock) VALUES (%s, (%s)::text, '%s', '%s', '%s', '%s', %d) RETURNING id, sku, name, description, price::text, currency, stock, version, created_at, updated_at \gset p_
INSERT INTO audit_log (actor_kind, actor_id, actor_email, action, target_type, target_id, changes, request_id) VALUES ('user', '%s', '%s', 'product.create', 'product', :p_id::text, jsonb_build_object('currency', jsonb_build_array(null, :p_currency::text), 'description', jsonb_build_array(null, :p_description::text), 'name', jsonb_build_array(null, :p_name::text), 'price', jsonb_build_array(null, :p_price::text), 'sku', jsonb_build_array(null, :p_sku::text), 'stock', jsonb_build_array(null, :p_stock::bigint)), '%s');
INSERT INTO outbox (event_id, event_type, aggregate_id, aggregate_version, payload, request_id, actor) VALUES (%s, 'product.created', :p_id, :p_version, jsonb_build_object('id', :p_id::text, 'sku', :p_sku::text, 'name', :p_name::text, 'description', :p_description::text, 'price', :p_price::text, 'currency', :p_currency::text, 'stock', :p_stock::bigint, 'version', :p_version::bigint, 'created_at', :p_created_at::timestamptz, 'updated_at', :p_updated_at::timestamptz), '%s', '%s'::jsonb);
COMMIT;
`, schemaName, postgres.TenantLockTimeout, uuidV7SQL, uuidV7SQL, productName, productDescription, productPrice, productCurrency, productStock,
		actor.ID, actor.Email, requestID,
		uuidV7SQL, requestID, actorJSON)
}

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// runPgbench runs the create transaction with pgbench for warmup + window
// (+1 s, so the window is never cut short), logging every transaction, and
// keeps the transactions that completed inside [first start + warmup,
// + window): the same windowing as drive. It also returns pgbench's own
// tps line for the whole run, as a cross-check.
func (b *bench) runPgbench(ctx context.Context) (result, string, error) {
	dir, err := os.MkdirTemp(b.tmp, "pgbench-")
	if err != nil {
		return result{}, "", err
	}
	script := filepath.Join(dir, "create_product.sql")
	if err := os.WriteFile(script, []byte(pgbenchScript(b.env.schema, b.env.user)), 0o600); err != nil {
		return result{}, "", err
	}
	total := b.o.warmup + b.o.duration + time.Second
	prefix := filepath.Join(dir, "txn")
	args := []string{
		"-n", "-M", "prepared",
		"-c", strconv.Itoa(b.o.createClients), "-j", strconv.Itoa(b.o.pgbenchJobs),
		"-T", strconv.Itoa(int((total + time.Second - 1) / time.Second)),
		"-l", "--log-prefix", prefix,
		"-f", script,
		b.env.DatabaseURL(),
	}
	cctx, cancel := context.WithTimeout(ctx, total+60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, b.pgbench, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	before := sampleCPU(b.srv.PID())
	if err := cmd.Run(); err != nil {
		return result{}, "", fmt.Errorf("pgbench: %w\n%s%s", err, stdout.String(), stderr.String())
	}
	use := before.until(sampleCPU(b.srv.PID()))
	use.client = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	tps := "?"
	if m := tpsRE.FindStringSubmatch(stdout.String()); m != nil {
		tps = m[1]
	}
	r, err := readPgbenchLogs(prefix, b.o.warmup, b.o.duration)
	if err != nil {
		return result{}, "", err
	}
	r.name, r.clients, r.cpu = "create via pgbench", b.o.createClients, use
	if r.ok == 0 {
		return result{}, "", fmt.Errorf("pgbench: no transaction in the window\n%s%s", stdout.String(), stderr.String())
	}
	return r, tps, nil
}

// txn is one line of a pgbench per-transaction log: when it completed and
// how long it took (negative when it failed).
type txn struct {
	done time.Time
	lat  time.Duration
}

// readPgbenchLogs reads prefix.<pid>[.<thread>] files. Each line is
// "client_id transaction_no time script_no time_epoch time_us", time being
// the latency in microseconds (or "failed"/"skipped") and time_epoch.time_us
// the completion time.
func readPgbenchLogs(prefix string, warmup, window time.Duration) (result, error) {
	files, err := filepath.Glob(prefix + ".*")
	if err != nil || len(files) == 0 {
		return result{}, fmt.Errorf("pgbench: no transaction log at %s.*", prefix)
	}
	var txns []txn
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return result{}, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 6 {
				continue
			}
			sec, err1 := strconv.ParseInt(fields[4], 10, 64)
			usec, err2 := strconv.ParseInt(fields[5], 10, 64)
			if err1 != nil || err2 != nil {
				fh.Close()
				return result{}, fmt.Errorf("pgbench log %s: bad line %q", f, sc.Text())
			}
			t := txn{done: time.Unix(sec, usec*1000), lat: -1}
			if us, err := strconv.ParseInt(fields[2], 10, 64); err == nil {
				t.lat = time.Duration(us) * time.Microsecond
			}
			txns = append(txns, t)
		}
		err = sc.Err()
		fh.Close()
		if err != nil {
			return result{}, err
		}
	}
	if len(txns) == 0 {
		return result{}, errors.New("pgbench: empty transaction log")
	}
	start := txns[0].done.Add(-max(txns[0].lat, 0))
	for _, t := range txns {
		if s := t.done.Add(-max(t.lat, 0)); s.Before(start) {
			start = s
		}
	}
	from, to := start.Add(warmup), start.Add(warmup+window)
	r := result{window: window, total: len(txns)}
	for _, t := range txns {
		if t.done.Before(from) || !t.done.Before(to) {
			continue
		}
		if t.lat < 0 {
			r.errors++
			continue
		}
		r.lat = append(r.lat, t.lat)
	}
	r.ok = len(r.lat)
	slices.Sort(r.lat)
	return r, nil
}

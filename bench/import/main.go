// Command import measures the products CSV import (catalog.Service.Import)
// against its limit, PostgreSQL's COPY of the same products and outbox
// rows, then how long the pipeline takes to catch up with an import.
//
// Each round makes two fresh tenants and writes the same -rows products
// into each, timing:
//
//   - import: catalog.Service.Import of the CSV (in memory) end to end:
//     parsing and validating every row, then the transaction (COPY into a
//     temporary table, the upsert by SKU returning every product, an
//     outbox row built per product as a create builds it, COPY of the
//     outbox rows, the audit entry, commit);
//   - COPY (the limit): one transaction with a COPY of the products and a
//     COPY of their outbox rows, every value (ids, payloads) made before
//     the clock starts.
//
// The two go in turns, alternating which goes first. Then one more import
// of the same file with every stock changed times updates (no limit
// beside it). Last, unless -catchup=false, `saas relay`, `saas worker
// indexer` and `saas worker notifier` run as processes of a private stack
// (bench/internal/stack) while a fresh tenant with one staff user imports
// the file (the rounds' outbox rows dropped first, so that only its events
// are relayed): the catch-up is the time from the import's commit until every
// product is searchable (the alias's _count after a _refresh) and
// notified (a notification per product for the staff user).
//
// It fails (exit 1) when an import or a COPY wrote anything but -rows
// products and outbox rows. It prints a Markdown report with the load
// average at start and end: other work on the machine moves the numbers.
//
//	go tool task bench:import                  # 100,000 rows, 3 rounds, catch-up
//	go run ./bench/import -rows 20000 -rounds 1 -catchup=false
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tenantworks/saas/bench/internal/benchenv"
	"github.com/tenantworks/saas/bench/internal/stack"
	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/catalog"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/tenancy"
)

type options struct {
	rows, rounds int
	catchup      bool
	natsServer   string
	logDir       string
	timeout      time.Duration
}

func main() {
	var o options
	flag.IntVar(&o.rows, "rows", 100_000, "products per import")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of import and COPY")
	flag.BoolVar(&o.catchup, "catchup", true, "time the pipeline's catch-up with an import (relay, indexer, notifier)")
	flag.StringVar(&o.natsServer, "nats-server", "", "nats-server binary (default: PATH, then $SERVICES_DIR/bin)")
	flag.StringVar(&o.logDir, "log-dir", "", "folder for the roles' logs (default a temp dir removed at the end)")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Minute, "bound on the whole run")
	flag.Parse()
	if o.rows <= 0 || o.rounds <= 0 {
		fmt.Fprintln(os.Stderr, "error: -rows and -rounds must be positive")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

type round struct {
	importTime, parseTime, copyTime time.Duration
}

func run(o options) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	loadStart := benchenv.LoadAvg()
	logf("load average at start: %s", loadStart)

	st, err := stack.New(ctx, stack.Options{Name: "bench_import", Search: true, Streams: true, NATSServer: o.natsServer, LogDir: o.logDir})
	if err != nil {
		return err
	}
	defer st.Close()
	db, mgr := st.DB(), st.Manager()
	cat, err := catalog.New(catalog.Deps{Store: db})
	if err != nil {
		return err
	}
	file := makeCSV(o.rows, false)
	logf("%d rows, %.1f MiB of CSV", o.rows, float64(len(file))/(1<<20))

	var rounds []round
	for i := range o.rounds {
		var r round
		importFirst := i%2 == 0
		for _, which := range []bool{importFirst, !importFirst} {
			schemaName := fmt.Sprintf("r%d_%s", i+1, map[bool]string{true: "import", false: "copy"}[which])
			if err := newTenant(ctx, mgr, schemaName); err != nil {
				return err
			}
			if which {
				r.importTime, r.parseTime, err = timeImport(ctx, cat, schemaName, file, o.rows, false)
			} else {
				r.copyTime, err = timeCopy(ctx, db, schemaName, o.rows)
			}
			if err != nil {
				return err
			}
			if err := mustHold(ctx, db, schemaName, o.rows); err != nil {
				return err
			}
		}
		logf("round %d: import %s (%.0f rows/s, parsing %s), COPY %s (%.0f rows/s): %.2fx",
			i+1, r.importTime.Round(time.Millisecond), rate(o.rows, r.importTime), r.parseTime.Round(time.Millisecond),
			r.copyTime.Round(time.Millisecond), rate(o.rows, r.copyTime), r.copyTime.Seconds()/r.importTime.Seconds())
		rounds = append(rounds, r)
	}

	// Updates: the last round's import tenant, every stock changed.
	updTenant := fmt.Sprintf("r%d_import", o.rounds)
	updTime, _, err := timeImport(ctx, cat, updTenant, makeCSV(o.rows, true), o.rows, true)
	if err != nil {
		return err
	}
	logf("update of every product: %s (%.0f rows/s)", updTime.Round(time.Millisecond), rate(o.rows, updTime))

	var cu *catchup
	if o.catchup {
		// The roles would relay and handle the rounds' events first: they
		// are dropped, so the catch-up is the import's alone.
		for i := range o.rounds {
			for _, which := range []string{"import", "copy"} {
				if err := dropOutbox(ctx, db, fmt.Sprintf("r%d_%s", i+1, which)); err != nil {
					return err
				}
			}
		}
		if cu, err = runCatchup(ctx, st, cat, file, o.rows); err != nil {
			return err
		}
	}
	report(os.Stdout, o, rounds, updTime, cu, loadStart, benchenv.LoadAvg())
	return nil
}

func newTenant(ctx context.Context, mgr *tenancy.Manager, schemaName string) error {
	_, err := mgr.Create(ctx, tenancy.CreateParams{Schema: schemaName, Name: schemaName, Domain: strings.ReplaceAll(schemaName, "_", "-") + ".bench.test"})
	if err != nil {
		return fmt.Errorf("create tenant %s: %w", schemaName, err)
	}
	return nil
}

// makeCSV writes rows products; with update, every stock is another.
func makeCSV(rows int, update bool) []byte {
	var b bytes.Buffer
	b.WriteString(strings.Join(catalog.CSVColumns, ",") + "\n")
	for i := range rows {
		p := product(i)
		if update {
			p.Stock += 1000
		}
		fmt.Fprintf(&b, "%s,%s,\"%s\",%s,%s,%d\n", p.SKU, p.Name, p.Description, p.Price, p.Currency, p.Stock)
	}
	return b.Bytes()
}

// product is the i-th product of the file, about 100 bytes of CSV: a
// typical short catalog row.
func product(i int) domain.Product {
	return domain.Product{SKU: fmt.Sprintf("SKU-%07d", i), Name: fmt.Sprintf("Product %d", i),
		Description: fmt.Sprintf("Item %d of the imported catalog, with a comma", i),
		Price:       fmt.Sprintf("%d.%02d", 1+i%500, i%100), Currency: "EUR", Stock: int64(i % 1000)}
}

// timeImport imports file into schemaName and checks the counts: all
// created, or all updated.
func timeImport(ctx context.Context, cat *catalog.Service, schemaName string, file []byte, rows int, update bool) (total, parse time.Duration, err error) {
	start := time.Now()
	res, err := cat.Import(ctx, schemaName, bytes.NewReader(file), catalog.ImportOptions{Written: func(done, _ int) {
		if parse == 0 {
			parse = time.Since(start)
		}
	}})
	total = time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("import into %s: %w", schemaName, err)
	}
	want := catalog.ImportResult{ID: res.ID, Created: rows}
	if update {
		want = catalog.ImportResult{ID: res.ID, Updated: rows}
	}
	if res != want {
		return 0, 0, fmt.Errorf("import into %s did %+v, want %+v", schemaName, res, want)
	}
	return total, parse, nil
}

// timeCopy writes the same products and their product.created outbox
// rows with two COPYs in one transaction, values made beforehand.
func timeCopy(ctx context.Context, db *postgres.DB, schemaName string, rows int) (time.Duration, error) {
	products := make([][]any, rows)
	outbox := make([][]any, rows)
	now := time.Now()
	for i := range rows {
		p := product(i)
		id := uuid.Must(uuid.NewV7())
		p.ID, p.Version, p.CreatedAt, p.UpdatedAt = id.String(), 1, now, now
		whole, frac, _ := strings.Cut(p.Price, ".")
		var cents big.Int
		cents.SetString(whole+frac, 10)
		products[i] = []any{[16]byte(id), p.SKU, p.Name, p.Description, pgtype.Numeric{Int: &cents, Exp: -2, Valid: true}, p.Currency, int32(p.Stock)}
		payload, err := json.Marshal(events.ProductFromDomain(p))
		if err != nil {
			return 0, err
		}
		outbox[i] = []any{[16]byte(uuid.Must(uuid.NewV7())), events.ProductCreated, [16]byte(id), int64(1), json.RawMessage(payload), ""}
	}
	start := time.Now()
	err := db.InTenant(ctx, schemaName, func(tx pgx.Tx) error {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"products"}, []string{"id", "sku", "name", "description", "price", "currency", "stock"},
			pgx.CopyFromRows(products)); err != nil {
			return fmt.Errorf("copy products: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"outbox"}, []string{"event_id", "event_type", "aggregate_id", "aggregate_version", "payload", "request_id"},
			pgx.CopyFromRows(outbox)); err != nil {
			return fmt.Errorf("copy outbox: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("COPY into %s: %w", schemaName, err)
	}
	return time.Since(start), nil
}

// mustHold fails unless the tenant holds rows products and rows outbox
// rows: a run that wrote nothing must not report a rate.
func mustHold(ctx context.Context, db *postgres.DB, schemaName string, rows int) error {
	var products, outbox int
	err := db.InTenant(ctx, schemaName, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM products), (SELECT count(*) FROM outbox)`).Scan(&products, &outbox)
	})
	if err != nil {
		return err
	}
	if products != rows || outbox != rows {
		return fmt.Errorf("%s holds %d products and %d outbox rows, want %d of each", schemaName, products, outbox, rows)
	}
	return nil
}

// dropOutbox empties a tenant's outbox and forgets its pending marks.
func dropOutbox(ctx context.Context, db *postgres.DB, schemaName string) error {
	if err := db.InTenant(ctx, schemaName, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `TRUNCATE outbox`)
		return err
	}); err != nil {
		return fmt.Errorf("empty the outbox of %s: %w", schemaName, err)
	}
	return db.ForgetPending(ctx, schemaName)
}

type catchup struct {
	importTime                          time.Duration
	relayed, searchable, notified, last time.Duration
	restarts                            int
}

// runCatchup starts the relay, the indexer and the notifier, imports the
// file into a fresh tenant with one staff user, and times, from the
// import's commit, the outbox drained, every product searchable and every
// product notified.
func runCatchup(ctx context.Context, st *stack.Stack, cat *catalog.Service, file []byte, rows int) (*catchup, error) {
	const schemaName = "catchup"
	if err := newTenant(ctx, st.Manager(), schemaName); err != nil {
		return nil, err
	}
	if _, err := st.NewUser(ctx, schemaName, "staff@catchup.bench.test", true); err != nil {
		return nil, err
	}
	var procs []*stack.Proc
	defer func() {
		for _, p := range procs {
			p.Stop()
		}
	}()
	for _, role := range []string{"relay", "indexer", "notifier"} {
		p, err := st.Start(ctx, role)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", role, err)
		}
		procs = append(procs, p)
	}
	logf("catch-up: relay, indexer and notifier running; importing %d rows", rows)
	var c catchup
	var err error
	if c.importTime, _, err = timeImport(ctx, cat, schemaName, file, rows, false); err != nil {
		return nil, err
	}
	committed := time.Now()
	alias := st.ElasticsearchURL() + "/" + st.Search().Alias(schemaName)
	for c.relayed == 0 || c.searchable == 0 || c.notified == 0 {
		for _, p := range procs {
			// A role stopped from outside (exit status 0 after SIGTERM:
			// seen on this shared machine) is started again and counted;
			// one that failed ends the run.
			if err := p.Exited(); err != nil {
				if !strings.Contains(err.Error(), " exited: <nil>") {
					return nil, err
				}
				c.restarts++
				logf("catch-up: %s stopped from outside; starting it again", p.Name())
				if err := p.Start(ctx); err != nil {
					return nil, err
				}
			}
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("catch-up: not done at the deadline (relayed %s, searchable %s, notified %s)", c.relayed, c.searchable, c.notified)
		}
		var outbox, notes int
		if err := st.DB().InTenant(ctx, schemaName, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM outbox), (SELECT count(*) FROM notifications)`).Scan(&outbox, &notes)
		}); err != nil {
			return nil, err
		}
		if c.relayed == 0 && outbox == 0 {
			c.relayed = time.Since(committed)
		}
		if c.notified == 0 && notes >= rows {
			c.notified = time.Since(committed)
		}
		if c.searchable == 0 {
			n, err := searchable(ctx, alias)
			if err != nil {
				return nil, err
			}
			if n >= rows {
				c.searchable = time.Since(committed)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.last = max(c.relayed, c.searchable, c.notified)
	logf("catch-up: relayed %s, searchable %s, notified %s after the commit", c.relayed.Round(time.Millisecond),
		c.searchable.Round(time.Millisecond), c.notified.Round(time.Millisecond))
	return &c, nil
}

// searchable is the alias's document count after a refresh.
func searchable(ctx context.Context, alias string) (int, error) {
	do := func(method, u string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			return nil, err
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err == nil && res.StatusCode >= 300 {
			err = fmt.Errorf("%s %s: %s: %.300s", method, u, res.Status, b)
		}
		return b, err
	}
	if _, err := do(http.MethodPost, alias+"/_refresh"); err != nil {
		return 0, err
	}
	b, err := do(http.MethodGet, alias+"/_count")
	if err != nil {
		return 0, err
	}
	var c struct {
		Count int `json:"count"`
	}
	return c.Count, json.Unmarshal(b, &c)
}

func rate(rows int, d time.Duration) float64 { return float64(rows) / d.Seconds() }

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func report(w io.Writer, o options, rounds []round, updTime time.Duration, cu *catchup, loadStart, loadEnd string) {
	var imp, cp, parse []time.Duration
	fmt.Fprintf(w, "\n## Products CSV import: %d rows, %d rounds\n\n", o.rows, o.rounds)
	fmt.Fprintf(w, "Load average at start %s, at end %s.\n\n", loadStart, loadEnd)
	fmt.Fprintln(w, "| round | import | import rows/s | of which parsing and validating | COPY (the limit) | COPY rows/s | import / COPY |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- |")
	for i, r := range rounds {
		fmt.Fprintf(w, "| %d | %s | %.0f | %s | %s | %.0f | %.2fx |\n", i+1, r.importTime.Round(time.Millisecond), rate(o.rows, r.importTime),
			r.parseTime.Round(time.Millisecond), r.copyTime.Round(time.Millisecond), rate(o.rows, r.copyTime), r.copyTime.Seconds()/r.importTime.Seconds())
		imp, cp, parse = append(imp, r.importTime), append(cp, r.copyTime), append(parse, r.parseTime)
	}
	mi, mc := median(imp), median(cp)
	ratio := mc.Seconds() / mi.Seconds()
	verdict := "met"
	if ratio < 0.5 {
		verdict = "NOT met"
	}
	fmt.Fprintf(w, "| median | %s | %.0f | %s | %s | %.0f | **%.2fx** (target 0.5x: %s) |\n\n", mi.Round(time.Millisecond), rate(o.rows, mi),
		median(parse).Round(time.Millisecond), mc.Round(time.Millisecond), rate(o.rows, mc), ratio, verdict)
	fmt.Fprintf(w, "Re-import of the same %d SKUs with every stock changed (all updated): %s, %.0f rows/s.\n\n", o.rows, updTime.Round(time.Millisecond), rate(o.rows, updTime))
	if cu == nil {
		fmt.Fprintln(w, "Catch-up not measured (-catchup=false).")
		return
	}
	fmt.Fprintf(w, "Catch-up, with `saas relay`, `saas worker indexer` and `saas worker notifier` running, after an import of %d rows (%s) into a tenant with one staff user, from the commit:\n\n", o.rows, cu.importTime.Round(time.Millisecond))
	fmt.Fprintln(w, "| outbox drained into the stream | every product searchable | every product notified | all of it |")
	fmt.Fprintln(w, "| --- | --- | --- | --- |")
	fmt.Fprintf(w, "| %s | %s (%.0f docs/s) | %s (%.0f/s) | %s |\n", cu.relayed.Round(100*time.Millisecond), cu.searchable.Round(100*time.Millisecond),
		rate(o.rows, cu.searchable), cu.notified.Round(100*time.Millisecond), rate(o.rows, cu.notified), cu.last.Round(100*time.Millisecond))
	if cu.restarts > 0 {
		fmt.Fprintf(w, "\n%d role restarts during the catch-up (a role stopped from outside, started again; included in the times).\n", cu.restarts)
	}
}

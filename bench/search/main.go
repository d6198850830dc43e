// Command search measures pkg/search's shared indices with many tenants on
// one Elasticsearch node: the time to give a tenant its filtered alias
// (what tenant create does), search latency through an alias with few and
// with many aliases present, the cluster state and the heap before and
// after, the promotion of one big tenant to an index of its own, and
// tenant delete. Everything lives under an index prefix of its own
// (bsearch_<random>), which is deleted at the end, also on error or Ctrl-C.
//
//	go run ./bench/search -tenants 10000
package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tenantworks/saas/bench/internal/benchenv"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/search"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

type options struct {
	tenants, shared, first, docs, searches, promoteDocs, deletes int
	timeout                                                      time.Duration
}

func run() error {
	var o options
	flag.IntVar(&o.tenants, "tenants", 10000, "tenants (aliases) to create")
	flag.IntVar(&o.shared, "shared", search.DefaultSharedIndices, "shared indices (search.Config.SharedIndices)")
	flag.IntVar(&o.first, "first", 100, "tenants created before the first search measurement")
	flag.IntVar(&o.docs, "docs", 20, "documents per tenant")
	flag.IntVar(&o.searches, "searches", 2000, "searches per measurement, one at a time")
	flag.IntVar(&o.promoteDocs, "promote-docs", 10000, "documents of the tenant promoted to an index of its own (0: skip)")
	flag.IntVar(&o.deletes, "deletes", 200, "tenants deleted one by one at the end, timed")
	flag.DurationVar(&o.timeout, "timeout", time.Hour, "give up after this long")
	flag.Parse()
	if o.first > o.tenants {
		o.first = o.tenants
	}
	if o.docs == 0 {
		o.searches = 0 // nothing to find
	}
	url := os.Getenv("ELASTICSEARCH_URL")
	if url == "" {
		url = "http://127.0.0.1:9200"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	prefix := "bsearch_" + strings.ToLower(crand.Text()[:8])
	c, err := search.New(search.Config{URL: url, IndexPrefix: prefix, SharedIndices: o.shared})
	if err != nil {
		return err
	}
	es := &raw{url: url}
	defer cleanUp(es, c, prefix)
	return measure(ctx, o, c, es, prefix)
}

func measure(ctx context.Context, o options, c *search.Client, es *raw, prefix string) error {
	fmt.Fprintf(os.Stderr, "prefix %s, load average %s\n", prefix, benchenv.LoadAvg())
	before, err := snapshot(ctx, es, prefix)
	if err != nil {
		return err
	}
	schemas := make([]string, o.tenants)
	for i := range schemas {
		schemas[i] = fmt.Sprintf("t%05d", i)
	}

	// Phase 1: a few tenants, their documents, searches.
	create := make([]time.Duration, 0, o.tenants)
	if err := createTenants(ctx, c, schemas[:o.first], &create); err != nil {
		return err
	}
	if err := fill(ctx, c, es, prefix, schemas[:o.first], o.docs); err != nil {
		return err
	}
	few, err := searches(ctx, c, schemas[:o.first], o.searches, o.docs)
	if err != nil {
		return err
	}

	// Phase 2: the rest, their documents, the same searches again, and
	// searches over every tenant.
	csu0, err := updateStats(ctx, es)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := createTenants(ctx, c, schemas[o.first:], &create); err != nil {
		return err
	}
	createRest := time.Since(start)
	csu1, err := updateStats(ctx, es)
	if err != nil {
		return err
	}
	if err := fill(ctx, c, es, prefix, schemas[o.first:], o.docs); err != nil {
		return err
	}
	many, err := searches(ctx, c, schemas[:o.first], o.searches, o.docs)
	if err != nil {
		return err
	}
	manyAll, err := searches(ctx, c, schemas, o.searches, o.docs)
	if err != nil {
		return err
	}
	after, err := snapshot(ctx, es, prefix)
	if err != nil {
		return err
	}

	var promo string
	if o.promoteDocs > 0 {
		if promo, err = promote(ctx, c, es, prefix, schemas[0], o.promoteDocs); err != nil {
			return err
		}
	}
	deletes, err := deleteTenants(ctx, c, schemas[len(schemas)-min(o.deletes, len(schemas)-1):])
	if err != nil {
		return err
	}

	n := len(create)
	fmt.Printf("Elasticsearch %s, %d shared indices, prefix %s, load average at the end %s\n\n", after.version, o.shared, prefix, benchenv.LoadAvg())
	fmt.Println("| measurement | n | p50 | p99 | max |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: |")
	row := func(what string, d []time.Duration) {
		if len(d) == 0 {
			return
		}
		s := slices.Sorted(slices.Values(d))
		fmt.Printf("| %s | %d | %s | %s | %s |\n", what, len(s), pct(s, 50), pct(s, 99), s[len(s)-1].Round(10*time.Microsecond))
	}
	row(fmt.Sprintf("tenant alias create (`EnsureIndex`), all %d", n), create)
	row("  the first 1,000", create[:min(1000, n)])
	row(fmt.Sprintf("  the last 1,000 (%d to %d aliases present)", n-min(1000, n), n), create[n-min(1000, n):])
	row(fmt.Sprintf("search through an alias, %d aliases present (the first %d tenants)", o.first, o.first), few)
	row(fmt.Sprintf("search through an alias, %d aliases present (the same %d tenants)", n, o.first), many)
	row(fmt.Sprintf("search through an alias, %d aliases present (any tenant)", n), manyAll)
	row("tenant delete (`DeleteTenant`: alias, then its documents)", deletes)
	fmt.Println()
	fmt.Printf("%d aliases created in %s after the first %d (%.0f a second)\n", n-o.first, createRest.Round(time.Millisecond),
		o.first, float64(n-o.first)/createRest.Seconds())
	if k := csu1.Count - csu0.Count; k > 0 {
		fmt.Printf("meanwhile %d cluster state updates (every one on the node, not only ours), on average: computation %.1f ms, "+
			"publication %.1f ms (of which commit, i.e. persisting the state, %.1f ms), applying it %.1f ms\n",
			k, float64(csu1.Computation-csu0.Computation)/float64(k), float64(csu1.Publication-csu0.Publication)/float64(k),
			float64(csu1.Commit-csu0.Commit)/float64(k), float64(csu1.Apply-csu0.Apply)/float64(k))
	}
	fmt.Println()
	fmt.Println("| cluster | before | after |")
	fmt.Println("| --- | ---: | ---: |")
	fmt.Printf("| aliases in the cluster | %d | %d |\n", before.aliases, after.aliases)
	fmt.Printf("| shards in the cluster | %d | %d |\n", before.shards, after.shards)
	fmt.Printf("| cluster state, `GET /_cluster/state` (JSON bytes) | %s | %s |\n", mib(before.stateBytes), mib(after.stateBytes))
	fmt.Printf("| the prefix's part, `GET /_cluster/state/metadata/%s_*` (aliases by name only) | %s | %s |\n", prefix, mib(before.prefixBytes), mib(after.prefixBytes))
	fmt.Printf("| the prefix's alias definitions (filter, routing), `GET /%s_*/_alias` | %s | %s |\n", prefix, mib(before.aliasBytes), mib(after.aliasBytes))
	fmt.Printf("| JVM heap used, min..max of 10 samples 1 s apart (of %s) | %s..%s | %s..%s |\n", mib(after.heapMax),
		mib(before.heapMin), mib(before.heapMaxUsed), mib(after.heapMin), mib(after.heapMaxUsed))
	fmt.Printf("| documents in the shared indices | %d | %d |\n", before.sharedDocs, after.sharedDocs)
	if promo != "" {
		fmt.Println()
		fmt.Println(promo)
	}
	return nil
}

// createTenants gives each schema its alias, one after the other, as
// tenant creation does, and appends each call's time to lat.
func createTenants(ctx context.Context, c *search.Client, schemas []string, lat *[]time.Duration) error {
	for _, s := range schemas {
		t0 := time.Now()
		if err := c.EnsureIndex(ctx, s); err != nil {
			return err
		}
		*lat = append(*lat, time.Since(t0))
		if n := len(*lat); n%1000 == 0 {
			last := slices.Sorted(slices.Values((*lat)[n-1000:]))
			fmt.Fprintf(os.Stderr, "%d aliases; the last 1000 took p50 %s p99 %s\n", n, pct(last, 50), pct(last, 99))
		}
	}
	return nil
}

var words = []string{"widget", "lantern", "teapot", "anvil", "kettle", "compass", "ladder", "hammer"}

func product(schema string, i int, version int64) search.Doc {
	t := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	w := words[i%len(words)]
	return search.DocFromProduct(domain.Product{ID: fmt.Sprintf("%s-%06d", schema, i), SKU: fmt.Sprintf("SKU-%06d", i),
		Name: "Blue " + w + " " + fmt.Sprint(i), Description: "A " + w + " of " + schema, Price: "9.99", Currency: "EUR",
		Stock: 3, Version: version, CreatedAt: t, UpdatedAt: t})
}

// fill writes docs documents into each tenant, through its alias, and
// refreshes the shared indices.
func fill(ctx context.Context, c *search.Client, es *raw, prefix string, schemas []string, docs int) error {
	if docs == 0 {
		return nil
	}
	for k, s := range schemas {
		ops := make([]search.Op, docs)
		for i := range ops {
			ops[i] = search.IndexOp(product(s, i, 1))
		}
		errs, err := c.Apply(ctx, s, ops)
		if err == nil {
			err = errors.Join(errs...)
		}
		if err != nil {
			return err
		}
		if (k+1)%2000 == 0 {
			fmt.Fprintf(os.Stderr, "documents of %d tenants written\n", k+1)
		}
	}
	return es.do(ctx, http.MethodPost, "/"+prefix+"_shared_*/_refresh", nil, nil)
}

// searches runs n searches, one at a time, each in a random one of
// schemas (tenants of docs documents, for a word they have), and returns
// their latencies. Every search must find the tenant's own documents and
// nothing else.
func searches(ctx context.Context, c *search.Client, schemas []string, n, docs int) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, n)
	if n == 0 {
		return nil, nil
	}
	for i := range n {
		s := schemas[rand.IntN(len(schemas))]
		w := words[i%min(docs, len(words))] // a word the tenant's documents have
		t0 := time.Now()
		docs, total, err := c.Search(ctx, s, w, 0, 10)
		lat = append(lat, time.Since(t0))
		if err != nil {
			return nil, err
		}
		for _, d := range docs {
			if !strings.HasPrefix(d.ID, s+"-") {
				return nil, fmt.Errorf("search in %s returned %s", s, d.ID)
			}
		}
		if total == 0 {
			return nil, fmt.Errorf("search %q in %s found nothing", w, s)
		}
	}
	return lat, nil
}

// promote gives schema n documents in its shared index, then moves it to
// an index of its own as a rebuild does (new index, bulk of 500, swap, its
// documents deleted from the shared index) and reports the times.
func promote(ctx context.Context, c *search.Client, es *raw, prefix, schema string, n int) (string, error) {
	var ops []search.Op
	for i := range n {
		ops = append(ops, search.IndexOp(product(schema, i, 2)))
	}
	for chunk := range slices.Chunk(ops, 1000) {
		if errs, err := c.Apply(ctx, schema, chunk); err != nil || errors.Join(errs...) != nil {
			return "", errors.Join(err, errors.Join(errs...))
		}
	}
	if err := es.do(ctx, http.MethodPost, "/"+prefix+"_shared_*/_refresh", nil, nil); err != nil {
		return "", err
	}
	t0 := time.Now()
	idx, err := c.NewPhysicalIndex(ctx, schema)
	if err != nil {
		return "", err
	}
	for chunk := range slices.Chunk(ops, 500) {
		if _, errs, err := c.ApplyToIndex(ctx, schema, idx, chunk); err != nil || errors.Join(errs...) != nil {
			return "", errors.Join(err, errors.Join(errs...))
		}
	}
	build := time.Since(t0)
	t1 := time.Now()
	if err := c.SwapAlias(ctx, schema, idx); err != nil {
		return "", err
	}
	swap := time.Since(t1)
	left, err := c.SharedCounts(ctx, []string{schema})
	if err != nil {
		return "", err
	}
	_, total, err := c.Search(ctx, schema, "blue", 0, 1)
	if err != nil {
		return "", err
	}
	if left[schema] != 0 || total != n {
		return "", fmt.Errorf("after the promotion: %d documents left in the shared index, %d found in its own", left[schema], total)
	}
	return fmt.Sprintf("Promotion of one tenant with %d documents (the Elasticsearch side of a rebuild from the database): "+
		"new index and bulk writes of 500 %s; refresh, alias swap and deleting its %d documents from the shared index (scroll + bulk delete) %s.",
		n, build.Round(time.Millisecond), n, swap.Round(time.Millisecond)), nil
}

func deleteTenants(ctx context.Context, c *search.Client, schemas []string) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, len(schemas))
	for _, s := range schemas {
		t0 := time.Now()
		if err := c.DeleteTenant(ctx, s); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t0))
		if got, err := c.Indices(ctx, s); err != nil || len(got) != 0 {
			return nil, fmt.Errorf("after delete %s is on %v (%v)", s, got, err)
		}
	}
	return lat, nil
}

// state is what the cluster looks like at one moment.
type state struct {
	version                 string
	aliases, shards         int
	stateBytes, prefixBytes int64
	aliasBytes              int64
	heapMin, heapMaxUsed    int64
	heapMax                 int64
	sharedDocs              int
}

func snapshot(ctx context.Context, es *raw, prefix string) (state, error) {
	var s state
	var body []byte
	if err := es.do(ctx, http.MethodGet, "/_cluster/state", nil, &body); err != nil {
		return s, err
	}
	s.stateBytes = int64(len(body))
	var cs struct {
		Metadata struct {
			Indices map[string]struct {
				Aliases []string `json:"aliases"`
			} `json:"indices"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(body, &cs); err != nil {
		return s, err
	}
	for _, ix := range cs.Metadata.Indices {
		s.aliases += len(ix.Aliases)
	}
	body = nil
	if err := es.do(ctx, http.MethodGet, "/_cluster/state/metadata/"+prefix+"_*?allow_no_indices=true&expand_wildcards=all", nil, &body); err != nil {
		return s, err
	}
	s.prefixBytes = int64(len(body))
	body = nil
	if err := es.do(ctx, http.MethodGet, "/"+prefix+"_*/_alias?allow_no_indices=true&expand_wildcards=all", nil, &body); err != nil {
		return s, err
	}
	s.aliasBytes = int64(len(body))
	var health struct {
		Shards int `json:"active_shards"`
	}
	if err := es.do(ctx, http.MethodGet, "/_cluster/health", nil, &health); err != nil {
		return s, err
	}
	s.shards = health.Shards
	var count struct {
		Count int `json:"count"`
	}
	if err := es.do(ctx, http.MethodGet, "/"+prefix+"_shared_*/_count?allow_no_indices=true", nil, &count); err != nil {
		return s, err
	}
	s.sharedDocs = count.Count
	var info struct {
		Version struct {
			Number string `json:"number"`
		} `json:"version"`
	}
	var nodes struct {
		Nodes map[string]struct {
			Version string `json:"version"`
		} `json:"nodes"`
	}
	if err := es.do(ctx, http.MethodGet, "/_nodes/_local?filter_path=nodes.*.version", nil, &nodes); err == nil {
		for _, n := range nodes.Nodes {
			info.Version.Number = n.Version
		}
	}
	s.version = info.Version.Number
	s.heapMin = -1
	for i := range 10 {
		if i > 0 {
			select {
			case <-ctx.Done():
				return s, ctx.Err()
			case <-time.After(time.Second):
			}
		}
		var js struct {
			Nodes map[string]struct {
				JVM struct {
					Mem struct {
						Used int64 `json:"heap_used_in_bytes"`
						Max  int64 `json:"heap_max_in_bytes"`
					} `json:"mem"`
				} `json:"jvm"`
			} `json:"nodes"`
		}
		if err := es.do(ctx, http.MethodGet, "/_nodes/_local/stats/jvm", nil, &js); err != nil {
			return s, err
		}
		for _, n := range js.Nodes {
			if s.heapMin < 0 || n.JVM.Mem.Used < s.heapMin {
				s.heapMin = n.JVM.Mem.Used
			}
			s.heapMaxUsed = max(s.heapMaxUsed, n.JVM.Mem.Used)
			s.heapMax = n.JVM.Mem.Max
		}
	}
	return s, nil
}

// csu is the node's counters of successful cluster state updates.
type csu struct {
	Count       int64 `json:"count"`
	Computation int64 `json:"computation_time_millis"`
	Publication int64 `json:"publication_time_millis"`
	Commit      int64 `json:"commit_time_millis"`
	Apply       int64 `json:"master_apply_time_millis"`
}

func updateStats(ctx context.Context, es *raw) (csu, error) {
	var out struct {
		Nodes map[string]struct {
			Discovery struct {
				Update struct {
					Success csu `json:"success"`
				} `json:"cluster_state_update"`
			} `json:"discovery"`
		} `json:"nodes"`
	}
	if err := es.do(ctx, http.MethodGet, "/_nodes/_local/stats/discovery", nil, &out); err != nil {
		return csu{}, err
	}
	for _, n := range out.Nodes {
		return n.Discovery.Update.Success, nil
	}
	return csu{}, nil
}

// cleanUp deletes everything under the prefix: the shared indices (with
// every alias on them) and any index of its own, by name.
func cleanUp(es *raw, c *search.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.DeleteSharedIndices(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "cleanup:", err)
	}
	var left []struct {
		Name string `json:"name"`
	}
	var resolved struct {
		Indices *[]struct {
			Name string `json:"name"`
		} `json:"indices"`
	}
	resolved.Indices = &left
	if err := es.do(ctx, http.MethodGet, "/_resolve/index/"+prefix+"_*?expand_wildcards=all", nil, &resolved); err != nil {
		fmt.Fprintln(os.Stderr, "cleanup:", err)
		return
	}
	for _, ix := range left {
		if strings.HasPrefix(ix.Name, prefix+"_") {
			if err := es.do(ctx, http.MethodDelete, "/"+ix.Name, nil, nil); err != nil {
				fmt.Fprintln(os.Stderr, "cleanup:", err)
			}
		}
	}
}

// raw sends requests straight to Elasticsearch, for what pkg/search does
// not offer: cluster state, node stats, refresh of every shared index.
type raw struct{ url string }

var httpClient = &http.Client{Timeout: time.Minute}

// do sends one request; out is a *[]byte for the raw body, or a value to
// decode the JSON answer into, or nil.
func (r *raw) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.url+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*o = b
		return nil
	default:
		return json.Unmarshal(b, out)
	}
}

func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p+99)/100 - 1
	return sorted[max(i, 0)].Round(10 * time.Microsecond)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

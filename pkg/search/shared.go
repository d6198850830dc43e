package search

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/tenantworks/saas/pkg/domain"
)

// Shared indices.
//
// An index of its own costs a tenant a shard, and Elasticsearch allows
// 1,000 shards per node by default: index-per-tenant stops far short of
// 10,000 tenants. So a tenant starts on one of a fixed number of shared
// physical indices, <prefix>_shared_<n> (n = 1..Config.SharedIndices), and
// keeps its alias <prefix>_<schema>_products there, filtered on the
// document's tenant field and routed by the schema name. Readers and the
// indexer go on naming only the alias.
//
// Why a fixed number, with the index picked by a hash of the schema name,
// rather than indices filled up to a capacity: every process computes the
// same place for a tenant without asking anyone, so concurrent tenant
// creates need no counter kept consistent across processes, and the shard
// count stays the same however many tenants come. What bounds a shared
// index's size is not its number of tenants but their size: a tenant that
// grows past a threshold moves to an index of its own (the promotion in
// workers/indexer), so shared indices only ever hold small tenants.
//
// Isolation in a shared index rests on three things:
//   - a document's _id is qualified by its tenant, <schema>:<product id>
//     (docID), so two tenants' products never share an _id, an external
//     version or a delete marker, and a get by id can only reach the
//     tenant's own document (a get ignores alias filters);
//   - the alias filters on the tenant field, for every search and count
//     made through it;
//   - Search and EachVersion add the same filter to their queries, and
//     every document read back is checked to be the tenant's (decodeDoc).

// idSep separates the tenant from the product id in a document's _id. A
// schema name never contains it.
const idSep = ":"

// docID is the _id of a tenant's product document, in any index.
func docID(schema, id string) string { return schema + idSep + id }

// sharedName is the name of shared index n.
func (c *Client) sharedName(n int) string { return c.prefix + "_shared_" + strconv.Itoa(n) }

// home is the shared index a tenant is placed on: a hash of its schema
// name, so every process agrees without coordination.
func (c *Client) home(schema string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(schema))
	return c.sharedName(int(h.Sum32()%uint32(c.shared)) + 1)
}

// IsShared reports whether index is one of the client's shared indices,
// <prefix>_shared_<digits>. No tenant index can have such a name: a
// tenant's indices all contain "_products".
func (c *Client) IsShared(index string) bool {
	n, ok := strings.CutPrefix(index, c.prefix+"_shared_")
	if !ok || n == "" {
		return false
	}
	_, err := strconv.ParseUint(n, 10, 32)
	return err == nil
}

// sharedAlias is the _aliases action that puts a tenant's alias on a
// shared index: only the tenant's documents are visible through it, and
// writes and searches through it are routed by the schema name.
func sharedAlias(index, alias, schema string) map[string]any {
	return map[string]any{"add": map[string]any{
		"index": index, "alias": alias,
		"filter":        map[string]any{"term": map[string]any{"tenant": schema}},
		"index_routing": schema, "search_routing": schema,
	}}
}

// ensureShared creates shared index name unless it exists. Indices known
// to exist are remembered, so tenant creation costs one request more only
// the first time an index is used.
func (c *Client) ensureShared(ctx context.Context, name string) error {
	if _, ok := c.known.Load(name); ok {
		return nil
	}
	err := c.createIndex(ctx, name, "")
	if err != nil && !isType(err, "resource_already_exists_exception") {
		return err
	}
	c.known.Store(name, true)
	return nil
}

// addSharedAlias puts a tenant's alias on shared index name, creating the
// index first if needed. Adding an alias that exists with the same
// definition is a no-op, so concurrent callers agree.
func (c *Client) addSharedAlias(ctx context.Context, schema, name string) error {
	for attempt := 0; ; attempt++ {
		if err := c.ensureShared(ctx, name); err != nil {
			return err
		}
		err := c.updateAliases(ctx, []map[string]any{sharedAlias(name, c.Alias(schema), schema)})
		if isType(err, "index_not_found_exception") && attempt == 0 {
			c.known.Delete(name) // deleted behind our back: create it again
			continue
		}
		return err
	}
}

// sharedIndices lists the client's shared indices that exist.
func (c *Client) sharedIndices(ctx context.Context) ([]string, error) {
	ignore := true
	var resolved struct {
		Indices []struct {
			Name string `json:"name"`
		} `json:"indices"`
	}
	err := c.do(ctx, esapi.IndicesResolveIndexRequest{Name: []string{c.prefix + "_shared_*"}, ExpandWildcards: "all",
		IgnoreUnavailable: &ignore, AllowNoIndices: &ignore}, &resolved)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, ix := range resolved.Indices {
		if c.IsShared(ix.Name) {
			names = append(names, ix.Name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// SharedTarget returns the shared index a rebuild of a tenant that stays
// small fills: the one its alias is on, or else its home index (created if
// missing). When the tenant is not on it yet, what an interrupted move left
// of the tenant there is deleted first, so the rebuild starts clean.
func (c *Client) SharedTarget(ctx context.Context, schema string) (string, error) {
	if err := domain.ValidateSchemaName(schema); err != nil {
		return "", err
	}
	cur, err := c.aliasIndices(ctx, c.Alias(schema))
	if err != nil {
		return "", fmt.Errorf("search: shared target of %s: %w", schema, err)
	}
	if len(cur) == 1 && c.IsShared(cur[0]) {
		return cur[0], nil
	}
	target := c.home(schema)
	if err := c.ensureShared(ctx, target); err != nil {
		return "", fmt.Errorf("search: shared target of %s: %w", schema, err)
	}
	if err := c.purge(ctx, schema, []string{target}); err != nil {
		return "", fmt.Errorf("search: shared target of %s: %w", schema, err)
	}
	return target, nil
}

// SharedCounts returns how many documents each of schemas has in the
// shared indices, in one request per 1,000 tenants; a tenant with none
// (on an index of its own, or empty) is absent. Call Refresh first to
// count the latest writes.
func (c *Client) SharedCounts(ctx context.Context, schemas []string) (map[string]int, error) {
	out := map[string]int{}
	if len(schemas) == 0 {
		return out, nil
	}
	shared, err := c.sharedIndices(ctx)
	if err != nil || len(shared) == 0 {
		return out, wrapErr("search: shared counts", err)
	}
	for chunk := range slices.Chunk(schemas, 1000) {
		body := map[string]any{
			"size": 0, "track_total_hits": false,
			"query": map[string]any{"terms": map[string]any{"tenant": chunk}},
			"aggs":  map[string]any{"tenants": map[string]any{"terms": map[string]any{"field": "tenant", "size": len(chunk)}}},
		}
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		var res struct {
			Aggregations struct {
				Tenants struct {
					Buckets []struct {
						Key   string `json:"key"`
						Count int    `json:"doc_count"`
					} `json:"buckets"`
				} `json:"tenants"`
			} `json:"aggregations"`
		}
		if err := c.do(ctx, esapi.SearchRequest{Index: shared, Body: bytes.NewReader(b)}, &res); err != nil {
			return nil, fmt.Errorf("search: shared counts: %w", err)
		}
		for _, bk := range res.Aggregations.Tenants.Buckets {
			out[bk.Key] = bk.Count
		}
	}
	return out, nil
}

// DeleteSharedIndices deletes every shared index of the client's prefix,
// with the documents of every tenant on them. It is for tests and
// benchmarks that own their prefix; DeleteTenant is the way to remove one
// tenant.
func (c *Client) DeleteSharedIndices(ctx context.Context) error {
	names, err := c.sharedIndices(ctx)
	if err == nil {
		err = c.deleteIndices(ctx, names)
	}
	c.known.Clear()
	return wrapErr("search: delete shared indices", err)
}

// purgePasses bounds how often purge looks again for documents written
// while it deleted.
const purgePasses = 5

// purge deletes every document of a tenant from the given indices (shared
// ones: never name an index the tenant's alias is on, or its documents go).
// There is no _delete_by_query in every distribution, so it reads the ids
// with a scroll and deletes them with bulk requests. Each delete carries
// the version read (external_gte), so a document rewritten in between is
// kept for the next pass rather than deleted unseen, and the delete marker
// left behind is no newer than the document was: if the tenant moves back
// within index.gc_deletes, a rebuild can write the same versions again.
// A write that lands after the last pass (one that resolved the alias
// before it moved) leaves a document no alias shows, which the tenant's
// next rebuild or its delete removes.
func (c *Client) purge(ctx context.Context, schema string, indices []string) error {
	if len(indices) == 0 {
		return nil
	}
	for range purgePasses {
		// A search sees what the last refresh made visible: refresh first,
		// so that a pass that finds nothing means there is nothing.
		ignore := true
		if err := c.do(ctx, esapi.IndicesRefreshRequest{Index: indices, IgnoreUnavailable: &ignore}, nil); err != nil {
			return fmt.Errorf("purge %s: refresh: %w", schema, err)
		}
		found, err := c.purgePass(ctx, schema, indices)
		if err != nil || found == 0 {
			return err
		}
	}
	return fmt.Errorf("purge %s: documents still in %v after %d passes", schema, indices, purgePasses)
}

// scrollKeepAlive is how long Elasticsearch keeps a scroll between pages
// (the scroll requests say "1m" too).
const scrollKeepAlive = time.Minute

// purgePass deletes what one scroll over the tenant's documents finds and
// returns how many it found.
func (c *Client) purgePass(ctx context.Context, schema string, indices []string) (int, error) {
	body, err := json.Marshal(map[string]any{
		"size": 1000, "_source": false, "version": true,
		"query": map[string]any{"bool": map[string]any{"filter": []any{tenantFilter(schema)}}},
		"sort":  []any{"_doc"},
	})
	if err != nil {
		return 0, err
	}
	var page scrollPage
	ignore := true
	err = c.do(ctx, esapi.SearchRequest{Index: indices, Body: bytes.NewReader(body), Routing: []string{schema},
		Scroll: scrollKeepAlive, IgnoreUnavailable: &ignore}, &page)
	if err != nil {
		return 0, fmt.Errorf("purge %s: %w", schema, err)
	}
	defer func() {
		if page.ScrollID != "" {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			b, _ := json.Marshal(map[string]any{"scroll_id": page.ScrollID})
			_ = c.do(cctx, esapi.ClearScrollRequest{Body: bytes.NewReader(b)}, nil)
		}
	}()
	found := 0
	for len(page.Hits.Hits) > 0 {
		found += len(page.Hits.Hits)
		if err := c.deleteHits(ctx, schema, page.Hits.Hits); err != nil {
			return found, fmt.Errorf("purge %s: %w", schema, err)
		}
		// The scroll id goes in the body: it can be longer than a URL
		// should be.
		next, err := json.Marshal(map[string]any{"scroll_id": page.ScrollID, "scroll": "1m"})
		if err != nil {
			return found, err
		}
		page = scrollPage{ScrollID: page.ScrollID} // cleared in the end even if this fails
		if err := c.do(ctx, esapi.ScrollRequest{Body: bytes.NewReader(next)}, &page); err != nil {
			return found, fmt.Errorf("purge %s: scroll: %w", schema, err)
		}
	}
	return found, nil
}

type scrollPage struct {
	ScrollID string `json:"_scroll_id"`
	Hits     struct {
		Hits []hit `json:"hits"`
	} `json:"hits"`
}

type hit struct {
	Index   string `json:"_index"`
	ID      string `json:"_id"`
	Version int64  `json:"_version"`
}

// deleteHits deletes the documents found by a purge, each at the version
// read. A document already gone or rewritten since (a conflict) is left to
// the next pass; anything else is an error.
func (c *Client) deleteHits(ctx context.Context, schema string, hits []hit) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, h := range hits {
		if !strings.HasPrefix(h.ID, schema+idSep) {
			// The query matched on the tenant field; an _id of another
			// tenant would mean a document written wrongly. Never delete
			// what might be someone else's.
			return fmt.Errorf("document %s in %s has tenant %s but not its id", h.ID, h.Index, schema)
		}
		a := bulkAction{Index: h.Index, ID: h.ID, Routing: schema, Version: h.Version, VersionType: "external_gte"}
		if err := enc.Encode(map[string]bulkAction{"delete": a}); err != nil {
			return err
		}
	}
	var res struct {
		Items []map[string]bulkItem `json:"items"`
	}
	req := esapi.BulkRequest{Body: &buf, FilterPath: []string{"items.*.status", "items.*.error.type", "items.*.error.reason"}}
	if err := c.do(ctx, req, &res); err != nil {
		return err
	}
	for _, m := range res.Items {
		for _, it := range m {
			switch {
			case it.Status < 300, it.Status == http.StatusNotFound, it.Status == http.StatusConflict:
			default:
				return itemError(it)
			}
		}
	}
	return nil
}

// wrapErr wraps err with op, and is nil for a nil err.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}

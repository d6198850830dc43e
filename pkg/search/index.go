package search

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/tenantworks/saas/pkg/domain"
)

// Alias returns the name of a tenant's products alias,
// <prefix>_<schema>_products. Every read and every indexer write names it.
func (c *Client) Alias(schema string) string { return c.prefix + "_" + schema + "_products" }

// isPhysical reports whether name is one of alias's physical indices,
// <alias>_<digits>. The digits matter: tenant "a" must not claim the
// indices of tenant "a_products" (<prefix>_a_products_products_<n>).
func isPhysical(alias, name string) bool {
	n, ok := strings.CutPrefix(name, alias+"_")
	if !ok || n == "" {
		return false
	}
	_, err := strconv.ParseUint(n, 10, 64)
	return err == nil
}

// mapping is the explicit mapping of a products index. dynamic: strict
// rejects a document with an unknown field rather than guessing a type.
var mapping = map[string]any{
	"dynamic": "strict",
	"properties": map[string]any{
		// tenant is the schema name of the document's tenant: what a
		// shared index's aliases filter on. Indices of one tenant carry
		// it too, so a tenant moves between the two kinds unchanged.
		"tenant": map[string]any{"type": "keyword"},
		"id":     map[string]any{"type": "keyword"},
		"sku": map[string]any{"type": "keyword",
			"fields": map[string]any{"text": map[string]any{"type": "text", "analyzer": "standard"}}},
		"name": map[string]any{"type": "text", "analyzer": "standard",
			"fields": map[string]any{"keyword": map[string]any{"type": "keyword", "ignore_above": 256}}},
		"description": map[string]any{"type": "text", "analyzer": "standard"},
		// price is the exact decimal string the API shows; price_value is
		// the same amount as a number, for ranges and sorting.
		"price":       map[string]any{"type": "keyword"},
		"price_value": map[string]any{"type": "double"},
		"currency":    map[string]any{"type": "keyword"},
		"stock":       map[string]any{"type": "integer"},
		"version":     map[string]any{"type": "long"},
		"created_at":  map[string]any{"type": "date"},
		"updated_at":  map[string]any{"type": "date"},
	},
}

// createIndex creates a physical index with the products mapping and, when
// alias is not empty, the alias on it in the same step.
func (c *Client) createIndex(ctx context.Context, name, alias string) error {
	settings := map[string]any{
		// One node: one shard and no replica keep a tenant's index cheap
		// and the cluster green.
		"number_of_shards":   1,
		"number_of_replicas": 0,
		"refresh_interval":   "1s",
	}
	if c.gcDeletes != "" {
		settings["gc_deletes"] = c.gcDeletes
	}
	body := map[string]any{"settings": map[string]any{"index": settings}, "mappings": mapping}
	if alias != "" {
		body["aliases"] = map[string]any{alias: map[string]any{}}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return c.do(ctx, esapi.IndicesCreateRequest{Index: name, Body: bytes.NewReader(b)}, nil)
}

// aliasIndices returns the physical indices alias points to, none when the
// alias does not exist.
func (c *Client) aliasIndices(ctx context.Context, alias string) ([]string, error) {
	var out map[string]json.RawMessage
	err := c.do(ctx, esapi.IndicesGetAliasRequest{Name: []string{alias}}, &out)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// Indices returns the physical indices behind a tenant's alias: one (a
// shared index, see IsShared, or one of its own), or none when the tenant
// has no index.
func (c *Client) Indices(ctx context.Context, schema string) ([]string, error) {
	if err := domain.ValidateSchemaName(schema); err != nil {
		return nil, err
	}
	names, err := c.aliasIndices(ctx, c.Alias(schema))
	if err != nil {
		return nil, fmt.Errorf("search: indices of %s: %w", schema, err)
	}
	return names, nil
}

// EnsureIndex gives a tenant its alias on its shared index (created if
// missing), unless the alias exists. It is idempotent and safe to call
// concurrently: every caller picks the same shared index. Errors: EINVALID
// for a bad schema name, EUNAVAILABLE when Elasticsearch is down.
func (c *Client) EnsureIndex(ctx context.Context, schema string) error {
	if err := domain.ValidateSchemaName(schema); err != nil {
		return err
	}
	if err := c.ensureIndex(ctx, schema); err != nil {
		return fmt.Errorf("search: ensure index %s: %w", c.Alias(schema), err)
	}
	return nil
}

func (c *Client) ensureIndex(ctx context.Context, schema string) error {
	alias := c.Alias(schema)
	names, err := c.aliasIndices(ctx, alias)
	if err != nil || len(names) > 0 {
		return err
	}
	if err := c.dropStrayIndex(ctx, alias); err != nil {
		return err
	}
	return c.addSharedAlias(ctx, schema, c.home(schema))
}

// dropStrayIndex deletes a concrete index that has the alias's name.
// require_alias keeps index operations from creating one, but not
// externally versioned deletes: Elasticsearch auto-creates their target
// when it does not exist. Such an index only ever holds delete markers
// (index operations into it fail), so nothing is lost. Deleting by the name
// never touches the real index once the name is an alias again.
func (c *Client) dropStrayIndex(ctx context.Context, alias string) error {
	ignore := true
	var resolved struct {
		Indices []struct {
			Name string `json:"name"`
		} `json:"indices"`
	}
	err := c.do(ctx, esapi.IndicesResolveIndexRequest{Name: []string{alias}, ExpandWildcards: "all",
		IgnoreUnavailable: &ignore, AllowNoIndices: &ignore}, &resolved)
	if err != nil {
		return err
	}
	for _, ix := range resolved.Indices {
		if ix.Name == alias {
			return c.deleteIndices(ctx, []string{alias})
		}
	}
	return nil
}

// NewPhysicalIndex creates an empty physical index for a tenant, named
// <alias>_<unix nanoseconds>, with the products mapping and no alias: the
// target of a rebuild (ApplyToIndex), to be put in service by SwapAlias.
func (c *Client) NewPhysicalIndex(ctx context.Context, schema string) (string, error) {
	if err := domain.ValidateSchemaName(schema); err != nil {
		return "", err
	}
	name := c.Alias(schema) + "_" + strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := c.createIndex(ctx, name, ""); err != nil {
		return "", fmt.Errorf("search: new index %s: %w", name, err)
	}
	return name, nil
}

// SwapAlias refreshes newIndex, then moves the tenant's alias onto it in one
// atomic _aliases request (searches see the old index or the new one, never
// neither), then deletes the tenant's indices the alias pointed to before
// and removes the tenant's documents from every shared index but newIndex.
// newIndex is one of the tenant's own indices (NewPhysicalIndex) or a
// shared index (SharedTarget), where the alias filters on the tenant; when
// the alias is already on it, only the clean-up runs. Errors: EINVALID when
// newIndex is neither.
func (c *Client) SwapAlias(ctx context.Context, schema, newIndex string) error {
	if err := domain.ValidateSchemaName(schema); err != nil {
		return err
	}
	alias := c.Alias(schema)
	shared := c.IsShared(newIndex)
	if !shared && !isPhysical(alias, newIndex) {
		return domain.Errorf(domain.EINVALID, "%q is not an index of tenant %s", newIndex, schema)
	}
	if err := c.do(ctx, esapi.IndicesRefreshRequest{Index: []string{newIndex}}, nil); err != nil {
		return fmt.Errorf("search: swap %s: refresh %s: %w", alias, newIndex, err)
	}
	old, err := c.aliasIndices(ctx, alias)
	if err != nil {
		return fmt.Errorf("search: swap %s: %w", alias, err)
	}
	var actions []map[string]any
	var drop []string
	for _, o := range old {
		if o != newIndex {
			actions = append(actions, map[string]any{"remove": map[string]any{"index": o, "alias": alias}})
			if isPhysical(alias, o) {
				drop = append(drop, o)
			}
		}
	}
	if len(actions) > 0 || !slices.Contains(old, newIndex) {
		if shared {
			actions = append(actions, sharedAlias(newIndex, alias, schema))
		} else {
			actions = append(actions, map[string]any{"add": map[string]any{"index": newIndex, "alias": alias}})
		}
		if err := c.updateAliases(ctx, actions); err != nil {
			return fmt.Errorf("search: swap %s to %s: %w", alias, newIndex, err)
		}
	}
	if err := c.deleteIndices(ctx, drop); err != nil {
		return fmt.Errorf("search: swap %s: delete old index: %w", alias, err)
	}
	others, err := c.sharedIndices(ctx)
	if err == nil {
		err = c.purge(ctx, schema, slices.DeleteFunc(others, func(n string) bool { return n == newIndex }))
	}
	if err != nil {
		return fmt.Errorf("search: swap %s: clear the shared indices: %w", alias, err)
	}
	return nil
}

// DeleteIndex deletes one of a tenant's physical indices, for instance a
// rebuild that failed half way; given a shared index, it deletes the
// tenant's documents from it instead (never do that to the one the
// tenant's alias is on). A missing index is not an error.
func (c *Client) DeleteIndex(ctx context.Context, schema, index string) error {
	if err := domain.ValidateSchemaName(schema); err != nil {
		return err
	}
	var err error
	switch {
	case c.IsShared(index):
		err = c.purge(ctx, schema, []string{index})
	case isPhysical(c.Alias(schema), index):
		err = c.deleteIndices(ctx, []string{index})
	default:
		return domain.Errorf(domain.EINVALID, "%q is not an index of tenant %s", index, schema)
	}
	if err != nil {
		return fmt.Errorf("search: delete %s: %w", index, err)
	}
	return nil
}

// DeleteTenant deletes a tenant's alias, every physical index of its own,
// including the leftovers of interrupted rebuilds, and its documents in
// every shared index. It is idempotent: a tenant without index is not an
// error. Indices are deleted by name, so it works where
// action.destructive_requires_name is on.
func (c *Client) DeleteTenant(ctx context.Context, schema string) error {
	if err := domain.ValidateSchemaName(schema); err != nil {
		return err
	}
	alias := c.Alias(schema)
	names, err := c.aliasIndices(ctx, alias)
	if err != nil {
		return fmt.Errorf("search: delete tenant %s: %w", schema, err)
	}
	// First the alias on a shared index, so searches stop seeing the
	// tenant at once, then its documents there.
	var unalias []map[string]any
	for _, n := range names {
		if c.IsShared(n) {
			unalias = append(unalias, map[string]any{"remove": map[string]any{"index": n, "alias": alias}})
		}
	}
	if len(unalias) > 0 {
		if err := c.updateAliases(ctx, unalias); err != nil && !isType(err, "aliases_not_found_exception") {
			return fmt.Errorf("search: delete tenant %s: %w", schema, err)
		}
	}
	shared, err := c.sharedIndices(ctx)
	if err == nil {
		err = c.purge(ctx, schema, shared)
	}
	if err != nil {
		return fmt.Errorf("search: delete tenant %s: %w", schema, err)
	}
	names = slices.DeleteFunc(names, c.IsShared)
	var resolved struct {
		Indices []struct {
			Name string `json:"name"`
		} `json:"indices"`
	}
	// The alias's name itself may be a concrete index, auto-created by a
	// delete (see dropStrayIndex).
	ignore := true
	err = c.do(ctx, esapi.IndicesResolveIndexRequest{Name: []string{alias, alias + "_*"}, ExpandWildcards: "all",
		IgnoreUnavailable: &ignore, AllowNoIndices: &ignore}, &resolved)
	if err != nil {
		return fmt.Errorf("search: delete tenant %s: list indices: %w", schema, err)
	}
	for _, ix := range resolved.Indices {
		if (ix.Name == alias || isPhysical(alias, ix.Name)) && !slices.Contains(names, ix.Name) {
			names = append(names, ix.Name)
		}
	}
	if err := c.deleteIndices(ctx, names); err != nil {
		return fmt.Errorf("search: delete tenant %s: %w", schema, err)
	}
	return nil
}

// Refresh makes everything written to a tenant's index visible to search.
// Tests and rebuilds use it; the indexer relies on refresh_interval.
func (c *Client) Refresh(ctx context.Context, schema string) error {
	if err := domain.ValidateSchemaName(schema); err != nil {
		return err
	}
	if err := c.do(ctx, esapi.IndicesRefreshRequest{Index: []string{c.Alias(schema)}}, nil); err != nil {
		return fmt.Errorf("search: refresh %s: %w", schema, err)
	}
	return nil
}

func (c *Client) updateAliases(ctx context.Context, actions []map[string]any) error {
	b, err := json.Marshal(map[string]any{"actions": actions})
	if err != nil {
		return err
	}
	return c.do(ctx, esapi.IndicesUpdateAliasesRequest{Body: bytes.NewReader(b)}, nil)
}

// deleteIndices deletes indices by exact name; missing ones are skipped.
func (c *Client) deleteIndices(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	ignore := true
	return c.do(ctx, esapi.IndicesDeleteRequest{Index: names, IgnoreUnavailable: &ignore}, nil)
}

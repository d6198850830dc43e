package search

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/tenantworks/saas/pkg/domain"
)

// MaxWindow is how deep Search pages: from+size never goes past it
// (Elasticsearch's index.max_result_window default).
const MaxWindow = 10000

// Search runs a full-text query in one tenant's alias and returns a page
// of documents, best match first, and the number of matches (exact up to
// MaxWindow). It matches q against name (boosted), description and the
// words of sku, each with typo tolerance (fuzziness AUTO), and ranks an
// exact sku (case-insensitive) above everything. Only the tenant's own
// alias is named, never a pattern. A tenant without index has no matches.
// Errors: EINVALID for a bad schema or window, EUNAVAILABLE when
// Elasticsearch is down.
func (c *Client) Search(ctx context.Context, schema, q string, from, size int) ([]Doc, int, error) {
	if err := domain.ValidateSchemaName(schema); err != nil {
		return nil, 0, err
	}
	if from < 0 || size < 1 || from+size > MaxWindow {
		return nil, 0, domain.Errorf(domain.EINVALID, "search window from %d size %d is outside 0..%d", from, size, MaxWindow)
	}
	query := map[string]any{
		"bool": map[string]any{
			"should": []any{
				map[string]any{"multi_match": map[string]any{
					"query":     q,
					"fields":    []string{"name^3", "description", "sku.text^2"},
					"fuzziness": "AUTO",
				}},
				map[string]any{"term": map[string]any{"sku": map[string]any{"value": q, "case_insensitive": true, "boost": 10}}},
			},
			"minimum_should_match": 1,
			// The alias of a shared index filters on the tenant already;
			// saying it here too costs nothing (a cached term filter) and
			// keeps isolation from resting on alias definitions alone.
			"filter": []any{tenantFilter(schema)},
		},
	}
	body := map[string]any{
		"query": query, "from": from, "size": size,
		"track_total_hits": MaxWindow,
		// id breaks ties, so pages of equal scores do not overlap.
		"sort": []any{"_score", map[string]any{"id": "asc"}},
	}
	var res searchResponse
	alias := c.Alias(schema)
	if err := c.search(ctx, alias, body, &res); err != nil {
		if isType(err, "index_not_found_exception") {
			return []Doc{}, 0, nil
		}
		return nil, 0, fmt.Errorf("search: query %s: %w", alias, err)
	}
	docs := make([]Doc, len(res.Hits.Hits))
	for i, h := range res.Hits.Hits {
		d, err := decodeDoc(schema, h.Source)
		if err != nil {
			return nil, 0, fmt.Errorf("search: query %s: decode %s: %w", alias, h.ID, err)
		}
		docs[i] = d
	}
	return docs, res.Hits.Total.Value, nil
}

// tenantFilter matches the documents of one tenant.
func tenantFilter(schema string) map[string]any {
	return map[string]any{"term": map[string]any{"tenant": schema}}
}

type searchResponse struct {
	Hits struct {
		Total struct {
			Value int `json:"value"`
		} `json:"total"`
		Hits []struct {
			ID      string          `json:"_id"`
			Version int64           `json:"_version"`
			Source  json.RawMessage `json:"_source"`
			Sort    []any           `json:"sort"`
		} `json:"hits"`
	} `json:"hits"`
}

func (c *Client) search(ctx context.Context, target string, body any, out *searchResponse) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return c.do(ctx, esapi.SearchRequest{Index: []string{target}, Body: bytes.NewReader(b)}, out)
}

// Get returns one document of a tenant's index by product id, and false
// when there is none.
func (c *Client) Get(ctx context.Context, schema, id string) (Doc, bool, error) {
	if err := domain.ValidateSchemaName(schema); err != nil {
		return Doc{}, false, err
	}
	var res struct {
		Found  bool            `json:"found"`
		Source json.RawMessage `json:"_source"`
	}
	// A get ignores alias filters: what keeps it to the tenant is the
	// tenant-qualified _id.
	err := c.do(ctx, esapi.GetRequest{Index: c.Alias(schema), DocumentID: docID(schema, id), Routing: schema}, &res)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return Doc{}, false, nil // no such document, or no index
	}
	if err != nil {
		return Doc{}, false, fmt.Errorf("search: get %s/%s: %w", schema, id, err)
	}
	if !res.Found {
		return Doc{}, false, nil
	}
	d, err := decodeDoc(schema, res.Source)
	if err != nil {
		return Doc{}, false, fmt.Errorf("search: get %s/%s: %w", schema, id, err)
	}
	return d, true, nil
}

// EachVersion calls fn with the product id and version of every document
// of a tenant in its index, in id order, a page of up to 1000 at a time (search_after
// on id), until fn returns an error. Call Refresh first to see the latest
// writes. A tenant without index has no documents.
func (c *Client) EachVersion(ctx context.Context, schema string, fn func(ids []string, versions []int64) error) error {
	if err := domain.ValidateSchemaName(schema); err != nil {
		return err
	}
	alias := c.Alias(schema)
	var after []any
	for {
		body := map[string]any{
			"size": 1000, "_source": false, "version": true, "track_total_hits": false,
			"query": map[string]any{"bool": map[string]any{"filter": []any{tenantFilter(schema)}}},
			"sort":  []any{map[string]any{"id": "asc"}},
		}
		if after != nil {
			body["search_after"] = after
		}
		var res searchResponse
		if err := c.search(ctx, alias, body, &res); err != nil {
			if isType(err, "index_not_found_exception") {
				return nil
			}
			return fmt.Errorf("search: list %s: %w", alias, err)
		}
		hits := res.Hits.Hits
		if len(hits) == 0 {
			return nil
		}
		ids, versions := make([]string, len(hits)), make([]int64, len(hits))
		for i, h := range hits {
			id, ok := strings.CutPrefix(h.ID, schema+idSep)
			if !ok {
				return fmt.Errorf("search: list %s: document %s is not the tenant's", alias, h.ID)
			}
			ids[i], versions[i] = id, h.Version
		}
		if err := fn(ids, versions); err != nil {
			return err
		}
		after = hits[len(hits)-1].Sort
	}
}

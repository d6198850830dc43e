package search

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/tenantworks/saas/pkg/domain"
)

// Doc is a product as stored in, and returned from, a tenant's index.
type Doc struct {
	ID          string    `json:"id"`
	SKU         string    `json:"sku"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Price       string    `json:"price"`
	PriceValue  float64   `json:"price_value"`
	Currency    string    `json:"currency"`
	Stock       int64     `json:"stock"`
	Version     int64     `json:"version"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// DocFromProduct converts a product to its document.
func DocFromProduct(p domain.Product) Doc {
	v, _ := strconv.ParseFloat(p.Price, 64) // a validated price always parses
	return Doc{ID: p.ID, SKU: p.SKU, Name: p.Name, Description: p.Description, Price: p.Price, PriceValue: v,
		Currency: p.Currency, Stock: p.Stock, Version: p.Version, CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC()}
}

// stored is a document as written to an index: the product and the
// tenant it belongs to, the field shared indices' aliases filter on.
type stored struct {
	Doc
	Tenant string `json:"tenant"`
}

// decodeDoc decodes a document read from schema's alias and checks that it
// is the tenant's: what isolation guarantees, checked once more.
func decodeDoc(schema string, src []byte) (Doc, error) {
	var s stored
	if err := json.Unmarshal(src, &s); err != nil {
		return Doc{}, err
	}
	if s.Tenant != schema {
		return Doc{}, fmt.Errorf("document %s belongs to tenant %q, not %q", s.ID, s.Tenant, schema)
	}
	return s.Doc, nil
}

// Product converts a document back to the product it was made from.
func (d Doc) Product() domain.Product {
	return domain.Product{ID: d.ID, SKU: d.SKU, Name: d.Name, Description: d.Description, Price: d.Price,
		Currency: d.Currency, Stock: d.Stock, Version: d.Version, CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC()}
}

// Op is one write of a bulk: index Doc, or delete ID, at Version.
type Op struct {
	Delete  bool
	ID      string
	Version int64
	Doc     Doc // index operations only
}

// IndexOp indexes d at d.Version.
func IndexOp(d Doc) Op { return Op{ID: d.ID, Version: d.Version, Doc: d} }

// DeleteOp deletes a document at version (the delete event's version, one
// past the product's last).
func DeleteOp(id string, version int64) Op { return Op{Delete: true, ID: id, Version: version} }

// Outcome counts what the operations of a bulk did: Applied changed the
// index; Stale found the document already at that version or a newer one
// (or, for a delete, no document); Failed are the per-item errors.
type Outcome struct {
	Applied, Stale, Failed int
}

// Apply writes ops to a tenant's alias in one bulk request, each at its
// version as Elasticsearch external version: a document already at that
// version or newer is left alone, and that counts as success. When the
// alias does not exist yet it is created (EnsureIndex) and the bulk retried
// once. The first result has one entry per op: nil, or an EINVALID error
// for a document Elasticsearch rejects, or an EUNAVAILABLE error for an
// item that may succeed on retry. The second is an error for the whole
// request: EUNAVAILABLE when Elasticsearch cannot be reached.
func (c *Client) Apply(ctx context.Context, schema string, ops []Op) ([]error, error) {
	_, errs, err := c.ApplyOutcome(ctx, schema, ops)
	return errs, err
}

// ApplyOutcome is Apply that also counts what the operations did.
func (c *Client) ApplyOutcome(ctx context.Context, schema string, ops []Op) (Outcome, []error, error) {
	if err := domain.ValidateSchemaName(schema); err != nil {
		return Outcome{}, nil, err
	}
	alias := c.Alias(schema)
	out, errs, noAlias, err := c.bulk(ctx, schema, alias, true, "external", ops)
	if err == nil && noAlias {
		if err = c.ensureIndex(ctx, schema); err == nil {
			out, errs, noAlias, err = c.bulk(ctx, schema, alias, true, "external", ops)
			if err == nil && noAlias { // deleted again in between: try later
				err = fmt.Errorf("%w: alias vanished after creation", errUnavailable)
			}
		}
	}
	if err != nil {
		return Outcome{}, nil, fmt.Errorf("search: bulk %s: %w", alias, err)
	}
	return out, errs, nil
}

// ApplyToIndex is ApplyOutcome against one of the tenant's physical
// indices by name, or a shared index, as a rebuild does before SwapAlias
// (or in place, on the shared index the tenant is on). It writes what the
// database or the stream says now, so a document at the same version is
// rewritten (external_gte: it may differ, which is why one rebuilds) and
// only a newer one is kept. The index must exist; it is never created
// here. Errors: EINVALID for an index that is neither the tenant's nor
// shared, ENOTFOUND when it does not exist.
func (c *Client) ApplyToIndex(ctx context.Context, schema, index string, ops []Op) (Outcome, []error, error) {
	if err := domain.ValidateSchemaName(schema); err != nil {
		return Outcome{}, nil, err
	}
	if !isPhysical(c.Alias(schema), index) && !c.IsShared(index) {
		return Outcome{}, nil, domain.Errorf(domain.EINVALID, "%q is not an index of tenant %s", index, schema)
	}
	// Elasticsearch would auto-create a missing target; ask first. (Only a
	// concurrent DeleteTenant can remove it in between.)
	err := c.do(ctx, esapi.IndicesExistsRequest{Index: []string{index}}, nil)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		err = domain.Errorf(domain.ENOTFOUND, "index %s not found", index)
	}
	if err != nil {
		return Outcome{}, nil, fmt.Errorf("search: bulk %s: %w", index, err)
	}
	out, errs, _, err := c.bulk(ctx, schema, index, false, "external_gte", ops)
	if err != nil {
		return Outcome{}, nil, fmt.Errorf("search: bulk %s: %w", index, err)
	}
	return out, errs, nil
}

type bulkAction struct {
	Index       string `json:"_index"`
	ID          string `json:"_id"`
	Routing     string `json:"routing"`
	Version     int64  `json:"version"`
	VersionType string `json:"version_type"`
}

type bulkItem struct {
	Index  string     `json:"_index"`
	Status int        `json:"status"`
	Result string     `json:"result"`
	Error  *errorBody `json:"error"`
}

// bulk sends schema's ops to target, each with its tenant-qualified _id,
// routed by the schema name (as a shared alias routes; an alias with a
// routing of its own refuses any other) and carrying the tenant field.
// versionType is "external", or "external_gte" for a rebuild.
// requireAlias refuses a target that is not an alias, so a missing alias
// is never auto-created as a concrete index. noAlias reports, with
// requireAlias, that target is not an alias: missing, or auto-created as a
// concrete index by a delete. The caller repairs and retries: every
// operation is idempotent.
func (c *Client) bulk(ctx context.Context, schema, target string, requireAlias bool, versionType string, ops []Op) (out Outcome, errs []error, noAlias bool, err error) {
	if len(ops) == 0 {
		return Outcome{}, nil, false, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, op := range ops {
		a := bulkAction{Index: target, ID: docID(schema, op.ID), Routing: schema, Version: op.Version, VersionType: versionType}
		kind := "index"
		if op.Delete {
			kind = "delete"
		}
		if err := enc.Encode(map[string]bulkAction{kind: a}); err != nil {
			return Outcome{}, nil, false, err
		}
		if !op.Delete {
			// The document's own id must be the op's: the _id above is
			// built from op.ID, and readers trust the id field.
			d := op.Doc
			d.ID = op.ID
			if err := enc.Encode(stored{Doc: d, Tenant: schema}); err != nil {
				return Outcome{}, nil, false, err
			}
		}
	}
	var res struct {
		Items []map[string]bulkItem `json:"items"`
	}
	req := esapi.BulkRequest{Body: &buf, RequireAlias: &requireAlias,
		FilterPath: []string{"items.*._index", "items.*.status", "items.*.result", "items.*.error.type", "items.*.error.reason"}}
	if err := c.do(ctx, req, &res); err != nil {
		return Outcome{}, nil, false, err
	}
	if len(res.Items) != len(ops) {
		return Outcome{}, nil, false, fmt.Errorf("bulk answered %d items for %d operations", len(res.Items), len(ops))
	}
	errs = make([]error, len(ops))
	for i, m := range res.Items {
		var it bulkItem
		for _, v := range m { // one key: the action
			it = v
		}
		if requireAlias && it.Index == target {
			noAlias = true // an alias resolves to its physical index
		}
		switch {
		case it.Error == nil && it.Status < 300:
			out.Applied++
		case it.Error == nil && it.Status == http.StatusNotFound && ops[i].Delete:
			out.Stale++ // nothing to delete; the version is recorded all the same
		case it.Status == http.StatusConflict:
			out.Stale++ // already at this version or newer
		case it.Error != nil && it.Error.Type == "index_not_found_exception":
			noAlias = true
		default:
			out.Failed++
			errs[i] = itemError(it)
		}
	}
	if noAlias {
		return Outcome{}, nil, true, nil
	}
	return out, errs, false, nil
}

// itemError classifies a failed bulk item: overload and server errors may
// pass on retry (EUNAVAILABLE); any other is the document's fault (EINVALID).
func itemError(it bulkItem) error {
	ae := &apiError{Status: it.Status}
	if it.Error != nil {
		ae.Type, ae.Reason = it.Error.Type, it.Error.Reason
	}
	if it.Status == http.StatusTooManyRequests || it.Status >= 500 {
		return fmt.Errorf("%w: %w", errUnavailable, ae)
	}
	return fmt.Errorf("%w: %w", domain.Errorf(domain.EINVALID, "document rejected by the index"), ae)
}

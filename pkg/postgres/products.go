package postgres

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/domain"
)

const productColumns = `id, sku, name, description, price::text, currency, stock, version, created_at, updated_at`

func scanProduct(row pgx.Row) (domain.Product, error) {
	var p domain.Product
	err := row.Scan(&p.ID, &p.SKU, &p.Name, &p.Description, &p.Price, &p.Currency, &p.Stock, &p.Version, &p.CreatedAt, &p.UpdatedAt)
	return p, err
}

// orderings are the sort keys a list may ask for: column and the SQL type its
// cursor value is cast to. Only these names ever reach SQL text.
var orderings = map[string]string{
	"created_at": "timestamptz",
	"updated_at": "timestamptz",
	"name":       "text",
	"sku":        "text",
	"price":      "numeric",
	"stock":      "integer",
}

// DefaultOrdering lists the newest products first.
const DefaultOrdering = "-created_at"

// ListParams select a page of products.
type ListParams struct {
	Limit    int    // 1..100
	Ordering string // a key of orderings, with "-" for descending; "" means DefaultOrdering
	Cursor   string // opaque, from a previous page's NextCursor
}

// cursor is the position after the last row of a page.
type cursor struct {
	Ordering string `json:"o"`
	Value    string `json:"v"`
	ID       string `json:"id"`
}

// ValidateListParams normalizes p and checks the ordering and cursor,
// returning an EINVALID *Error naming the bad parameter.
func ValidateListParams(p *ListParams) (*cursor, error) {
	if p.Ordering == "" {
		p.Ordering = DefaultOrdering
	}
	if _, ok := orderings[strings.TrimPrefix(p.Ordering, "-")]; !ok {
		return nil, &domain.Error{Code: domain.EINVALID, Message: "invalid ordering",
			Details: map[string]string{"ordering": "must be one of created_at, updated_at, name, sku, price, stock, optionally prefixed by -"}}
	}
	if p.Limit < 1 || p.Limit > 100 {
		return nil, &domain.Error{Code: domain.EINVALID, Message: "invalid limit", Details: map[string]string{"limit": "must be from 1 to 100"}}
	}
	if p.Cursor == "" {
		return nil, nil
	}
	bad := &domain.Error{Code: domain.EINVALID, Message: "invalid cursor", Details: map[string]string{"cursor": "is not a cursor of this list"}}
	raw, err := base64.RawURLEncoding.DecodeString(p.Cursor)
	// 2048: the cursor of a 200-character name whose every character
	// JSON escapes as \uXXXX (such as '<') is about 1.3 KB.
	if err != nil || len(raw) > 2048 {
		return nil, bad
	}
	var c cursor
	if err := json.Unmarshal(raw, &c); err != nil || c.Ordering != p.Ordering {
		return nil, bad
	}
	if _, err := parseUUID(c.ID); err != nil {
		return nil, bad
	}
	if !validCursorValue(orderings[strings.TrimPrefix(p.Ordering, "-")], c.Value) {
		return nil, bad
	}
	return &c, nil
}

func validCursorValue(typ, v string) bool {
	switch typ {
	case "timestamptz":
		// Only the form encodeCursor writes: time.Parse also takes a comma
		// before the fraction, offsets past 15:59 and the year 0000, which
		// PostgreSQL refuses.
		t, err := time.Parse(time.RFC3339Nano, v)
		return err == nil && t.Year() >= 1 && t.UTC().Format(time.RFC3339Nano) == v
	case "numeric":
		return priceLike(v)
	case "integer":
		var n int64
		_, err := fmt.Sscanf(v, "%d", &n)
		return err == nil && fmt.Sprint(n) == v && int64(int32(n)) == n // stock is an integer column
	}
	return len(v) <= 1024 && !strings.ContainsRune(v, 0) // text cannot hold NUL
}

func priceLike(v string) bool {
	if v == "" || len(v) > 20 {
		return false
	}
	for _, r := range v {
		if (r < '0' || r > '9') && r != '.' {
			return false
		}
	}
	return strings.Count(v, ".") <= 1 && v != "." // "." alone is no numeric
}

func encodeCursor(ordering string, p domain.Product) string {
	c := cursor{Ordering: ordering, ID: p.ID}
	switch strings.TrimPrefix(ordering, "-") {
	case "created_at":
		c.Value = p.CreatedAt.UTC().Format(time.RFC3339Nano)
	case "updated_at":
		c.Value = p.UpdatedAt.UTC().Format(time.RFC3339Nano)
	case "name":
		c.Value = p.Name
	case "sku":
		c.Value = p.SKU
	case "price":
		c.Value = p.Price
	case "stock":
		c.Value = fmt.Sprint(p.Stock)
	}
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ListProducts returns one page of the tenant's products in the requested
// order, using keyset pagination, and the cursor of the next page ("" at the
// end). Errors: EINVALID for a bad ordering, limit or cursor.
func (db *DB) ListProducts(ctx context.Context, schemaName string, p ListParams) ([]domain.Product, string, error) {
	cur, err := ValidateListParams(&p)
	if err != nil {
		return nil, "", err
	}
	col := strings.TrimPrefix(p.Ordering, "-")
	dir, cmp := "ASC", ">"
	if strings.HasPrefix(p.Ordering, "-") {
		dir, cmp = "DESC", "<"
	}
	q := `SELECT ` + productColumns + ` FROM products`
	args := []any{p.Limit + 1}
	if cur != nil {
		q += fmt.Sprintf(` WHERE (%s, id) %s ($2::%s, $3::uuid)`, col, cmp, orderings[col])
		args = append(args, cur.Value, cur.ID)
	}
	// Qualified: the select list renders price as text under the same name,
	// and an unqualified ORDER BY would sort by that text.
	q += fmt.Sprintf(` ORDER BY products.%s %s, products.id %s LIMIT $1`, col, dir, dir)

	var out []domain.Product
	err = db.InTenant(ctx, schemaName, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Product, error) { return scanProduct(r) })
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list products: %w", err)
	}
	next := ""
	if len(out) > p.Limit {
		out = out[:p.Limit]
		next = encodeCursor(p.Ordering, out[len(out)-1])
	}
	return out, next, nil
}

// GetProduct returns one product. Errors: ENOTFOUND.
func (db *DB) GetProduct(ctx context.Context, schemaName, id string) (domain.Product, error) {
	if _, err := parseUUID(id); err != nil {
		return domain.Product{}, errProductNotFound
	}
	var p domain.Product
	err := db.InTenant(ctx, schemaName, func(tx pgx.Tx) (err error) {
		p, err = scanProduct(tx.QueryRow(ctx, `SELECT `+productColumns+` FROM products WHERE id = $1`, id))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Product{}, errProductNotFound
	}
	if err != nil {
		return domain.Product{}, fmt.Errorf("postgres: get product: %w", err)
	}
	return p, nil
}

var (
	errProductNotFound = domain.Errorf(domain.ENOTFOUND, "product not found")
	errStaleVersion    = &domain.Error{Code: domain.ECONFLICT, Message: "the product was changed by someone else",
		Details: map[string]string{"If-Match": "does not match the current version"}}
	errDuplicateSKU = &domain.Error{Code: domain.ECONFLICT, Message: "a product with this sku already exists",
		Details: map[string]string{"sku": "is already taken"}}
)

// ProductAuditFunc builds the audit entry of a product change from the
// product before it (nil for a create) and after it (nil for a delete),
// inside the change's transaction. A nil ProductAuditFunc writes no entry.
type ProductAuditFunc func(old, new *domain.Product) audit.Entry

// writeProductAudit writes the entry record builds, if any.
func writeProductAudit(ctx context.Context, tx pgx.Tx, record ProductAuditFunc, old, new *domain.Product) error {
	if record == nil {
		return nil
	}
	return WriteTenantAudit(ctx, tx, record(old, new))
}

// CreateProduct inserts a product, the outbox row outbox builds from it
// and the audit entry record builds, in one transaction. p must have been
// validated in full; a missing description is empty and a missing stock 0.
// Errors: ECONFLICT for a duplicate SKU.
func (db *DB) CreateProduct(ctx context.Context, schemaName string, p domain.ProductPatch, outbox OutboxFunc, record ProductAuditFunc) (domain.Product, error) {
	desc, stock := "", int64(0)
	if p.Description != nil {
		desc = *p.Description
	}
	if p.Stock != nil {
		stock = *p.Stock
	}
	// Two round trips, not six: BEGIN, search_path and the insert go
	// together, then the audit entry, the outbox row (both built from the
	// row the insert returned) and COMMIT.
	var out domain.Product
	err := db.inTenantPipelined(ctx, schemaName, func(b *pgx.Batch) {
		b.Queue(`INSERT INTO products (id, sku, name, description, price, currency, stock)
			 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+productColumns,
			newID(), *p.SKU, *p.Name, desc, *p.Price, *p.Currency, stock)
	}, func(br pgx.BatchResults) (err error) {
		out, err = scanProduct(br.QueryRow())
		return err
	}, func(b *pgx.Batch) error {
		if record != nil {
			e := record(nil, &out)
			sql, args, err := auditInsert("audit_log", e)
			if err != nil {
				return err
			}
			queueExec(b, "insert audit entry "+e.Action, sql, args...)
		}
		r, err := outbox(out)
		if err != nil {
			return fmt.Errorf("build outbox row: %w", err)
		}
		sql, args, err := outboxInsert(r)
		if err != nil {
			return err
		}
		queueExec(b, "insert outbox", sql, args...)
		return nil
	})
	if IsUniqueViolation(err, "products_sku_key") {
		return domain.Product{}, errDuplicateSKU
	}
	if err != nil {
		return domain.Product{}, fmt.Errorf("postgres: create product: %w", err)
	}
	return out, nil
}

// UpdateProduct applies the fields set in p, bumps the version and writes
// the outbox row outbox builds from the updated product and the audit
// entry record builds from the product before and after, in one
// transaction. With ifVersion set, the update happens only if the product
// is at that version. Errors: ENOTFOUND, ECONFLICT for a stale version or a
// duplicate SKU. Cost: the row is read and locked first (the audit entry
// needs the old values), then updated.
func (db *DB) UpdateProduct(ctx context.Context, schemaName, id string, p domain.ProductPatch, ifVersion *int64, outbox OutboxFunc, record ProductAuditFunc) (domain.Product, error) {
	if _, err := parseUUID(id); err != nil {
		return domain.Product{}, errProductNotFound
	}
	var out domain.Product
	err := db.InTenant(ctx, schemaName, func(tx pgx.Tx) (err error) {
		old, err := scanProduct(tx.QueryRow(ctx, `SELECT `+productColumns+` FROM products WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return errProductNotFound
		}
		if err != nil {
			return err
		}
		if ifVersion != nil && old.Version != *ifVersion {
			return errStaleVersion
		}
		out, err = scanProduct(tx.QueryRow(ctx,
			`UPDATE products SET
			   sku = coalesce($3, sku), name = coalesce($4, name), description = coalesce($5, description),
			   price = coalesce($6::numeric, price), currency = coalesce($7, currency), stock = coalesce($8, stock),
			   version = version + 1, updated_at = now()
			 WHERE id = $1 AND ($2::bigint IS NULL OR version = $2)
			 RETURNING `+productColumns,
			id, ifVersion, p.SKU, p.Name, p.Description, p.Price, p.Currency, p.Stock))
		if err != nil {
			return err // the row is locked: it is there, at the version read
		}
		if err := writeProductAudit(ctx, tx, record, &old, &out); err != nil {
			return err
		}
		return writeOutbox(ctx, tx, outbox, out)
	})
	if IsUniqueViolation(err, "products_sku_key") {
		return domain.Product{}, errDuplicateSKU
	}
	if err != nil {
		return domain.Product{}, fmt.Errorf("postgres: update product: %w", err)
	}
	return out, nil
}

// DeleteProduct deletes a product and writes the outbox row outbox builds
// from the deleted row and the audit entry record builds, in one
// transaction. Errors: ENOTFOUND, ECONFLICT for a stale version.
func (db *DB) DeleteProduct(ctx context.Context, schemaName, id string, ifVersion *int64, outbox OutboxFunc, record ProductAuditFunc) error {
	if _, err := parseUUID(id); err != nil {
		return errProductNotFound
	}
	err := db.InTenant(ctx, schemaName, func(tx pgx.Tx) error {
		old, err := scanProduct(tx.QueryRow(ctx,
			`DELETE FROM products WHERE id = $1 AND ($2::bigint IS NULL OR version = $2) RETURNING `+productColumns, id, ifVersion))
		if errors.Is(err, pgx.ErrNoRows) {
			return missingOrStale(ctx, tx, id)
		}
		if err != nil {
			return err
		}
		if err := writeProductAudit(ctx, tx, record, &old, nil); err != nil {
			return err
		}
		return writeOutbox(ctx, tx, outbox, old)
	})
	if err != nil {
		return fmt.Errorf("postgres: delete product: %w", err)
	}
	return nil
}

func missingOrStale(ctx context.Context, tx pgx.Tx, id string) error {
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM products WHERE id = $1)`, id).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return errStaleVersion
	}
	return errProductNotFound
}

// parseUUID is uuid.Parse limited to what PostgreSQL's uuid input takes:
// uuid.Parse also takes "urn:uuid:<uuid>" and any character on either side
// of a UUID (not only braces), which the database refuses (a 500 where a
// 404 or a 422 is due).
func parseUUID(s string) (uuid.UUID, error) {
	if len(s) == 36+9 || len(s) == 36+2 && (s[0] != '{' || s[37] != '}') {
		return uuid.UUID{}, errors.New("postgres: not a UUID")
	}
	return uuid.Parse(s)
}

// newID returns a time-ordered UUID (v7), which keeps B-tree inserts local.
func newID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// DeleteProducts deletes the products of ids in one transaction: for each
// one found, in the order of ids, the outbox row outbox builds from the
// deleted row and the audit entries a builds (new is the zero Product). It
// returns the ids it deleted and those no product has. Any failure leaves
// every product and the outbox as they were. ids must be distinct UUIDs.
func (db *DB) DeleteProducts(ctx context.Context, schemaName string, ids []string, outbox OutboxFunc, a AuditFunc[domain.Product]) (deleted, notFound []string, err error) {
	err = db.InTenant(ctx, schemaName, func(tx pgx.Tx) error {
		deleted, notFound = nil, nil
		rows, err := tx.Query(ctx, `DELETE FROM products WHERE id = ANY($1::uuid[]) RETURNING `+productColumns, ids)
		if err != nil {
			return err
		}
		olds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Product, error) { return scanProduct(r) })
		if err != nil {
			return err
		}
		byID := make(map[string]domain.Product, len(olds))
		for _, p := range olds {
			byID[p.ID] = p
		}
		for _, id := range ids {
			old, ok := byID[id]
			if !ok {
				notFound = append(notFound, id)
				continue
			}
			if err := writeOutbox(ctx, tx, outbox, old); err != nil {
				return err
			}
			if err := writeAudits(ctx, tx, WriteTenantAudit, a, old, domain.Product{}); err != nil {
				return err
			}
			deleted = append(deleted, id)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: delete products: %w", err)
	}
	return deleted, notFound, nil
}

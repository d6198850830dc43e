package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/domain"
)

// ImportRow is one product of an import, validated by the use case: every
// field set, the price with two places, the SKU unique in the import.
type ImportRow struct {
	SKU, Name, Description, Price, Currency string
	Stock                                   int64
}

// ImportOutbox builds the outbox rows of an import: Created for a product
// the import inserted, Updated for one whose values it changed.
type ImportOutbox struct {
	Created, Updated OutboxFunc
}

// ImportCounts says what an import did.
type ImportCounts struct {
	Created, Updated, Unchanged int
	// UpdatedIDs are the ids of the products it changed.
	UpdatedIDs []string
}

// ImportProducts upserts rows by SKU and writes the outbox row of every
// product it created or changed and the audit entry entry builds from the
// counts, all in one transaction: all of it commits or none of it does.
// A row equal to its product changes nothing (no version bump, no event).
// progress, when set, is called with the number of rows sent so far, as
// they go to the server; it starts again from the beginning when the
// tenant moved and the transaction runs again on its new cluster (see
// InTenant).
//
// How: the rows are copied (COPY, pgx.CopyFrom) into a temporary table
// that is dropped at commit, then one INSERT ... SELECT ... ON CONFLICT
// (sku) DO UPDATE ... WHERE the values differ ... RETURNING hands back
// every product it created or updated; the outbox rows go in with a second
// COPY, whose statement fires the outbox trigger once, as an INSERT does.
// Nothing outlives the transaction, so it runs behind a transaction
// pooler; pgx describes the COPY's target within the transaction to send
// each value in its column's binary type.
//
// Errors: EINVALID for a value the database refuses (which validation
// should have caught), ECONFLICT when a concurrent write took a SKU in
// between, other database errors translated (see Translate).
func (db *DB) ImportProducts(ctx context.Context, schemaName string, rows []ImportRow, outbox ImportOutbox,
	entry func(ImportCounts) audit.Entry, progress func(sent int)) (ImportCounts, error) {
	var counts ImportCounts
	err := db.InTenant(ctx, schemaName, func(tx pgx.Tx) error {
		counts = ImportCounts{}
		// Every column typed as the products table types it, so the
		// copy's binary values and the insert's casts agree.
		if _, err := tx.Exec(ctx, `CREATE TEMPORARY TABLE import_products (
			ord int NOT NULL, id uuid NOT NULL, sku text NOT NULL, name text NOT NULL, description text NOT NULL,
			price numeric(14,2) NOT NULL, currency char(3) NOT NULL, stock integer NOT NULL) ON COMMIT DROP`); err != nil {
			return fmt.Errorf("create import table: %w", err)
		}
		src := &importSource{rows: rows, progress: progress}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"pg_temp", "import_products"},
			[]string{"ord", "id", "sku", "name", "description", "price", "currency", "stock"}, src); err != nil {
			return fmt.Errorf("copy import rows: %w", err)
		}
		// ORDER BY ord: products are created in the file's order, so the
		// outbox's order (and so the events') follows the file. xmax = 0
		// tells a row this statement inserted from one it updated.
		res, err := tx.Query(ctx, `INSERT INTO products AS p (id, sku, name, description, price, currency, stock)
			SELECT id, sku, name, description, price, currency, stock FROM pg_temp.import_products ORDER BY ord
			ON CONFLICT (sku) DO UPDATE SET
			  name = excluded.name, description = excluded.description, price = excluded.price,
			  currency = excluded.currency, stock = excluded.stock, version = p.version + 1, updated_at = now()
			WHERE (p.name, p.description, p.price, p.currency, p.stock)
			  IS DISTINCT FROM (excluded.name, excluded.description, excluded.price, excluded.currency, excluded.stock)
			RETURNING `+productColumns+`, xmax = 0`)
		if err != nil {
			return fmt.Errorf("upsert products: %w", err)
		}
		records := make([]OutboxRecord, 0, len(rows))
		var p domain.Product
		var created bool
		_, err = pgx.ForEachRow(res, []any{&p.ID, &p.SKU, &p.Name, &p.Description, &p.Price, &p.Currency, &p.Stock,
			&p.Version, &p.CreatedAt, &p.UpdatedAt, &created}, func() error {
			build := outbox.Updated
			if created {
				build, counts.Created = outbox.Created, counts.Created+1
			} else {
				counts.Updated++
				counts.UpdatedIDs = append(counts.UpdatedIDs, p.ID)
			}
			r, err := build(p)
			if err != nil {
				return fmt.Errorf("build outbox row: %w", err)
			}
			records = append(records, r)
			return nil
		})
		if err != nil {
			return fmt.Errorf("upsert products: %w", err)
		}
		counts.Unchanged = len(rows) - counts.Created - counts.Updated
		if len(records) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"outbox"},
				[]string{"event_id", "event_type", "aggregate_id", "aggregate_version", "payload", "request_id", "actor"},
				pgx.CopyFromSlice(len(records), func(i int) ([]any, error) {
					r := records[i]
					eventID, err := uuid.Parse(r.EventID)
					if err != nil {
						return nil, fmt.Errorf("event id %q: %w", r.EventID, err)
					}
					aggregateID, err := uuid.Parse(r.AggregateID)
					if err != nil {
						return nil, fmt.Errorf("aggregate id %q: %w", r.AggregateID, err)
					}
					var actor any // NULL, as insertOutbox writes a row without one
					if r.Actor != (audit.Actor{}) {
						b, err := json.Marshal(r.Actor)
						if err != nil {
							return nil, fmt.Errorf("encode outbox actor: %w", err)
						}
						actor = json.RawMessage(b)
					}
					return []any{[16]byte(eventID), r.EventType, [16]byte(aggregateID), r.AggregateVersion, json.RawMessage(r.Payload), r.RequestID, actor}, nil
				})); err != nil {
				return fmt.Errorf("copy outbox rows: %w", err)
			}
		}
		return WriteTenantAudit(ctx, tx, entry(counts))
	})
	if IsUniqueViolation(err, "products_sku_key") {
		// Only a concurrent write can get here: the upsert resolves every
		// SKU of the import against the table.
		return ImportCounts{}, errDuplicateSKU
	}
	if err != nil {
		return ImportCounts{}, fmt.Errorf("postgres: import products: %w", err)
	}
	return counts, nil
}

// importSource feeds ImportRows to CopyFrom, each with its position and a
// new id (used only when the row creates its product).
type importSource struct {
	rows     []ImportRow
	i        int
	progress func(int)
}

func (s *importSource) Next() bool {
	if s.progress != nil && (s.i%1000 == 0 || s.i == len(s.rows)) {
		s.progress(s.i)
	}
	s.i++
	return s.i <= len(s.rows)
}

// Values sends every value in the Go type its column's binary codec
// takes directly: a string would be parsed as text first, for each value.
func (s *importSource) Values() ([]any, error) {
	r := s.rows[s.i-1]
	price, err := numeric(r.Price)
	if err != nil {
		return nil, fmt.Errorf("row %d: %w", s.i, err)
	}
	return []any{int32(s.i), [16]byte(uuid.Must(uuid.NewV7())), r.SKU, r.Name, r.Description, price, r.Currency, int32(r.Stock)}, nil
}

// numeric converts a validated price ("12.50": digits, a point, two
// places) to its exact numeric value.
func numeric(price string) (pgtype.Numeric, error) {
	whole, frac, ok := strings.Cut(price, ".")
	cents, err := strconv.ParseInt(whole+frac, 10, 64)
	if !ok || len(frac) != 2 || err != nil {
		return pgtype.Numeric{}, fmt.Errorf("price %q is not a decimal with two places", price)
	}
	return pgtype.Numeric{Int: big.NewInt(cents), Exp: -2, Valid: true}, nil
}

func (s *importSource) Err() error { return nil }

// ProductsAfterSKU returns up to limit products whose SKU sorts after
// after ("" for the first), in SKU order: one page of an export, read in a
// transaction of its own so that no connection is held between pages.
// Errors: database errors translated.
func (db *DB) ProductsAfterSKU(ctx context.Context, schemaName, after string, limit int) ([]domain.Product, error) {
	var out []domain.Product
	err := db.InTenant(ctx, schemaName, func(tx pgx.Tx) error {
		// The products_sku_key index serves the order and the bound.
		rows, err := tx.Query(ctx, `SELECT `+productColumns+` FROM products WHERE sku > $1 ORDER BY sku LIMIT $2`, after, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Product, error) { return scanProduct(r) })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: products after sku: %w", err)
	}
	return out, nil
}

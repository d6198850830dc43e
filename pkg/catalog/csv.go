package catalog

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
)

// CSVColumns are the columns of an import and of an export, in the order
// an export writes them.
var CSVColumns = []string{"sku", "name", "description", "price", "currency", "stock"}

// BulkStore imports and exports products (pkg/postgres.DB).
type BulkStore interface {
	ImportProducts(ctx context.Context, schemaName string, rows []postgres.ImportRow, outbox postgres.ImportOutbox,
		entry func(postgres.ImportCounts) audit.Entry, progress func(sent int)) (postgres.ImportCounts, error)
	ProductsAfterSKU(ctx context.Context, schemaName, after string, limit int) ([]domain.Product, error)
}

// ManyInvalidator drops the cache entries of many products of a tenant,
// and its list pages, at once (pkg/cache.Products).
type ManyInvalidator interface {
	InvalidateMany(ctx context.Context, schemaName string, productIDs []string) error
}

// MaxListedBadLines is how many bad lines an import's error lists; the
// rest are counted under the detail "more".
const MaxListedBadLines = 100

// ImportOptions tune an import.
type ImportOptions struct {
	Meta Meta
	// Written, when set, is called with the number of rows sent to the
	// database so far, and total, while the import writes them.
	Written func(done, total int)
}

// ImportResult is what an import did.
type ImportResult struct {
	// ID names the import in the audit trail (target {type: import, id}).
	ID                          string
	Created, Updated, Unchanged int
}

// ErrNoBulkStore is returned by Import and Export when the Service's store
// cannot import.
var ErrNoBulkStore = errors.New("catalog: the store cannot import or export")

// Import reads a CSV of products and upserts them by SKU, all of them or
// none.
//
// The format: a header row naming exactly the columns of CSVColumns, each
// once, in any order (an export writes them in that order); a UTF-8 byte
// order mark before it is ignored. Every following row is a product,
// validated as a create is (domain.ProductPatch.Validate): sku, name, price
// and currency are required, description may be empty, stock is a whole
// number. A SKU twice in one file is a bad row (the second time). Lines are
// numbered as a spreadsheet numbers its rows: the header is line 1, and a
// quoted value holding a line break does not start a new line.
//
// Every row is read and checked before anything is written. When any row
// is bad, nothing is written and the error is EINVALID with one detail per
// bad line ("line 3": "price: must be ...; currency: ..."), at most
// MaxListedBadLines of them, and "more" saying how many more there are. A
// CSV syntax error (a stray quote) stops the reading there and is that
// line's detail. A file without a header is the detail "line 1".
//
// Then one transaction creates the new SKUs and updates the products whose
// values differ (version +1, updated_at now), writes a product.created or
// product.updated event for each, as Create and Replace do, and the audit
// entry product.import, target {import, ID}, changes {"created": [nil, n],
// "updated": [nil, m]}, of ctx's cause (audit.CauseFrom). Products equal to
// their row change nothing. After the commit, the tenant's cached list
// pages and the updated products' cache entries are invalidated.
//
// Errors: EINVALID as above; ECONFLICT when a concurrent write took a SKU;
// ErrNoBulkStore; a read error of r as it came (wrapped).
func (s *Service) Import(ctx context.Context, schemaName string, r io.Reader, opts ImportOptions) (ImportResult, error) {
	if s.bulk == nil {
		return ImportResult{}, ErrNoBulkStore
	}
	rows, err := ParseCSV(r)
	if err != nil {
		return ImportResult{}, err
	}
	id := uuid.Must(uuid.NewV7()).String()
	var progress func(int)
	if opts.Written != nil {
		progress = func(n int) { opts.Written(n, len(rows)) }
	}
	counts, err := s.bulk.ImportProducts(ctx, schemaName, rows,
		postgres.ImportOutbox{Created: outbox(ctx, events.ProductCreated, opts.Meta, 0), Updated: outbox(ctx, events.ProductUpdated, opts.Meta, 0)},
		func(c postgres.ImportCounts) audit.Entry {
			return audit.New(ctx, "product.import", audit.Target{Type: "import", ID: id},
				audit.Changes{"created": {nil, c.Created}, "updated": {nil, c.Updated}})
		}, progress)
	if err != nil {
		return ImportResult{}, fmt.Errorf("catalog: import: %w", err)
	}
	if counts.Created+counts.Updated > 0 {
		s.importCommitted(ctx, schemaName, counts.UpdatedIDs)
	}
	return ImportResult{ID: id, Created: counts.Created, Updated: counts.Updated, Unchanged: counts.Unchanged}, nil
}

// importCommitted invalidates the tenant's list pages and the updated
// products' entries; like committed, a failure is logged, not returned.
func (s *Service) importCommitted(ctx context.Context, schemaName string, updated []string) {
	if s.inv == nil {
		return
	}
	// Bounded, but longer than one product's: up to thousands of keys.
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var err error
	if many, ok := s.inv.(ManyInvalidator); ok {
		err = many.InvalidateMany(ictx, schemaName, updated)
	} else {
		// Any product's invalidation drops the list pages; a new product
		// has no entry of its own to drop.
		ids := updated
		if len(ids) == 0 {
			ids = []string{uuid.Nil.String()}
		}
		for _, id := range ids {
			if err = s.inv.Invalidate(ictx, schemaName, id); err != nil {
				break
			}
		}
	}
	if err != nil {
		s.log.WarnContext(ctx, "cache invalidation after an import failed; the cache worker repeats it from the events",
			slog.String("tenant", schemaName), slog.Any("error", err))
	}
}

// ParseCSV reads and validates an import file (see Import for the format)
// into rows ready for the store. Errors: EINVALID naming the bad lines; a
// read error of r as it came (wrapped).
func ParseCSV(r io.Reader) ([]postgres.ImportRow, error) {
	cr := csv.NewReader(bufio.NewReaderSize(r, 64<<10))
	cr.FieldsPerRecord = -1 // a row of the wrong width is that row's error, not the file's
	cr.ReuseRecord = true
	bad := badLines{}
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, bad.add(1, "the header row is missing: "+strings.Join(CSVColumns, ",")).err(0)
	}
	if err != nil {
		return nil, csvError(err, 1, 0, &bad)
	}
	col, msg := headerIndex(header)
	if msg != "" {
		return nil, bad.add(1, msg).err(0)
	}
	var (
		rows     []postgres.ImportRow
		seen     = map[string]int{} // sku -> line
		line     = 1                // the spreadsheet row of the last record read
		lastLine = 1                // the physical line its last field ended on
		total    int
	)
	lastLine += strings.Count(strings.Join(header, ""), "\n")
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var start int
		var pe *csv.ParseError
		switch {
		case err == nil:
			start, _ = cr.FieldPos(0)
		case errors.As(err, &pe):
			start = pe.StartLine
		default:
			return nil, fmt.Errorf("catalog: read csv: %w", err)
		}
		// A blank line is skipped by encoding/csv, but a spreadsheet shows
		// it as an empty row: count it.
		line += 1 + max(start-lastLine-1, 0)
		if err != nil {
			return nil, csvError(err, line, total, &bad)
		}
		lastLine = start + strings.Count(strings.Join(rec, ""), "\n")
		total++
		if len(rec) != len(CSVColumns) {
			bad.add(line, fmt.Sprintf("has %d fields, want %d (%s)", len(rec), len(CSVColumns), strings.Join(CSVColumns, ",")))
			continue
		}
		row, msg := parseRow(rec, col)
		if msg == "" {
			if first, dup := seen[row.SKU]; dup {
				msg = fmt.Sprintf("sku: %s is already on line %d", row.SKU, first)
			} else {
				seen[row.SKU] = line
			}
		}
		if msg != "" {
			bad.add(line, msg)
			continue
		}
		rows = append(rows, row)
	}
	if err := bad.err(total); err != nil {
		return nil, err
	}
	return rows, nil
}

// headerIndex maps each column to its index in header, or says what is
// wrong with it.
func headerIndex(header []string) (map[string]int, string) {
	col := map[string]int{}
	var unknown, twice []string
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\uFEFF")
		}
		h = strings.ToLower(strings.TrimSpace(h))
		switch _, known := col[h]; {
		case !slices.Contains(CSVColumns, h):
			unknown = append(unknown, strconv.Quote(h))
		case known:
			twice = append(twice, h)
		default:
			col[h] = i
		}
	}
	var missing []string
	for _, c := range CSVColumns {
		if _, ok := col[c]; !ok {
			missing = append(missing, c)
		}
	}
	var msgs []string
	if len(missing) > 0 {
		msgs = append(msgs, "missing column "+strings.Join(missing, ", "))
	}
	if len(unknown) > 0 {
		msgs = append(msgs, "unknown column "+strings.Join(unknown, ", "))
	}
	if len(twice) > 0 {
		msgs = append(msgs, "column twice: "+strings.Join(twice, ", "))
	}
	if len(msgs) == 0 {
		return col, ""
	}
	return nil, strings.Join(msgs, "; ") + " (the header must be " + strings.Join(CSVColumns, ",") + ", in any order)"
}

// parseRow validates one record as a create's body would be, returning
// the row, or a message naming each bad field in column order.
func parseRow(rec []string, col map[string]int) (postgres.ImportRow, string) {
	get := func(c string) *string { v := rec[col[c]]; return &v }
	p := domain.ProductPatch{SKU: get("sku"), Name: get("name"), Description: get("description"),
		Price: get("price"), Currency: get("currency")}
	fields := map[string]string{}
	stock, err := strconv.ParseInt(strings.TrimSpace(rec[col["stock"]]), 10, 64)
	if err != nil {
		fields["stock"] = "must be an integer from 0 to 2147483647"
	} else {
		p.Stock = &stock
	}
	if err := p.Validate(true); err != nil {
		for k, v := range domain.ErrorDetails(err) {
			fields[k] = v
		}
	}
	if len(fields) > 0 {
		var msgs []string
		for _, c := range CSVColumns {
			if m, ok := fields[c]; ok {
				msgs = append(msgs, c+": "+m)
			}
		}
		return postgres.ImportRow{}, strings.Join(msgs, "; ")
	}
	return postgres.ImportRow{SKU: *p.SKU, Name: *p.Name, Description: *p.Description, Price: *p.Price,
		Currency: *p.Currency, Stock: *p.Stock}, ""
}

// csvError turns a CSV syntax error at line, after total rows, into that
// line's detail; any other error (reading r) comes back wrapped.
func csvError(err error, line, total int, bad *badLines) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		bad.add(line, "not valid CSV: "+pe.Err.Error()+"; nothing after it was read")
		return bad.err(total + 1)
	}
	return fmt.Errorf("catalog: read csv: %w", err)
}

// badLines collects the messages of bad lines, listing the first
// MaxListedBadLines and counting the rest.
type badLines struct {
	details map[string]string
	n       int
}

func (b *badLines) add(line int, msg string) *badLines {
	b.n++
	if b.details == nil {
		b.details = map[string]string{}
	}
	if len(b.details) < MaxListedBadLines {
		b.details["line "+strconv.Itoa(line)] = msg
	}
	return b
}

// err is the EINVALID error of the bad lines among total rows, nil when
// none is bad.
func (b *badLines) err(total int) error {
	if b.n == 0 {
		return nil
	}
	if more := b.n - len(b.details); more > 0 {
		b.details["more"] = fmt.Sprintf("%d more bad lines are not listed", more)
	}
	msg := fmt.Sprintf("%d of %d rows are invalid; nothing was imported", b.n, total)
	if total <= 0 {
		msg = "the file is not a valid product CSV; nothing was imported"
	}
	return &domain.Error{Code: domain.EINVALID, Message: msg, Details: b.details}
}

// ExportOptions tune an export.
type ExportOptions struct {
	// Written, when set, is called with the number of products written
	// so far, after each batch.
	Written func(done int)
}

// exportBatch is how many products an export reads per query.
const exportBatch = 1000

// Export writes every product of the tenant as CSV to w: the header row
// CSVColumns, then one row per product in SKU order, the price with its
// two places, in batches read one after the other (never the whole catalog
// in memory). Each batch is read in a transaction of its own, so a
// product changed during a long export appears as it was when its batch
// was read. Importing the file into the same tenant changes nothing.
// It returns the number of products written. Errors: ErrNoBulkStore;
// database and write errors, wrapped.
func (s *Service) Export(ctx context.Context, schemaName string, w io.Writer, opts ExportOptions) (int, error) {
	if s.bulk == nil {
		return 0, ErrNoBulkStore
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVColumns); err != nil {
		return 0, fmt.Errorf("catalog: export: write: %w", err)
	}
	n, after := 0, ""
	for {
		ps, err := s.bulk.ProductsAfterSKU(ctx, schemaName, after, exportBatch)
		if err != nil {
			return n, fmt.Errorf("catalog: export: %w", err)
		}
		for _, p := range ps {
			if err := cw.Write([]string{p.SKU, p.Name, p.Description, p.Price, p.Currency, strconv.FormatInt(p.Stock, 10)}); err != nil {
				return n, fmt.Errorf("catalog: export: write: %w", err)
			}
			n++
		}
		// One flush per batch: the reader of a stream sees progress.
		cw.Flush()
		if err := cw.Error(); err != nil {
			return n, fmt.Errorf("catalog: export: write: %w", err)
		}
		if opts.Written != nil {
			opts.Written(n)
		}
		if len(ps) < exportBatch {
			return n, nil
		}
		after = ps[len(ps)-1].SKU
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/catalog"
	"github.com/tenantworks/saas/pkg/domain"
)

func newProductsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "products", Short: "Import and export a tenant's products as CSV", Args: noArgs}
	cmd.AddCommand(newProductsImportCmd(a), newProductsExportCmd(a))
	return cmd
}

// dataError is a file whose content is refused: exit code 1, where bad
// usage (a flag) is 2. Its text lists every bad line it names.
type dataError struct{ err error }

func (e dataError) Error() string {
	d := domain.ErrorDetails(e.err)
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	// By line number, "more" last.
	lineOf := func(k string) int {
		n, err := strconv.Atoi(strings.TrimPrefix(k, "line "))
		if err != nil {
			return 1 << 30
		}
		return n
	}
	slices.SortFunc(keys, func(x, y string) int { return lineOf(x) - lineOf(y) })
	var b strings.Builder
	b.WriteString(domain.ErrorMessage(e.err))
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %s: %s", k, d[k])
	}
	return b.String()
}

func (e dataError) Unwrap() error { return e.err }

func newProductsImportCmd(a *app) *cobra.Command {
	var tenantSchema, file string
	cmd := &cobra.Command{
		Use:   "import --tenant S --file F.csv",
		Short: "Create and update a tenant's products from a CSV file, all of them or none",
		Long: `Import reads a CSV whose header row names the columns
sku,name,description,price,currency,stock (in any order), checks every row as
a product create is checked, then creates the new SKUs and updates the
products whose values differ, in one transaction, each with its event.
A file with any bad row changes nothing: every bad line is listed (the header
is line 1) and the exit code is 1. --file - reads standard input.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "tenant", "file"); err != nil {
				return err
			}
			ctx := cmd.Context()
			cat, schemaName, err := a.catalogFor(ctx, tenantSchema, true)
			if err != nil {
				return err
			}
			in, size, err := openInput(cmd, file)
			if err != nil {
				return err
			}
			defer in.Close()
			bar := a.bar(size, "reading "+file, true)
			var writing *progressbar.ProgressBar
			res, err := cat.Import(ctx, schemaName, io.TeeReader(in, barWriter{bar}), catalog.ImportOptions{
				Written: func(done, total int) {
					if writing == nil {
						finish(bar)
						writing = a.bar(int64(total), "writing rows", false)
					}
					if writing != nil {
						_ = writing.Set(done)
					}
				}})
			finish(bar)
			finish(writing)
			if domain.ErrorCode(err) == domain.EINVALID {
				return dataError{err}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "imported into %s: %d created, %d updated, %d unchanged (import %s)\n",
				schemaName, res.Created, res.Updated, res.Unchanged, res.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&tenantSchema, "tenant", "", "schema name of the tenant")
	cmd.Flags().StringVar(&file, "file", "", "the CSV file to read, - for standard input")
	return cmd
}

func newProductsExportCmd(a *app) *cobra.Command {
	var tenantSchema, file string
	cmd := &cobra.Command{
		Use:   "export --tenant S --file F.csv",
		Short: "Write a tenant's products to a CSV file, in SKU order",
		Long: `Export writes every product of the tenant as CSV: the header row
sku,name,description,price,currency,stock, then one row per product in SKU
order. Importing the file back changes nothing. --file - writes to standard
output (the summary then goes to standard error). An existing file is
replaced only once the export is complete.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "tenant", "file"); err != nil {
				return err
			}
			ctx := cmd.Context()
			cat, schemaName, err := a.catalogFor(ctx, tenantSchema, false)
			if err != nil {
				return err
			}
			out, summary, commit, err := openOutput(cmd, a, file)
			if err != nil {
				return err
			}
			bar := a.bar(-1, "exporting rows", false)
			n, err := cat.Export(ctx, schemaName, out, catalog.ExportOptions{Written: func(done int) {
				if bar != nil {
					_ = bar.Set(done)
				}
			}})
			finish(bar)
			if err = commit(err); err != nil {
				return err
			}
			fmt.Fprintf(summary, "exported %d products of %s to %s\n", n, schemaName, file)
			return nil
		},
	}
	cmd.Flags().StringVar(&tenantSchema, "tenant", "", "schema name of the tenant")
	cmd.Flags().StringVar(&file, "file", "", "the CSV file to write, - for standard output")
	return cmd
}

// catalogFor returns the catalog service and the schema of an existing
// tenant, which must be active when writing. The service invalidates the
// API's cache after an import, so readers see it at once.
func (a *app) catalogFor(ctx context.Context, schemaName string, write bool) (*catalog.Service, string, error) {
	m, err := a.manager(ctx)
	if err != nil {
		return nil, "", err
	}
	t, err := m.Get(ctx, schemaName)
	if err != nil {
		return nil, "", err
	}
	if write && t.State != domain.TenantActive {
		return nil, "", domain.Errorf(domain.ECONFLICT, "tenant %s is %s", t.Schema, t.State)
	}
	db, err := a.database(ctx)
	if err != nil {
		return nil, "", err
	}
	rdb, err := a.redis()
	if err != nil {
		return nil, "", err
	}
	products := cache.NewProducts(rdb, a.redisKeys, db, 0, a.log)
	cat, err := catalog.New(catalog.Deps{Store: db, Reader: products, Invalidator: products, Log: a.log})
	if err != nil {
		return nil, "", err
	}
	return cat, t.Schema, nil
}

// openInput opens the file to import (- is standard input) and returns
// its size, -1 when unknown.
func openInput(cmd *cobra.Command, file string) (io.ReadCloser, int64, error) {
	if file == "-" {
		return io.NopCloser(cmd.InOrStdin()), -1, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, 0, usageError{fmt.Errorf("--file: %w", err)}
	}
	size := int64(-1)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	return f, size, nil
}

// openOutput opens where an export goes (- is standard output) and
// returns where its summary goes, and commit, which completes the file
// when the export succeeded (err nil) and removes it otherwise: a failed
// export leaves no partial file behind, nor replaces an existing one.
func openOutput(cmd *cobra.Command, a *app, file string) (io.Writer, io.Writer, func(error) error, error) {
	if file == "-" {
		return cmd.OutOrStdout(), a.stderr, func(err error) error { return err }, nil
	}
	f, err := os.CreateTemp(dirOf(file), ".export-*.csv")
	if err != nil {
		return nil, nil, nil, usageError{fmt.Errorf("--file: %w", err)}
	}
	commit := func(err error) error {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write %s: %w", file, cerr)
		}
		if err == nil {
			if err = os.Rename(f.Name(), file); err != nil {
				err = fmt.Errorf("write %s: %w", file, err)
			}
		}
		if err != nil {
			_ = os.Remove(f.Name())
		}
		return err
	}
	return f, a.stdout, commit, nil
}

func dirOf(file string) string {
	if i := strings.LastIndexAny(file, `/\`); i >= 0 {
		return file[:i+1]
	}
	return "."
}

// bar returns a progress bar on standard error when it is a terminal, nil
// otherwise; total -1 is unknown (a spinner with a count).
func (a *app) bar(total int64, what string, bytes bool) *progressbar.ProgressBar {
	f, ok := a.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	opts := []progressbar.Option{progressbar.OptionSetWriter(f), progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(), progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100 * time.Millisecond)}
	if bytes {
		opts = append(opts, progressbar.OptionShowBytes(true))
	}
	return progressbar.NewOptions64(total, opts...)
}

func finish(bar *progressbar.ProgressBar) {
	if bar != nil {
		_ = bar.Finish()
	}
}

// barWriter counts bytes on a bar that may be nil.
type barWriter struct{ bar *progressbar.ProgressBar }

func (w barWriter) Write(p []byte) (int, error) {
	if w.bar != nil {
		_ = w.bar.Add(len(p))
	}
	return len(p), nil
}

package benchenv

import (
	"fmt"
	"io/fs"
	"testing/fstest"

	"github.com/tenantworks/saas/schema"
)

// TenantMigrationsPlus is the tenant migration set plus, for each version,
// one migration that adds a column and an index to products: "one new
// tenant migration" of the tenant benchmarks.
func TenantMigrationsPlus(versions ...int) (fs.FS, error) {
	m := fstest.MapFS{}
	err := fs.WalkDir(schema.Tenant, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(schema.Tenant, p)
		m[p] = &fstest.MapFile{Data: b}
		return err
	})
	for _, v := range versions {
		m[fmt.Sprintf("%05d_bench_code%d.sql", v, v)] = &fstest.MapFile{Data: []byte(fmt.Sprintf(
			"-- +goose Up\nALTER TABLE products ADD COLUMN code%[1]d text;\nCREATE INDEX products_code%[1]d_idx ON products (code%[1]d);\n", v))}
	}
	if err != nil {
		return nil, fmt.Errorf("tenant migrations: %w", err)
	}
	return m, nil
}

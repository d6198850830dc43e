// Package schema holds the SQL migrations, embedded, and the runner that
// applies them: Public to the shared schema, Tenant to each tenant schema.
// Each schema keeps its own goose version table.
package schema

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/tenantworks/saas/pkg/domain"
)

//go:embed public/*.sql
var publicFS embed.FS

//go:embed tenant/*.sql
var tenantFS embed.FS

// Public and Tenant are the migration sets, rooted at their folders.
var (
	Public = mustSub(publicFS, "public")
	Tenant = mustSub(tenantFS, "tenant")
)

func mustSub(f fs.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return s
}

// Runner applies migrations. It opens one short-lived connection per schema
// whose search_path is that schema alone, so migration files use plain names.
type Runner struct {
	url          string
	conn         *pgx.ConnConfig
	public       fs.FS
	tenant       fs.FS
	tenantLatest int64

	stepsOnce sync.Once // MigrateTenants parses the tenant set once
	steps     []tenantStep
	stepsErr  error
}

// NewRunner returns a Runner for the database at url. tenant is the tenant
// migration set; nil means Tenant. It fails if a migration file is misnamed.
func NewRunner(url string, tenant fs.FS) (*Runner, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("schema: parse url: %w", err)
	}
	if tenant == nil {
		tenant = Tenant
	}
	latest, err := latestVersion(tenant)
	if err != nil {
		return nil, err
	}
	return &Runner{url: url, conn: cfg, public: Public, tenant: tenant, tenantLatest: latest}, nil
}

// On returns a Runner for the database at url with r's migration sets: the
// same migrations applied to another cluster.
func (r *Runner) On(url string) (*Runner, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("schema: parse url: %w", err)
	}
	return &Runner{url: url, conn: cfg, public: r.public, tenant: r.tenant, tenantLatest: r.tenantLatest}, nil
}

// URL is the database r migrates.
func (r *Runner) URL() string { return r.url }

// TenantLatest is the highest version in the tenant migration set: a tenant
// whose recorded version is lower has migrations pending.
func (r *Runner) TenantLatest() int64 { return r.tenantLatest }

// MigrateShared applies the public migrations.
func (r *Runner) MigrateShared(ctx context.Context) (int64, error) {
	v, err := r.migrate(ctx, "public", r.public)
	if err != nil {
		return 0, fmt.Errorf("schema: migrate shared: %w", err)
	}
	return v, nil
}

// MigrateTenant applies pending tenant migrations to the schema, holding a
// per-schema advisory lock so two runners never migrate one schema at once.
// It returns the schema's version afterwards.
func (r *Runner) MigrateTenant(ctx context.Context, schemaName string) (int64, error) {
	if err := domain.ValidateSchemaName(schemaName); err != nil {
		return 0, err
	}
	v, err := r.migrate(ctx, schemaName, r.tenant)
	if err != nil {
		return 0, fmt.Errorf("schema: migrate tenant %s: %w", schemaName, err)
	}
	return v, nil
}

func (r *Runner) migrate(ctx context.Context, schemaName string, migrations fs.FS) (int64, error) {
	cfg := r.conn.Copy()
	cfg.RuntimeParams["search_path"] = pgx.Identifier{schemaName}.Sanitize()
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	db.SetMaxOpenConns(2) // goose holds one for the session lock and uses one to migrate

	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID(schemaName)), lock.WithLockTimeout(1, 300))
	if err != nil {
		return 0, fmt.Errorf("locker: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations,
		goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return 0, fmt.Errorf("provider: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return 0, fmt.Errorf("up: %w", err)
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("version: %w", err)
	}
	return v, nil
}

// lockID derives the advisory lock key of a schema's migrations.
func lockID(schemaName string) int64 {
	h := fnv.New64a()
	h.Write([]byte("saas.migrate." + schemaName))
	return int64(h.Sum64() >> 1)
}

func latestVersion(f fs.FS) (int64, error) {
	names, err := fs.Glob(f, "*.sql")
	if err != nil {
		return 0, fmt.Errorf("schema: list migrations: %w", err)
	}
	if len(names) == 0 {
		return 0, errors.New("schema: no migrations found")
	}
	var latest int64
	for _, n := range names {
		v, err := goose.NumericComponent(path.Base(n))
		if err != nil {
			return 0, fmt.Errorf("schema: migration %s: %w", n, err)
		}
		latest = max(latest, v)
	}
	return latest, nil
}

// Package tenancy owns the tenant lifecycle: create (rows, schema,
// migrations, hooks; all or nothing), delete, list, and migrating every
// tenant schema in parallel.
package tenancy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/schema"
)

// Hook lets other parts of the system (search index, cache) take part in a
// tenant's lifecycle. TenantCreated runs before the tenant becomes active; an
// error from it aborts the creation. TenantDeleted must be idempotent: a
// delete that failed half way is retried from the start.
type Hook interface {
	TenantCreated(ctx context.Context, t domain.Tenant) error
	TenantDeleted(ctx context.Context, t domain.Tenant) error
}

// Manager creates, lists, deletes and migrates tenants, each on the
// cluster public.tenants records for it (DESIGN.md section 12).
type Manager struct {
	db        *postgres.DB
	runner    *schema.Runner // main's; the other clusters' are made from it
	runnersMu sync.Mutex
	runners   map[string]*schema.Runner
	hooks     []Hook
	log       *slog.Logger
	announce  func(context.Context)
	suspended func(ctx context.Context, schemaName string)
}

// OnChange sets a function called after tenants or domains changed in a way
// request routing must see (activation, deletion, domain changes). It is how
// every API process learns to drop its resolver cache.
func (m *Manager) OnChange(fn func(context.Context)) { m.announce = fn }

// OnSuspend sets a function called after a tenant was suspended: how every
// push node learns to close that tenant's open WebSockets.
func (m *Manager) OnSuspend(fn func(ctx context.Context, schemaName string)) { m.suspended = fn }

// NewMover returns a Mover of m's tenants whose moves announce themselves
// as the Manager's other changes do (OnChange).
func (m *Manager) NewMover(opts ...MoverOption) *Mover {
	return NewMover(m.db, m.log, append([]MoverOption{WithOnMoved(m.changed)}, opts...)...)
}

func (m *Manager) changed(ctx context.Context) {
	if m.announce != nil {
		m.announce(ctx)
	}
}

// NewManager returns a Manager. runner migrates the main cluster; the
// other clusters of db (postgres.DB.Clusters) get runners with its
// migration sets on their direct URLs. hooks run in order on create and in
// reverse order on delete.
func NewManager(db *postgres.DB, runner *schema.Runner, log *slog.Logger, hooks ...Hook) *Manager {
	return &Manager{db: db, runner: runner, hooks: hooks, log: log}
}

// CreateParams are the inputs of Create.
type CreateParams struct {
	Schema string
	Name   string
	Domain string
	// Cluster is the PostgreSQL cluster to hold the tenant's schema, by its
	// name in TENANT_DATABASES; "" picks the one with the fewest tenants.
	Cluster string
}

// Validate checks and normalizes the parameters, returning an EINVALID
// *Error with one detail per bad field. Whether Cluster names a cluster is
// Create's to check: it knows the clusters.
func (p *CreateParams) Validate() error {
	details := map[string]string{}
	if err := domain.ValidateSchemaName(p.Schema); err != nil {
		details["schema"] = domain.ErrorDetails(err)["schema"]
	}
	p.Name = strings.TrimSpace(p.Name)
	if err := domain.ValidateTenantName(p.Name); err != nil {
		details["name"] = domain.ErrorDetails(err)["name"]
	}
	d, err := domain.NormalizeDomain(p.Domain)
	if err != nil {
		details["domain"] = domain.ErrorDetails(err)["domain"]
	}
	p.Domain = d
	if len(details) > 0 {
		return &domain.Error{Code: domain.EINVALID, Message: "invalid tenant", Details: details}
	}
	return nil
}

// Create provisions a tenant on p.Cluster, or on the cluster with the
// fewest tenants (the first of postgres.DB.Clusters on a tie, main first):
// the tenant row (with its cluster) and the domain row in one transaction
// on main, the schema created on the tenant's cluster before that
// transaction commits, then the tenant migrations on that cluster and the
// hooks, then the switch to active. Any failure undoes every step on every
// cluster, so no half tenant is left anywhere.
// Errors: EINVALID for bad parameters (a cluster this process does not
// know included), ECONFLICT when the schema or domain is taken (the
// existing tenant is untouched).
func (m *Manager) Create(ctx context.Context, p CreateParams) (domain.Tenant, error) {
	clusters := m.db.Clusters()
	if err := p.Validate(); err != nil {
		if detail, ok := checkCluster(p.Cluster, clusters); !ok {
			if de, isDomain := errors.AsType[*domain.Error](err); isDomain && de.Details != nil {
				de.Details["cluster"] = detail
			}
		}
		return domain.Tenant{}, err
	}
	if detail, ok := checkCluster(p.Cluster, clusters); !ok {
		return domain.Tenant{}, unknownCluster(detail)
	}
	var (
		t domain.Tenant
		// on is the tenant's cluster; made says its schema was created
		// there, outside the catalog's transaction.
		on   postgres.Cluster
		made bool
	)
	err := m.db.InTx(ctx, func(tx pgx.Tx) error {
		name := p.Cluster
		if name == "" {
			var err error
			if name, err = fewest(ctx, tx, clusters); err != nil {
				return err
			}
		}
		var err error
		if on, err = m.cluster(name); err != nil {
			return err
		}
		err = tx.QueryRow(ctx,
			`INSERT INTO public.tenants (schema_name, display_name, cluster) VALUES ($1, $2, $3)
			 RETURNING id, schema_name, display_name, state, schema_version, cluster, created_at, updated_at`,
			p.Schema, p.Name, on.Name).Scan(&t.ID, &t.Schema, &t.Name, &t.State, &t.SchemaVersion, &t.Cluster, &t.CreatedAt, &t.UpdatedAt)
		if err != nil {
			return fmt.Errorf("insert tenant: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO public.domains (domain, tenant_id, is_primary) VALUES ($1, $2, true)`, p.Domain, t.ID); err != nil {
			return fmt.Errorf("insert domain: %w", err)
		}
		// Before the rows commit: a schema that already exists (a
		// tenant's or anything else's) fails the whole step. On main it
		// is part of the transaction itself.
		create := "CREATE SCHEMA " + pgx.Identifier{p.Schema}.Sanitize()
		if on.Name == postgres.MainCluster {
			if _, err := tx.Exec(ctx, create); err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
			return nil
		}
		if _, err := on.DB.Pool.Exec(ctx, create); err != nil {
			return fmt.Errorf("create schema on %s: %w", on.Name, err)
		}
		made = true
		return nil
	})
	m.db.ForgetPlacement(p.Schema)
	if err != nil {
		if made {
			// The rows did not commit: the schema made for them goes too.
			if uerr := dropSchema(context.WithoutCancel(ctx), on, p.Schema); uerr != nil {
				m.log.ErrorContext(ctx, "tenant create: could not drop the schema of a tenant not created; drop it by hand",
					slog.String("tenant", p.Schema), slog.String("cluster", on.Name), slog.Any("error", uerr))
			}
		}
		return domain.Tenant{}, fmt.Errorf("tenancy: create %s: %w", p.Schema, createConflict(err))
	}
	t.Domains = []domain.Domain{{Domain: p.Domain, IsPrimary: true}}

	if err := m.provision(ctx, on, &t); err != nil {
		// Undo with a context of its own: the caller's may be what failed.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if uerr := m.purge(cctx, t, nil); uerr != nil {
			m.log.ErrorContext(ctx, "tenant create: undo failed; run `saas tenant delete` to finish",
				slog.String("tenant", t.Schema), slog.Any("error", uerr))
		}
		return domain.Tenant{}, fmt.Errorf("tenancy: create %s: %w", p.Schema, err)
	}
	m.changed(ctx) // the domain may be cached as unknown
	return t, nil
}

func (m *Manager) provision(ctx context.Context, on postgres.Cluster, t *domain.Tenant) error {
	runner, err := m.runnerFor(on)
	if err != nil {
		return err
	}
	v, err := runner.MigrateNewTenant(ctx, on.DB.Pool, t.Schema)
	if err != nil {
		return err
	}
	t.SchemaVersion = v
	for _, h := range m.hooks {
		if err := h.TenantCreated(ctx, *t); err != nil {
			return fmt.Errorf("hook: %w", err)
		}
	}
	// The entry goes with the activation: a creation undone before it
	// leaves none.
	err = m.db.InTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx,
			`UPDATE public.tenants SET state = 'active', schema_version = $2, updated_at = now()
			 WHERE id = $1 RETURNING state, updated_at`, t.ID, v).Scan(&t.State, &t.UpdatedAt)
		if err != nil {
			return err
		}
		var primary any
		if len(t.Domains) > 0 {
			primary = t.Domains[0].Domain
		}
		return record(ctx, tx, "tenant.create", tenantTarget(t.Schema),
			audit.Changes{"schema": {nil, t.Schema}, "name": {nil, t.Name}, "domain": {nil, primary}})
	})
	if err != nil {
		return fmt.Errorf("activate: %w", err)
	}
	return nil
}

func createConflict(err error) error {
	switch {
	case postgres.IsUniqueViolation(err, "tenants_schema_name_key"), isDuplicateSchema(err):
		return &domain.Error{Code: domain.ECONFLICT, Message: "schema already exists", Details: map[string]string{"schema": "is already taken"}}
	case postgres.IsUniqueViolation(err, "domains_pkey"):
		return &domain.Error{Code: domain.ECONFLICT, Message: "domain already in use", Details: map[string]string{"domain": "is already taken"}}
	}
	return err
}

func isDuplicateSchema(err error) bool {
	return postgres.HasCode(err, "42P06") // duplicate_schema
}

// Delete removes a tenant: it is marked deleting (so routing stops at once),
// the hooks clean up what lives outside PostgreSQL, then the schema and rows
// are dropped. Running it again finishes a delete that failed half way.
// Errors: ENOTFOUND when no such tenant exists.
func (m *Manager) Delete(ctx context.Context, schemaName string) error {
	t, err := m.Get(ctx, schemaName)
	if err != nil {
		return err
	}
	if _, err := m.db.Pool.Exec(ctx, `UPDATE public.tenants SET state = 'deleting', updated_at = now() WHERE id = $1`, t.ID); err != nil {
		return fmt.Errorf("tenancy: delete %s: mark: %w", schemaName, postgres.Translate(err))
	}
	t.State = domain.TenantDeleting
	m.changed(ctx)
	// The entry goes in public, with the rows' delete: the tenant's own
	// trail goes with its schema.
	entry := audit.New(ctx, "tenant.delete", tenantTarget(t.Schema), audit.Changes{"schema": {t.Schema, nil}, "name": {t.Name, nil}})
	if err := m.purge(ctx, t, &entry); err != nil {
		return fmt.Errorf("tenancy: delete %s: %w", schemaName, err)
	}
	return nil
}

// purge runs the delete hooks, drops the schema on the tenant's cluster and
// deletes the rows, and writes entry, if any, in the transaction of the
// rows' delete (the schema's drop too, on main).
func (m *Manager) purge(ctx context.Context, t domain.Tenant, entry *audit.Entry) error {
	defer m.db.ForgetPlacement(t.Schema)
	var errs []error
	for i := len(m.hooks) - 1; i >= 0; i-- {
		if err := m.hooks[i].TenantDeleted(ctx, t); err != nil {
			errs = append(errs, fmt.Errorf("hook: %w", err))
		}
	}
	if len(errs) > 0 {
		// Keep the rows so that a retry finds the tenant and runs the hooks again.
		return errors.Join(errs...)
	}
	on, err := m.cluster(t.Cluster)
	if err != nil {
		return err
	}
	if on.Name != postgres.MainCluster {
		// First, so that the rows stay while the schema does: a retry
		// finds the tenant and drops it again.
		if err := dropSchema(ctx, on, t.Schema); err != nil {
			return err
		}
	}
	return m.db.InTx(ctx, func(tx pgx.Tx) error {
		if on.Name == postgres.MainCluster {
			if _, err := tx.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{t.Schema}.Sanitize()+" CASCADE"); err != nil {
				return fmt.Errorf("drop schema: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM public.tenants WHERE id = $1`, t.ID); err != nil {
			return fmt.Errorf("delete tenant row: %w", err)
		}
		if entry != nil {
			return postgres.WritePlatformAudit(ctx, tx, *entry)
		}
		return nil
	})
}

const tenantColumns = `t.id, t.schema_name, t.display_name, t.state, t.schema_version, t.cluster, t.created_at, t.updated_at,
	coalesce((SELECT jsonb_agg(jsonb_build_object('Domain', d.domain, 'IsPrimary', d.is_primary) ORDER BY d.is_primary DESC, d.domain)
	          FROM public.domains d WHERE d.tenant_id = t.id), '[]')`

func scanTenant(row pgx.Row) (domain.Tenant, error) {
	var t domain.Tenant
	err := row.Scan(&t.ID, &t.Schema, &t.Name, &t.State, &t.SchemaVersion, &t.Cluster, &t.CreatedAt, &t.UpdatedAt, &t.Domains)
	return t, err
}

// Get returns one tenant with its domains, or an ENOTFOUND error.
func (m *Manager) Get(ctx context.Context, schemaName string) (domain.Tenant, error) {
	t, err := scanTenant(m.db.Pool.QueryRow(ctx, `SELECT `+tenantColumns+` FROM public.tenants t WHERE t.schema_name = $1`, schemaName))
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Tenant{}, domain.Errorf(domain.ENOTFOUND, "tenant %q not found", schemaName)
	}
	if err != nil {
		return domain.Tenant{}, fmt.Errorf("tenancy: get %s: %w", schemaName, postgres.Translate(err))
	}
	return t, nil
}

// List returns every tenant, oldest first.
func (m *Manager) List(ctx context.Context) ([]domain.Tenant, error) {
	rows, err := m.db.Pool.Query(ctx, `SELECT `+tenantColumns+` FROM public.tenants t ORDER BY t.id`)
	if err != nil {
		return nil, fmt.Errorf("tenancy: list: %w", postgres.Translate(err))
	}
	ts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Tenant, error) { return scanTenant(r) })
	if err != nil {
		return nil, fmt.Errorf("tenancy: list: %w", postgres.Translate(err))
	}
	return ts, nil
}

package tenancy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
)

// lockLive locks the row of a live (active or suspended) tenant for the rest of tx, so that
// changes to its domains are serialized with each other and with Delete
// (which marks the row first). Errors: ENOTFOUND, ECONFLICT when the tenant
// is being provisioned or deleted.
func lockLive(ctx context.Context, tx pgx.Tx, schemaName string) (int64, error) {
	var (
		id    int64
		state string
	)
	err := tx.QueryRow(ctx, `SELECT id, state FROM public.tenants WHERE schema_name = $1 FOR UPDATE`, schemaName).Scan(&id, &state)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, domain.Errorf(domain.ENOTFOUND, "tenant %q not found", schemaName)
	}
	if err != nil {
		return 0, err
	}
	if !domain.TenantLive(state) {
		return 0, domain.Errorf(domain.ECONFLICT, "tenant %q is %s", schemaName, state)
	}
	return id, nil
}

// Rename sets an active tenant's display name and returns the tenant.
// Errors: EINVALID for a bad name, ENOTFOUND, ECONFLICT when the tenant is
// not active.
func (m *Manager) Rename(ctx context.Context, schemaName, name string) (domain.Tenant, error) {
	name = strings.TrimSpace(name)
	if err := domain.ValidateTenantName(name); err != nil {
		return domain.Tenant{}, err
	}
	err := m.db.InTx(ctx, func(tx pgx.Tx) error {
		id, err := lockLive(ctx, tx, schemaName)
		if err != nil {
			return err
		}
		var old string
		if err := tx.QueryRow(ctx, `SELECT display_name FROM public.tenants WHERE id = $1`, id).Scan(&old); err != nil {
			return err
		}
		if old == name {
			return nil // no change, no entry
		}
		if _, err = tx.Exec(ctx, `UPDATE public.tenants SET display_name = $2, updated_at = now() WHERE id = $1`, id, name); err != nil {
			return err
		}
		return record(ctx, tx, "tenant.rename", tenantTarget(schemaName), audit.Changes{"name": {old, name}})
	})
	if err != nil {
		return domain.Tenant{}, fmt.Errorf("tenancy: rename %s: %w", schemaName, err)
	}
	m.changed(ctx) // resolvers cache the tenant, name included
	return m.Get(ctx, schemaName)
}

// AddDomain routes one more host name to an active tenant. With primary
// set, the new domain becomes the primary one and the old primary loses the
// flag, in the same transaction. The name is normalized with
// domain.NormalizeDomain. Errors: EINVALID for a bad name, ENOTFOUND,
// ECONFLICT when the domain is taken (by this tenant or another) or the
// tenant is not active.
func (m *Manager) AddDomain(ctx context.Context, schemaName, name string, primary bool) (domain.Domain, error) {
	d, err := domain.NormalizeDomain(name)
	if err != nil {
		return domain.Domain{}, err
	}
	err = m.db.InTx(ctx, func(tx pgx.Tx) error {
		id, err := lockLive(ctx, tx, schemaName)
		if err != nil {
			return err
		}
		if primary {
			if _, err := tx.Exec(ctx, `UPDATE public.domains SET is_primary = false WHERE tenant_id = $1 AND is_primary`, id); err != nil {
				return fmt.Errorf("clear primary: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO public.domains (domain, tenant_id, is_primary) VALUES ($1, $2, $3)`, d, id, primary); err != nil {
			return fmt.Errorf("insert domain: %w", err)
		}
		return record(ctx, tx, "domain.add", domainTarget(d), audit.Changes{"tenant": {nil, schemaName}, "is_primary": {nil, primary}})
	})
	if postgres.IsUniqueViolation(err, "domains_pkey") {
		return domain.Domain{}, &domain.Error{Code: domain.ECONFLICT, Message: "domain already in use", Details: map[string]string{"domain": "is already taken"}}
	}
	if err != nil {
		return domain.Domain{}, fmt.Errorf("tenancy: add domain %s to %s: %w", d, schemaName, err)
	}
	m.changed(ctx) // the domain may be cached as unknown
	return domain.Domain{Domain: d, IsPrimary: primary}, nil
}

// SetPrimaryDomain makes one of an active tenant's domains its primary one,
// taking the flag from the old primary in the same transaction. Errors:
// ENOTFOUND for an unknown tenant or a domain that is not this tenant's,
// ECONFLICT when the tenant is not active.
func (m *Manager) SetPrimaryDomain(ctx context.Context, schemaName, name string) (domain.Domain, error) {
	d, err := domain.NormalizeDomain(name)
	if err != nil {
		return domain.Domain{}, errNoSuchDomain
	}
	err = m.db.InTx(ctx, func(tx pgx.Tx) error {
		id, err := lockLive(ctx, tx, schemaName)
		if err != nil {
			return err
		}
		was, err := ownDomain(ctx, tx, id, d)
		if err != nil {
			return err
		}
		if was {
			return nil // no change, no entry
		}
		if _, err := tx.Exec(ctx, `UPDATE public.domains SET is_primary = false WHERE tenant_id = $1 AND is_primary AND domain <> $2`, id, d); err != nil {
			return fmt.Errorf("clear primary: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE public.domains SET is_primary = true WHERE domain = $1`, d); err != nil {
			return fmt.Errorf("set primary: %w", err)
		}
		return record(ctx, tx, "domain.set_primary", domainTarget(d), audit.Changes{"tenant": {schemaName, schemaName}, "is_primary": {false, true}})
	})
	if err != nil {
		return domain.Domain{}, fmt.Errorf("tenancy: set primary domain %s of %s: %w", d, schemaName, err)
	}
	m.changed(ctx)
	return domain.Domain{Domain: d, IsPrimary: true}, nil
}

// RemoveDomain stops routing a host name to an active tenant. The primary
// domain cannot be removed: make another one primary first. Errors:
// ENOTFOUND for an unknown tenant or a domain that is not this tenant's,
// ECONFLICT for the primary domain or a tenant that is not active.
func (m *Manager) RemoveDomain(ctx context.Context, schemaName, name string) error {
	d, err := domain.NormalizeDomain(name)
	if err != nil {
		return errNoSuchDomain
	}
	err = m.db.InTx(ctx, func(tx pgx.Tx) error {
		id, err := lockLive(ctx, tx, schemaName)
		if err != nil {
			return err
		}
		primary, err := ownDomain(ctx, tx, id, d)
		if err != nil {
			return err
		}
		if primary {
			return &domain.Error{Code: domain.ECONFLICT, Message: "the primary domain cannot be removed; make another domain primary first",
				Details: map[string]string{"domain": "is the primary domain"}}
		}
		if _, err = tx.Exec(ctx, `DELETE FROM public.domains WHERE domain = $1`, d); err != nil {
			return err
		}
		return record(ctx, tx, "domain.remove", domainTarget(d), audit.Changes{"tenant": {schemaName, nil}, "is_primary": {false, nil}})
	})
	if err != nil {
		return fmt.Errorf("tenancy: remove domain %s from %s: %w", d, schemaName, err)
	}
	m.changed(ctx) // resolvers may have the domain cached as found
	return nil
}

// record writes the platform audit entry of a change made for ctx's cause,
// inside the change's transaction.
func record(ctx context.Context, tx pgx.Tx, action string, target audit.Target, changes audit.Changes) error {
	return postgres.WritePlatformAudit(ctx, tx, audit.New(ctx, action, target, changes))
}

func tenantTarget(schemaName string) audit.Target {
	return audit.Target{Type: "tenant", ID: schemaName}
}

func domainTarget(d string) audit.Target { return audit.Target{Type: "domain", ID: d} }

// ownDomain locks a domain of tenant id and says whether it is primary.
// Errors: ENOTFOUND when the domain is not that tenant's.
func ownDomain(ctx context.Context, tx pgx.Tx, tenantID int64, d string) (bool, error) {
	var primary bool
	err := tx.QueryRow(ctx, `SELECT is_primary FROM public.domains WHERE domain = $1 AND tenant_id = $2 FOR UPDATE`, d, tenantID).Scan(&primary)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, errDomainNotFound(d)
	}
	return primary, err
}

// errNoSuchDomain answers for a name that is not even a valid domain.
var errNoSuchDomain = domain.Errorf(domain.ENOTFOUND, "domain not found")

func errDomainNotFound(d string) error {
	return domain.Errorf(domain.ENOTFOUND, "domain %q is not this tenant's", d)
}

// Suspend stops serving a tenant: its routes answer 403 tenant_suspended
// (sign-in too) and its open WebSockets are closed, while its data, index
// and events live on. Suspending a suspended tenant changes nothing.
// Errors: ENOTFOUND, ECONFLICT when the tenant is being created or deleted.
func (m *Manager) Suspend(ctx context.Context, schemaName string) (domain.Tenant, error) {
	t, err := m.setState(ctx, schemaName, domain.TenantSuspended)
	if err != nil {
		return domain.Tenant{}, fmt.Errorf("tenancy: suspend %s: %w", schemaName, err)
	}
	if m.suspended != nil {
		m.suspended(ctx, schemaName)
	}
	return t, nil
}

// Resume serves a suspended tenant again. Resuming an active tenant changes
// nothing. Errors: ENOTFOUND, ECONFLICT when the tenant is being created or
// deleted.
func (m *Manager) Resume(ctx context.Context, schemaName string) (domain.Tenant, error) {
	t, err := m.setState(ctx, schemaName, domain.TenantActive)
	if err != nil {
		return domain.Tenant{}, fmt.Errorf("tenancy: resume %s: %w", schemaName, err)
	}
	return t, nil
}

var stateActions = map[string]string{domain.TenantSuspended: "tenant.suspend", domain.TenantActive: "tenant.resume"}

// setState moves a live tenant to state (active or suspended) and tells
// every resolver.
func (m *Manager) setState(ctx context.Context, schemaName, state string) (domain.Tenant, error) {
	err := m.db.InTx(ctx, func(tx pgx.Tx) error {
		id, err := lockLive(ctx, tx, schemaName)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE public.tenants SET state = $2, updated_at = now() WHERE id = $1 AND state <> $2 RETURNING 0`, id, state)
		if err != nil || tag.RowsAffected() == 0 {
			return err // no change, no entry
		}
		// A live tenant is active or suspended: the old state is the other.
		old := domain.TenantActive
		if state == domain.TenantActive {
			old = domain.TenantSuspended
		}
		return record(ctx, tx, stateActions[state], tenantTarget(schemaName), audit.Changes{"state": {old, state}})
	})
	if err != nil {
		return domain.Tenant{}, err
	}
	m.changed(ctx)
	return m.Get(ctx, schemaName)
}

package search

import (
	"context"

	"github.com/tenantworks/saas/pkg/domain"
)

// Hook gives a tenant its alias (on its shared index) when it is created,
// and removes the alias and the tenant's documents, or its index of its
// own, when the tenant is deleted. It satisfies tenancy.Hook.
type Hook struct{ Client *Client }

// NewHook returns the tenancy hook of c.
func NewHook(c *Client) Hook { return Hook{Client: c} }

// TenantCreated gives the tenant its alias (EnsureIndex); an error aborts
// the tenant's creation.
func (h Hook) TenantCreated(ctx context.Context, t domain.Tenant) error {
	return h.Client.EnsureIndex(ctx, t.Schema)
}

// TenantDeleted deletes the tenant's alias, documents and indices
// (DeleteTenant); idempotent.
func (h Hook) TenantDeleted(ctx context.Context, t domain.Tenant) error {
	return h.Client.DeleteTenant(ctx, t.Schema)
}

package search

import (
	"context"

	"github.com/tenantworks/saas/pkg/domain"
)

// Hook gives a tenant its index when it is created and drops the index
// when the tenant is deleted. It satisfies tenancy.Hook.
type Hook struct{ Client *Client }

// NewHook returns the tenancy hook of c.
func NewHook(c *Client) Hook { return Hook{Client: c} }

// TenantCreated creates the tenant's index and alias (EnsureIndex); an
// error aborts the tenant's creation.
func (h Hook) TenantCreated(ctx context.Context, t domain.Tenant) error {
	return h.Client.EnsureIndex(ctx, t.Schema)
}

// TenantDeleted deletes the tenant's indices (DeleteTenant); idempotent.
func (h Hook) TenantDeleted(ctx context.Context, t domain.Tenant) error {
	return h.Client.DeleteTenant(ctx, t.Schema)
}

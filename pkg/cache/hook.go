package cache

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/tenantworks/saas/pkg/domain"
)

// Hook drops a deleted tenant's keys. It satisfies tenancy.Hook.
type Hook struct {
	Client *redis.Client
	// Keys names the keys; the zero Keys uses DefaultPrefix.
	Keys Keys
}

// TenantCreated does nothing: a new tenant has no keys.
func (Hook) TenantCreated(context.Context, domain.Tenant) error { return nil }

// TenantDeleted deletes every key of the tenant under this Hook's prefix
// (<prefix>:<schema>:*), scanning in batches so that Redis is never blocked.
// Keys of other prefixes are left alone, even for the same schema name.
// Idempotent.
func (h Hook) TenantDeleted(ctx context.Context, t domain.Tenant) error {
	if err := domain.ValidateSchemaName(t.Schema); err != nil {
		return err // never a pattern that could match other tenants' keys
	}
	// Neither the prefix nor the schema name can hold a glob character.
	iter := h.Client.Scan(ctx, 0, h.Keys.Tenant(t.Schema)+"*", 500).Iterator()
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := h.Client.Unlink(ctx, batch...).Err()
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := flush(); err != nil {
				return fmt.Errorf("cache: drop keys of %s: %w", t.Schema, err)
			}
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("cache: scan keys of %s: %w", t.Schema, err)
	}
	if err := flush(); err != nil {
		return fmt.Errorf("cache: drop keys of %s: %w", t.Schema, err)
	}
	return nil
}

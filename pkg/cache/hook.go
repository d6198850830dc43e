package cache

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/tenantworks/saas/pkg/domain"
)

// Hook drops a deleted tenant's keys. It satisfies tenancy.Hook.
type Hook struct {
	Client redis.UniversalClient
	// Keys names the keys; the zero Keys uses DefaultPrefix.
	Keys Keys
}

// TenantCreated does nothing: a new tenant has no keys.
func (Hook) TenantCreated(context.Context, domain.Tenant) error { return nil }

// TenantDeleted deletes every key of the tenant under this Hook's prefix
// (<prefix>:{<schema>}:*), scanning in batches so that Redis is never
// blocked; on a cluster, every master is scanned (a slot being moved may
// have keys on two). Keys of other prefixes are left alone, even for the
// same schema name. Idempotent.
func (h Hook) TenantDeleted(ctx context.Context, t domain.Tenant) error {
	if err := domain.ValidateSchemaName(t.Schema); err != nil {
		return err // never a pattern that could match other tenants' keys
	}
	// Neither the prefix nor the schema name can hold a glob character,
	// and braces are none.
	pattern := h.Keys.Tenant(t.Schema) + "*"
	err := forEachNode(ctx, h.Client, func(ctx context.Context, node redis.UniversalClient) error {
		iter := node.Scan(ctx, 0, pattern, 500).Iterator()
		var batch []string
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			// Through the client, not the node: every key of the batch
			// is in the tenant's slot, wherever that is now.
			err := h.Client.Unlink(ctx, batch...).Err()
			batch = batch[:0]
			if err != nil {
				return fmt.Errorf("cache: drop keys of %s: %w", t.Schema, err)
			}
			return nil
		}
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) == 500 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return fmt.Errorf("cache: scan keys of %s: %w", t.Schema, err)
		}
		return flush()
	})
	return err
}

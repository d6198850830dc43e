package catalog

import (
	"context"
	"fmt"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
)

// BulkDeleted is the outcome of BulkDelete: how many products it deleted
// and the ids that name none.
type BulkDeleted struct {
	Deleted  int
	NotFound []string
}

// BulkDelete deletes the products of ids in one transaction, each with
// its product.deleted event built as Delete builds it and its
// product.delete audit entry; ids that name no product are reported, not
// refused. Once committed, every deleted product's cache entries are
// invalidated as after a single delete. Errors: EINVALID naming ids (1 to
// 500 canonical ids).
func (s *Service) BulkDelete(ctx context.Context, schemaName string, ids []string, m Meta) (BulkDeleted, error) {
	ids, err := domain.BulkIDs(ids)
	if err != nil {
		return BulkDeleted{}, err
	}
	deleted, notFound, err := s.store.DeleteProducts(ctx, schemaName, ids, outbox(ctx, events.ProductDeleted, m, 1), auditDelete(ctx))
	if err != nil {
		return BulkDeleted{}, fmt.Errorf("catalog: bulk delete: %w", err)
	}
	for _, id := range deleted {
		s.committed(ctx, schemaName, id)
	}
	return BulkDeleted{Deleted: len(deleted), NotFound: notFound}, nil
}

// auditDelete is the product.delete entry of a deleted product, with the
// fields it had.
func auditDelete(ctx context.Context) postgres.AuditFunc[domain.Product] {
	return func(old, _ domain.Product) []audit.Entry {
		return []audit.Entry{audit.New(ctx, "product.delete", audit.Target{Type: "product", ID: old.ID}, audit.Diff(auditFields(&old), nil))}
	}
}

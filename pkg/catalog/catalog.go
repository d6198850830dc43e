// Package catalog holds the product use cases: validation and defaults,
// the outbox event of every write, and what follows a commit. The HTTP
// handlers, the CLI and the tests call it alike; the store below it only
// runs SQL.
package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
)

// Store writes products and their outbox rows, each write in one
// transaction (pkg/postgres.DB).
type Store interface {
	CreateProduct(ctx context.Context, schemaName string, p domain.ProductPatch, outbox postgres.OutboxFunc, record postgres.ProductAuditFunc) (domain.Product, error)
	UpdateProduct(ctx context.Context, schemaName, id string, p domain.ProductPatch, ifVersion *int64, outbox postgres.OutboxFunc, record postgres.ProductAuditFunc) (domain.Product, error)
	DeleteProduct(ctx context.Context, schemaName, id string, ifVersion *int64, outbox postgres.OutboxFunc, record postgres.ProductAuditFunc) error
	DeleteProducts(ctx context.Context, schemaName string, ids []string, outbox postgres.OutboxFunc, a postgres.AuditFunc[domain.Product]) (deleted, notFound []string, err error)
}

// Reader reads products: the cache in front of the database, or the
// database itself.
type Reader interface {
	GetProduct(ctx context.Context, schemaName, id string) (domain.Product, error)
	ListProducts(ctx context.Context, schemaName string, p postgres.ListParams) ([]domain.Product, string, error)
}

// Invalidator drops what a cache holds of a product once a write of it
// has committed.
type Invalidator interface {
	Invalidate(ctx context.Context, schemaName, productID string) error
}

// Meta is what a write records about its cause.
type Meta struct {
	RequestID string
}

// Deps are the Service's collaborators.
type Deps struct {
	// Store is required.
	Store Store
	// Reader serves Get and List; default Store when it is a Reader.
	Reader Reader
	// Bulk imports and exports; default Store when it is a BulkStore.
	Bulk BulkStore
	// Invalidator, when set, runs right after every committed write, so
	// that the writer's next read, on any API node, misses the cache. The
	// cache invalidator worker does the same from the event and stays the
	// guarantee when this fails (Redis down, the process killed in
	// between).
	Invalidator Invalidator
	// Log defaults to slog.Default().
	Log *slog.Logger
}

// Service runs the product use cases.
type Service struct {
	store Store
	read  Reader
	bulk  BulkStore // nil: Import and Export answer ErrNoBulkStore
	inv   Invalidator
	log   *slog.Logger
}

// ErrNoStore is returned by New without a Store, or without a Reader when
// the Store cannot read.
var ErrNoStore = errors.New("catalog: a store (and a reader) is required")

// New returns a Service. Errors: ErrNoStore.
func New(deps Deps) (*Service, error) {
	if deps.Store == nil {
		return nil, ErrNoStore
	}
	if deps.Reader == nil {
		r, ok := deps.Store.(Reader)
		if !ok {
			return nil, ErrNoStore
		}
		deps.Reader = r
	}
	if deps.Bulk == nil {
		deps.Bulk, _ = deps.Store.(BulkStore)
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	return &Service{store: deps.Store, read: deps.Reader, bulk: deps.Bulk, inv: deps.Invalidator, log: deps.Log}, nil
}

// ErrNotFound is returned for a product that does not exist, and for an id
// in any spelling but the canonical one (domain.CanonicalID).
var ErrNotFound = domain.Errorf(domain.ENOTFOUND, "product not found")

// Get returns one product. Errors: ErrNotFound.
func (s *Service) Get(ctx context.Context, schemaName, id string) (domain.Product, error) {
	if !domain.CanonicalID(id) {
		return domain.Product{}, ErrNotFound
	}
	return s.read.GetProduct(ctx, schemaName, id)
}

// List returns a page of products and the next page's cursor ("" at the
// end). Errors: EINVALID for a bad ordering, limit or cursor.
func (s *Service) List(ctx context.Context, schemaName string, p postgres.ListParams) ([]domain.Product, string, error) {
	return s.read.ListProducts(ctx, schemaName, p)
}

// Create validates p in full and creates the product with its
// product.created event. A missing description is empty, a missing stock
// 0. Errors: EINVALID (per field), ECONFLICT for a taken SKU.
func (s *Service) Create(ctx context.Context, schemaName string, p domain.ProductPatch, m Meta) (domain.Product, error) {
	if err := p.Validate(true); err != nil {
		return domain.Product{}, err
	}
	defaults(&p)
	out, err := s.store.CreateProduct(ctx, schemaName, p, outbox(ctx, events.ProductCreated, m, 0), auditEntry(ctx, "product.create"))
	if err != nil {
		return domain.Product{}, fmt.Errorf("catalog: create: %w", err)
	}
	s.committed(ctx, schemaName, out.ID)
	return out, nil
}

// Replace is a full update (PUT): sku, name, price and currency are
// required; a missing description is emptied and a missing stock set to 0.
// With ifVersion set, the product must be at that version. Errors:
// EINVALID, ENOTFOUND, ECONFLICT (stale version, taken SKU).
func (s *Service) Replace(ctx context.Context, schemaName, id string, p domain.ProductPatch, ifVersion *int64, m Meta) (domain.Product, error) {
	return s.update(ctx, schemaName, id, p, true, ifVersion, m)
}

// Patch changes the fields set in p. Errors as Replace.
func (s *Service) Patch(ctx context.Context, schemaName, id string, p domain.ProductPatch, ifVersion *int64, m Meta) (domain.Product, error) {
	return s.update(ctx, schemaName, id, p, false, ifVersion, m)
}

func (s *Service) update(ctx context.Context, schemaName, id string, p domain.ProductPatch, full bool, ifVersion *int64, m Meta) (domain.Product, error) {
	if !domain.CanonicalID(id) {
		return domain.Product{}, ErrNotFound
	}
	if err := p.Validate(full); err != nil {
		return domain.Product{}, err
	}
	if full {
		defaults(&p)
	}
	out, err := s.store.UpdateProduct(ctx, schemaName, id, p, ifVersion, outbox(ctx, events.ProductUpdated, m, 0), auditEntry(ctx, "product.update"))
	if err != nil {
		return domain.Product{}, fmt.Errorf("catalog: update: %w", err)
	}
	s.committed(ctx, schemaName, out.ID)
	return out, nil
}

// Delete deletes a product with its product.deleted event, whose version
// is one past the product's last, so that a search index using external
// versions orders the delete after every update. Errors: ENOTFOUND,
// ECONFLICT for a stale version.
func (s *Service) Delete(ctx context.Context, schemaName, id string, ifVersion *int64, m Meta) error {
	if !domain.CanonicalID(id) {
		return ErrNotFound
	}
	var deleted string
	build := outbox(ctx, events.ProductDeleted, m, 1)
	err := s.store.DeleteProduct(ctx, schemaName, id, ifVersion, func(p domain.Product) (postgres.OutboxRecord, error) {
		deleted = p.ID
		return build(p)
	}, auditEntry(ctx, "product.delete"))
	if err != nil {
		return fmt.Errorf("catalog: delete: %w", err)
	}
	s.committed(ctx, schemaName, deleted)
	return nil
}

// defaults fills what a create or a full update leaves out.
func defaults(p *domain.ProductPatch) {
	if p.Description == nil {
		p.Description = new(string)
	}
	if p.Stock == nil {
		p.Stock = new(int64)
	}
}

// auditEntry builds the audit entry of a product change made for ctx's
// cause: the fields that changed, old -> new (a create's old values and a
// delete's new ones are nil). The version, id and timestamps are left out:
// every update moves them, and the entry has its own time.
func auditEntry(ctx context.Context, action string) postgres.ProductAuditFunc {
	return func(old, new *domain.Product) audit.Entry {
		target := audit.Target{Type: "product"}
		if new != nil {
			target.ID = new.ID
		} else if old != nil {
			target.ID = old.ID
		}
		return audit.New(ctx, action, target, audit.Diff(auditFields(old), auditFields(new)))
	}
}

// auditFields are the product's fields the audit trail records.
func auditFields(p *domain.Product) map[string]any {
	if p == nil {
		return nil
	}
	return map[string]any{"sku": p.SKU, "name": p.Name, "description": p.Description,
		"price": p.Price, "currency": p.Currency, "stock": p.Stock}
}

// outbox builds a product event's outbox row; bump is added to the
// product's version (a delete's event is one past the last version). The
// row carries ctx's actor to the stream, and ctx's request id when m
// names none.
func outbox(ctx context.Context, eventType string, m Meta, bump int64) postgres.OutboxFunc {
	cause := audit.CauseFrom(ctx)
	if m.RequestID == "" {
		m.RequestID = cause.RequestID
	}
	return func(p domain.Product) (postgres.OutboxRecord, error) {
		p.Version += bump
		payload, err := json.Marshal(events.ProductFromDomain(p))
		if err != nil {
			return postgres.OutboxRecord{}, fmt.Errorf("encode %s payload: %w", eventType, err)
		}
		return postgres.OutboxRecord{EventID: uuid.Must(uuid.NewV7()).String(), EventType: eventType,
			AggregateID: p.ID, AggregateVersion: p.Version, Payload: payload, RequestID: m.RequestID, Actor: cause.Actor}, nil
	}
}

// committed invalidates the product's cache entries after a commit. A
// failure is logged, not returned: the write is committed, and the cache
// invalidator worker repeats the invalidation from the event.
func (s *Service) committed(ctx context.Context, schemaName, id string) {
	if s.inv == nil || id == "" {
		return
	}
	// Bounded: a hung Redis must not hold the answer of a committed write.
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := s.inv.Invalidate(ictx, schemaName, id); err != nil {
		s.log.WarnContext(ctx, "cache invalidation after commit failed; the cache worker repeats it from the event",
			slog.String("tenant", schemaName), slog.String("product", id), slog.Any("error", err))
	}
}

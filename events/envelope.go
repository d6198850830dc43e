package events

import (
	"encoding/json"
	"time"

	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/domain"
)

// Event types. The subject of an event is tenant.<schema>.<type>.
const (
	ProductCreated = "product.created"
	ProductUpdated = "product.updated"
	ProductDeleted = "product.deleted"
)

// Envelope is what travels on the stream. Its ID is also the JetStream
// message id (Nats-Msg-Id), so a re-publish is dropped by the server.
type Envelope struct {
	ID          string    `json:"id"`
	Type        string    `json:"type"`
	Tenant      string    `json:"tenant"`
	AggregateID string    `json:"aggregate_id"`
	Version     int64     `json:"version"`
	OccurredAt  time.Time `json:"occurred_at"`
	RequestID   string    `json:"request_id,omitempty"`
	// Actor is who caused the event ({"kind", "id", "email"}, as in the
	// audit trail); absent for events written before it was recorded.
	Actor   *audit.Actor    `json:"actor,omitempty"`
	Payload json.RawMessage `json:"payload"`
}

// Subject returns the subject of an event type for a tenant.
func Subject(tenant, eventType string) string {
	return "tenant." + tenant + "." + eventType
}

// Product is the payload of product events: the product after the change
// (for a delete, the product as it was, with the delete's version).
type Product struct {
	ID          string    `json:"id"`
	SKU         string    `json:"sku"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Price       string    `json:"price"`
	Currency    string    `json:"currency"`
	Stock       int64     `json:"stock"`
	Version     int64     `json:"version"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// ProductFromDomain converts a domain product to its payload.
func ProductFromDomain(p domain.Product) Product {
	return Product{ID: p.ID, SKU: p.SKU, Name: p.Name, Description: p.Description, Price: p.Price,
		Currency: p.Currency, Stock: p.Stock, Version: p.Version, CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC()}
}

// Headers of dead-lettered messages.
const (
	HeaderError      = "Saas-Error"
	HeaderConsumer   = "Saas-Consumer"
	HeaderSubject    = "Saas-Subject"
	HeaderDeliveries = "Saas-Deliveries"
)

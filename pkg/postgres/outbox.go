package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/domain"
)

// OutboxRecord is one row of a tenant's outbox as a use case built it. The
// store writes it as it is: what an event means (its type, its payload's
// shape) is the business of the use case and the events package, never of
// this one.
type OutboxRecord struct {
	EventID          string
	EventType        string
	AggregateID      string
	AggregateVersion int64
	Payload          []byte // JSON
	RequestID        string
}

// OutboxFunc builds the outbox row of a product change from the product as
// the change left it (for a delete, the row as it was), inside the change's
// transaction.
type OutboxFunc func(p domain.Product) (OutboxRecord, error)

// insertOutbox writes r into the outbox of the transaction's tenant. The
// outbox trigger then marks the tenant pending and notifies the relay.
//
// The payload goes as json.RawMessage under a jsonb cast: a bare []byte
// would go as bytea wherever pgx does not ask the server for the column's
// type (PoolTransaction's exec mode), and reach the column as "\x7b...".
func insertOutbox(ctx context.Context, tx pgx.Tx, r OutboxRecord) error {
	_, err := tx.Exec(ctx,
		`INSERT INTO outbox (event_id, event_type, aggregate_id, aggregate_version, payload, request_id)
		 VALUES ($1, $2, $3, $4, $5::jsonb, $6)`,
		r.EventID, r.EventType, r.AggregateID, r.AggregateVersion, json.RawMessage(r.Payload), r.RequestID)
	if err != nil {
		return fmt.Errorf("insert outbox: %w", err)
	}
	return nil
}

// writeOutbox builds the outbox row of p with build and writes it.
func writeOutbox(ctx context.Context, tx pgx.Tx, build OutboxFunc, p domain.Product) error {
	r, err := build(p)
	if err != nil {
		return fmt.Errorf("build outbox row: %w", err)
	}
	return insertOutbox(ctx, tx, r)
}

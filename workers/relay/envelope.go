package relay

import (
	"encoding/json"
	"fmt"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/postgres"
)

func jsonEnvelope(env events.Envelope) ([]byte, error) {
	env.OccurredAt = env.OccurredAt.UTC()
	b, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode envelope %s: %w", env.ID, err)
	}
	return b, nil
}

// envelopeOf is the event an outbox row of tenant schemaName stands for.
func envelopeOf(schemaName string, x postgres.OutboxRow) events.Envelope {
	return events.Envelope{
		ID:          x.EventID,
		Type:        x.EventType,
		Tenant:      schemaName,
		AggregateID: x.AggregateID,
		Version:     x.AggregateVersion,
		OccurredAt:  x.OccurredAt,
		RequestID:   x.RequestID,
		Actor:       x.Actor,
		Payload:     x.Payload,
	}
}

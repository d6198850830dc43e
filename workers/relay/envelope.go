package relay

import (
	"encoding/json"
	"fmt"

	"github.com/tenantworks/saas/events"
)

func jsonEnvelope(env events.Envelope) ([]byte, error) {
	env.OccurredAt = env.OccurredAt.UTC()
	b, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode envelope %s: %w", env.ID, err)
	}
	return b, nil
}

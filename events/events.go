// Package events defines the event envelope, the subjects, and the
// JetStream stream and consumers that carry tenant events between roles.
package events

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tenantworks/saas/pkg/domain"
)

// Connect dials NATS with endless reconnects: a role outlives a NATS
// restart and resumes on its own. name identifies the process to the server.
func Connect(url, name string) (*nats.Conn, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.RetryOnFailedConnect(true),
	)
	if err != nil {
		return nil, fmt.Errorf("events: connect %s: %w", url, err)
	}
	return nc, nil
}

// Pinger adapts a NATS connection to a readiness check.
type Pinger struct{ Conn *nats.Conn }

// Ping returns an EUNAVAILABLE error unless the connection is up and the
// server answers a round trip.
func (p Pinger) Ping(ctx context.Context) error {
	if !p.Conn.IsConnected() {
		return fmt.Errorf("events: ping: %w: %s", domain.Errorf(domain.EUNAVAILABLE, "nats unavailable"), p.Conn.Status())
	}
	if err := p.Conn.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("events: ping: %w: %w", domain.Errorf(domain.EUNAVAILABLE, "nats unavailable"), err)
	}
	return nil
}

package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream and consumer names.
const (
	StreamName = "TENANT_EVENTS"
	DLQStream  = "DLQ"

	ConsumerIndexer  = "indexer"
	ConsumerCache    = "cache-invalidator"
	ConsumerNotifier = "notifier"
)

// ProductSubjects matches every product event of every tenant.
const ProductSubjects = "tenant.*.product.*"

// TenantSubjects matches every event of one tenant.
func TenantSubjects(tenant string) string { return "tenant." + tenant + ".>" }

// StreamConfig configures the event stream.
type StreamConfig struct {
	// MaxAge bounds how long events are kept for replay; default 7 days.
	MaxAge time.Duration
	// MaxBytes bounds the stream's size; default 1 GiB.
	MaxBytes int64
	// Duplicates is the window in which a re-published event id is dropped;
	// default 10 minutes (a relay that crashed between publish and commit
	// re-publishes well within it).
	Duplicates time.Duration
	// Replicas is the streams' replica count in a NATS cluster. Zero
	// creates them with one and keeps an existing stream's count, so that
	// roles started without it never undo what an operator set.
	Replicas int
}

func (c StreamConfig) withDefaults() StreamConfig {
	if c.MaxAge <= 0 {
		c.MaxAge = 7 * 24 * time.Hour
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 1 << 30
	}
	if c.Duplicates < 2*time.Minute {
		c.Duplicates = 10 * time.Minute
	}
	return c
}

// EnsureStreams creates or updates TENANT_EVENTS and the dead-letter stream.
// Every role calls it at start-up; it is idempotent.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) error {
	cfg = cfg.withDefaults()
	wanted := []jetstream.StreamConfig{{
		Name:     StreamName,
		Subjects: []string{"tenant.>"},
		// Limits retention keeps history for replay whatever the consumers
		// have acknowledged; the oldest events go first when a limit is hit.
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardOld,
		Storage:    jetstream.FileStorage,
		MaxAge:     cfg.MaxAge,
		MaxBytes:   cfg.MaxBytes,
		Duplicates: cfg.Duplicates,
		Replicas:   cfg.Replicas,
	}, {
		Name:       DLQStream,
		Subjects:   []string{"dlq.>"},
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardOld,
		Storage:    jetstream.FileStorage,
		MaxAge:     30 * 24 * time.Hour,
		MaxBytes:   -1,
		Duplicates: cfg.Duplicates,
		Replicas:   cfg.Replicas,
	}}
	for _, want := range wanted {
		if err := ensureStream(ctx, js, want); err != nil {
			return fmt.Errorf("events: ensure stream %s: %w", want.Name, err)
		}
	}
	return nil
}

// ensureStream writes a stream's configuration only when the stored one
// differs. Copies of every role start at once; reading first keeps their
// start-up from queueing identical updates on the server (and concurrent
// updates of one stream race inside nats-server, nats-io/nats-server#8171).
func ensureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) error {
	// A few rounds: in a cluster a stream another copy is creating can
	// be "already in use" to a create and still "not found" to a lookup.
	var err error
	for range 5 {
		var s jetstream.Stream
		s, err = js.Stream(ctx, want.Name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			create := want
			create.Replicas = max(create.Replicas, 1)
			if _, err = js.CreateStream(ctx, create); !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				return err
			}
			// Another copy created it first, possibly with an older
			// configuration: look again and update it.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
			continue
		case err != nil:
			return err
		}
		have := s.CachedInfo().Config
		if want.Replicas == 0 {
			want.Replicas = have.Replicas
		}
		if sameStreamConfig(have, want) {
			return nil
		}
		_, err = js.UpdateStream(ctx, want)
		return err
	}
	return err
}

// sameStreamConfig compares the fields EnsureStreams sets; the server fills
// in the others.
func sameStreamConfig(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) &&
		have.Retention == want.Retention && have.Discard == want.Discard &&
		have.Storage == want.Storage && have.MaxAge == want.MaxAge &&
		have.MaxBytes == want.MaxBytes && have.Duplicates == want.Duplicates &&
		have.Replicas == want.Replicas
}

// AckWait is how long a delivered event waits for its ack before the
// server hands it out again, and InProgressEvery how often a worker says a
// batch it is still handling is in progress.
const (
	AckWait         = 10 * time.Second
	InProgressEvery = 3 * time.Second
)

// MaxDeliver is how often an event is tried before it goes to the DLQ,
// unless it failed only because a dependency was down.
const MaxDeliver = 8

// Backoff is the wait before retry n (1-based), capped at its last value.
var Backoff = []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute}

// BackoffFor returns the wait before retrying a message delivered n times.
func BackoffFor(n uint64) time.Duration {
	if n == 0 {
		n = 1
	}
	return Backoff[min(int(n)-1, len(Backoff)-1)]
}

// ConsumerConfig returns the durable pull consumer of a worker role. Copies
// of a role share it, so each event goes to one copy.
func ConsumerConfig(name string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "worker role " + name,
		FilterSubject: ProductSubjects,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// Explicit acks: an event is done only when its handler says so.
		AckPolicy: jetstream.AckExplicitPolicy,
		// A crashed worker's events come back after it. The runner marks
		// a batch in progress every InProgressEvery while its handler
		// runs, so a slow bulk request keeps its events however long.
		AckWait: AckWait,
		// Unlimited: the worker decides. It dead-letters an event that
		// failed MaxDeliver times, but waits out a dependency that is
		// down however long it takes; the server never silently drops.
		MaxDeliver: -1,
		// Bounds what one worker holds un-acked, and so memory and the
		// redelivery storm after a crash.
		MaxAckPending: 2000,
	}
}

// EnsureConsumer creates or updates a worker role's durable consumer.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, name string) (jetstream.Consumer, error) {
	c, err := js.CreateOrUpdateConsumer(ctx, StreamName, ConsumerConfig(name))
	if err != nil {
		return nil, fmt.Errorf("events: ensure consumer %s: %w", name, err)
	}
	return c, nil
}

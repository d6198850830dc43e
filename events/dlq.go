package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetter is an event a worker gave up on.
type DeadLetter struct {
	Seq        uint64    // sequence in the DLQ stream
	Consumer   string    // the worker role that gave up
	Subject    string    // the event's original subject
	Error      string    // the last error
	Deliveries int       // how often it was tried
	Time       time.Time // when it was dead-lettered
	Data       []byte    // the envelope
}

// ListDeadLetters returns up to limit dead letters, oldest first.
func ListDeadLetters(ctx context.Context, js jetstream.JetStream, limit int) ([]DeadLetter, error) {
	s, err := js.Stream(ctx, DLQStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("events: dlq: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("events: dlq info: %w", err)
	}
	var out []DeadLetter
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0 && len(out) < limit; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // redriven: deleted
		}
		if err != nil {
			return nil, fmt.Errorf("events: dlq get %d: %w", seq, err)
		}
		n, _ := strconv.Atoi(m.Header.Get(HeaderDeliveries))
		out = append(out, DeadLetter{Seq: m.Sequence, Consumer: m.Header.Get(HeaderConsumer), Subject: m.Header.Get(HeaderSubject),
			Error: m.Header.Get(HeaderError), Deliveries: n, Time: m.Time, Data: m.Data})
	}
	return out, nil
}

// Redrive publishes a dead letter again on its original subject, then
// removes it from the DLQ. Every worker role sees it again; handlers are
// idempotent, so the roles that had succeeded do no harm.
func Redrive(ctx context.Context, js jetstream.JetStream, seq uint64) error {
	s, err := js.Stream(ctx, DLQStream)
	if err != nil {
		return fmt.Errorf("events: dlq: %w", err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return fmt.Errorf("events: dlq get %d: %w", seq, err)
	}
	subject := m.Header.Get(HeaderSubject)
	if subject == "" {
		return fmt.Errorf("events: dlq message %d has no original subject", seq)
	}
	out := nats.NewMsg(subject)
	out.Data = m.Data
	// A fresh id: the original is still in the duplicate window, and a
	// second redrive of the same letter must go through too.
	out.Header.Set(nats.MsgIdHdr, fmt.Sprintf("redrive-%d-%d", seq, time.Now().UnixNano()))
	if _, err := js.PublishMsg(ctx, out); err != nil {
		return fmt.Errorf("events: redrive %d: %w", seq, err)
	}
	if err := s.DeleteMsg(ctx, seq); err != nil {
		return fmt.Errorf("events: dlq delete %d: %w", seq, err)
	}
	return nil
}

// Package runner is the loop every event worker shares: it fetches batches
// from the role's durable consumer, hands the decoded envelopes to the
// worker's handler, and maps each result onto the message: nil -> Ack, a
// retryable error -> NakWithDelay with backoff, a permanent error or the last
// allowed delivery -> the dead-letter stream, then Term.
package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/observability"
)

// BatchHandler handles a batch of events and returns one result per event,
// in order. A handler must be idempotent: delivery is at least once.
type BatchHandler func(ctx context.Context, evs []events.Envelope) []error

// Each adapts a one-event handler to a BatchHandler.
func Each(h func(ctx context.Context, ev events.Envelope) error) BatchHandler {
	return func(ctx context.Context, evs []events.Envelope) []error {
		errs := make([]error, len(evs))
		for i, ev := range evs {
			errs[i] = h(ctx, ev)
		}
		return errs
	}
}

// permanent marks an error that no retry can fix.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// Permanent wraps err so that the event goes to the dead-letter stream at
// once instead of being retried.
func Permanent(err error) error { return permanent{err} }

// IsPermanent reports whether err was wrapped by Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// Config configures a Runner.
type Config struct {
	Consumer string // durable consumer name, one of events.Consumer*
	Batch    int    // events per fetch; default 100
	// ConsumerConfig, when set, replaces events.ConsumerConfig(Consumer):
	// tests use it for a durable of their own filtered to their tenant.
	ConsumerConfig *jetstream.ConsumerConfig
	// MaxDeliver is the number of tries before the dead-letter stream;
	// default events.MaxDeliver.
	MaxDeliver uint64
	// Backoff returns the wait before retry n; default events.BackoffFor.
	Backoff func(n uint64) time.Duration
	// InProgressEvery is how often a batch whose handler still runs is
	// marked in progress, resetting its ack wait; default
	// events.InProgressEvery. It must be well under the consumer's AckWait.
	InProgressEvery time.Duration
}

// Runner runs one worker role's consume loop.
type Runner struct {
	cfg     Config
	js      jetstream.JetStream
	handler BatchHandler
	log     *slog.Logger
}

// New returns a Runner.
func New(cfg Config, js jetstream.JetStream, h BatchHandler, log *slog.Logger) *Runner {
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = events.MaxDeliver
	}
	if cfg.Backoff == nil {
		cfg.Backoff = events.BackoffFor
	}
	if cfg.InProgressEvery <= 0 {
		cfg.InProgressEvery = events.InProgressEvery
	}
	return &Runner{cfg: cfg, js: js, handler: h, log: log.With(slog.String("consumer", cfg.Consumer))}
}

// Run consumes until ctx is done. It survives NATS outages: a failed fetch
// is retried with backoff. It returns nil when ctx is cancelled.
func (r *Runner) Run(ctx context.Context) error {
	var cons jetstream.Consumer
	for attempt := uint64(1); cons == nil; attempt++ {
		c, err := r.ensure(ctx)
		if err == nil {
			cons = c
			break
		}
		r.log.WarnContext(ctx, "consumer not ready, retrying", slog.Any("error", err))
		if !sleep(ctx, events.BackoffFor(attempt)) {
			return nil
		}
	}
	r.log.InfoContext(ctx, "worker consuming")
	var failures uint64
	for ctx.Err() == nil {
		msgs, err := r.fetch(cons)
		if err != nil {
			failures++
			if ctx.Err() == nil {
				r.log.WarnContext(ctx, "fetch failed", slog.Any("error", err))
			}
			sleep(ctx, events.BackoffFor(failures))
			continue
		}
		failures = 0
		if len(msgs) > 0 {
			r.handle(ctx, msgs)
		}
	}
	return nil
}

// fetch returns what the consumer holds now, up to a batch. Only when it
// holds nothing does it wait, up to a second, and then for the first
// message rather than a full batch: waiting for a batch to fill made a
// trickle of 200 events/s wait half a second each (bench/pipeline).
func (r *Runner) fetch(cons jetstream.Consumer) ([]jetstream.Msg, error) {
	if b, err := cons.FetchNoWait(r.cfg.Batch); err == nil {
		if msgs := collect(b); len(msgs) > 0 {
			return msgs, nil
		}
	}
	b, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		return nil, err
	}
	msgs := collect(b)
	if err := b.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && len(msgs) == 0 {
		return nil, err
	}
	return msgs, nil
}

func collect(b jetstream.MessageBatch) []jetstream.Msg {
	var msgs []jetstream.Msg
	for m := range b.Messages() {
		msgs = append(msgs, m)
	}
	return msgs
}

func (r *Runner) ensure(ctx context.Context) (jetstream.Consumer, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := events.EnsureStreams(cctx, r.js, events.StreamConfig{}); err != nil {
		return nil, err
	}
	if r.cfg.ConsumerConfig != nil {
		c, err := r.js.CreateOrUpdateConsumer(cctx, events.StreamName, *r.cfg.ConsumerConfig)
		if err != nil {
			return nil, fmt.Errorf("runner: ensure consumer %s: %w", r.cfg.ConsumerConfig.Durable, err)
		}
		return c, nil
	}
	return events.EnsureConsumer(cctx, r.js, r.cfg.Consumer)
}

// handle decodes, runs the handler and settles every message of a batch.
func (r *Runner) handle(ctx context.Context, msgs []jetstream.Msg) {
	evs := make([]events.Envelope, 0, len(msgs))
	idx := make([]int, 0, len(msgs)) // position in msgs of each envelope
	for i, m := range msgs {
		var ev events.Envelope
		if err := json.Unmarshal(m.Data(), &ev); err != nil || ev.ID == "" || ev.Tenant == "" {
			if err == nil {
				err = errors.New("envelope without id or tenant")
			}
			r.deadLetter(ctx, m, fmt.Errorf("decode envelope: %w", err))
			continue
		}
		evs = append(evs, ev)
		idx = append(idx, i)
	}
	if len(evs) == 0 {
		return
	}
	start := time.Now()
	stop := r.keepInProgress(ctx, msgs)
	errs := r.handler(ctx, evs)
	stop()
	observability.HandlerDuration.WithLabelValues(r.cfg.Consumer).Observe(time.Since(start).Seconds())
	for j, ev := range evs {
		m := msgs[idx[j]]
		var err error
		if j < len(errs) {
			err = errs[j]
		}
		r.settle(ctx, m, ev, err)
	}
}

// keepInProgress marks msgs in progress every InProgressEvery until the
// returned stop is called, so that a handler slower than the ack wait does
// not get its events handed to another copy meanwhile.
func (r *Runner) keepInProgress(ctx context.Context, msgs []jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(r.cfg.InProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			for _, m := range msgs {
				if err := m.InProgress(); err != nil {
					r.log.DebugContext(ctx, "in-progress mark failed", slog.Any("error", err))
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func (r *Runner) settle(ctx context.Context, m jetstream.Msg, ev events.Envelope, err error) {
	log := r.log.With(slog.String("event_id", ev.ID), slog.String("tenant", ev.Tenant), slog.String("type", ev.Type))
	if err == nil {
		if aerr := m.Ack(); aerr != nil {
			log.WarnContext(ctx, "ack failed; the event will be redelivered", slog.Any("error", aerr))
		}
		observability.EventsHandled.WithLabelValues(r.cfg.Consumer, "ok").Inc()
		return
	}
	md, _ := m.Metadata()
	var delivered uint64 = 1
	if md != nil {
		delivered = md.NumDelivered
	}
	// A dependency that is down (EUNAVAILABLE) is waited out however long
	// it takes, at the longest backoff: the event is not at fault, and
	// dead-lettering it would leave the index or cache behind until
	// someone redrives it. Any other failure is tried MaxDeliver times.
	unavailable := domain.ErrorCode(err) == domain.EUNAVAILABLE
	if IsPermanent(err) || (delivered >= r.cfg.MaxDeliver && !unavailable) {
		log.ErrorContext(ctx, "event dead-lettered", slog.Uint64("deliveries", delivered), slog.Any("error", err))
		r.deadLetter(ctx, m, err)
		return
	}
	if ctx.Err() != nil {
		return // shutting down: let the ack wait expire and redeliver
	}
	observability.EventsHandled.WithLabelValues(r.cfg.Consumer, "retry").Inc()
	log.WarnContext(ctx, "event failed, will retry", slog.Uint64("deliveries", delivered), slog.Any("error", err))
	if nerr := m.NakWithDelay(r.cfg.Backoff(delivered)); nerr != nil {
		log.WarnContext(ctx, "nak failed", slog.Any("error", nerr))
	}
}

// deadLetter copies the message to the DLQ stream with the error, then
// terminates it. If the copy fails the message is left to be redelivered.
func (r *Runner) deadLetter(ctx context.Context, m jetstream.Msg, cause error) {
	md, _ := m.Metadata()
	dl := nats.NewMsg("dlq." + r.cfg.Consumer + "." + m.Subject())
	dl.Data = m.Data()
	dl.Header.Set(events.HeaderError, cause.Error())
	dl.Header.Set(events.HeaderConsumer, r.cfg.Consumer)
	dl.Header.Set(events.HeaderSubject, m.Subject())
	if md != nil {
		dl.Header.Set(events.HeaderDeliveries, strconv.FormatUint(md.NumDelivered, 10))
		dl.Header.Set(nats.MsgIdHdr, r.cfg.Consumer+":"+strconv.FormatUint(md.Sequence.Stream, 10))
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := r.js.PublishMsg(pctx, dl); err != nil {
		r.log.ErrorContext(ctx, "dead-letter publish failed; leaving the event for redelivery", slog.Any("error", err))
		_ = m.NakWithDelay(r.cfg.Backoff(r.cfg.MaxDeliver))
		return
	}
	observability.EventsHandled.WithLabelValues(r.cfg.Consumer, "dead_letter").Inc()
	if err := m.Term(); err != nil {
		r.log.WarnContext(ctx, "term failed", slog.Any("error", err))
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

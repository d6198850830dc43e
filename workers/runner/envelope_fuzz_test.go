package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/events"
)

// FuzzEnvelope hands arbitrary bytes to the runner as a batch of messages
// (one per line) and checks what it does with each: an envelope that
// decodes with an id and a tenant reaches the handler, in order, and is
// settled by the handler's result (nil: Ack; retryable: NakWithDelay;
// permanent: dead letter, then Term); anything else goes to the dead-letter
// stream as it came and is terminated. Every message is settled exactly
// once. Run it with
//
//	go test -run '^$' -fuzz '^FuzzEnvelope$' -fuzztime 10s ./workers/runner
//
// The runner checks only that id and tenant are not empty: whether the
// tenant is a valid schema name is every worker's own check before
// anything tenant-scoped (indexer: checkTarget; notifier: handle;
// cache invalidator: its handler), and FuzzIndexerEvent and
// FuzzNotifierEvent hold them to it.
func FuzzEnvelope(f *testing.F) {
	good := func(id, tenant, typ string) string {
		b, _ := json.Marshal(events.Envelope{ID: id, Type: typ, Tenant: tenant, AggregateID: "0190a7e4-1111-7000-8000-000000000001",
			Version: 3, OccurredAt: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), Payload: json.RawMessage(`{"id":"0190a7e4-1111-7000-8000-000000000001"}`)})
		return string(b)
	}
	for _, s := range []string{
		good("e1", "acme", events.ProductCreated),
		good("e1", "acme", events.ProductCreated) + "\n" + good("p2", "acme", events.ProductUpdated) + "\n" + good("r3", "globex", "other"),
		good("", "acme", events.ProductCreated), good("e1", "", events.ProductCreated), good("e1", "ACME.*", events.ProductCreated),
		`{not json`, ``, `null`, `[]`, `{}`, `{"id":"e1","tenant":"acme"}`, `{"id":"e1","tenant":"acme"} trailing`,
		`{"id":1,"tenant":"acme"}`, `{"id":"e1","tenant":"acme","payload":nul}`, `{"id":"e1","tenant":"acme","version":1.5}`,
		`{"id":"e1","tenant":"acme","occurred_at":"yesterday"}`, `{"id":"e1","tenant":"acme","ID":"e2"}`,
		"{\"id\":\"e1\",\"tenant\":\"ac\xffme\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Split(data, []byte("\n"))
		if len(lines) > 16 {
			lines = lines[:16]
		}
		js := &fakeJS{}
		var handled []events.Envelope
		h := func(_ context.Context, evs []events.Envelope) []error {
			errs := make([]error, len(evs))
			for i, ev := range evs {
				handled = append(handled, ev)
				switch {
				case strings.HasPrefix(ev.ID, "p"):
					errs[i] = Permanent(errors.New("cannot be understood"))
				case strings.HasPrefix(ev.ID, "r"):
					errs[i] = errors.New("try again")
				}
			}
			return errs
		}
		r := New(Config{Consumer: "fuzz"}, js, h, slog.New(slog.DiscardHandler))
		msgs := make([]jetstream.Msg, len(lines))
		fakes := make([]*fakeMsg, len(lines))
		for i, l := range lines {
			fakes[i] = &fakeMsg{data: l, seq: uint64(i + 1)}
			msgs[i] = fakes[i]
		}
		r.handle(t.Context(), msgs)

		next := 0 // the next envelope the handler saw
		for i, m := range fakes {
			var ev events.Envelope
			decodes := json.Unmarshal(m.data, &ev) == nil && ev.ID != "" && ev.Tenant != ""
			if m.acks+m.naks+m.terms != 1 {
				t.Fatalf("message %d %q settled %d times (ack %d, nak %d, term %d)", i, m.data, m.acks+m.naks+m.terms, m.acks, m.naks, m.terms)
			}
			if !decodes {
				if m.terms != 1 || !js.deadLettered(m) {
					t.Fatalf("undecodable message %d %q not dead-lettered and terminated", i, m.data)
				}
				continue
			}
			if next >= len(handled) || handled[next].ID != ev.ID || handled[next].Tenant != ev.Tenant {
				t.Fatalf("message %d %q (id %q, tenant %q) did not reach the handler in order", i, m.data, ev.ID, ev.Tenant)
			}
			next++
			switch {
			case strings.HasPrefix(ev.ID, "p"):
				if m.terms != 1 || !js.deadLettered(m) {
					t.Fatalf("message %d with a permanent error not dead-lettered", i)
				}
			case strings.HasPrefix(ev.ID, "r"):
				if m.naks != 1 || js.deadLettered(m) {
					t.Fatalf("message %d with a retryable error not nak'ed", i)
				}
			default:
				if m.acks != 1 || js.deadLettered(m) {
					t.Fatalf("message %d handled fine not acked", i)
				}
			}
		}
		if next != len(handled) {
			t.Fatalf("the handler saw %d envelopes, %d messages decode", len(handled), next)
		}
	})
}

// fakeJS takes the dead letters; the runner's handle needs nothing else.
type fakeJS struct {
	jetstream.JetStream
	published []*nats.Msg
}

func (f *fakeJS) PublishMsg(_ context.Context, m *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	f.published = append(f.published, m)
	return &jetstream.PubAck{}, nil
}

// deadLettered reports whether m was copied, as it came, to the
// dead-letter stream with its error, once.
func (f *fakeJS) deadLettered(m *fakeMsg) bool {
	n := 0
	for _, p := range f.published {
		if p.Header.Get(nats.MsgIdHdr) == "fuzz:"+strconv.FormatUint(m.seq, 10) {
			if p.Subject != "dlq.fuzz."+m.Subject() || !bytes.Equal(p.Data, m.data) || p.Header.Get(events.HeaderError) == "" {
				return false
			}
			n++
		}
	}
	return n == 1
}

type fakeMsg struct {
	jetstream.Msg
	data              []byte
	seq               uint64
	acks, naks, terms int
}

func (m *fakeMsg) Data() []byte    { return m.data }
func (m *fakeMsg) Subject() string { return "tenant.acme.product.created" }
func (m *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: 1, Sequence: jetstream.SequencePair{Stream: m.seq}}, nil
}
func (m *fakeMsg) Ack() error                       { m.acks++; return nil }
func (m *fakeMsg) NakWithDelay(time.Duration) error { m.naks++; return nil }
func (m *fakeMsg) Term() error                      { m.terms++; return nil }

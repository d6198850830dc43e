package notifier

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/events"
)

func TestZeroConfigFieldsTakeTheirDefaults(t *testing.T) {
	if got := (Config{}).withDefaults(); got.Consumer != events.ConsumerNotifier || got.Batch != 100 || got.FlushTimeout != 5*time.Second {
		t.Fatalf("defaults = %+v, want the role's consumer, batches of 100 and 5s to flush", got)
	}
	cc := &jetstream.ConsumerConfig{Durable: "mine"}
	got := (Config{Consumer: "other", ConsumerConfig: cc, Batch: 5, FlushTimeout: time.Second}).withDefaults()
	if got.Consumer != "mine" || got.Batch != 5 || got.FlushTimeout != time.Second {
		t.Fatalf("got %+v, want the consumer named by ConsumerConfig and the fields set kept", got)
	}
}

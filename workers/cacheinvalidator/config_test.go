package cacheinvalidator

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/events"
)

func TestZeroConfigFieldsTakeTheirDefaults(t *testing.T) {
	if got := (Config{}).withDefaults(); got.Consumer != events.ConsumerCache || got.Batch != 100 {
		t.Fatalf("defaults = %+v, want the role's consumer and batches of 100", got)
	}
	cc := &jetstream.ConsumerConfig{Durable: "mine"}
	if got := (Config{Consumer: "other", ConsumerConfig: cc, Batch: 5}).withDefaults(); got.Consumer != "mine" || got.Batch != 5 {
		t.Fatalf("got %+v, want the consumer named by ConsumerConfig and batches of 5", got)
	}
}

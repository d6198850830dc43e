package indexer

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/events"
)

func TestZeroConfigFieldsTakeTheirDefaults(t *testing.T) {
	if got := (Config{}).withDefaults(); got.Consumer != events.ConsumerIndexer || got.Batch != 100 || got.PromoteEvery != time.Minute {
		t.Fatalf("defaults = %+v, want the role's consumer, batches of 100 and a promotion check a minute", got)
	}
	cc := &jetstream.ConsumerConfig{Durable: "mine"}
	got := (Config{Consumer: "other", ConsumerConfig: cc, Batch: 5, PromoteEvery: time.Second}).withDefaults()
	if got.Consumer != "mine" || got.Batch != 5 || got.PromoteEvery != time.Second {
		t.Fatalf("got %+v, want the consumer named by ConsumerConfig and the fields set kept", got)
	}
	if got := (ReindexerConfig{}).withDefaults(); got.Batch != 500 || got.DedicatedAt != DefaultDedicatedAt {
		t.Fatalf("reindexer defaults = %+v, want batches of 500 and DefaultDedicatedAt", got)
	}
	if got := (ReindexerConfig{Batch: 3, DedicatedAt: 10}).withDefaults(); got.Batch != 3 || got.DedicatedAt != 10 {
		t.Fatalf("reindexer fields set became %+v", got)
	}
}

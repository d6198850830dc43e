package relay

import (
	"testing"
	"time"
)

func TestZeroConfigFieldsTakeTheirDefaults(t *testing.T) {
	got := Config{}.withDefaults()
	if got.Workers != 4 || got.Batch != 500 || got.Sweep != 2*time.Second || got.PublishTimeout != 10*time.Second {
		t.Fatalf("defaults = %+v, want 4 workers, batches of 500, a sweep every 2s and 10s for acks", got)
	}
	set := Config{Workers: 2, Batch: 7, Sweep: time.Second, PublishTimeout: time.Minute}
	if got := set.withDefaults(); got.Workers != 2 || got.Batch != 7 || got.Sweep != time.Second || got.PublishTimeout != time.Minute {
		t.Fatalf("set fields became %+v, want %+v", got, set)
	}
}

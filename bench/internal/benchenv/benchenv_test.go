package benchenv

import (
	"testing"
	"time"
)

func TestPercentileIsNearestRank(t *testing.T) {
	ds := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n)
		}
		return out
	}
	for _, c := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"no values give zero", nil, 50, 0},
		{"one value is every percentile", ds(7), 99, 7},
		{"p50 of four is the second", ds(1, 2, 3, 4), 50, 2},
		{"p50 of five is the third", ds(1, 2, 3, 4, 5), 50, 3},
		{"p99 of 100 is the 99th", ds(seq(100)...), 99, 99},
		{"p99 of 101 is the 100th", ds(seq(101)...), 99, 100},
		{"p99 of 7 is the last", ds(seq(7)...), 99, 7},
		{"p100 is the largest", ds(1, 2, 3), 100, 3},
		{"p0 is the smallest", ds(1, 2, 3), 0, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Percentile(c.sorted, c.p); got != c.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", c.sorted, c.p, got, c.want)
			}
		})
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

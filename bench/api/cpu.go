package main

import "time"

// cpuSample is a snapshot of CPU counters (see sampleCPU).
type cpuSample struct {
	at        time.Time
	busy, all uint64 // machine-wide jiffies: not idle, total
	server    time.Duration
	self      time.Duration
}

// cpuUse is what a phase cost: the machine's busy share, and the CPU time
// of the server and of the client side (this load generator, or pgbench).
type cpuUse struct {
	machineBusy float64 // 0..1 of all CPUs
	server      time.Duration
	client      time.Duration
}

func (a cpuSample) until(b cpuSample) cpuUse {
	u := cpuUse{server: b.server - a.server, client: b.self - a.self}
	if b.all > a.all {
		u.machineBusy = float64(b.busy-a.busy) / float64(b.all-a.all)
	}
	return u
}

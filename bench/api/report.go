package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	createTarget   = 0.9
	retrieveTarget = 0.85
)

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func row(w io.Writer, label string, r result) {
	fmt.Fprintf(w, "| %s | %d | %d | %d | %.0f | %s | %s |\n", label, r.clients, r.ok, r.errors, r.rps(), ms(r.pct(50)), ms(r.pct(99)))
}

func ratioRow(w io.Writer, label string, num, den result, target float64) {
	ratio := num.rps() / den.rps()
	verdict := "met"
	if ratio < target {
		verdict = fmt.Sprintf("missed by %.2f, %.0f%% short", target-ratio, 100*(target-ratio)/target)
	}
	fmt.Fprintf(w, "| **%s** (target ≥ %.2f: %s) | | | | **%.2f** | %.2f× | %.2f× |\n", label, target, verdict, ratio,
		float64(num.pct(50))/float64(den.pct(50)), float64(num.pct(99))/float64(den.pct(99)))
}

func cpuRow(w io.Writer, label, client string, r result, server bool) {
	srv := "–"
	if server {
		srv = fmt.Sprintf("%.3f ms", float64(r.perRequest(r.cpu.server))/float64(time.Millisecond))
	}
	fmt.Fprintf(w, "| %s | %s | %.3f ms (%s) | %.0f%% |\n", label, srv,
		float64(r.perRequest(r.cpu.client))/float64(time.Millisecond), client, 100*r.cpu.machineBusy)
}

// ratios lists the per-round ratios and their median.
func ratios(rs []float64) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = fmt.Sprintf("%.2f", r)
	}
	sorted := slices.Sorted(slices.Values(rs))
	med := sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		med = (sorted[len(sorted)/2-1] + med) / 2
	}
	return fmt.Sprintf("%s (median %.2f)", strings.Join(s, ", "), med)
}

func (rep *report) print(w io.Writer, o options, cpus int) {
	fmt.Fprintf(w, "\n%d round(s) of %s measured after %s warm-up, per workload, the two sides of each row alternating; %d CPUs, GOMAXPROCS %d, %s, PostgreSQL %s; server, load generator, pgbench, PostgreSQL and Redis on one machine; load average %s before, %s after (which counts the benchmark itself).\n\n",
		o.rounds, o.duration, o.warmup, cpus, runtime.GOMAXPROCS(0), runtime.Version(), rep.pgVersion, rep.loadBefore, rep.loadAfter)
	if l1, err := strconv.ParseFloat(strings.Fields(rep.loadBefore + " ?")[0], 64); err == nil && l1 >= 1 {
		fmt.Fprintf(w, "**Warning:** the 1-minute load average was %.2f before the run began: other processes were using the CPUs, and the ratios below are likely skewed. Rerun on a quiet machine.\n\n", l1)
	}
	fmt.Fprintln(w, "| workload | clients | requests | errors | req/s | p50 | p99 |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	row(w, "product create via API (`POST /api/catalog/products/`)", rep.create)
	row(w, fmt.Sprintf("product create via pgbench (same transaction, `-M prepared -c %d -j %d`)", o.createClients, o.pgbenchJobs), rep.pgbench)
	ratioRow(w, "ratio API / pgbench", rep.create, rep.pgbench, createTarget)
	row(w, fmt.Sprintf("cached retrieve (`GET /api/catalog/products/{id}/`, %d-byte body)", rep.retrieveBytes), rep.retrieve)
	row(w, fmt.Sprintf("ceiling (`GET /api/_bench/fixed/`, %d-byte body, same middleware)", rep.ceilingBytes), rep.ceiling)
	ratioRow(w, "ratio retrieve / ceiling", rep.retrieve, rep.ceiling, retrieveTarget)
	fmt.Fprintf(w, "\nRatio rows: req/s is the throughput ratio; p50 and p99 are how many times slower the first side is. "+
		"Per round, create: %s; retrieve: %s. pgbench's own tps per whole run (warm-up included): %s.\n",
		ratios(rep.createRatios), ratios(rep.retrieveRatios), strings.Join(rep.pgbenchTPS, ", "))
	fmt.Fprintf(w, "\nRows written by each create side (last round, average sizes): API %s; pgbench %s.\n",
		rep.apiRows, rep.pgbenchRows)

	fmt.Fprintln(w, "\nCPU per request (whole phases, warm-up included) and how busy the machine was:")
	fmt.Fprintln(w, "\n| workload | server process | client side | machine busy |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: |")
	cpuRow(w, "create via API", "load generator", rep.create, true)
	cpuRow(w, "create via pgbench", "pgbench", rep.pgbench, false)
	cpuRow(w, "cached retrieve", "load generator", rep.retrieve, true)
	cpuRow(w, "ceiling", "load generator", rep.ceiling, true)
}

func (s rowStats) String() string {
	return fmt.Sprintf("%d products of %.0f B, %d outbox rows of %.0f B (payload %.0f chars, request id %.0f chars), %d audit entries of %.0f B",
		s.products, s.productBytes, s.outbox, s.outboxBytes, s.payloadBytes, s.requestIDBytes, s.audit, s.auditBytes)
}

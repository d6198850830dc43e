package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/config"
	"github.com/tenantworks/saas/pkg/postgres"
)

// withMetrics makes the RunE of a long-running role (api, push, dev, relay,
// the workers): run serves the process's Prometheus metrics on METRICS_ADDR,
// a listener of their own, for as long as the role runs. Metrics are never
// served on the public port.
func (a *app) withMetrics(run func(context.Context) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		stop := a.serveMetrics(cmd.Context())
		defer stop()
		return run(cmd.Context())
	}
}

// serveMetrics serves GET /metrics on METRICS_ADDR and returns the function
// that stops it. With METRICS_ADDR=off it serves nothing. An address it
// cannot listen on is logged as a warning and the role runs on without
// metrics: several roles on one machine (saas dev aside, the soak and bench
// stacks) all default to 127.0.0.1:9090, and the first one takes it.
func (a *app) serveMetrics(ctx context.Context) (stop func()) {
	addr := a.cfg.MetricsAddr
	if addr == config.MetricsOff {
		return func() {}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		a.log.WarnContext(ctx, "metrics not served: METRICS_ADDR is taken or invalid (set a free address, or off)",
			slog.String("addr", addr), slog.Any("error", err))
		return func() {}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.Handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: min(10*time.Second, a.cfg.HTTPReadTimeout),
		ReadTimeout:       a.cfg.HTTPReadTimeout,
		IdleTimeout:       120 * time.Second,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			a.log.WarnContext(ctx, "metrics listener stopped", slog.Any("error", err))
		}
	}()
	a.log.InfoContext(ctx, "metrics listening", slog.String("addr", ln.Addr().String()))
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}
}

// pipelineCollector reports, at scrape time, the outbox backlog (the ten
// tenants with the most pending writes, and the age of the oldest, over
// every cluster of TENANT_DATABASES) and each worker role's consumer lag.
// It reads each cluster's public.outbox_pending and the consumers' info:
// cheap whatever the number of tenants.
type pipelineCollector struct {
	src atomic.Pointer[pipelineSources]

	backlog, oldest, lag, ackPending *prometheus.Desc
}

type pipelineSources struct {
	db  *postgres.DB
	js  jetstream.JetStream
	log *slog.Logger
}

// pipelineMetrics is registered once per process; each API server points it
// at its own database and stream (tests start several in one process).
var pipelineMetrics = func() *pipelineCollector {
	c := newPipelineCollector()
	prometheus.MustRegister(c)
	return c
}()

// use makes the collector read db and js.
func (p *pipelineCollector) use(db *postgres.DB, js jetstream.JetStream, log *slog.Logger) {
	p.src.Store(&pipelineSources{db: db, js: js, log: log})
}

func newPipelineCollector() *pipelineCollector {
	return &pipelineCollector{
		backlog: prometheus.NewDesc("saas_outbox_backlog", "Pending outbox writes of the tenants with the most (top 10).", []string{"tenant"}, nil),
		oldest:  prometheus.NewDesc("saas_outbox_oldest_pending_seconds", "Age of the oldest pending outbox write, 0 when none.", nil, nil),
		lag:     prometheus.NewDesc("saas_consumer_pending", "Events on the stream not yet delivered to a worker role.", []string{"consumer"}, nil),
		ackPending: prometheus.NewDesc("saas_consumer_ack_pending", "Events delivered to a worker role and not yet acknowledged.",
			[]string{"consumer"}, nil),
	}
}

func (p *pipelineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- p.backlog
	ch <- p.oldest
	ch <- p.lag
	ch <- p.ackPending
}

func (p *pipelineCollector) Collect(ch chan<- prometheus.Metric) {
	src := p.src.Load()
	if src == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Both cover every cluster; one that does not answer leaves the
	// others' figures reported, and is logged.
	top, err := src.db.OutboxBacklog(ctx, 10)
	for _, t := range top {
		ch <- prometheus.MustNewConstMetric(p.backlog, prometheus.GaugeValue, float64(t.Pending), t.Schema)
	}
	age, aerr := src.db.OldestPendingOutbox(ctx)
	ch <- prometheus.MustNewConstMetric(p.oldest, prometheus.GaugeValue, age.Seconds())
	if err := errors.Join(err, aerr); err != nil {
		src.log.WarnContext(ctx, "outbox backlog metrics", slog.Any("error", err))
	}
	for _, name := range []string{events.ConsumerIndexer, events.ConsumerCache, events.ConsumerNotifier} {
		c, err := src.js.Consumer(ctx, events.StreamName, name)
		if err != nil {
			continue // not created yet: no role of that kind has run
		}
		info, err := c.Info(ctx)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(p.lag, prometheus.GaugeValue, float64(info.NumPending), name)
		ch <- prometheus.MustNewConstMetric(p.ackPending, prometheus.GaugeValue, float64(info.NumAckPending), name)
	}
}

package observability

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Process-wide metrics, registered with the default Prometheus registry and
// served at /metrics on METRICS_ADDR, a listener of each long-running role's
// own, never on the public port.
var (
	// CacheRequests counts cache lookups by cache ("product", "list",
	// "user") and result ("hit", "miss", "error").
	CacheRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "saas_cache_requests_total",
		Help: "Cache lookups by cache and result (hit, miss, error).",
	}, []string{"cache", "result"})

	// HTTPRequests counts answered requests by route pattern, method and status.
	HTTPRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "saas_http_requests_total",
		Help: "HTTP requests by route, method and status.",
	}, []string{"route", "method", "status"})

	// HTTPDuration observes request latency by route pattern and method.
	HTTPDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "saas_http_request_duration_seconds",
		Help:    "HTTP request latency by route and method.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route", "method"})
)

var (
	// EventsHandled counts events settled by worker role and outcome
	// ("ok", "retry", "dead_letter").
	EventsHandled = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "saas_events_handled_total",
		Help: "Events settled by consumer and outcome.",
	}, []string{"consumer", "outcome"})

	// HandlerDuration observes how long a worker's handler takes per batch.
	HandlerDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "saas_event_handler_duration_seconds",
		Help:    "Worker handler latency per batch.",
		Buckets: prometheus.DefBuckets,
	}, []string{"consumer"})
)

// RelayPublished counts outbox events published and acknowledged.
var RelayPublished = promauto.NewCounter(prometheus.CounterOpts{
	Name: "saas_relay_published_total",
	Help: "Outbox events published to the stream and acknowledged.",
})

// WebSocket push node.
var (
	// WSConnections is the number of open WebSocket notification
	// connections of this process.
	WSConnections = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "saas_ws_connections",
		Help: "Open WebSocket notification connections.",
	})

	// WSSendQueueDrops counts WebSocket connections cut off because their
	// send queue was full: a client too slow to read its notifications.
	WSSendQueueDrops = promauto.NewCounter(prometheus.CounterOpts{
		Name: "saas_ws_send_queue_drops_total",
		Help: "WebSocket connections closed because their send queue was full (slow clients).",
	})
)

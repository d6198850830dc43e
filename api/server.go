// Package api is the HTTP side: the Echo server, its middleware (host,
// tenant, auth), handlers, and the WebSocket push node. It is the only
// package that imports Echo.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/tenantworks/saas/pkg/accounts"
	"github.com/tenantworks/saas/pkg/auth"
	"github.com/tenantworks/saas/pkg/catalog"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/tenancy"
)

// Pinger is a dependency that can say whether it is reachable.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config configures the server.
type Config struct {
	// PublicDomain is the host that serves health, readiness and the
	// platform admin API. Compared after lower-casing and stripping the port.
	PublicDomain string
	// BodyLimit caps request bodies; default "1M". The products import
	// has a limit of its own, 10 MiB.
	BodyLimit string
	// AccessLog logs one line per request.
	AccessLog bool
	// WebDir is the folder of the built web client, served at / on the
	// public domain and every tenant domain while it holds an index.html;
	// default DefaultWebDir ("web/dist"), relative to the working directory.
	WebDir string
	// SearchTimeout bounds one search in Elasticsearch: an unresponsive
	// cluster gets a 503 then, not a request held for the search client's
	// own minute. Default 5 seconds.
	SearchTimeout time.Duration
	// ReadTimeout is how long Serve gives a client to send a whole
	// request, headers and body, counted from its first byte: a body still
	// arriving then is a 408, headers still arriving a closed connection,
	// so a client trickling bytes cannot hold a connection and a handler
	// for ever. The headers alone get at most 10 seconds. An upgraded
	// WebSocket is not bound by it. Default 30 seconds.
	ReadTimeout time.Duration
	// TrustedProxies are the peers whose X-Forwarded-For is believed: a
	// request from one of them is from the nearest address of that header
	// that is not itself a trusted proxy. Nothing else is trusted, not
	// even loopback or private ranges, so by default (none) the client is
	// the connection's peer and a header cannot choose its rate-limit
	// bucket. IPv4 prefixes match IPv4 peers whether written as IPv4 or
	// IPv4-mapped IPv6.
	TrustedProxies []netip.Prefix
}

// maxHeaderTime bounds the arrival of a request's headers, whatever the
// ReadTimeout.
const maxHeaderTime = 10 * time.Second

// TenantResolver maps a normalized host to its active tenant.
type TenantResolver interface {
	Resolve(ctx context.Context, host string) (*domain.Tenant, error)
}

// UserAuthGetter returns the flags checked on every authenticated request.
type UserAuthGetter interface {
	GetUserAuth(ctx context.Context, schemaName, id string) (postgres.UserAuth, error)
}

// Deps are the server's collaborators.
type Deps struct {
	Log *slog.Logger
	// Checks are the readiness checks by dependency name.
	Checks  map[string]Pinger
	DB      *postgres.DB
	Tenants TenantResolver
	Tokens  *auth.Tokens
	Users   UserAuthGetter
	// Catalog runs the product use cases (reads through the cache).
	Catalog *catalog.Service
	// Accounts runs sign-in and the user use cases.
	Accounts *accounts.Service
	// Tenancy serves the platform admin API's tenants and domains; when nil
	// those routes answer 503.
	Tenancy *tenancy.Manager
	// Push is the WebSocket push node behind GET /ws/notifications/; when
	// nil that route answers 503.
	Push *PushHub
	// Search serves GET /api/catalog/products/search/; when nil that
	// route answers 503.
	Search ProductSearcher
}

// Server is the HTTP API.
type Server struct {
	cfg  Config
	log  *slog.Logger
	deps Deps
	echo *echo.Echo
	// cursors seals page cursors with a key derived from the token secret,
	// so every API node opens every other's.
	cursors *auth.Cursors

	extra []extraRoute // WithRoute

	moves *backgroundMoves // tenant moves started by requests
}

// New builds the server and its routes, and those opts add.
func New(cfg Config, deps Deps, opts ...Option) *Server {
	if cfg.BodyLimit == "" {
		cfg.BodyLimit = "1M"
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	cfg.PublicDomain = strings.ToLower(cfg.PublicDomain)
	s := &Server{cfg: cfg, log: deps.Log, deps: deps, echo: echo.New(), moves: newBackgroundMoves()}
	if deps.Tokens != nil {
		s.cursors = deps.Tokens.Cursors()
	}
	for _, o := range opts {
		o(s)
	}
	e := s.echo
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = clientAddress(cfg.TrustedProxies)
	e.Pre(middleware.RequestIDWithConfig(middleware.RequestIDConfig{TargetHeader: echo.HeaderXRequestID}))
	e.Use(s.observe)
	e.Use(middleware.Recover())
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: cfg.BodyLimit, Skipper: skipGlobalBodyLimit}))
	s.routes()
	return s
}

// clientAddress returns how c.RealIP() finds the client: the connection's
// peer, or X-Forwarded-For when the peer is one of trusted.
func clientAddress(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	// Echo trusts loopback, link-local and private addresses unless told
	// not to: anyone on the same network could then forge the header.
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		addr, bits := p.Addr(), p.Bits()
		if addr.Is4In6() {
			addr, bits = addr.Unmap(), max(bits-96, 0)
		}
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(bits, addr.BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// Handler returns the server as an http.Handler, for tests and for Run.
func (s *Server) Handler() http.Handler { return s.echo }

func (s *Server) routes() {
	pub := s.echo.Group("", s.publicOnly)
	pub.GET("/health", s.health)
	pub.GET("/health/", s.health)
	pub.GET("/ready", s.ready)
	pub.GET("/ready/", s.ready)
	// No /metrics here: metrics are served on a listener of their own
	// (METRICS_ADDR, see cmd/saas), never on the public port.

	ten := s.echo.Group("/api", s.tenantOnly)
	ten.POST("/auth/token", s.issueToken)
	ten.POST("/auth/token/", s.issueToken)

	user := ten.Group("", s.authenticated)
	staff := user.Group("", staffOnly)
	user.POST("/auth/password", s.changePassword)
	user.POST("/auth/password/", s.changePassword)
	user.GET("/catalog/products/", s.listProducts)
	user.GET("/catalog/products/search/", s.searchProducts) // a static segment: never taken for an :id
	// Not in the user group: the read-ahead must come before the user check.
	ten.GET("/catalog/products/:id/", s.getProduct, readProductAhead, s.authenticated)
	staff.POST("/catalog/products/", s.createProduct)
	staff.PUT("/catalog/products/:id/", s.replaceProduct)
	staff.PATCH("/catalog/products/:id/", s.patchProduct)
	staff.DELETE("/catalog/products/:id/", s.deleteProduct)

	for _, r := range s.extra {
		s.echo.Add(r.method, r.path, echo.WrapHandler(r.h), s.tenantOnly, s.authenticated)
	}

	s.notificationRoutes(user)
	s.adminRoutes(staff)
	s.platformRoutes()
	s.echo.Group("/ws", s.tenantOnly, s.authenticated).GET("/notifications/", s.pushNotifications)
	s.echo.GET("/api/openapi.json", s.openAPI) // every host: public and tenant domains
	s.webRoutes()
}

// hostOf returns the request's host, lower-cased, without port or trailing dot.
func hostOf(r *http.Request) string {
	h := r.Host
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// publicOnly hides a route from every host but the public domain.
func (s *Server) publicOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if hostOf(c.Request()) != s.cfg.PublicDomain {
			return echo.ErrNotFound
		}
		return next(c)
	}
}

func (s *Server) health(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// ready checks every dependency in parallel, each with a short deadline.
func (s *Server) ready(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(s.deps.Checks))
	for name, p := range s.deps.Checks {
		go func() { results <- result{name, p.Ping(ctx)} }()
	}
	out := readiness{Status: "ok", Checks: map[string]string{}}
	for range s.deps.Checks {
		r := <-results
		out.Checks[r.name] = "ok"
		if r.err != nil {
			out.Status = "unavailable"
			out.Checks[r.name] = "unavailable"
			s.log.WarnContext(ctx, "readiness check failed", slog.String("dependency", r.name), slog.Any("error", r.err))
		}
	}
	if out.Status != "ok" {
		return c.JSON(http.StatusServiceUnavailable, out)
	}
	return c.JSON(http.StatusOK, out)
}

// Close cancels the tenant moves requests started and waits until each
// is undone and recorded failed (or done, past its switch). Serve calls
// it as it returns.
func (s *Server) Close() { s.moves.close() }

// Serve serves on ln until ctx is done, then shuts down gracefully, giving
// in-flight requests up to 10 seconds, and closes (see Close). Each
// request must arrive within Config.ReadTimeout.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler: s.echo,
		// net/http sets the connection's read deadline from these, and
		// clears it when a handler hijacks the connection: a WebSocket
		// outlives them.
		ReadHeaderTimeout: min(maxHeaderTime, s.cfg.ReadTimeout),
		ReadTimeout:       s.cfg.ReadTimeout,
		IdleTimeout:       120 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	defer s.Close()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("api: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("api: serve: %w", err)
	}
	return nil
}

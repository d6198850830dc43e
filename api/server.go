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
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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
	// PublicDomain is the host that serves health, metrics and the platform
	// admin API. Compared after lower-casing and stripping the port.
	PublicDomain string
	// BodyLimit caps request bodies; default "1M".
	BodyLimit string
	// AccessLog logs one line per request.
	AccessLog bool
	// BenchCeiling registers GET /api/_bench/fixed/, a fixed product-sized
	// body behind the tenant and authentication middleware: the ceiling of
	// the cached-retrieve benchmark (bench/api). Never set it in production.
	BenchCeiling bool
	// WebDir is the folder of the built web client, served at / on the
	// public domain and every tenant domain while it holds an index.html;
	// default DefaultWebDir ("web/dist"), relative to the working directory.
	WebDir string
	// SearchTimeout bounds one search in Elasticsearch: an unresponsive
	// cluster gets a 503 then, not a request held for the search client's
	// own minute. Default 5 seconds.
	SearchTimeout time.Duration
}

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
}

// New builds the server and its routes.
func New(cfg Config, deps Deps) *Server {
	if cfg.BodyLimit == "" {
		cfg.BodyLimit = "1M"
	}
	cfg.PublicDomain = strings.ToLower(cfg.PublicDomain)
	s := &Server{cfg: cfg, log: deps.Log, deps: deps, echo: echo.New()}
	e := s.echo
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	// Addresses come from the connection only: X-Forwarded-For is not
	// trusted, so a client cannot pick its own rate-limit bucket.
	e.IPExtractor = echo.ExtractIPDirect()
	e.Pre(middleware.RequestIDWithConfig(middleware.RequestIDConfig{TargetHeader: echo.HeaderXRequestID}))
	e.Use(s.observe)
	e.Use(middleware.Recover())
	e.Use(middleware.BodyLimit(cfg.BodyLimit))
	s.routes()
	return s
}

// Handler returns the server as an http.Handler, for tests and for Run.
func (s *Server) Handler() http.Handler { return s.echo }

func (s *Server) routes() {
	pub := s.echo.Group("", s.publicOnly)
	pub.GET("/health", s.health)
	pub.GET("/health/", s.health)
	pub.GET("/ready", s.ready)
	pub.GET("/ready/", s.ready)
	pub.GET("/metrics", echo.WrapHandler(promhttp.Handler()))

	ten := s.echo.Group("/api", s.tenantOnly)
	ten.POST("/auth/token", s.issueToken)
	ten.POST("/auth/token/", s.issueToken)

	user := ten.Group("", s.authenticated)
	staff := user.Group("", staffOnly)
	user.POST("/auth/password", s.changePassword)
	user.POST("/auth/password/", s.changePassword)
	user.GET("/catalog/products/", s.listProducts)
	user.GET("/catalog/products/search/", s.searchProducts) // a static segment: never taken for an :id
	user.GET("/catalog/products/:id/", s.getProduct)
	staff.POST("/catalog/products/", s.createProduct)
	staff.PUT("/catalog/products/:id/", s.replaceProduct)
	staff.PATCH("/catalog/products/:id/", s.patchProduct)
	staff.DELETE("/catalog/products/:id/", s.deleteProduct)

	if s.cfg.BenchCeiling {
		fixed := []byte(`{"id":"01970000-0000-7000-8000-000000000000","sku":"BENCH-FIXED-0001","name":"Benchmark product","description":"A fixed product-shaped body, served by the cached-retrieve benchmark's ceiling route.","price":"19.99","currency":"EUR","stock":100,"version":1,"created_at":"2025-01-01T00:00:00.123456Z","updated_at":"2025-01-01T00:00:00.123456Z"}` + "\n")
		user.GET("/_bench/fixed/", func(c echo.Context) error { return c.JSONBlob(http.StatusOK, fixed) })
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

// Serve serves on ln until ctx is done, then shuts down gracefully, giving
// in-flight requests up to 10 seconds.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
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

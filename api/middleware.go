package api

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/auth"
	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/observability"
	"github.com/tenantworks/saas/pkg/postgres"
)

// principal is the authenticated caller of a tenant route.
type principal struct {
	UserID string
	Staff  bool
	// Generation is the token's generation (auth.Subject.Generation).
	Generation int64
}

type principalKey struct{}

func principalOf(c echo.Context) principal {
	p, _ := c.Request().Context().Value(principalKey{}).(principal)
	return p
}

func tenantOf(c echo.Context) *domain.Tenant {
	return domain.TenantFromContext(c.Request().Context())
}

func withContext(c echo.Context, ctx context.Context) {
	c.SetRequest(c.Request().WithContext(ctx))
}

// observe logs every request once and records its metrics. It runs outside
// the error handler's reach, so it reads the status after the handler's
// error has been turned into a response.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		status := c.Response().Status
		d := time.Since(start)
		observability.HTTPRequests.WithLabelValues(route, c.Request().Method, strconv.Itoa(status)).Inc()
		observability.HTTPDuration.WithLabelValues(route, c.Request().Method).Observe(d.Seconds())
		if s.cfg.AccessLog {
			attrs := []slog.Attr{
				slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
				slog.String("method", c.Request().Method),
				slog.String("host", c.Request().Host),
				slog.String("path", c.Request().URL.Path),
				slog.Int("status", status),
				slog.Duration("latency", d),
			}
			if t := tenantOf(c); t != nil {
				attrs = append(attrs, slog.String("tenant", t.Schema))
			}
			s.log.LogAttrs(c.Request().Context(), slog.LevelInfo, "request", attrs...)
		}
		return nil
	}
}

// tenantOnly resolves the tenant from the Host header and hides the route
// from the public domain and from unknown hosts (404).
func (s *Server) tenantOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		host := hostOf(c.Request())
		if host == s.cfg.PublicDomain {
			return echo.ErrNotFound
		}
		t, err := s.deps.Tenants.Resolve(c.Request().Context(), host)
		if err != nil {
			return err
		}
		if t.State == domain.TenantSuspended {
			return errTenantSuspended
		}
		withContext(c, domain.NewTenantContext(c.Request().Context(), t))
		return next(c)
	}
}

var errTenantSuspended = domain.Errorf(domain.ESUSPENDED, "this tenant is suspended")

var errNoToken = &domain.Error{Code: domain.EUNAUTHORIZED, Message: "authentication required"}

// bearer returns the token of the request: the Authorization header, or for
// WebSocket upgrades (which browsers cannot give headers) the subprotocol
// "bearer.<token>" or the pair "bearer", "<token>", else the token query
// parameter.
func bearer(r *http.Request) string {
	if h := r.Header.Get(echo.HeaderAuthorization); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	if isWebSocketUpgrade(r) {
		if tok := subprotocolToken(r); tok != "" {
			return tok
		}
		return r.URL.Query().Get("token")
	}
	return ""
}

// authenticated requires a valid token of this tenant whose user is still
// active and was not revoked since (a password change or reset moved the
// user past the token's generation); the user's current staff flag (not the
// token's) is what counts.
func (s *Server) authenticated(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		tok := bearer(c.Request())
		if tok == "" {
			return errNoToken
		}
		return s.authenticate(c, tok, next)
	}
}

func (s *Server) authenticate(c echo.Context, tok string, next echo.HandlerFunc) error {
	t := tenantOf(c)
	claims, err := s.deps.Tokens.Verify(tok, t.Schema)
	if err != nil {
		return err
	}
	ua, err := s.deps.Users.GetUserAuth(c.Request().Context(), t.Schema, claims.Subject)
	if domain.ErrorCode(err) == domain.ENOTFOUND || (err == nil && refused(claims, ua)) {
		return auth.ErrBadToken
	}
	if err != nil {
		return err
	}
	ctx := context.WithValue(c.Request().Context(), principalKey{}, principal{UserID: claims.Subject, Staff: ua.Staff, Generation: claims.Generation})
	withContext(c, withCause(c, ctx, audit.Actor{Kind: audit.KindUser, ID: claims.Subject, Email: claims.Email}))
	return next(c)
}

// readProductAhead has the user check of a product retrieve read the
// product's cache entry in the same Redis round trip
// (cache.WithProductReadAhead). A non-canonical id reads nothing ahead:
// the catalog answers it 404 without reading.
func readProductAhead(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if id := c.Param("id"); domain.CanonicalID(id) {
			withContext(c, cache.WithProductReadAhead(c.Request().Context(), tenantOf(c).Schema, id))
		}
		return next(c)
	}
}

// refused reports whether a verified token must be refused all the same:
// its account is inactive, or its generation is older than the account's
// (a password change or reset since revoked it). A newer generation than
// the one read means the read was stale (a cache entry the change did not
// reach); only a token issued after that change can carry it, so it passes.
func refused(claims auth.Claims, ua postgres.UserAuth) bool {
	return !ua.Active || claims.Generation < ua.Generation
}

// withCause returns ctx carrying the audit cause of the request: actor and
// the request id the server set (or took from the client) in X-Request-ID.
func withCause(c echo.Context, ctx context.Context, a audit.Actor) context.Context {
	return audit.WithCause(ctx, audit.Cause{Actor: a, RequestID: c.Response().Header().Get(echo.HeaderXRequestID)})
}

var errStaffOnly = &domain.Error{Code: domain.EFORBIDDEN, Message: "staff only"}

// staffOnly lets only staff users through (403 otherwise).
func staffOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !principalOf(c).Staff {
			return errStaffOnly
		}
		return next(c)
	}
}

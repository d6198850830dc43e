package api

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tenantworks/saas/pkg/accounts"
	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/auth"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/tenancy"
)

// platformRoutes registers the platform admin API. It is served on the
// public domain only: on any other host every one of its paths is a 404.
func (s *Server) platformRoutes() {
	p := s.echo.Group("/api/platform", s.publicOnly)
	p.POST("/auth/token", s.issuePlatformToken)
	p.POST("/auth/token/", s.issuePlatformToken)

	p.GET("/audit/", s.listPlatformAudit, s.superuserOnly)

	su := p.Group("", s.superuserOnly, s.tenancyConfigured)
	su.GET("/tenants/", s.platformListTenants)
	su.POST("/tenants/", s.platformCreateTenant)
	su.GET("/tenants/:schema/", s.platformGetTenant)
	su.PATCH("/tenants/:schema/", s.platformPatchTenant)
	su.DELETE("/tenants/:schema/", s.platformDeleteTenant)
	su.POST("/tenants/:schema/suspend", s.platformSuspendTenant)
	su.POST("/tenants/:schema/resume", s.platformResumeTenant)
	su.POST("/tenants/:schema/move", s.platformMoveTenant)
	su.GET("/tenants/:schema/move", s.platformGetMove)
	su.POST("/tenants/:schema/domains/", s.platformAddDomain)
	su.PATCH("/tenants/:schema/domains/:domain/", s.platformPatchDomain)
	su.DELETE("/tenants/:schema/domains/:domain/", s.platformRemoveDomain)

	s.superuserRoutes(p.Group("", s.superuserOnly))
}

type superuserKey struct{}

// superuserOnly requires a platform token whose superuser is still active
// and was not revoked by a password reset since; both are read from
// public.superusers on every request (one primary key lookup), so a
// deactivated superuser or a revoked token is locked out at once. A tenant token
// never passes: its audience is its tenant, not the platform.
func (s *Server) superuserOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		tok := bearer(c.Request())
		if tok == "" {
			return errNoToken
		}
		claims, err := s.deps.Tokens.Verify(tok, auth.PlatformAudience)
		if err != nil {
			return err
		}
		ua, err := s.deps.DB.SuperuserAuth(c.Request().Context(), claims.Subject)
		if domain.ErrorCode(err) == domain.ENOTFOUND || (err == nil && refused(claims, ua)) {
			return auth.ErrBadToken
		}
		if err != nil {
			return err
		}
		ctx := context.WithValue(c.Request().Context(), superuserKey{}, claims.Subject)
		withContext(c, withCause(c, ctx, audit.Actor{Kind: audit.KindSuperuser, ID: claims.Subject, Email: claims.Email}))
		return next(c)
	}
}

// tenancyConfigured answers 503 when the server was built without a
// tenancy manager, rather than failing on a nil one.
func (s *Server) tenancyConfigured(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.deps.Tenancy == nil {
			return domain.Errorf(domain.EUNAVAILABLE, "tenant administration is not configured on this server")
		}
		return next(c)
	}
}

// issuePlatformToken exchanges an active superuser's email and password for
// a platform token. Sign-in attempts are rate limited like tenant ones.
func (s *Server) issuePlatformToken(c echo.Context) error {
	return s.signIn(c, accounts.Platform, auth.PlatformAudience)
}

// tenantResponse is a tenant as the platform admin API shows it.
type tenantResponse struct {
	Schema        string           `json:"schema"`
	Name          string           `json:"name"`
	State         string           `json:"state"`
	SchemaVersion int64            `json:"schema_version"`
	Cluster       string           `json:"cluster"`
	CreatedAt     time.Time        `json:"created_at"`
	UpdatedAt     time.Time        `json:"updated_at"`
	Domains       []domainResponse `json:"domains"`
}

type domainResponse struct {
	Domain    string `json:"domain"`
	IsPrimary bool   `json:"is_primary"`
}

func toTenantResponse(t domain.Tenant) tenantResponse {
	out := tenantResponse{Schema: t.Schema, Name: t.Name, State: t.State, SchemaVersion: t.SchemaVersion, Cluster: t.Cluster,
		CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC(), Domains: make([]domainResponse, len(t.Domains))}
	for i, d := range t.Domains {
		out.Domains[i] = toDomainResponse(d)
	}
	return out
}

func toDomainResponse(d domain.Domain) domainResponse {
	return domainResponse{Domain: d.Domain, IsPrimary: d.IsPrimary}
}

type createTenantRequest struct {
	Schema string `json:"schema"`
	Name   string `json:"name"`
	Domain string `json:"domain"`
	// Cluster is optional: "" or absent picks the cluster with the fewest
	// tenants.
	Cluster string `json:"cluster"`
}

type patchTenantRequest struct {
	Name *string `json:"name"`
}

type addDomainRequest struct {
	Domain    string `json:"domain"`
	IsPrimary bool   `json:"is_primary"`
}

type patchDomainRequest struct {
	IsPrimary *bool `json:"is_primary"`
}

// checkPlatformNames refuses the public domain as a tenant's domain: its
// host is never routed to a tenant. (The platform token audience starts with
// "_", so no schema name can collide with it.)
func (s *Server) checkPlatformNames(_, host string) error {
	if host != "" && host == s.cfg.PublicDomain {
		return &domain.Error{Code: domain.ECONFLICT, Message: "domain already in use", Details: map[string]string{"domain": "is the platform's public domain"}}
	}
	return nil
}

// platformListTenants pages through tenants: ?q= (schema, name or domain),
// ?state=, ?ordering=, ?limit=, ?cursor=.
func (s *Server) platformListTenants(c echo.Context) error {
	limit, cursor, err := s.pageParams(c)
	if err != nil {
		return err
	}
	p := tenancy.ListParams{Q: c.QueryParam("q"), State: c.QueryParam("state"), Ordering: c.QueryParam("ordering"), Limit: limit, Cursor: cursor}
	ts, next, err := s.deps.Tenancy.Page(c.Request().Context(), p)
	if err != nil {
		return err
	}
	keep := url.Values{}
	for _, k := range []string{"q", "state", "ordering"} {
		if v := c.QueryParam(k); v != "" {
			keep.Set(k, v)
		}
	}
	return writePage(s, c, ts, toTenantResponse, keep, limit, next)
}

// platformCreateTenant provisions a tenant, all or nothing, on the cluster
// the request names or the one with the fewest tenants (see
// tenancy.Manager.Create); it answers once the tenant is active.
func (s *Server) platformCreateTenant(c echo.Context) error {
	var req createTenantRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p := tenancy.CreateParams{Schema: req.Schema, Name: req.Name, Domain: req.Domain, Cluster: req.Cluster}
	if err := p.Validate(); err != nil {
		return err
	}
	if err := s.checkPlatformNames(p.Schema, p.Domain); err != nil {
		return err
	}
	t, err := s.deps.Tenancy.Create(c.Request().Context(), p)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", c.Request().URL.Path+t.Schema+"/")
	return c.JSON(http.StatusCreated, toTenantResponse(t))
}

func (s *Server) platformGetTenant(c echo.Context) error {
	t, err := s.deps.Tenancy.Get(c.Request().Context(), c.Param("schema"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toTenantResponse(t))
}

// platformPatchTenant changes a tenant's display name.
func (s *Server) platformPatchTenant(c echo.Context) error {
	var req patchTenantRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	var (
		t   domain.Tenant
		err error
	)
	if req.Name == nil {
		t, err = s.deps.Tenancy.Get(ctx, c.Param("schema"))
	} else {
		t, err = s.deps.Tenancy.Rename(ctx, c.Param("schema"), *req.Name)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toTenantResponse(t))
}

// platformSuspendTenant suspends a tenant (see tenancy.Manager.Suspend).
func (s *Server) platformSuspendTenant(c echo.Context) error {
	t, err := s.deps.Tenancy.Suspend(c.Request().Context(), c.Param("schema"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toTenantResponse(t))
}

// platformResumeTenant serves a suspended tenant again.
func (s *Server) platformResumeTenant(c echo.Context) error {
	t, err := s.deps.Tenancy.Resume(c.Request().Context(), c.Param("schema"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toTenantResponse(t))
}

// platformDeleteTenant deletes a tenant and everything it owns. Deleting a
// tenant whose earlier delete failed half way finishes it.
func (s *Server) platformDeleteTenant(c echo.Context) error {
	if err := s.deps.Tenancy.Delete(c.Request().Context(), c.Param("schema")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// platformAddDomain routes one more host to a tenant; with is_primary the
// primary flag moves to it.
func (s *Server) platformAddDomain(c echo.Context) error {
	var req addDomainRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	host, err := domain.NormalizeDomain(req.Domain)
	if err != nil {
		return err
	}
	if err := s.checkPlatformNames("", host); err != nil {
		return err
	}
	d, err := s.deps.Tenancy.AddDomain(c.Request().Context(), c.Param("schema"), host, req.IsPrimary)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", c.Request().URL.Path+d.Domain+"/")
	return c.JSON(http.StatusCreated, toDomainResponse(d))
}

// platformPatchDomain makes a domain the tenant's primary one. The flag
// can only be moved, never cleared: is_primary false is a 422.
func (s *Server) platformPatchDomain(c echo.Context) error {
	var req patchDomainRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.IsPrimary == nil || !*req.IsPrimary {
		return &domain.Error{Code: domain.EINVALID, Message: "invalid domain change",
			Details: map[string]string{"is_primary": "must be true: to move the primary flag, set it on the new primary domain"}}
	}
	d, err := s.deps.Tenancy.SetPrimaryDomain(c.Request().Context(), c.Param("schema"), c.Param("domain"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toDomainResponse(d))
}

// platformRemoveDomain stops routing a host to a tenant; the primary domain
// cannot be removed (409).
func (s *Server) platformRemoveDomain(c echo.Context) error {
	if err := s.deps.Tenancy.RemoveDomain(c.Request().Context(), c.Param("schema"), c.Param("domain")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

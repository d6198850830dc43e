package api

import (
	"context"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/postgres"
)

// auditFilters are the query parameters of both audit lists, each kept in
// the next page's URL.
var auditFilters = []string{"actor", "action", "target_type", "target_id"}

// listTenantAudit pages through this tenant's audit trail, newest first:
// GET /api/admin/audit/ (staff).
func (s *Server) listTenantAudit(c echo.Context) error {
	schemaName := tenantOf(c).Schema
	return s.listAudit(c, func(ctx context.Context, f postgres.AuditFilter) ([]audit.Entry, string, error) {
		return s.deps.DB.ListTenantAudit(ctx, schemaName, f)
	})
}

// listPlatformAudit pages through the platform's audit trail (tenants,
// domains, superusers): GET /api/platform/audit/ (superusers).
func (s *Server) listPlatformAudit(c echo.Context) error {
	return s.listAudit(c, s.deps.DB.ListPlatformAudit)
}

func (s *Server) listAudit(c echo.Context, list func(context.Context, postgres.AuditFilter) ([]audit.Entry, string, error)) error {
	limit, cursor, err := s.pageParams(c)
	if err != nil {
		return err
	}
	f := postgres.AuditFilter{Actor: c.QueryParam("actor"), Action: c.QueryParam("action"),
		TargetType: c.QueryParam("target_type"), TargetID: c.QueryParam("target_id"), Limit: limit, Cursor: cursor}
	entries, next, err := list(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := listResponse[audit.Entry]{Results: entries}
	if out.Results == nil {
		out.Results = []audit.Entry{}
	}
	for i := range out.Results {
		if out.Results[i].Changes == nil {
			out.Results[i].Changes = audit.Changes{}
		}
	}
	keep := url.Values{}
	for _, k := range auditFilters {
		if v := c.QueryParam(k); v != "" {
			keep.Set(k, v)
		}
	}
	out.Next = s.nextURL(c, keep, limit, next)
	return c.JSON(http.StatusOK, out)
}

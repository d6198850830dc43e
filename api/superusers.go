package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tenantworks/saas/pkg/domain"
)

// superuserRoutes registers the platform's superuser administration on a
// group that only active superusers pass.
func (s *Server) superuserRoutes(su *echo.Group) {
	su.GET("/superusers/", s.platformListSuperusers)
	su.PATCH("/superusers/:id/", s.platformPatchSuperuser)
	su.POST("/superusers/:id/password/", s.platformSetSuperuserPassword)
}

// superuserResponse is a superuser as the platform admin API shows it;
// never the password hash.
type superuserResponse struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	IsActive  bool      `json:"is_active"`
	CreatedAt time.Time `json:"created_at"`
}

func toSuperuserResponse(su domain.Superuser) superuserResponse {
	return superuserResponse{ID: su.ID, Email: su.Email, IsActive: su.IsActive, CreatedAt: su.CreatedAt.UTC()}
}

type patchSuperuserRequest struct {
	IsActive *bool `json:"is_active"`
}

// platformListSuperusers pages through superusers by email: ?limit=, ?cursor=.
func (s *Server) platformListSuperusers(c echo.Context) error {
	limit, cursor, err := s.pageParams(c)
	if err != nil {
		return err
	}
	sus, next, err := s.deps.Accounts.ListSuperusers(c.Request().Context(), limit, cursor)
	if err != nil {
		return err
	}
	return writePage(s, c, sus, toSuperuserResponse, nil, limit, next)
}

// platformPatchSuperuser activates or deactivates a superuser; a
// deactivated superuser's tokens stop at once, and the last active one
// stays (409).
func (s *Server) platformPatchSuperuser(c echo.Context) error {
	var req patchSuperuserRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.IsActive == nil {
		return &domain.Error{Code: domain.EINVALID, Message: "invalid superuser change", Details: map[string]string{"is_active": "is required"}}
	}
	su, err := s.deps.Accounts.SetSuperuserActive(c.Request().Context(), c.Param("id"), *req.IsActive)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toSuperuserResponse(su))
}

// platformSetSuperuserPassword resets a superuser's password; every token
// they were issued before stops working.
func (s *Server) platformSetSuperuserPassword(c echo.Context) error {
	var req passwordRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if _, err := s.deps.Accounts.SetSuperuserPassword(c.Request().Context(), c.Param("id"), req.Password); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

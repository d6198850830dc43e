package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tenantworks/saas/pkg/accounts"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
)

// adminRoutes registers the tenant admin API on the staff group.
func (s *Server) adminRoutes(staff *echo.Group) {
	staff.GET("/admin/users/", s.adminListUsers)
	staff.POST("/admin/users/", s.adminCreateUser)
	staff.GET("/admin/users/:id/", s.adminGetUser)
	staff.PATCH("/admin/users/:id/", s.adminPatchUser)
	staff.POST("/admin/users/:id/password/", s.adminSetPassword)
	staff.GET("/admin/products/", s.adminListProducts)
	staff.GET("/admin/notifications/", s.adminListNotifications)
	staff.GET("/admin/audit/", s.listTenantAudit)
}

// userResponse is a user as tenant staff see it; never the password hash.
type userResponse struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	IsStaff   bool      `json:"is_staff"`
	IsActive  bool      `json:"is_active"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func toUserResponse(u domain.User) userResponse {
	return userResponse{ID: u.ID, Email: u.Email, IsStaff: u.IsStaff, IsActive: u.IsActive,
		CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC()}
}

type createUserRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	IsStaff  bool   `json:"is_staff"`
}

// patchUserRequest changes a user's flags; a missing field is left alone.
type patchUserRequest struct {
	IsActive *bool `json:"is_active"`
	IsStaff  *bool `json:"is_staff"`
}

type passwordRequest struct {
	Password string `json:"password"`
}

func (s *Server) adminListUsers(c echo.Context) error {
	limit, err := pageLimit(c)
	if err != nil {
		return err
	}
	cursor, err := s.cursorParam(c)
	if err != nil {
		return err
	}
	us, next, err := s.deps.DB.ListUsers(c.Request().Context(), tenantOf(c).Schema, postgres.UserListParams{Limit: limit, Cursor: cursor})
	if err != nil {
		return err
	}
	out := listResponse[userResponse]{Results: make([]userResponse, len(us))}
	for i, u := range us {
		out.Results[i] = toUserResponse(u)
	}
	out.Next = s.nextURL(c, nil, limit, next)
	return c.JSON(http.StatusOK, out)
}

func (s *Server) adminCreateUser(c echo.Context) error {
	var req createUserRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	u, err := s.deps.Accounts.CreateUser(c.Request().Context(), tenantOf(c).Schema,
		accounts.NewUser{Email: req.Email, Password: req.Password, IsStaff: req.IsStaff})
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", c.Request().URL.Path+u.ID+"/")
	return c.JSON(http.StatusCreated, toUserResponse(u))
}

func (s *Server) adminGetUser(c echo.Context) error {
	u, err := s.deps.Accounts.GetUser(c.Request().Context(), tenantOf(c).Schema, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toUserResponse(u))
}

// adminPatchUser deactivates or reactivates a user and grants or revokes
// staff (see accounts.Service.UpdateUser: nobody locks themselves out).
func (s *Server) adminPatchUser(c echo.Context) error {
	var req patchUserRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	u, err := s.deps.Accounts.UpdateUser(c.Request().Context(), tenantOf(c).Schema, principalOf(c).UserID, c.Param("id"),
		accounts.UserChange{IsActive: req.IsActive, IsStaff: req.IsStaff})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toUserResponse(u))
}

// adminSetPassword replaces a user's password; every token the user was
// issued before stops working.
func (s *Server) adminSetPassword(c echo.Context) error {
	var req passwordRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.deps.Accounts.SetPassword(c.Request().Context(), tenantOf(c).Schema, c.Param("id"), req.Password); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// adminListProducts lists products straight from the database, bypassing
// the cache, in the catalog list's shape and parameters.
func (s *Server) adminListProducts(c echo.Context) error {
	return s.listProductsFrom(c, s.deps.DB.ListProducts) // straight from the database, uncached
}

package api

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tenantworks/saas/pkg/accounts"
	"github.com/tenantworks/saas/pkg/domain"
)

// adminRoutes registers the tenant admin API on the staff group.
func (s *Server) adminRoutes(staff *echo.Group) {
	staff.GET("/admin/users/", s.adminListUsers)
	staff.POST("/admin/users/", s.adminCreateUser)
	staff.GET("/admin/users/:id/", s.adminGetUser)
	staff.PATCH("/admin/users/:id/", s.adminPatchUser)
	staff.DELETE("/admin/users/:id/", s.adminDeleteUser)
	staff.POST("/admin/users/:id/password/", s.adminSetPassword)
	staff.POST("/admin/users/bulk", s.adminBulkUsers)
	staff.GET("/admin/products/", s.adminListProducts)
	staff.POST("/admin/products/bulk-delete", s.adminBulkDeleteProducts)
	s.productCSVRoutes(staff)
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

// patchUserRequest changes a user's email or flags; a missing field is
// left alone.
type patchUserRequest struct {
	Email    *string `json:"email"`
	IsActive *bool   `json:"is_active"`
	IsStaff  *bool   `json:"is_staff"`
}

// bulkUsersRequest activates or deactivates many users at once.
type bulkUsersRequest struct {
	IDs      []string `json:"ids"`
	IsActive *bool    `json:"is_active"`
}

type bulkUsersResponse struct {
	Updated  int      `json:"updated"`
	NotFound []string `json:"not_found"`
}

// bulkDeleteRequest deletes many products at once.
type bulkDeleteRequest struct {
	IDs []string `json:"ids"`
}

type bulkDeleteResponse struct {
	Deleted  int      `json:"deleted"`
	NotFound []string `json:"not_found"`
}

type passwordRequest struct {
	Password string `json:"password"`
}

// adminListUsers pages through the tenant's users by email: ?q= (part of
// the email, any case), ?is_staff=, ?is_active=, ?limit=, ?cursor=.
func (s *Server) adminListUsers(c echo.Context) error {
	limit, cursor, err := s.pageParams(c)
	if err != nil {
		return err
	}
	q := accounts.UserQuery{Limit: limit, Cursor: cursor, Q: c.QueryParam("q")}
	keep := url.Values{}
	if q.Q != "" {
		keep.Set("q", q.Q)
	}
	for name, dst := range map[string]**bool{"is_staff": &q.IsStaff, "is_active": &q.IsActive} {
		if c.QueryParam(name) == "" {
			continue
		}
		b, err := boolParam(c, name)
		if err != nil {
			return err
		}
		*dst = &b
		keep.Set(name, strconv.FormatBool(b))
	}
	us, next, err := s.deps.Accounts.ListUsers(c.Request().Context(), tenantOf(c).Schema, q)
	if err != nil {
		return err
	}
	return writePage(s, c, us, toUserResponse, keep, limit, next)
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

// adminPatchUser changes a user's email, deactivates or reactivates them
// and grants or revokes staff (see accounts.Service.UpdateUser: nobody
// locks themselves out).
func (s *Server) adminPatchUser(c echo.Context) error {
	var req patchUserRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	u, err := s.deps.Accounts.UpdateUser(c.Request().Context(), tenantOf(c).Schema, principalOf(c).UserID, c.Param("id"),
		accounts.UserChange{Email: req.Email, IsActive: req.IsActive, IsStaff: req.IsStaff})
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

// adminDeleteUser deletes a user: their tokens stop working at once, their
// notifications go, the audit entries naming them stay. Staff cannot
// delete themselves (409).
func (s *Server) adminDeleteUser(c echo.Context) error {
	if err := s.deps.Accounts.DeleteUser(c.Request().Context(), tenantOf(c).Schema, principalOf(c).UserID, c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

var errIsActiveRequired = &domain.Error{Code: domain.EINVALID, Message: "invalid bulk change", Details: map[string]string{"is_active": "is required"}}

// adminBulkUsers activates or deactivates up to 500 users in one
// transaction; ids of no user of this tenant are reported in not_found.
// The caller cannot deactivate themselves (409, nothing changed).
func (s *Server) adminBulkUsers(c echo.Context) error {
	var req bulkUsersRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.IsActive == nil {
		return errIsActiveRequired
	}
	res, err := s.deps.Accounts.SetUsersActive(c.Request().Context(), tenantOf(c).Schema, principalOf(c).UserID, req.IDs, *req.IsActive)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, bulkUsersResponse{Updated: res.Changed, NotFound: nonNil(res.NotFound)})
}

// adminBulkDeleteProducts deletes up to 500 products in one transaction,
// one product.deleted event each; ids of no product are reported in
// not_found.
func (s *Server) adminBulkDeleteProducts(c echo.Context) error {
	var req bulkDeleteRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	res, err := s.deps.Catalog.BulkDelete(c.Request().Context(), tenantOf(c).Schema, req.IDs, meta(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, bulkDeleteResponse{Deleted: res.Deleted, NotFound: nonNil(res.NotFound)})
}

// nonNil makes an empty list a JSON [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

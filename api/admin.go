package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tenantworks/saas/pkg/auth"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
)

// UserFlags records a user's flags in the auth cache once a change to them
// has been committed, overwriting whatever is cached.
type UserFlags interface {
	Store(ctx context.Context, schemaName, id string, ua postgres.UserAuth) error
}

// adminRoutes registers the tenant admin API on the staff group.
func (s *Server) adminRoutes(staff *echo.Group) {
	staff.GET("/admin/users/", s.adminListUsers)
	staff.POST("/admin/users/", s.adminCreateUser)
	staff.GET("/admin/users/:id/", s.adminGetUser)
	staff.PATCH("/admin/users/:id/", s.adminPatchUser)
	staff.POST("/admin/users/:id/password/", s.adminSetPassword)
	staff.GET("/admin/products/", s.adminListProducts)
	staff.GET("/admin/notifications/", s.adminListNotifications)
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
	us, next, err := s.deps.DB.ListUsers(c.Request().Context(), tenantOf(c).Schema, postgres.UserListParams{Limit: limit, Cursor: c.QueryParam("cursor")})
	if err != nil {
		return err
	}
	out := listResponse[userResponse]{Results: make([]userResponse, len(us))}
	for i, u := range us {
		out.Results[i] = toUserResponse(u)
	}
	out.Next = nextURL(c, nil, limit, next)
	return c.JSON(http.StatusOK, out)
}

func (s *Server) adminCreateUser(c echo.Context) error {
	var req createUserRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	details := map[string]string{}
	email, err := domain.NormalizeEmail(req.Email)
	if err != nil {
		details["email"] = domain.ErrorDetails(err)["email"]
	}
	if err := domain.ValidatePassword(req.Password); err != nil {
		details["password"] = domain.ErrorDetails(err)["password"]
	}
	if len(details) > 0 {
		return &domain.Error{Code: domain.EINVALID, Message: "invalid user", Details: details}
	}
	hash, err := auth.HashPassword(req.Password)
	if err != nil {
		return err
	}
	u, err := s.deps.DB.CreateUser(c.Request().Context(), tenantOf(c).Schema, postgres.NewUser{Email: email, PasswordHash: hash, IsStaff: req.IsStaff})
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", c.Request().URL.Path+u.ID+"/")
	return c.JSON(http.StatusCreated, toUserResponse(u))
}

func (s *Server) adminGetUser(c echo.Context) error {
	u, err := s.deps.DB.GetUser(c.Request().Context(), tenantOf(c).Schema, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toUserResponse(u))
}

// adminPatchUser deactivates or reactivates a user and grants or revokes
// staff. Staff cannot lock themselves out (409). Once the change is
// committed, the user's new flags overwrite the auth cache, so that the
// user's next request is judged by them.
func (s *Server) adminPatchUser(c echo.Context) error {
	ctx := c.Request().Context()
	schemaName := tenantOf(c).Schema
	var req patchUserRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	// Read first: the path may spell the id in another case than the
	// caller's token, and an unknown user is a 404 before any 409.
	u, err := s.deps.DB.GetUser(ctx, schemaName, c.Param("id"))
	if err != nil {
		return err
	}
	if u.ID == principalOf(c).UserID {
		if req.IsActive != nil && !*req.IsActive {
			return &domain.Error{Code: domain.ECONFLICT, Message: "you cannot deactivate your own account; ask another staff member",
				Details: map[string]string{"is_active": "cannot be cleared on your own account"}}
		}
		if req.IsStaff != nil && !*req.IsStaff {
			return &domain.Error{Code: domain.ECONFLICT, Message: "you cannot revoke your own staff rights; ask another staff member",
				Details: map[string]string{"is_staff": "cannot be cleared on your own account"}}
		}
	}
	if req.IsActive == nil && req.IsStaff == nil {
		return c.JSON(http.StatusOK, toUserResponse(u))
	}
	u, err = s.deps.DB.UpdateUser(ctx, schemaName, u.ID, postgres.UserPatch{IsActive: req.IsActive, IsStaff: req.IsStaff})
	if err != nil {
		return err
	}
	s.storeUserFlags(ctx, schemaName, u)
	return c.JSON(http.StatusOK, toUserResponse(u))
}

// storeUserFlags writes a user's committed flags to the auth cache. A
// failure is logged, not returned: the change is committed, and the cache
// entry's TTL bounds how long the old flags can still be served.
func (s *Server) storeUserFlags(ctx context.Context, schemaName string, u domain.User) {
	flags := s.deps.UserFlags
	if flags == nil {
		flags, _ = s.deps.Users.(UserFlags)
	}
	if flags == nil {
		s.log.ErrorContext(ctx, "no user flags store configured; cached flags expire on their own",
			slog.String("tenant", schemaName), slog.String("user", u.ID))
		return
	}
	if err := flags.Store(context.WithoutCancel(ctx), schemaName, u.ID, postgres.UserAuth{Active: u.IsActive, Staff: u.IsStaff}); err != nil {
		s.log.WarnContext(ctx, "could not update the cached user flags; they expire on their own",
			slog.String("tenant", schemaName), slog.String("user", u.ID), slog.Any("error", err))
	}
}

// adminSetPassword replaces a user's password. Tokens issued before stay
// valid until they expire; deactivate the user to cut them off.
func (s *Server) adminSetPassword(c echo.Context) error {
	ctx := c.Request().Context()
	schemaName := tenantOf(c).Schema
	var req passwordRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := domain.ValidatePassword(req.Password); err != nil {
		return err
	}
	// An unknown user is a 404 before the hash's ~50 ms of CPU is spent.
	u, err := s.deps.DB.GetUser(ctx, schemaName, c.Param("id"))
	if err != nil {
		return err
	}
	hash, err := auth.HashPassword(req.Password)
	if err != nil {
		return err
	}
	if err := s.deps.DB.SetUserPassword(ctx, schemaName, u.ID, hash); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// adminListProducts lists products straight from the database, bypassing
// the cache, in the catalog list's shape and parameters.
func (s *Server) adminListProducts(c echo.Context) error {
	return s.listProductsFrom(c, s.deps.DB) // straight from the database, uncached
}

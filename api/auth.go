package api

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tenantworks/saas/pkg/auth"
	"github.com/tenantworks/saas/pkg/domain"
)

type tokenRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type tokenResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

var errBadCredentials = &domain.Error{Code: domain.EUNAUTHORIZED, Message: "invalid email or password"}

// dummyHash is compared against when the email is unknown, so that a
// sign-in takes as long whether or not the account exists.
var dummyHash = sync.OnceValue(func() string {
	h, _ := auth.HashPassword("not-a-real-password")
	return h
})

// issueToken exchanges a tenant user's email and password for a token bound
// to this tenant.
func (s *Server) issueToken(c echo.Context) error {
	ctx := c.Request().Context()
	t := tenantOf(c)
	email, req, err := s.readCredentials(c, t.Schema)
	if err != nil {
		return err
	}
	u, hash, err := s.deps.DB.UserCredentials(ctx, t.Schema, email)
	switch {
	case domain.ErrorCode(err) == domain.ENOTFOUND:
		auth.CheckPassword(dummyHash(), req.Password)
		return errBadCredentials
	case err != nil:
		return err
	}
	if !auth.CheckPassword(hash, req.Password) || !u.IsActive {
		return errBadCredentials
	}
	tok, exp, err := s.deps.Tokens.Issue(t.Schema, u.ID, u.IsStaff)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tokenResponse{Token: tok, ExpiresAt: exp})
}

// readCredentials counts a sign-in attempt against bucket's rate limit,
// then reads and checks the email and password of the body.
func (s *Server) readCredentials(c echo.Context, bucket string) (string, tokenRequest, error) {
	var req tokenRequest
	if err := s.limitLogins(c, bucket); err != nil {
		return "", req, err
	}
	if err := decodeJSON(c, &req); err != nil {
		return "", req, err
	}
	email, err := domain.NormalizeEmail(req.Email)
	if err != nil || req.Password == "" {
		details := map[string]string{}
		if err != nil {
			details["email"] = "must be a valid email address"
		}
		if req.Password == "" {
			details["password"] = "is required"
		}
		return "", req, &domain.Error{Code: domain.EINVALID, Message: "invalid credentials request", Details: details}
	}
	return email, req, nil
}

// limitLogins allows LoginLimit sign-in attempts per tenant and client
// address per LoginWindow (fixed window in Redis). When Redis is down the
// attempt is allowed and the failure logged: sign-in stays possible.
func (s *Server) limitLogins(c echo.Context, schemaName string) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 500*time.Millisecond)
	defer cancel()
	key := schemaName + ":login:" + c.RealIP()
	pipe := s.deps.Redis.TxPipeline()
	n := pipe.Incr(ctx, key)
	pipe.ExpireNX(ctx, key, s.cfg.LoginWindow)
	ttl := pipe.TTL(ctx, key)
	if _, err := pipe.Exec(ctx); err != nil {
		s.log.WarnContext(ctx, "login rate limiter unavailable", slog.Any("error", err))
		return nil
	}
	if n.Val() > int64(s.cfg.LoginLimit) {
		retry := int(ttl.Val().Round(time.Second).Seconds())
		c.Response().Header().Set("Retry-After", strconv.Itoa(max(retry, 1)))
		return echo.NewHTTPError(http.StatusTooManyRequests, "too many sign-in attempts; retry later")
	}
	return nil
}

package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tenantworks/saas/pkg/accounts"
	"github.com/tenantworks/saas/pkg/auth"
)

type tokenRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type tokenResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// issueToken exchanges a tenant user's email and password for a token bound
// to this tenant.
func (s *Server) issueToken(c echo.Context) error {
	return s.signIn(c, tenantOf(c).Schema, tenantOf(c).Schema)
}

// signIn checks the body's credentials in realm (accounts.Platform or a
// tenant's schema) and answers a token for audience.
func (s *Server) signIn(c echo.Context, realm, audience string) error {
	var req tokenRequest
	if err := decodeJSON(c, &req); err != nil {
		// A malformed attempt counts too (and costs no password hash).
		if lerr := s.deps.Accounts.Limit(c.Request().Context(), realm, c.RealIP()); lerr != nil {
			return lerr
		}
		return err
	}
	p, err := s.deps.Accounts.Authenticate(c.Request().Context(), realm,
		accounts.Credentials{Email: req.Email, Password: req.Password, ClientAddr: c.RealIP()})
	if err != nil {
		return err
	}
	tok, exp, err := s.deps.Tokens.IssueFor(audience, auth.Subject{ID: p.ID, Staff: p.Staff, Generation: p.Generation, Email: p.Email})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tokenResponse{Token: tok, ExpiresAt: exp})
}

type passwordChangeRequest struct {
	Current string `json:"current"`
	New     string `json:"new"`
}

// changePassword changes the caller's own password (see
// accounts.Service.ChangePassword) and answers a fresh token: every token
// the user held, the one of this request included, stops working.
func (s *Server) changePassword(c echo.Context) error {
	var req passwordChangeRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p, t := principalOf(c), tenantOf(c)
	u, err := s.deps.Accounts.ChangePassword(c.Request().Context(), t.Schema,
		accounts.PasswordChange{UserID: p.UserID, Generation: p.Generation, Current: req.Current, New: req.New})
	if err != nil {
		return err
	}
	tok, exp, err := s.deps.Tokens.IssueFor(t.Schema, auth.Subject{ID: u.ID, Staff: u.IsStaff, Generation: u.TokenGeneration, Email: u.Email})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tokenResponse{Token: tok, ExpiresAt: exp})
}

package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tenantworks/saas/pkg/domain"
)

// Claims are what a token asserts. A token is bound to one tenant (or, with
// Tenant == PlatformAudience, to the platform admin API).
type Claims struct {
	jwt.RegisteredClaims
	Tenant string `json:"tenant"`
	Staff  bool   `json:"staff,omitempty"`
}

// PlatformAudience is the Tenant value of superuser tokens.
const PlatformAudience = "_platform" // starts with "_": never a schema name

const issuer = "saas"

// Tokens issues and verifies HS256 tokens.
type Tokens struct {
	secret []byte
	ttl    time.Duration
	now    func() time.Time
}

// NewTokens returns a Tokens signing with secret; ttl 0 means 12 hours.
func NewTokens(secret string, ttl time.Duration) *Tokens {
	if ttl <= 0 {
		ttl = 12 * time.Hour
	}
	return &Tokens{secret: []byte(secret), ttl: ttl, now: time.Now}
}

// Issue returns a signed token for the user in tenant and its expiry.
func (t *Tokens) Issue(tenant, userID string, staff bool) (string, time.Time, error) {
	now := t.now().UTC().Truncate(time.Second)
	exp := now.Add(t.ttl)
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   userID,
			Audience:  jwt.ClaimStrings{tenant},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		Tenant: tenant,
		Staff:  staff,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign token: %w", err)
	}
	return s, exp, nil
}

// ErrBadToken is wrapped by every verification failure.
var ErrBadToken = &domain.Error{Code: domain.EUNAUTHORIZED, Message: "invalid or expired token"}

// Verify checks the signature (HS256 only: "none" and every other algorithm
// are refused), expiry, issuer and that the token is bound to tenant. Errors
// wrap ErrBadToken.
func (t *Tokens) Verify(token, tenant string) (Claims, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(tenant),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(t.now),
	)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	if c.Tenant != tenant || c.Subject == "" {
		return Claims{}, fmt.Errorf("%w: %w", ErrBadToken, errors.New("token of another tenant"))
	}
	return c, nil
}

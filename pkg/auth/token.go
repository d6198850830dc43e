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
	// Generation is the subject's token generation when the token was
	// issued (see Subject); absent means 0.
	Generation int64 `json:"gen,omitempty"`
	// Email is the subject's email at sign-in: what the audit trail names
	// the actor by, without a query per request. A later change of the
	// address shows in tokens issued after it.
	Email string `json:"email,omitempty"`
}

// Subject is whom a token is issued for.
type Subject struct {
	ID    string
	Staff bool
	// Generation is the account's token generation: a counter stored with
	// the account that every password change or reset moves up by one. A
	// token carries the generation it was issued at, and the per-request
	// check refuses a token whose generation is older than the account's:
	// that is how a password change revokes every token issued before it.
	// A counter, not a time, so there is no same-second ambiguity: a token
	// issued after the change carries the new value, one issued before it
	// the old one, whatever the clock says.
	Generation int64
	// Email is carried in the token for the audit trail (Claims.Email).
	Email string
}

// PlatformAudience is the Tenant value of superuser tokens.
const PlatformAudience = "_platform" // starts with "_": never a schema name

const issuer = "saas"

// MinSecretLen is the shortest secret, in bytes, that signs or verifies a
// token: an HS256 key of less than 32 bytes is weaker than the hash.
const MinSecretLen = 32

// ErrWeakSecret is returned by CheckSecret, and by Issue when the signing
// secret is shorter than MinSecretLen.
var ErrWeakSecret = errors.New("auth: a token secret must be at least 32 bytes")

// CheckSecret returns ErrWeakSecret when secret cannot sign or verify
// tokens: shorter than MinSecretLen (empty included).
func CheckSecret(secret string) error {
	if len(secret) < MinSecretLen {
		return ErrWeakSecret
	}
	return nil
}

// Tokens issues and verifies HS256 tokens.
type Tokens struct {
	secret   []byte   // signs and verifies
	previous [][]byte // verify only: secrets being rotated out
	ttl      time.Duration
	now      func() time.Time
	verified *verified // tokens that passed Verify
}

// NewTokens returns a Tokens that signs with secret and verifies with it
// and with each of previous (the secrets being rotated out: a token they
// signed stays valid until it expires, and no new one is signed with them).
// ttl 0 means 12 hours. There is no default secret: a secret shorter than
// MinSecretLen signs nothing (Issue returns ErrWeakSecret) and verifies
// nothing; check configured secrets with CheckSecret first.
func NewTokens(secret string, ttl time.Duration, previous ...string) *Tokens {
	if ttl <= 0 {
		ttl = 12 * time.Hour
	}
	t := &Tokens{secret: []byte(secret), ttl: ttl, now: time.Now, verified: newVerified()}
	for _, p := range previous {
		t.previous = append(t.previous, []byte(p))
	}
	return t
}

// Issue is IssueFor with generation 0, that of an account whose password
// never changed; a token it issues for any other account is refused by
// the per-request check.
func (t *Tokens) Issue(tenant, userID string, staff bool) (string, time.Time, error) {
	return t.IssueFor(tenant, Subject{ID: userID, Staff: staff})
}

// IssueFor returns a token for sub bound to tenant, signed with the
// current secret, and its expiry. Errors: ErrWeakSecret.
func (t *Tokens) IssueFor(tenant string, sub Subject) (string, time.Time, error) {
	if err := CheckSecret(string(t.secret)); err != nil {
		return "", time.Time{}, err
	}
	now := t.now().UTC().Truncate(time.Second)
	exp := now.Add(t.ttl)
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   sub.ID,
			Audience:  jwt.ClaimStrings{tenant},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		Tenant:     tenant,
		Staff:      sub.Staff,
		Generation: sub.Generation,
		Email:      sub.Email,
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
// are refused) against the current secret and the previous ones, expiry,
// issuer and that the token is bound to tenant. It does not know whether
// the token was revoked since: the caller compares Claims.Generation with
// the account's. Errors wrap ErrBadToken.
//
// A token that passed is remembered (bounded, least recently used first)
// until it expires, and its next Verify for the same tenant only checks
// the expiry: the result is the same, for a fraction of the cost.
func (t *Tokens) Verify(token, tenant string) (Claims, error) {
	k := verifiedKey{token: token, tenant: tenant}
	if t.verified != nil {
		if c, ok := t.verified.get(k, t.now()); ok {
			return c, nil
		}
	}
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.keys() },
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
	if t.verified != nil && c.ExpiresAt != nil {
		t.verified.put(k, c, c.ExpiresAt.Time)
	}
	return c, nil
}

// keys returns the verification keys: the current secret, then the
// previous ones, leaving out any too short to be trusted.
func (t *Tokens) keys() (jwt.VerificationKeySet, error) {
	var ks jwt.VerificationKeySet
	for _, k := range append([][]byte{t.secret}, t.previous...) {
		if CheckSecret(string(k)) == nil {
			ks.Keys = append(ks.Keys, k)
		}
	}
	if len(ks.Keys) == 0 {
		return ks, ErrWeakSecret
	}
	return ks, nil
}

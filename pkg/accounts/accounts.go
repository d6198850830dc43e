// Package accounts holds the use cases of tenant users and platform
// superusers: creating them, one sign-in for both (rate limited, timed the
// same whether or not the account exists), password rules and changes, and
// the flag changes that every request is judged by. The HTTP handlers and
// the CLI call it alike.
//
// Every password change or reset moves the account to its next token
// generation (a counter stored with it, carried in each token): the
// per-request check refuses a token of an older generation, so the change
// revokes every token issued before it, with no same-second ambiguity.
package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tenantworks/saas/pkg/auth"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
)

// Platform is the realm of superusers' sign-in; any other realm is a
// tenant's schema name.
const Platform = "public"

// Store reads and writes users and superusers (pkg/postgres.DB).
type Store interface {
	CreateUser(ctx context.Context, schemaName string, u postgres.NewUser) (domain.User, error)
	UserCredentials(ctx context.Context, schemaName, email string) (domain.User, string, error)
	UserCredentialsByID(ctx context.Context, schemaName, id string) (domain.User, string, error)
	GetUser(ctx context.Context, schemaName, id string) (domain.User, error)
	ListUsers(ctx context.Context, schemaName string, p postgres.UserListParams) ([]domain.User, string, error)
	UpdateUser(ctx context.Context, schemaName, id string, p postgres.UserPatch) (domain.User, error)
	DeleteUser(ctx context.Context, schemaName, id string, a postgres.AuditFunc[domain.User]) (domain.User, error)
	SetUsersActive(ctx context.Context, schemaName string, ids []string, active bool, a postgres.AuditFunc[domain.User]) ([]domain.User, []string, error)
	SetUserPassword(ctx context.Context, schemaName, id, passwordHash string, ifGeneration int64, a postgres.AuditFunc[domain.User]) (domain.User, error)
	CreateSuperuser(ctx context.Context, email, passwordHash string, a postgres.AuditFunc[domain.Superuser]) (domain.Superuser, error)
	SuperuserCredentials(ctx context.Context, email string) (domain.Superuser, string, error)
	ListSuperusers(ctx context.Context, limit int, cursor string) ([]domain.Superuser, string, error)
	SetSuperuserActive(ctx context.Context, id string, active bool, a postgres.AuditFunc[domain.Superuser]) (domain.Superuser, error)
	SetSuperuserPassword(ctx context.Context, id, passwordHash string, a postgres.AuditFunc[domain.Superuser]) (domain.Superuser, error)
}

// Limiter counts sign-in attempts per key (pkg/cache.Limiter).
type Limiter interface {
	Allow(ctx context.Context, key string) (retryAfter time.Duration, err error)
}

// FlagCache holds the user flags checked on every request
// (pkg/cache.Users); Store overwrites them once a change is committed,
// Drop forgets a deleted user's.
type FlagCache interface {
	Store(ctx context.Context, schemaName, id string, ua postgres.UserAuth) error
	Drop(ctx context.Context, schemaName, id string) error
}

// Deps are the Service's collaborators.
type Deps struct {
	// Store is required.
	Store Store
	// Limiter, when set, limits sign-in attempts per realm and client
	// address. When it fails (Redis down) the attempt is allowed and the
	// failure logged: sign-in stays possible.
	Limiter Limiter
	// Flags, when set, gets users' new flags after every committed change,
	// so that a deactivated user's next request is refused.
	Flags FlagCache
	// Log defaults to slog.Default().
	Log *slog.Logger
}

// Service runs the account use cases.
type Service struct {
	store   Store
	limiter Limiter
	flags   FlagCache
	log     *slog.Logger
}

// ErrNoStore is returned by New without a Store.
var ErrNoStore = errors.New("accounts: a store is required")

// New returns a Service. Errors: ErrNoStore.
func New(deps Deps) (*Service, error) {
	if deps.Store == nil {
		return nil, ErrNoStore
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	return &Service{store: deps.Store, limiter: deps.Limiter, flags: deps.Flags, log: deps.Log}, nil
}

// ErrBadCredentials is the one answer to a failed sign-in, whatever failed:
// unknown email, wrong password, inactive account.
var ErrBadCredentials = &domain.Error{Code: domain.EUNAUTHORIZED, Message: "invalid email or password"}

// dummyHash is compared against when the email is unknown, so that a
// sign-in takes as long whether or not the account exists.
var dummyHash = sync.OnceValue(func() string {
	h, _ := auth.HashPassword("not-a-real-password")
	return h
})

// Credentials are a sign-in attempt.
type Credentials struct {
	Email    string
	Password string
	// ClientAddr is the client's address, the limiter's bucket with the realm.
	ClientAddr string
}

// Principal is who signed in.
type Principal struct {
	ID    string
	Email string
	Staff bool // always true for a superuser
	// Generation is the account's token generation, read with the password
	// hash: the token issued for this sign-in carries it.
	Generation int64
}

// Authenticate checks credentials in realm: Platform for superusers, else
// a tenant's schema. A password longer than bcrypt's 72 bytes never
// matches (bcrypt would compare its first 72 bytes only). Errors:
// ERATELIMITED (with RetryAfter) past the limit, EINVALID for a malformed
// email or an empty password, ErrBadCredentials.
func (s *Service) Authenticate(ctx context.Context, realm string, c Credentials) (Principal, error) {
	if err := s.limit(ctx, realm, c.ClientAddr); err != nil {
		return Principal{}, err
	}
	email, err := domain.NormalizeEmail(c.Email)
	if err != nil || c.Password == "" {
		details := map[string]string{}
		if err != nil {
			details["email"] = "must be a valid email address"
		}
		if c.Password == "" {
			details["password"] = "is required"
		}
		return Principal{}, &domain.Error{Code: domain.EINVALID, Message: "invalid credentials request", Details: details}
	}
	var (
		p      Principal
		hash   string
		active bool
	)
	if realm == Platform {
		var su domain.Superuser
		su, hash, err = s.store.SuperuserCredentials(ctx, email)
		p, active = Principal{ID: su.ID, Email: su.Email, Staff: true, Generation: su.TokenGeneration}, su.IsActive
	} else {
		var u domain.User
		u, hash, err = s.store.UserCredentials(ctx, realm, email)
		p, active = Principal{ID: u.ID, Email: u.Email, Staff: u.IsStaff, Generation: u.TokenGeneration}, u.IsActive
	}
	switch {
	case domain.ErrorCode(err) == domain.ENOTFOUND:
		auth.CheckPassword(dummyHash(), c.Password)
		return Principal{}, ErrBadCredentials
	case err != nil:
		return Principal{}, fmt.Errorf("accounts: authenticate: %w", err)
	}
	if !auth.CheckPassword(hash, c.Password) || !active {
		return Principal{}, ErrBadCredentials
	}
	return p, nil
}

// Limit counts one sign-in attempt from addr in realm without checking
// anything, for an attempt refused before its credentials could be read
// (a malformed body): every attempt counts. Authenticate counts its own.
// Errors: ERATELIMITED (with RetryAfter).
func (s *Service) Limit(ctx context.Context, realm, addr string) error {
	return s.limit(ctx, realm, addr)
}

func (s *Service) limit(ctx context.Context, realm, addr string) error {
	return s.allow(ctx, realm+":login:"+addr, "sign-in")
}

// allow counts one attempt of what on key. Past the limit it returns
// ERATELIMITED with RetryAfter; with the limiter down, nil (logged).
func (s *Service) allow(ctx context.Context, key, what string) error {
	if s.limiter == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	retry, err := s.limiter.Allow(ctx, key)
	if err != nil {
		s.log.WarnContext(ctx, what+" rate limiter unavailable; attempt allowed", slog.Any("error", err))
		return nil
	}
	if retry > 0 {
		return &domain.Error{Code: domain.ERATELIMITED, Message: "too many " + what + " attempts; retry later", RetryAfter: retry}
	}
	return nil
}

// NewUser are the inputs of CreateUser.
type NewUser struct {
	Email    string
	Password string
	IsStaff  bool
}

// credentials normalizes an email and checks and hashes a password,
// naming each bad field.
func credentials(email, password string) (string, string, error) {
	details := map[string]string{}
	e, err := domain.NormalizeEmail(email)
	if err != nil {
		details["email"] = domain.ErrorDetails(err)["email"]
	}
	if err := domain.ValidatePassword(password); err != nil {
		details["password"] = domain.ErrorDetails(err)["password"]
	}
	if len(details) > 0 {
		return "", "", &domain.Error{Code: domain.EINVALID, Message: "invalid user", Details: details}
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return "", "", fmt.Errorf("accounts: hash password: %w", err)
	}
	return e, hash, nil
}

// CreateUser creates a user in a tenant. Errors: EINVALID (email,
// password), ECONFLICT when the email is taken in the tenant.
func (s *Service) CreateUser(ctx context.Context, schemaName string, u NewUser) (domain.User, error) {
	email, hash, err := credentials(u.Email, u.Password)
	if err != nil {
		return domain.User{}, err
	}
	out, err := s.store.CreateUser(ctx, schemaName, postgres.NewUser{Email: email, PasswordHash: hash, IsStaff: u.IsStaff, Audit: auditUserCreate(ctx)})
	if err != nil {
		return domain.User{}, fmt.Errorf("accounts: create user: %w", err)
	}
	return out, nil
}

// CreateSuperuser creates a platform superuser. Errors: EINVALID,
// ECONFLICT when the email is taken.
func (s *Service) CreateSuperuser(ctx context.Context, email, password string) (domain.Superuser, error) {
	e, hash, err := credentials(email, password)
	if err != nil {
		return domain.Superuser{}, err
	}
	out, err := s.store.CreateSuperuser(ctx, e, hash, auditSuperuser(ctx, "superuser.create"))
	if err != nil {
		return domain.Superuser{}, fmt.Errorf("accounts: create superuser: %w", err)
	}
	return out, nil
}

// ErrUserNotFound is returned for a user that does not exist, and for an
// id in any spelling but the canonical one (domain.CanonicalID).
var ErrUserNotFound = domain.Errorf(domain.ENOTFOUND, "user not found")

// GetUser returns a tenant's user. Errors: ErrUserNotFound.
func (s *Service) GetUser(ctx context.Context, schemaName, id string) (domain.User, error) {
	if !domain.CanonicalID(id) {
		return domain.User{}, ErrUserNotFound
	}
	return s.store.GetUser(ctx, schemaName, id)
}

// UserChange is a change of a user's email or flags; nil leaves a field
// alone.
type UserChange struct {
	Email    *string
	IsActive *bool
	IsStaff  *bool
}

// UpdateUser changes a user's email or flags on behalf of actorID. Nobody
// can deactivate themselves or revoke their own staff rights (ECONFLICT),
// so a tenant always keeps the staff member who could undo it. The email
// is normalized. The change's audit entry is written with it: user.activate
// or user.deactivate when only is_active changes, else user.update. Once
// committed, the new flags overwrite the cached ones. Errors: ENOTFOUND,
// EINVALID naming email, ECONFLICT (self-lockout, email taken).
func (s *Service) UpdateUser(ctx context.Context, schemaName, actorID, id string, ch UserChange) (domain.User, error) {
	var email *string
	if ch.Email != nil {
		e, err := domain.NormalizeEmail(*ch.Email)
		if err != nil {
			return domain.User{}, err
		}
		email = &e
	}
	// Read first: an unknown user is a 404 before any 409.
	u, err := s.GetUser(ctx, schemaName, id)
	if err != nil {
		return domain.User{}, err
	}
	if u.ID == actorID {
		if ch.IsActive != nil && !*ch.IsActive {
			return domain.User{}, errSelfDeactivation
		}
		if ch.IsStaff != nil && !*ch.IsStaff {
			return domain.User{}, &domain.Error{Code: domain.ECONFLICT, Message: "you cannot revoke your own staff rights; ask another staff member",
				Details: map[string]string{"is_staff": "cannot be cleared on your own account"}}
		}
	}
	if email == nil && ch.IsActive == nil && ch.IsStaff == nil {
		return u, nil
	}
	u, err = s.store.UpdateUser(ctx, schemaName, u.ID, postgres.UserPatch{Email: email, IsActive: ch.IsActive, IsStaff: ch.IsStaff, Audit: auditUserUpdate(ctx)})
	if err != nil {
		return domain.User{}, fmt.Errorf("accounts: update user: %w", err)
	}
	s.storeFlags(ctx, schemaName, u)
	return u, nil
}

var errSelfDeactivation = &domain.Error{Code: domain.ECONFLICT, Message: "you cannot deactivate your own account; ask another staff member",
	Details: map[string]string{"is_active": "cannot be cleared on your own account"}}

// storeFlags writes a user's committed flags to the cache. A failure is
// logged, not returned: the change is committed, and the cache entry's TTL
// bounds how long the old flags can still be served.
func (s *Service) storeFlags(ctx context.Context, schemaName string, u domain.User) {
	if s.flags == nil {
		s.log.ErrorContext(ctx, "no user flag cache configured; cached flags expire on their own",
			slog.String("tenant", schemaName), slog.String("user", u.ID))
		return
	}
	ua := postgres.UserAuth{Active: u.IsActive, Staff: u.IsStaff, Generation: u.TokenGeneration}
	if err := s.flags.Store(context.WithoutCancel(ctx), schemaName, u.ID, ua); err != nil {
		s.log.WarnContext(ctx, "could not update the cached user flags; they expire on their own",
			slog.String("tenant", schemaName), slog.String("user", u.ID), slog.Any("error", err))
	}
}

// SetPassword replaces a user's password (a reset by staff or an operator)
// and revokes every token of the user issued before: the user moves to the
// next token generation, and once committed the new one overwrites the
// cached flags. Errors: EINVALID, ENOTFOUND.
func (s *Service) SetPassword(ctx context.Context, schemaName, id, password string) error {
	if err := domain.ValidatePassword(password); err != nil {
		return err
	}
	// An unknown user is a 404 before the hash's ~50 ms of CPU is spent.
	u, err := s.GetUser(ctx, schemaName, id)
	if err != nil {
		return err
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return fmt.Errorf("accounts: hash password: %w", err)
	}
	u, err = s.store.SetUserPassword(ctx, schemaName, u.ID, hash, postgres.AnyGeneration, auditUser(ctx, "user.password_reset"))
	if err != nil {
		return fmt.Errorf("accounts: set password: %w", err)
	}
	s.storeFlags(ctx, schemaName, u)
	return nil
}

// PasswordChange is a signed-in user's change of their own password.
type PasswordChange struct {
	// UserID and Generation are the caller's, from the token the request
	// came with.
	UserID     string
	Generation int64
	Current    string
	New        string
}

// ErrWrongPassword is ChangePassword's answer to a current password that
// does not match: a 422 naming the field, not a 401, since the caller's
// token is fine.
var ErrWrongPassword = &domain.Error{Code: domain.EINVALID, Message: "invalid password change",
	Details: map[string]string{"current": "is not your current password"}}

// ChangePassword changes a signed-in user's own password in a tenant once
// the current one is checked, and revokes every token of the user issued
// before: it returns the user as committed, at the next token generation,
// which the caller's new token must carry. Attempts are limited per user
// as sign-in attempts are per address (a stolen token cannot be used to
// guess the password). The change applies only while the account is still
// at the caller's generation: a change made meanwhile (or a token older
// than the last one) revokes the caller's token instead. Errors:
// ERATELIMITED (with RetryAfter), EINVALID naming current (missing) or new
// (8 characters to 72 bytes), ErrWrongPassword, auth.ErrBadToken when the
// caller's token was revoked or its user is gone or inactive.
func (s *Service) ChangePassword(ctx context.Context, schemaName string, ch PasswordChange) (domain.User, error) {
	if err := s.allow(ctx, schemaName+":password:"+ch.UserID, "password change"); err != nil {
		return domain.User{}, err
	}
	details := map[string]string{}
	if ch.Current == "" {
		details["current"] = "is required"
	}
	if err := domain.ValidatePassword(ch.New); err != nil {
		details["new"] = domain.ErrorDetails(err)["password"]
	}
	if len(details) > 0 {
		return domain.User{}, &domain.Error{Code: domain.EINVALID, Message: "invalid password change", Details: details}
	}
	u, hash, err := s.store.UserCredentialsByID(ctx, schemaName, ch.UserID)
	switch {
	case domain.ErrorCode(err) == domain.ENOTFOUND:
		return domain.User{}, auth.ErrBadToken
	case err != nil:
		return domain.User{}, fmt.Errorf("accounts: change password: %w", err)
	case !u.IsActive || u.TokenGeneration != ch.Generation:
		return domain.User{}, auth.ErrBadToken
	}
	if !auth.CheckPassword(hash, ch.Current) {
		return domain.User{}, ErrWrongPassword
	}
	newHash, err := auth.HashPassword(ch.New)
	if err != nil {
		return domain.User{}, fmt.Errorf("accounts: hash password: %w", err)
	}
	u, err = s.store.SetUserPassword(ctx, schemaName, u.ID, newHash, u.TokenGeneration, auditUser(ctx, "user.password_change"))
	if errors.Is(err, postgres.ErrGenerationMoved) || domain.ErrorCode(err) == domain.ENOTFOUND {
		return domain.User{}, auth.ErrBadToken
	}
	if err != nil {
		return domain.User{}, fmt.Errorf("accounts: change password: %w", err)
	}
	s.storeFlags(ctx, schemaName, u)
	return u, nil
}

// SetSuperuserPassword replaces a platform superuser's password (a reset by
// an operator) and revokes every platform token they hold: the superuser
// moves to the next token generation, which the platform routes read on
// every request. Errors: EINVALID, ENOTFOUND.
func (s *Service) SetSuperuserPassword(ctx context.Context, id, password string) (domain.Superuser, error) {
	if err := domain.ValidatePassword(password); err != nil {
		return domain.Superuser{}, err
	}
	if !domain.CanonicalID(id) {
		return domain.Superuser{}, ErrSuperuserNotFound
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return domain.Superuser{}, fmt.Errorf("accounts: hash password: %w", err)
	}
	su, err := s.store.SetSuperuserPassword(ctx, id, hash, auditSuperuser(ctx, "superuser.password_reset"))
	if err != nil {
		return domain.Superuser{}, fmt.Errorf("accounts: set superuser password: %w", err)
	}
	return su, nil
}

package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/domain"
)

// NewUser are the inputs of CreateUser; PasswordHash is already hashed.
type NewUser struct {
	Email        string
	PasswordHash string
	IsStaff      bool
	// Audit, when set, builds the audit entries of the creation (old is
	// the zero User), written in its transaction.
	Audit AuditFunc[domain.User]
}

// CreateUser inserts a user into the tenant's schema. Errors: ECONFLICT when
// the email is taken in that tenant.
func (db *DB) CreateUser(ctx context.Context, schemaName string, u NewUser) (domain.User, error) {
	var out domain.User
	err := db.InTenant(ctx, schemaName, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx,
			`INSERT INTO users (email, password_hash, is_staff) VALUES ($1, $2, $3)
			 RETURNING id, email, is_staff, is_active, created_at, updated_at, token_generation`,
			u.Email, u.PasswordHash, u.IsStaff).Scan(&out.ID, &out.Email, &out.IsStaff, &out.IsActive, &out.CreatedAt, &out.UpdatedAt, &out.TokenGeneration)
		if err != nil {
			return err
		}
		return writeAudits(ctx, tx, WriteTenantAudit, u.Audit, domain.User{}, out)
	})
	if IsUniqueViolation(err, "users_email_key") {
		return domain.User{}, &domain.Error{Code: domain.ECONFLICT, Message: "email already in use", Details: map[string]string{"email": "is already taken"}}
	}
	if err != nil {
		return domain.User{}, fmt.Errorf("postgres: create user: %w", err)
	}
	return out, nil
}

// UserCredentials returns a user with the password hash, by email, read
// together (the token generation with the hash it goes with). Errors:
// ENOTFOUND when no such user exists in the tenant.
func (db *DB) UserCredentials(ctx context.Context, schemaName, email string) (domain.User, string, error) {
	return db.userCredentials(ctx, schemaName, `email = $1`, email)
}

// UserCredentialsByID is UserCredentials by id. Errors: ENOTFOUND.
func (db *DB) UserCredentialsByID(ctx context.Context, schemaName, id string) (domain.User, string, error) {
	if _, err := parseUUID(id); err != nil {
		return domain.User{}, "", errUserNotFound
	}
	return db.userCredentials(ctx, schemaName, `id = $1`, id)
}

func (db *DB) userCredentials(ctx context.Context, schemaName, where, arg string) (domain.User, string, error) {
	var (
		u    domain.User
		hash string
	)
	err := db.InTenant(ctx, schemaName, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx,
			`SELECT id, email, is_staff, is_active, created_at, updated_at, token_generation, password_hash FROM users WHERE `+where,
			arg).Scan(&u.ID, &u.Email, &u.IsStaff, &u.IsActive, &u.CreatedAt, &u.UpdatedAt, &u.TokenGeneration, &hash)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.User{}, "", errUserNotFound
	}
	if err != nil {
		return domain.User{}, "", fmt.Errorf("postgres: user credentials: %w", err)
	}
	return u, hash, nil
}

// CreateSuperuser inserts a platform superuser, with the platform audit
// entries a builds (nil: none) in the same transaction. Errors: ECONFLICT
// when the email is taken.
func (db *DB) CreateSuperuser(ctx context.Context, email, passwordHash string, a AuditFunc[domain.Superuser]) (domain.Superuser, error) {
	var s domain.Superuser
	err := db.InTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx,
			`INSERT INTO public.superusers (email, password_hash) VALUES ($1, $2) RETURNING `+superuserColumns,
			email, passwordHash).Scan(&s.ID, &s.Email, &s.IsActive, &s.CreatedAt, &s.TokenGeneration)
		if err != nil {
			return err
		}
		return writeAudits(ctx, tx, WritePlatformAudit, a, domain.Superuser{}, s)
	})
	if IsUniqueViolation(err, "superusers_email_key") {
		return domain.Superuser{}, &domain.Error{Code: domain.ECONFLICT, Message: "email already in use", Details: map[string]string{"email": "is already taken"}}
	}
	if err != nil {
		return domain.Superuser{}, fmt.Errorf("postgres: create superuser: %w", Translate(err))
	}
	return s, nil
}

// UserAuth is what the API checks on every authenticated request.
type UserAuth struct {
	Active bool `json:"a"`
	Staff  bool `json:"s"`
	// Generation is the account's token generation: a token issued at an
	// older one is revoked.
	Generation int64 `json:"g,omitempty"`
}

// GetUserAuth returns a user's active and staff flags and token
// generation. Errors: ENOTFOUND; EUNAVAILABLE (with a Retry-After) when
// the read waited userAuthTimeout, or found the schema gone because the
// tenant moved.
//
// It runs on every authenticated request and WebSocket connect whose user
// is not in the cache, so it costs one round trip: one statement on the
// tenant's cluster, its table named with the validated, quoted schema (the
// statement's own implicit transaction; no search_path to set, which
// InTenant's BEGIN, set_config, SELECT, COMMIT took four round trips for).
// It is sent unprepared (QueryExecModeExec): a prepared statement per
// tenant would fill each connection's statement cache.
func (db *DB) GetUserAuth(ctx context.Context, schemaName, id string) (UserAuth, error) {
	if err := domain.ValidateSchemaName(schemaName); err != nil {
		return UserAuth{}, err
	}
	on, cluster, err := db.ForTenant(ctx, schemaName)
	if err != nil {
		return UserAuth{}, err
	}
	// In place of InTenant's lock_timeout: a primary-key read waits only
	// behind DDL holding the table (a migration, a moved schema's drop).
	qctx, cancel := context.WithTimeout(ctx, userAuthTimeout)
	defer cancel()
	var ua UserAuth
	err = on.Pool.QueryRow(qctx, `SELECT is_active, is_staff, token_generation FROM `+
		pgx.Identifier{schemaName, "users"}.Sanitize()+` WHERE id = $1`, pgx.QueryExecModeExec, id).
		Scan(&ua.Active, &ua.Staff, &ua.Generation)
	switch {
	case errors.Is(err, pgx.ErrNoRows) || HasCode(err, "22P02"): // 22P02: not a UUID
		return UserAuth{}, domain.Errorf(domain.ENOTFOUND, "user not found")
	case err != nil && ctx.Err() == nil && errors.Is(qctx.Err(), context.DeadlineExceeded):
		return UserAuth{}, fmt.Errorf("postgres: user auth: %w: %w", &domain.Error{Code: domain.EUNAVAILABLE,
			Message: "the tenant is busy; try again", RetryAfter: time.Second}, err)
	case err != nil:
		err, _ = db.checkMoved(ctx, schemaName, cluster, Translate(err))
		return UserAuth{}, fmt.Errorf("postgres: user auth: %w", err)
	}
	return ua, nil
}

// userAuthTimeout bounds GetUserAuth's read as TenantLockTimeout bounds a
// tenant transaction's wait for a lock.
const userAuthTimeout = 5 * time.Second

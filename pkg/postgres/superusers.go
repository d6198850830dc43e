package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/domain"
)

var errSuperuserNotFound = domain.Errorf(domain.ENOTFOUND, "superuser not found")

// SuperuserCredentials returns a platform superuser, active or not, with
// the password hash, by email. Errors: ENOTFOUND.
func (db *DB) SuperuserCredentials(ctx context.Context, email string) (domain.Superuser, string, error) {
	var (
		s    domain.Superuser
		hash string
	)
	err := db.Pool.QueryRow(ctx,
		`SELECT id, email, is_active, created_at, token_generation, password_hash FROM public.superusers WHERE email = $1`,
		email).Scan(&s.ID, &s.Email, &s.IsActive, &s.CreatedAt, &s.TokenGeneration, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Superuser{}, "", errSuperuserNotFound
	}
	if err != nil {
		return domain.Superuser{}, "", fmt.Errorf("postgres: superuser credentials: %w", Translate(err))
	}
	return s, hash, nil
}

// SuperuserAuth returns what every platform request is judged by: whether
// the superuser with this id is active (Staff is always true) and their
// token generation. One primary-key lookup, made on every platform
// request. Errors: ENOTFOUND when no such superuser exists.
func (db *DB) SuperuserAuth(ctx context.Context, id string) (UserAuth, error) {
	if _, err := uuid.Parse(id); err != nil {
		return UserAuth{}, errSuperuserNotFound
	}
	ua := UserAuth{Staff: true}
	err := db.Pool.QueryRow(ctx, `SELECT is_active, token_generation FROM public.superusers WHERE id = $1`, id).Scan(&ua.Active, &ua.Generation)
	if errors.Is(err, pgx.ErrNoRows) {
		return UserAuth{}, errSuperuserNotFound
	}
	if err != nil {
		return UserAuth{}, fmt.Errorf("postgres: superuser auth: %w", Translate(err))
	}
	return ua, nil
}

// SetSuperuserPassword replaces a superuser's password hash and moves them
// to the next token generation, which revokes every platform token issued
// before; it returns the superuser as committed. Errors: ENOTFOUND.
func (db *DB) SetSuperuserPassword(ctx context.Context, id, passwordHash string) (domain.Superuser, error) {
	if _, err := uuid.Parse(id); err != nil {
		return domain.Superuser{}, errSuperuserNotFound
	}
	var s domain.Superuser
	err := db.Pool.QueryRow(ctx,
		`UPDATE public.superusers SET password_hash = $2, token_generation = token_generation + 1
		 WHERE id = $1 RETURNING id, email, is_active, created_at, token_generation`,
		id, passwordHash).Scan(&s.ID, &s.Email, &s.IsActive, &s.CreatedAt, &s.TokenGeneration)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Superuser{}, errSuperuserNotFound
	}
	if err != nil {
		return domain.Superuser{}, fmt.Errorf("postgres: set superuser password: %w", Translate(err))
	}
	return s, nil
}

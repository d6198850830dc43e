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
		`SELECT id, email, is_active, created_at, password_hash FROM public.superusers WHERE email = $1`,
		email).Scan(&s.ID, &s.Email, &s.IsActive, &s.CreatedAt, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Superuser{}, "", errSuperuserNotFound
	}
	if err != nil {
		return domain.Superuser{}, "", fmt.Errorf("postgres: superuser credentials: %w", Translate(err))
	}
	return s, hash, nil
}

// SuperuserActive reports whether the superuser with this id is active:
// one primary-key lookup, made on every platform request. Errors:
// ENOTFOUND when no such superuser exists.
func (db *DB) SuperuserActive(ctx context.Context, id string) (bool, error) {
	if _, err := uuid.Parse(id); err != nil {
		return false, errSuperuserNotFound
	}
	var active bool
	err := db.Pool.QueryRow(ctx, `SELECT is_active FROM public.superusers WHERE id = $1`, id).Scan(&active)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, errSuperuserNotFound
	}
	if err != nil {
		return false, fmt.Errorf("postgres: superuser active: %w", Translate(err))
	}
	return active, nil
}

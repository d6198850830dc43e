package postgres

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/domain"
)

const userColumns = `id, email, is_staff, is_active, created_at, updated_at, token_generation`

func scanUser(row pgx.Row) (domain.User, error) {
	var u domain.User
	err := row.Scan(&u.ID, &u.Email, &u.IsStaff, &u.IsActive, &u.CreatedAt, &u.UpdatedAt, &u.TokenGeneration)
	return u, err
}

var errUserNotFound = domain.Errorf(domain.ENOTFOUND, "user not found")

// UserListParams select a page of a tenant's users, ordered by email.
type UserListParams struct {
	Limit  int    // 1..100
	Cursor string // "" for the first page, else a next cursor of an earlier page
}

// ListUsers returns one page of the tenant's users ordered by email (keyset
// pagination on the unique email index) and the cursor of the next page (""
// at the end). Errors: EINVALID naming limit or cursor.
func (db *DB) ListUsers(ctx context.Context, schemaName string, p UserListParams) ([]domain.User, string, error) {
	if err := checkLimit(p.Limit); err != nil {
		return nil, "", err
	}
	sql := `SELECT ` + userColumns + ` FROM users`
	args := []any{p.Limit + 1}
	if p.Cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(p.Cursor)
		if err != nil || len(raw) == 0 || len(raw) > 254 || !utf8.Valid(raw) || bytes.IndexByte(raw, 0) >= 0 { // text cannot hold NUL
			return nil, "", badCursor()
		}
		sql += ` WHERE email > $2`
		args = append(args, string(raw))
	}
	sql += ` ORDER BY email LIMIT $1`
	var out []domain.User
	err := db.InTenant(ctx, schemaName, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.User, error) { return scanUser(r) })
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list users: %w", err)
	}
	next := ""
	if len(out) > p.Limit {
		out = out[:p.Limit]
		next = base64.RawURLEncoding.EncodeToString([]byte(out[len(out)-1].Email))
	}
	return out, next, nil
}

// GetUser returns one user of the tenant. Errors: ENOTFOUND.
func (db *DB) GetUser(ctx context.Context, schemaName, id string) (domain.User, error) {
	if _, err := parseUUID(id); err != nil {
		return domain.User{}, errUserNotFound
	}
	var u domain.User
	err := db.InTenant(ctx, schemaName, func(tx pgx.Tx) (err error) {
		u, err = scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.User{}, errUserNotFound
	}
	if err != nil {
		return domain.User{}, fmt.Errorf("postgres: get user: %w", err)
	}
	return u, nil
}

// UserPatch carries the flags an admin changes; nil leaves a flag alone.
type UserPatch struct {
	IsActive *bool
	IsStaff  *bool
}

// UpdateUser applies p to a user and returns the user as committed.
// Errors: ENOTFOUND.
func (db *DB) UpdateUser(ctx context.Context, schemaName, id string, p UserPatch) (domain.User, error) {
	if _, err := parseUUID(id); err != nil {
		return domain.User{}, errUserNotFound
	}
	var u domain.User
	err := db.InTenant(ctx, schemaName, func(tx pgx.Tx) (err error) {
		u, err = scanUser(tx.QueryRow(ctx,
			`UPDATE users SET is_active = coalesce($2, is_active), is_staff = coalesce($3, is_staff), updated_at = now()
			 WHERE id = $1 RETURNING `+userColumns, id, p.IsActive, p.IsStaff))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.User{}, errUserNotFound
	}
	if err != nil {
		return domain.User{}, fmt.Errorf("postgres: update user: %w", err)
	}
	return u, nil
}

// AnyGeneration makes a password change apply whatever the account's
// token generation (see SetUserPassword).
const AnyGeneration = -1

// ErrGenerationMoved is returned by a password change made at a token
// generation the account is no longer at: its password changed meanwhile.
var ErrGenerationMoved = domain.Errorf(domain.ECONFLICT, "the password was changed meanwhile")

// SetUserPassword replaces a user's password hash and moves the user to
// the next token generation, which revokes every token issued before; it
// returns the user as committed. With ifGeneration other than
// AnyGeneration the change applies only while the user is still at that
// generation. Errors: ENOTFOUND, ErrGenerationMoved.
func (db *DB) SetUserPassword(ctx context.Context, schemaName, id, passwordHash string, ifGeneration int64) (domain.User, error) {
	if _, err := parseUUID(id); err != nil {
		return domain.User{}, errUserNotFound
	}
	var u domain.User
	err := db.InTenant(ctx, schemaName, func(tx pgx.Tx) (err error) {
		u, err = scanUser(tx.QueryRow(ctx,
			`UPDATE users SET password_hash = $2, token_generation = token_generation + 1, updated_at = now()
			 WHERE id = $1 AND ($3::bigint = -1 OR token_generation = $3) RETURNING `+userColumns, id, passwordHash, ifGeneration))
		if errors.Is(err, pgx.ErrNoRows) && ifGeneration != AnyGeneration {
			var found bool
			if err := tx.QueryRow(ctx, `SELECT true FROM users WHERE id = $1`, id).Scan(&found); err == nil {
				return ErrGenerationMoved
			}
		}
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.User{}, errUserNotFound
	}
	if err != nil {
		return domain.User{}, fmt.Errorf("postgres: set user password: %w", err)
	}
	return u, nil
}

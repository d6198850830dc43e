package postgres

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"unicode/utf8"

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

const superuserColumns = `id, email, is_active, created_at, token_generation`

func scanSuperuser(row pgx.Row) (domain.Superuser, error) {
	var s domain.Superuser
	err := row.Scan(&s.ID, &s.Email, &s.IsActive, &s.CreatedAt, &s.TokenGeneration)
	return s, err
}

// ListSuperusers returns one page of the platform's superusers ordered by
// email (keyset pagination on the unique email index) and the cursor of
// the next page ("" at the end). Errors: EINVALID naming limit or cursor.
func (db *DB) ListSuperusers(ctx context.Context, limit int, cursor string) ([]domain.Superuser, string, error) {
	if err := checkLimit(limit); err != nil {
		return nil, "", err
	}
	sql := `SELECT ` + superuserColumns + ` FROM public.superusers`
	args := []any{limit + 1}
	if cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || len(raw) == 0 || len(raw) > 254 || !utf8.Valid(raw) || bytes.IndexByte(raw, 0) >= 0 {
			return nil, "", badCursor()
		}
		sql += ` WHERE email > $2`
		args = append(args, string(raw))
	}
	sql += ` ORDER BY email LIMIT $1`
	rows, err := db.Pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list superusers: %w", Translate(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Superuser, error) { return scanSuperuser(r) })
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list superusers: %w", Translate(err))
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = base64.RawURLEncoding.EncodeToString([]byte(out[len(out)-1].Email))
	}
	return out, next, nil
}

// GetSuperuser returns one superuser. Errors: ENOTFOUND.
func (db *DB) GetSuperuser(ctx context.Context, id string) (domain.Superuser, error) {
	if _, err := parseUUID(id); err != nil {
		return domain.Superuser{}, errSuperuserNotFound
	}
	s, err := scanSuperuser(db.Pool.QueryRow(ctx, `SELECT `+superuserColumns+` FROM public.superusers WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Superuser{}, errSuperuserNotFound
	}
	if err != nil {
		return domain.Superuser{}, fmt.Errorf("postgres: get superuser: %w", Translate(err))
	}
	return s, nil
}

// ErrLastSuperuser is returned by SetSuperuserActive for the deactivation
// of the last active superuser: nobody could sign in to the platform to
// undo it.
var ErrLastSuperuser = &domain.Error{Code: domain.ECONFLICT, Message: "this is the last active superuser; activate or create another one first",
	Details: map[string]string{"is_active": "cannot be cleared on the last active superuser"}}

// SetSuperuserActive activates or deactivates a superuser, with a's
// platform audit entries when it changes, and returns the superuser as
// committed. The active superusers' rows are locked first, so that of two
// concurrent deactivations of the last two, the second sees the first and
// is refused. Errors: ENOTFOUND, ErrLastSuperuser.
func (db *DB) SetSuperuserActive(ctx context.Context, id string, active bool, a AuditFunc[domain.Superuser]) (domain.Superuser, error) {
	if _, err := parseUUID(id); err != nil {
		return domain.Superuser{}, errSuperuserNotFound
	}
	var s domain.Superuser
	err := db.InTx(ctx, func(tx pgx.Tx) error {
		if !active {
			// A waiting FOR UPDATE re-reads each row a concurrent
			// transaction changed, and drops it once no longer active.
			rows, err := tx.Query(ctx, `SELECT id FROM public.superusers WHERE is_active ORDER BY id FOR UPDATE`)
			if err != nil {
				return err
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			if len(ids) == 1 && ids[0] == id {
				return ErrLastSuperuser
			}
		}
		old, err := scanSuperuser(tx.QueryRow(ctx, `SELECT `+superuserColumns+` FROM public.superusers WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		if old.IsActive == active {
			s = old
			return nil
		}
		s, err = scanSuperuser(tx.QueryRow(ctx, `UPDATE public.superusers SET is_active = $2 WHERE id = $1 RETURNING `+superuserColumns, id, active))
		if err != nil {
			return err
		}
		return writeAudits(ctx, tx, WritePlatformAudit, a, old, s)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Superuser{}, errSuperuserNotFound
	}
	if err != nil {
		return domain.Superuser{}, fmt.Errorf("postgres: set superuser active: %w", err)
	}
	return s, nil
}

// SetSuperuserPassword replaces a superuser's password hash and moves them
// to the next token generation, which revokes every platform token issued
// before, with a's platform audit entries; it returns the superuser as
// committed. Errors: ENOTFOUND.
func (db *DB) SetSuperuserPassword(ctx context.Context, id, passwordHash string, a AuditFunc[domain.Superuser]) (domain.Superuser, error) {
	if _, err := parseUUID(id); err != nil {
		return domain.Superuser{}, errSuperuserNotFound
	}
	var s domain.Superuser
	err := db.InTx(ctx, func(tx pgx.Tx) (err error) {
		s, err = scanSuperuser(tx.QueryRow(ctx,
			`UPDATE public.superusers SET password_hash = $2, token_generation = token_generation + 1
			 WHERE id = $1 RETURNING `+superuserColumns, id, passwordHash))
		if err != nil {
			return err
		}
		return writeAudits(ctx, tx, WritePlatformAudit, a, s, s)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Superuser{}, errSuperuserNotFound
	}
	if err != nil {
		return domain.Superuser{}, fmt.Errorf("postgres: set superuser password: %w", err)
	}
	return s, nil
}

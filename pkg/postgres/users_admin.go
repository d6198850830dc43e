package postgres

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
	// Q, when set, keeps the users whose email contains it, whatever the
	// case; its % and _ match themselves.
	Q string
	// IsStaff and IsActive, when set, keep the users with that flag.
	IsStaff, IsActive *bool
}

// likeEscaper makes a string match itself in a LIKE pattern (with ESCAPE '\').
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// ListUsers returns one page of the tenant's users that match p, ordered
// by email (keyset pagination on the unique email index), and the cursor
// of the next page ("" at the end). The filters combine. Errors: EINVALID
// naming limit or cursor.
func (db *DB) ListUsers(ctx context.Context, schemaName string, p UserListParams) ([]domain.User, string, error) {
	if err := checkLimit(p.Limit); err != nil {
		return nil, "", err
	}
	var where []string
	args := []any{p.Limit + 1}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if p.Cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(p.Cursor)
		if err != nil || len(raw) == 0 || len(raw) > 254 || !utf8.Valid(raw) || bytes.IndexByte(raw, 0) >= 0 { // text cannot hold NUL
			return nil, "", badCursor()
		}
		where = append(where, `email > `+arg(string(raw)))
	}
	if p.Q != "" {
		if !utf8.ValidString(p.Q) || strings.IndexByte(p.Q, 0) >= 0 {
			return nil, "", &domain.Error{Code: domain.EINVALID, Message: "invalid search", Details: map[string]string{"q": "must be text"}}
		}
		where = append(where, `email ILIKE `+arg("%"+likeEscaper.Replace(p.Q)+"%")+` ESCAPE '\'`)
	}
	if p.IsStaff != nil {
		where = append(where, `is_staff = `+arg(*p.IsStaff))
	}
	if p.IsActive != nil {
		where = append(where, `is_active = `+arg(*p.IsActive))
	}
	sql := `SELECT ` + userColumns + ` FROM users`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, ` AND `)
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

// UserPatch carries what an admin changes; nil leaves a field alone.
type UserPatch struct {
	Email    *string // normalized
	IsActive *bool
	IsStaff  *bool
	// Audit, when set, builds the change's audit entries from the user as
	// it was (read under a row lock) and as committed.
	Audit AuditFunc[domain.User]
}

var errEmailTaken = &domain.Error{Code: domain.ECONFLICT, Message: "email already in use", Details: map[string]string{"email": "is already taken"}}

// UpdateUser applies p to a user and returns the user as committed.
// Errors: ENOTFOUND, ECONFLICT when the new email is taken.
func (db *DB) UpdateUser(ctx context.Context, schemaName, id string, p UserPatch) (domain.User, error) {
	if _, err := parseUUID(id); err != nil {
		return domain.User{}, errUserNotFound
	}
	var u domain.User
	err := db.InTenant(ctx, schemaName, func(tx pgx.Tx) error {
		old, err := scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		u, err = scanUser(tx.QueryRow(ctx,
			`UPDATE users SET email = coalesce($2, email), is_active = coalesce($3, is_active), is_staff = coalesce($4, is_staff), updated_at = now()
			 WHERE id = $1 RETURNING `+userColumns, id, p.Email, p.IsActive, p.IsStaff))
		if err != nil {
			return err
		}
		return writeAudits(ctx, tx, WriteTenantAudit, p.Audit, old, u)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.User{}, errUserNotFound
	}
	if IsUniqueViolation(err, "users_email_key") {
		return domain.User{}, errEmailTaken
	}
	if err != nil {
		return domain.User{}, fmt.Errorf("postgres: update user: %w", err)
	}
	return u, nil
}

// DeleteUser deletes a user and their notifications in one transaction;
// the audit entries naming them stay. a builds the deletion's
// audit entries (new is the zero User). Errors: ENOTFOUND.
func (db *DB) DeleteUser(ctx context.Context, schemaName, id string, a AuditFunc[domain.User]) (domain.User, error) {
	if _, err := parseUUID(id); err != nil {
		return domain.User{}, errUserNotFound
	}
	var old domain.User
	err := db.InTenant(ctx, schemaName, func(tx pgx.Tx) (err error) {
		old, err = scanUser(tx.QueryRow(ctx, `DELETE FROM users WHERE id = $1 RETURNING `+userColumns, id))
		if err != nil {
			return err
		}
		// No foreign key does this (its per-row check was the notifier's
		// largest cost). The lock waits for a notifier's transaction that
		// may have taken the user as a recipient before this deletion
		// commits, and the DELETE, a later statement, sees its rows; a
		// notifier that locks after this reads users once this commits.
		// Users before notifications, the order a tenant move locks them.
		if _, err := tx.Exec(ctx, `LOCK TABLE notifications IN ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM notifications WHERE user_id = $1`, id); err != nil {
			return err
		}
		return writeAudits(ctx, tx, WriteTenantAudit, a, old, domain.User{})
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.User{}, errUserNotFound
	}
	if err != nil {
		return domain.User{}, fmt.Errorf("postgres: delete user: %w", err)
	}
	return old, nil
}

// SetUsersActive sets is_active on the users of ids in one transaction,
// with a's audit entries for every user it changes, and returns the users
// it changed as committed and the ids no user has. A user already in that
// state is neither changed nor audited. ids must be UUIDs.
func (db *DB) SetUsersActive(ctx context.Context, schemaName string, ids []string, active bool, a AuditFunc[domain.User]) (changed []domain.User, notFound []string, err error) {
	err = db.InTenant(ctx, schemaName, func(tx pgx.Tx) error {
		changed, notFound = nil, nil
		// Locked in id order, so two bulk changes never deadlock.
		rows, err := tx.Query(ctx, `SELECT `+userColumns+` FROM users WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`, ids)
		if err != nil {
			return err
		}
		olds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.User, error) { return scanUser(r) })
		if err != nil {
			return err
		}
		found := make(map[string]bool, len(olds))
		for _, old := range olds {
			found[old.ID] = true
			if old.IsActive == active {
				continue
			}
			u, err := scanUser(tx.QueryRow(ctx,
				`UPDATE users SET is_active = $2, updated_at = now() WHERE id = $1 RETURNING `+userColumns, old.ID, active))
			if err != nil {
				return err
			}
			if err := writeAudits(ctx, tx, WriteTenantAudit, a, old, u); err != nil {
				return err
			}
			changed = append(changed, u)
		}
		for _, id := range ids {
			if !found[id] {
				notFound = append(notFound, id)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: set users active: %w", err)
	}
	return changed, notFound, nil
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
// generation. a builds the change's audit entries (the hash is no field of
// a User: no entry can hold it). Errors: ENOTFOUND, ErrGenerationMoved.
func (db *DB) SetUserPassword(ctx context.Context, schemaName, id, passwordHash string, ifGeneration int64, a AuditFunc[domain.User]) (domain.User, error) {
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
		if err != nil {
			return err
		}
		return writeAudits(ctx, tx, WriteTenantAudit, a, u, u)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.User{}, errUserNotFound
	}
	if err != nil {
		return domain.User{}, fmt.Errorf("postgres: set user password: %w", err)
	}
	return u, nil
}

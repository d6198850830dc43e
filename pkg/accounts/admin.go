package accounts

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"unicode/utf8"

	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
)

// userFields are the audited fields of a user; never the password hash.
func userFields(u domain.User) map[string]any {
	if u.ID == "" {
		return map[string]any{}
	}
	return map[string]any{"email": u.Email, "is_staff": u.IsStaff, "is_active": u.IsActive}
}

func userTarget(id string) audit.Target { return audit.Target{Type: "user", ID: id} }

// auditUserCreate is the user.create entry of a new user.
func auditUserCreate(ctx context.Context) postgres.AuditFunc[domain.User] {
	return func(_, u domain.User) []audit.Entry {
		return []audit.Entry{audit.New(ctx, "user.create", userTarget(u.ID), audit.Diff(nil, userFields(u)))}
	}
}

// auditUserUpdate is the entry of a change of a user's email or flags:
// user.activate or user.deactivate when is_active alone changed, else
// user.update; none when nothing changed.
func auditUserUpdate(ctx context.Context) postgres.AuditFunc[domain.User] {
	return func(old, u domain.User) []audit.Entry {
		ch := audit.Diff(userFields(old), userFields(u))
		if len(ch) == 0 {
			return nil
		}
		action := "user.update"
		if _, ok := ch["is_active"]; ok && len(ch) == 1 {
			action = "user.deactivate"
			if u.IsActive {
				action = "user.activate"
			}
		}
		return []audit.Entry{audit.New(ctx, action, userTarget(u.ID), ch)}
	}
}

// auditUserDelete is the user.delete entry, with the fields the user had.
func auditUserDelete(ctx context.Context) postgres.AuditFunc[domain.User] {
	return func(old, _ domain.User) []audit.Entry {
		return []audit.Entry{audit.New(ctx, "user.delete", userTarget(old.ID), audit.Diff(userFields(old), nil))}
	}
}

// auditUser is an entry of action with no changes (a password reset or
// change: no value of a password is ever recorded).
func auditUser(ctx context.Context, action string) postgres.AuditFunc[domain.User] {
	return func(_, u domain.User) []audit.Entry {
		return []audit.Entry{audit.New(ctx, action, userTarget(u.ID), nil)}
	}
}

// auditSuperuser is a platform entry of action on a superuser, with the
// changes of its email and is_active.
func auditSuperuser(ctx context.Context, action string) postgres.AuditFunc[domain.Superuser] {
	fields := func(s domain.Superuser) map[string]any {
		if s.ID == "" {
			return nil
		}
		return map[string]any{"email": s.Email, "is_active": s.IsActive}
	}
	return func(old, s domain.Superuser) []audit.Entry {
		return []audit.Entry{audit.New(ctx, action, audit.Target{Type: "superuser", ID: s.ID}, audit.Diff(fields(old), fields(s)))}
	}
}

// UserQuery selects a page of a tenant's users (see postgres.UserListParams).
type UserQuery = postgres.UserListParams

// ListUsers returns a page of a tenant's users matching q, by email, and
// the next page's cursor ("" at the end). Errors: EINVALID naming limit,
// cursor or q (at most 254 characters of text).
func (s *Service) ListUsers(ctx context.Context, schemaName string, q UserQuery) ([]domain.User, string, error) {
	if len(q.Q) > 254 || !utf8.ValidString(q.Q) {
		return nil, "", &domain.Error{Code: domain.EINVALID, Message: "invalid search", Details: map[string]string{"q": "must be text of at most 254 bytes"}}
	}
	us, next, err := s.store.ListUsers(ctx, schemaName, q)
	if err != nil {
		return nil, "", fmt.Errorf("accounts: list users: %w", err)
	}
	return us, next, nil
}

// DeleteUser deletes a tenant's user on behalf of actorID, with its
// user.delete audit entry; their notifications go, the audit entries
// naming them stay. Once committed their cached flags are dropped, so
// their tokens stop working at once. Nobody deletes themselves
// (ECONFLICT). Errors: ENOTFOUND, ECONFLICT.
func (s *Service) DeleteUser(ctx context.Context, schemaName, actorID, id string) error {
	if !domain.CanonicalID(id) {
		return ErrUserNotFound
	}
	if id == actorID {
		return &domain.Error{Code: domain.ECONFLICT, Message: "you cannot delete your own account; ask another staff member"}
	}
	if _, err := s.store.DeleteUser(ctx, schemaName, id, auditUserDelete(ctx)); err != nil {
		return fmt.Errorf("accounts: delete user: %w", err)
	}
	s.dropFlags(ctx, schemaName, id)
	return nil
}

// dropFlags forgets a deleted user's cached flags; a failure is logged
// (the cache entry's TTL bounds it, as in storeFlags).
func (s *Service) dropFlags(ctx context.Context, schemaName, id string) {
	if s.flags == nil {
		s.log.ErrorContext(ctx, "no user flag cache configured; cached flags expire on their own",
			slog.String("tenant", schemaName), slog.String("user", id))
		return
	}
	if err := s.flags.Drop(context.WithoutCancel(ctx), schemaName, id); err != nil {
		s.log.WarnContext(ctx, "could not drop the cached user flags; they expire on their own",
			slog.String("tenant", schemaName), slog.String("user", id), slog.Any("error", err))
	}
}

// BulkResult is the outcome of a bulk action: how many objects it changed
// and the ids that name none.
type BulkResult struct {
	Changed  int
	NotFound []string
}

// SetUsersActive activates or deactivates the users of ids on behalf of
// actorID, in one transaction, with a user.activate or user.deactivate
// entry per user it changes (users already in that state are left alone).
// Deactivating the caller is refused, the whole request with it. Once
// committed the changed users' cached flags are overwritten. Errors:
// EINVALID naming ids (1 to 500 canonical ids), ECONFLICT.
func (s *Service) SetUsersActive(ctx context.Context, schemaName, actorID string, ids []string, active bool) (BulkResult, error) {
	ids, err := domain.BulkIDs(ids)
	if err != nil {
		return BulkResult{}, err
	}
	if !active && slices.Contains(ids, actorID) {
		return BulkResult{}, errSelfDeactivation
	}
	changed, notFound, err := s.store.SetUsersActive(ctx, schemaName, ids, active, auditUserUpdate(ctx))
	if err != nil {
		return BulkResult{}, fmt.Errorf("accounts: set users active: %w", err)
	}
	for _, u := range changed {
		s.storeFlags(ctx, schemaName, u)
	}
	return BulkResult{Changed: len(changed), NotFound: notFound}, nil
}

// ErrSuperuserNotFound is returned for a superuser that does not exist,
// and for an id in any spelling but the canonical one.
var ErrSuperuserNotFound = domain.Errorf(domain.ENOTFOUND, "superuser not found")

// ListSuperusers returns a page of the platform's superusers by email and
// the next page's cursor ("" at the end). Errors: EINVALID naming limit or
// cursor.
func (s *Service) ListSuperusers(ctx context.Context, limit int, cursor string) ([]domain.Superuser, string, error) {
	out, next, err := s.store.ListSuperusers(ctx, limit, cursor)
	if err != nil {
		return nil, "", fmt.Errorf("accounts: list superusers: %w", err)
	}
	return out, next, nil
}

// SetSuperuserActive activates or deactivates a superuser, with its
// superuser.activate or superuser.deactivate platform entry when it
// changes. The platform routes read a superuser's state on every request,
// so a deactivated superuser's tokens stop at once. The last active
// superuser cannot be deactivated (postgres.ErrLastSuperuser, checked
// under a lock). Errors: ENOTFOUND, ECONFLICT.
func (s *Service) SetSuperuserActive(ctx context.Context, id string, active bool) (domain.Superuser, error) {
	if !domain.CanonicalID(id) {
		return domain.Superuser{}, ErrSuperuserNotFound
	}
	action := "superuser.deactivate"
	if active {
		action = "superuser.activate"
	}
	su, err := s.store.SetSuperuserActive(ctx, id, active, auditSuperuser(ctx, action))
	if err != nil {
		return domain.Superuser{}, fmt.Errorf("accounts: set superuser active: %w", err)
	}
	return su, nil
}

// FindUser returns a tenant's user by email (normalized first), for the
// command line, which names users by email. Errors: EINVALID, ENOTFOUND.
func (s *Service) FindUser(ctx context.Context, schemaName, email string) (domain.User, error) {
	e, err := domain.NormalizeEmail(email)
	if err != nil {
		return domain.User{}, err
	}
	u, _, err := s.store.UserCredentials(ctx, schemaName, e)
	if err != nil {
		return domain.User{}, fmt.Errorf("accounts: find user %s: %w", e, err)
	}
	return u, nil
}

// FindSuperuser returns a superuser by email (normalized first). Errors:
// EINVALID, ENOTFOUND.
func (s *Service) FindSuperuser(ctx context.Context, email string) (domain.Superuser, error) {
	e, err := domain.NormalizeEmail(email)
	if err != nil {
		return domain.Superuser{}, err
	}
	su, _, err := s.store.SuperuserCredentials(ctx, e)
	if err != nil {
		return domain.Superuser{}, fmt.Errorf("accounts: find superuser %s: %w", e, err)
	}
	return su, nil
}

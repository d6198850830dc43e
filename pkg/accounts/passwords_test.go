package accounts_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tenantworks/saas/pkg/accounts"
	"github.com/tenantworks/saas/pkg/auth"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/testenv"
)

func TestAPasswordPastBcryptsLimitCannotSignIn(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, 0)
	ctx := t.Context()
	longest := strings.Repeat("p", 72)
	if _, err := w.svc.CreateUser(ctx, w.schema, accounts.NewUser{Email: "long@x.test", Password: longest}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.CreateSuperuser(ctx, "long-root@x.test", longest); err != nil {
		t.Fatal(err)
	}
	for _, realm := range []string{w.schema, accounts.Platform} {
		email := map[string]string{w.schema: "long@x.test", accounts.Platform: "long-root@x.test"}[realm]
		if _, err := w.svc.Authenticate(ctx, realm, accounts.Credentials{Email: email, Password: longest}); err != nil {
			t.Fatalf("%s: the 72-byte password itself: %v, want a sign-in", realm, err)
		}
		// bcrypt reads 72 bytes: without the length check, any suffix
		// would sign in too.
		for _, suffix := range []string{"p", "-anything"} {
			_, err := w.svc.Authenticate(ctx, realm, accounts.Credentials{Email: email, Password: longest + suffix})
			if !errors.Is(err, accounts.ErrBadCredentials) {
				t.Fatalf("%s: the 72 bytes and %q: %v, want ErrBadCredentials", realm, suffix, err)
			}
		}
	}
}

func TestAPasswordResetMovesTheUserToTheNextTokenGeneration(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, 0)
	ctx := t.Context()
	u, err := w.svc.CreateUser(ctx, w.schema, accounts.NewUser{Email: "reset@x.test", Password: password, IsStaff: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := w.svc.Authenticate(ctx, w.schema, accounts.Credentials{Email: "reset@x.test", Password: password})
	if err != nil || p.Generation != 0 {
		t.Fatalf("a new user signs in at %+v, %v; want generation 0", p, err)
	}
	for gen := int64(1); gen <= 2; gen++ {
		if err := w.svc.SetPassword(ctx, w.schema, u.ID, "another-password"); err != nil {
			t.Fatal(err)
		}
		// The cache gets the new generation, with the flags unchanged, so
		// the next request with an older token is refused.
		if got := w.flags.got[w.schema+"/"+u.ID]; got.Generation != gen || !got.Active || !got.Staff {
			t.Fatalf("reset %d: cached %+v, want generation %d, active, staff", gen, got, gen)
		}
		p, err = w.svc.Authenticate(ctx, w.schema, accounts.Credentials{Email: "reset@x.test", Password: "another-password"})
		if err != nil || p.Generation != gen {
			t.Fatalf("reset %d: sign-in = %+v, %v; want generation %d", gen, p, err, gen)
		}
	}
	if _, err := w.svc.Authenticate(ctx, w.schema, accounts.Credentials{Email: "reset@x.test", Password: password}); !errors.Is(err, accounts.ErrBadCredentials) {
		t.Fatalf("the old password: %v, want ErrBadCredentials", err)
	}
	// Flags changed later keep the generation: a deactivation must not
	// bring older tokens back.
	if _, err := w.svc.UpdateUser(ctx, w.schema, "someone-else", u.ID, accounts.UserChange{IsStaff: new(bool)}); err != nil {
		t.Fatal(err)
	}
	if got := w.flags.got[w.schema+"/"+u.ID]; got.Generation != 2 || got.Staff {
		t.Fatalf("after a flag change: cached %+v, want generation 2, not staff", got)
	}
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, 0)
	ctx := t.Context()
	u, err := w.svc.CreateUser(ctx, w.schema, accounts.NewUser{Email: "me@x.test", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := w.svc.CreateUser(ctx, w.schema, accounts.NewUser{Email: "gone@x.test", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.UpdateUser(ctx, w.schema, u.ID, gone.ID, accounts.UserChange{IsActive: new(bool)}); err != nil {
		t.Fatal(err)
	}
	change := func(id string, gen int64, current, next string) (domain.User, error) {
		return w.svc.ChangePassword(ctx, w.schema, accounts.PasswordChange{UserID: id, Generation: gen, Current: current, New: next})
	}
	for _, c := range []struct {
		name          string
		id            string
		gen           int64
		current, next string
		code          string
		fields        []string
		is            error
	}{
		{"a wrong current password is a 422 naming current", u.ID, 0, "wrong-password", "new-password", domain.EINVALID, []string{"current"}, accounts.ErrWrongPassword},
		{"a missing current and a short new password are both named", u.ID, 0, "", "short", domain.EINVALID, []string{"current", "new"}, nil},
		{"a new password past 72 bytes is refused, not truncated", u.ID, 0, password, strings.Repeat("p", 73), domain.EINVALID, []string{"new"}, nil},
		{"a token of a later generation than the account's is refused", u.ID, 1, password, "new-password", domain.EUNAUTHORIZED, nil, auth.ErrBadToken},
		{"an inactive user is refused", gone.ID, 0, password, "new-password", domain.EUNAUTHORIZED, nil, auth.ErrBadToken},
		{"an unknown user is refused", "0197a000-0000-7000-8000-000000000000", 0, password, "new-password", domain.EUNAUTHORIZED, nil, auth.ErrBadToken},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := change(c.id, c.gen, c.current, c.next)
			if domain.ErrorCode(err) != c.code {
				t.Fatalf("error %v, want %s", err, c.code)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Fatalf("error %v, want %v", err, c.is)
			}
			for _, f := range c.fields {
				if domain.ErrorDetails(err)[f] == "" {
					t.Errorf("details %v do not name %s", domain.ErrorDetails(err), f)
				}
			}
		})
	}

	changed, err := change(u.ID, 0, password, "new-password")
	if err != nil || changed.TokenGeneration != 1 {
		t.Fatalf("change = %+v, %v; want generation 1", changed, err)
	}
	if got := w.flags.got[w.schema+"/"+u.ID]; got.Generation != 1 || !got.Active {
		t.Fatalf("cached %+v, want generation 1, active", got)
	}
	if _, err := w.svc.Authenticate(ctx, w.schema, accounts.Credentials{Email: "me@x.test", Password: password}); !errors.Is(err, accounts.ErrBadCredentials) {
		t.Fatalf("the old password: %v, want ErrBadCredentials", err)
	}
	if p, err := w.svc.Authenticate(ctx, w.schema, accounts.Credentials{Email: "me@x.test", Password: "new-password"}); err != nil || p.Generation != 1 {
		t.Fatalf("the new password: %+v, %v; want generation 1", p, err)
	}
	// A token of the generation before (issued before the change) cannot
	// change the password again, even knowing the current one.
	if _, err := change(u.ID, 0, "new-password", "third-password"); !errors.Is(err, auth.ErrBadToken) {
		t.Fatalf("a change with a revoked token: %v, want ErrBadToken", err)
	}
}

func TestPasswordChangesAreLimitedPerUser(t *testing.T) {
	t.Parallel()
	w := newWorld(t, mustRedis(t), 2)
	ctx := t.Context()
	var ids []string
	for _, email := range []string{"a@x.test", "b@x.test"} {
		u, err := w.svc.CreateUser(ctx, w.schema, accounts.NewUser{Email: email, Password: password})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	guess := func(id string) error {
		_, err := w.svc.ChangePassword(ctx, w.schema, accounts.PasswordChange{UserID: id, Current: "a-guess-" + testenv.RandomName(4), New: "new-password"})
		return err
	}
	for i := range 2 {
		if err := guess(ids[0]); !errors.Is(err, accounts.ErrWrongPassword) {
			t.Fatalf("guess %d: %v, want ErrWrongPassword", i+1, err)
		}
	}
	err := guess(ids[0])
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.ERATELIMITED || de.RetryAfter < time.Second || de.RetryAfter > time.Minute {
		t.Fatalf("third guess: %v, want rate limited with a retry within the minute", err)
	}
	if err := guess(ids[1]); !errors.Is(err, accounts.ErrWrongPassword) {
		t.Fatalf("another user: %v, want a bucket of their own", err)
	}
}

func TestASuperuserPasswordResetMovesThemToTheNextTokenGeneration(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, 0)
	ctx := t.Context()
	email := "root-" + testenv.RandomName(6) + "@x.test"
	su, err := w.svc.CreateSuperuser(ctx, email, password)
	if err != nil || su.TokenGeneration != 0 {
		t.Fatalf("create = %+v, %v; want generation 0", su, err)
	}
	su, err = w.svc.SetSuperuserPassword(ctx, su.ID, "another-password")
	if err != nil || su.TokenGeneration != 1 {
		t.Fatalf("reset = %+v, %v; want generation 1", su, err)
	}
	if p, err := w.svc.Authenticate(ctx, accounts.Platform, accounts.Credentials{Email: email, Password: "another-password"}); err != nil || p.Generation != 1 {
		t.Fatalf("sign-in = %+v, %v; want generation 1", p, err)
	}
	if _, err := w.svc.SetSuperuserPassword(ctx, su.ID, strings.Repeat("p", 73)); domain.ErrorCode(err) != domain.EINVALID {
		t.Fatalf("a 73-byte password: %v, want invalid", err)
	}
	if _, err := w.svc.SetSuperuserPassword(ctx, "0197a000-0000-7000-8000-000000000000", "another-password"); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("an unknown superuser: %v, want not found", err)
	}
}

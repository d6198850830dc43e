package accounts_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/tenantworks/saas/pkg/accounts"
	"github.com/tenantworks/saas/pkg/auth"
	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/pkg/testenv"
	"github.com/tenantworks/saas/schema"
)

const password = "correct-horse-battery"

// flags records the flags the service stored.
type flags struct {
	got     map[string]postgres.UserAuth
	dropped map[string]bool
}

var _ accounts.FlagCache = (*flags)(nil)

func (f *flags) Store(_ context.Context, schemaName, id string, ua postgres.UserAuth) error {
	f.got[schemaName+"/"+id] = ua
	return nil
}

func (f *flags) Drop(_ context.Context, schemaName, id string) error {
	delete(f.got, schemaName+"/"+id)
	f.dropped[schemaName+"/"+id] = true
	return nil
}

type world struct {
	svc    *accounts.Service
	flags  *flags
	schema string
	db     *postgres.DB
}

// newWorld is a tenant on a fresh database, and the service with a sign-in
// limiter of limit attempts a minute on the real Redis (nil rdb: none).
func newWorld(t *testing.T, rdb redis.UniversalClient, limit int) *world {
	t.Helper()
	db := testenv.MustDatabase(t)
	runner, err := schema.NewRunner(db.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	name := "acc" + testenv.RandomName(6)
	mgr := tenancy.NewManager(db.DB, runner, slog.New(slog.DiscardHandler))
	if _, err := mgr.Create(t.Context(), tenancy.CreateParams{Schema: name, Name: "Accounts", Domain: name + ".test"}); err != nil {
		t.Fatal(err)
	}
	f := &flags{got: map[string]postgres.UserAuth{}, dropped: map[string]bool{}}
	deps := accounts.Deps{Store: db.DB, Flags: f, Log: slog.New(slog.DiscardHandler)}
	if rdb != nil {
		deps.Limiter = cache.NewLimiter(rdb, cache.Keys{}, limit, time.Minute)
	}
	svc, err := accounts.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	return &world{svc: svc, flags: f, schema: name, db: db.DB}
}

func mustRedis(t *testing.T) redis.UniversalClient {
	t.Helper()
	rdb, err := cache.Open(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func TestCreateUserChecksEveryField(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, 0)
	cases := []struct {
		name   string
		user   accounts.NewUser
		fields []string
	}{
		{"a bad email and a short password are both named", accounts.NewUser{Email: "nope", Password: "short"}, []string{"email", "password"}},
		{"a password past bcrypt's 72 bytes is refused, not truncated", accounts.NewUser{Email: "a@x.test", Password: strings.Repeat("p", 73)}, []string{"password"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := w.svc.CreateUser(t.Context(), w.schema, c.user)
			if domain.ErrorCode(err) != domain.EINVALID {
				t.Fatalf("error %v, want invalid", err)
			}
			for _, f := range c.fields {
				if domain.ErrorDetails(err)[f] == "" {
					t.Errorf("details %v do not name %s", domain.ErrorDetails(err), f)
				}
			}
		})
	}
	u, err := w.svc.CreateUser(t.Context(), w.schema, accounts.NewUser{Email: " Ann@Example.TEST ", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "ann@example.test" || u.IsStaff || !u.IsActive {
		t.Fatalf("created %+v, want a normalized email, not staff, active", u)
	}
	if _, err := w.svc.CreateUser(t.Context(), w.schema, accounts.NewUser{Email: "ann@example.test", Password: password}); domain.ErrorCode(err) != domain.ECONFLICT {
		t.Fatalf("second user with the same email: %v, want conflict", err)
	}
}

func TestAuthenticateAnswersOneWayForEveryFailure(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, 0)
	ctx := t.Context()
	staff, err := w.svc.CreateUser(ctx, w.schema, accounts.NewUser{Email: "staff@x.test", Password: password, IsStaff: true})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := w.svc.CreateUser(ctx, w.schema, accounts.NewUser{Email: "gone@x.test", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.UpdateUser(ctx, w.schema, staff.ID, gone.ID, accounts.UserChange{IsActive: new(bool)}); err != nil {
		t.Fatal(err)
	}
	su, err := w.svc.CreateSuperuser(ctx, "root@x.test", password)
	if err != nil {
		t.Fatal(err)
	}

	p, err := w.svc.Authenticate(ctx, w.schema, accounts.Credentials{Email: "STAFF@x.test", Password: password})
	if err != nil || p.ID != staff.ID || !p.Staff {
		t.Fatalf("staff sign-in = %+v, %v; want the staff user", p, err)
	}
	p, err = w.svc.Authenticate(ctx, accounts.Platform, accounts.Credentials{Email: "root@x.test", Password: password})
	if err != nil || p.ID != su.ID {
		t.Fatalf("superuser sign-in = %+v, %v; want the superuser", p, err)
	}
	for _, c := range []struct {
		name, realm, email, password string
	}{
		{"a wrong password", w.schema, "staff@x.test", password + "!"},
		{"an unknown email", w.schema, "nobody@x.test", password},
		{"a deactivated user", w.schema, "gone@x.test", password},
		{"a tenant user on the platform", accounts.Platform, "staff@x.test", password},
		{"a superuser on a tenant", w.schema, "root@x.test", password},
	} {
		t.Run(c.name+" is refused as bad credentials", func(t *testing.T) {
			_, err := w.svc.Authenticate(ctx, c.realm, accounts.Credentials{Email: c.email, Password: c.password})
			if !errors.Is(err, accounts.ErrBadCredentials) {
				t.Fatalf("error %v, want ErrBadCredentials", err)
			}
		})
	}
	if _, err := w.svc.Authenticate(ctx, w.schema, accounts.Credentials{Email: "x", Password: ""}); domain.ErrorCode(err) != domain.EINVALID {
		t.Fatalf("malformed credentials: %v, want invalid", err)
	}
}

func TestSignInIsLimitedPerRealmAndAddress(t *testing.T) {
	t.Parallel()
	w := newWorld(t, mustRedis(t), 2)
	ctx := t.Context()
	addr := "192.0.2." + testenv.RandomName(3) // a bucket of this test's own
	try := func(realm, from string) error {
		_, err := w.svc.Authenticate(ctx, realm, accounts.Credentials{Email: "who@x.test", Password: "wrong-password", ClientAddr: from})
		return err
	}
	for i := range 2 {
		if err := try(w.schema, addr); !errors.Is(err, accounts.ErrBadCredentials) {
			t.Fatalf("attempt %d: %v, want bad credentials", i+1, err)
		}
	}
	err := try(w.schema, addr)
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.ERATELIMITED || de.RetryAfter < time.Second || de.RetryAfter > time.Minute {
		t.Fatalf("third attempt: %v, want rate limited with a retry within the minute", err)
	}
	if err := try(w.schema, addr+"9"); !errors.Is(err, accounts.ErrBadCredentials) {
		t.Fatalf("another address: %v, want its own bucket", err)
	}
	if err := try(accounts.Platform, addr); !errors.Is(err, accounts.ErrBadCredentials) {
		t.Fatalf("the platform realm: %v, want its own bucket", err)
	}
}

func TestSignInWorksWithTheLimiterDown(t *testing.T) {
	t.Parallel()
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = dead.Close() })
	w := newWorld(t, dead, 1)
	if _, err := w.svc.CreateUser(t.Context(), w.schema, accounts.NewUser{Email: "a@x.test", Password: password}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := w.svc.Authenticate(t.Context(), w.schema, accounts.Credentials{Email: "a@x.test", Password: password, ClientAddr: "192.0.2.1"}); err != nil {
			t.Fatalf("sign-in with Redis down: %v, want success", err)
		}
	}
}

func TestNobodyLocksThemselvesOut(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, 0)
	ctx := t.Context()
	me, err := w.svc.CreateUser(ctx, w.schema, accounts.NewUser{Email: "me@x.test", Password: password, IsStaff: true})
	if err != nil {
		t.Fatal(err)
	}
	other, err := w.svc.CreateUser(ctx, w.schema, accounts.NewUser{Email: "other@x.test", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	off := new(bool)
	for name, ch := range map[string]accounts.UserChange{"deactivate": {IsActive: off}, "revoke staff": {IsStaff: off}} {
		t.Run("staff cannot "+name+" themselves", func(t *testing.T) {
			if _, err := w.svc.UpdateUser(ctx, w.schema, me.ID, me.ID, ch); domain.ErrorCode(err) != domain.ECONFLICT {
				t.Fatalf("error %v, want conflict", err)
			}
			if _, err := w.svc.UpdateUser(ctx, w.schema, me.ID, strings.ToUpper(me.ID), ch); domain.ErrorCode(err) != domain.ENOTFOUND {
				t.Fatalf("upper-case spelling of the id: %v, want not found", err)
			}
		})
	}
	u, err := w.svc.UpdateUser(ctx, w.schema, me.ID, other.ID, accounts.UserChange{IsActive: off})
	if err != nil || u.IsActive {
		t.Fatalf("deactivate another user = %+v, %v", u, err)
	}
	if got := w.flags.got[w.schema+"/"+other.ID]; got.Active || got.Staff {
		t.Fatalf("cached flags %+v, want inactive, not staff", got)
	}
	if err := w.svc.SetPassword(ctx, w.schema, other.ID, "short"); domain.ErrorCode(err) != domain.EINVALID {
		t.Fatalf("short password: %v, want invalid", err)
	}
	if err := w.svc.SetPassword(ctx, w.schema, "0197a000-0000-7000-8000-000000000000", password); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("unknown user: %v, want not found", err)
	}
}

func TestNewNeedsAStore(t *testing.T) {
	t.Parallel()
	if _, err := accounts.New(accounts.Deps{}); !errors.Is(err, accounts.ErrNoStore) {
		t.Fatalf("New without a store = %v, want ErrNoStore", err)
	}
}

func TestMain(m *testing.M) {
	// bcrypt's production cost takes seconds a hash under -race on a busy
	// machine; these tests are about rules, not the cost.
	auth.PasswordCost = bcrypt.MinCost
	os.Exit(m.Run())
}

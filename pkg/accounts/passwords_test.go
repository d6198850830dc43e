package accounts_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tenantworks/saas/pkg/accounts"
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

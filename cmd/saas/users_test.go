package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// saasIn is saas with stdin.
func saasIn(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	root, a := newRootCmd(&out, &errb)
	defer a.close()
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	code = exitCode(root.ExecuteContext(context.Background()), &errb)
	return out.String(), errb.String(), code
}

// countRows returns one number from a query on the test's database.
func countRows(t *testing.T, query string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), os.Getenv("DATABASE_DIRECT_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestUserAndSuperuserCommands(t *testing.T) {
	useServices(t)
	t.Setenv("JWT_SECRET", "")
	t.Setenv("SAAS_OPERATOR", "ops")
	steps := []struct {
		name     string
		stdin    string
		args     []string
		code     int
		contains string
		lacks    string
	}{
		{"shared migrations apply", "", []string{"migrate", "--shared"}, 0, "shared schema", ""},
		{"a tenant is created", "", []string{"tenant", "create", "--schema", "usr", "--name", "Users", "--domain", "usr.localhost"}, 0, "created tenant usr", ""},
		{"a staff user is created", "", []string{"user", "create", "--tenant", "usr", "--email", "ann@usr.test", "--password", "s3cret-pass", "--staff"}, 0, "created user", ""},
		{"a plain user is created", "", []string{"user", "create", "--tenant", "usr", "--email", "bob_b@usr.test", "--password", "s3cret-pass"}, 0, "created user", ""},
		{"the list shows both", "", []string{"user", "list", "--tenant", "usr"}, 0, "bob_b@usr.test", ""},
		{"the list searches", "", []string{"user", "list", "--tenant", "usr", "--q", "B_B"}, 0, "bob_b@usr.test", "ann@usr.test"},
		{"the list filters on staff", "", []string{"user", "list", "--tenant", "usr", "--staff"}, 0, "ann@usr.test", "bob_b"},
		{"the list filters on staff false", "", []string{"user", "list", "--tenant", "usr", "--staff=false"}, 0, "bob_b@usr.test", "ann@usr.test"},
		{"the list of an unknown tenant is not found", "", []string{"user", "list", "--tenant", "nobody"}, 4, "not found", ""},
		{"the list needs a tenant", "", []string{"user", "list"}, 2, "--tenant is required", ""},
		{"a user is deactivated", "", []string{"user", "set", "--tenant", "usr", "--email", "BOB_B@usr.test", "--active=false"}, 0, "active=false", ""},
		{"the list filters on active", "", []string{"user", "list", "--tenant", "usr", "--active=false"}, 0, "bob_b@usr.test", "ann@"},
		{"a user gets staff and a new email", "", []string{"user", "set", "--tenant", "usr", "--email", "bob_b@usr.test", "--staff", "--new-email", "Bob@usr.test"}, 0, "user bob@usr.test", ""},
		{"a taken email is a conflict", "", []string{"user", "set", "--tenant", "usr", "--email", "bob@usr.test", "--new-email", "ann@usr.test"}, 3, "email already in use", ""},
		{"a password from stdin", "a-new-password\n", []string{"user", "set", "--tenant", "usr", "--email", "bob@usr.test", "--password-stdin"}, 0, "password replaced", ""},
		{"a short password from stdin is bad input", "short\n", []string{"user", "set", "--tenant", "usr", "--email", "bob@usr.test", "--password-stdin"}, 2, "password", ""},
		{"an empty stdin is bad usage", "", []string{"user", "set", "--tenant", "usr", "--email", "bob@usr.test", "--password-stdin"}, 2, "nothing on stdin", ""},
		{"nothing to change is bad usage", "", []string{"user", "set", "--tenant", "usr", "--email", "bob@usr.test"}, 2, "nothing to change", ""},
		{"an unknown user is not found", "", []string{"user", "set", "--tenant", "usr", "--email", "nobody@usr.test", "--active"}, 4, "not found", ""},
		{"a bad --active is bad usage", "", []string{"user", "set", "--tenant", "usr", "--email", "bob@usr.test", "--active=maybe"}, 2, "invalid argument", ""},
		{"a user is deleted", "", []string{"user", "delete", "--tenant", "usr", "--email", "bob@usr.test"}, 0, "deleted user bob@usr.test", ""},
		{"deleting them again is not found", "", []string{"user", "delete", "--tenant", "usr", "--email", "bob@usr.test"}, 4, "not found", ""},
		{"a superuser is created", "", []string{"superuser", "create", "--email", "root@platform.test", "--password", "s3cret-pass"}, 0, "created superuser", ""},
		{"another superuser is created", "", []string{"superuser", "create", "--email", "two@platform.test", "--password", "s3cret-pass"}, 0, "created superuser", ""},
		{"the superuser list shows both", "", []string{"superuser", "list"}, 0, "two@platform.test", ""},
		{"a superuser is deactivated", "", []string{"superuser", "set", "--email", "two@platform.test", "--active=false"}, 0, "active=false", ""},
		{"the last active superuser stays", "", []string{"superuser", "set", "--email", "root@platform.test", "--active=false"}, 3, "last active superuser", ""},
		{"a superuser's password from stdin", "another-pass\r\n", []string{"superuser", "set", "--email", "two@platform.test", "--password-stdin", "--active"}, 0, "active=true, password replaced", ""},
		{"an unknown superuser is not found", "", []string{"superuser", "set", "--email", "nobody@platform.test", "--active"}, 4, "not found", ""},
		{"superuser set with nothing to change is bad usage", "", []string{"superuser", "set", "--email", "two@platform.test"}, 2, "nothing to change", ""},
	}
	for _, s := range steps {
		out, errOut, code := saasIn(t, s.stdin, s.args...)
		if code != s.code || !strings.Contains(out+errOut, s.contains) || (s.lacks != "" && strings.Contains(out, s.lacks)) {
			t.Fatalf("%s: saas %v exited %d with\n%s%s\nwant exit %d and %q (and not %q)", s.name, s.args, code, out, errOut, s.code, s.contains, s.lacks)
		}
	}
	// Each change wrote its entry, the command line's, with the operator.
	for _, c := range []struct {
		query string
		want  int
	}{
		{`SELECT count(*) FROM usr.audit_log WHERE actor_kind = 'cli' AND actor_email = 'ops'`, 6},
		{`SELECT count(*) FROM usr.audit_log WHERE action = 'user.deactivate'`, 1},
		{`SELECT count(*) FROM usr.audit_log WHERE action = 'user.update' AND changes ? 'email' AND changes ? 'is_staff'`, 1},
		{`SELECT count(*) FROM usr.audit_log WHERE action = 'user.password_reset'`, 1},
		{`SELECT count(*) FROM usr.audit_log WHERE action = 'user.delete'`, 1},
		{`SELECT count(*) FROM public.audit_log WHERE actor_kind = 'cli' AND target_type = 'superuser'`, 5},
		{`SELECT count(*) FROM public.superusers WHERE is_active AND token_generation = 1`, 1},
	} {
		if n := countRows(t, c.query); n != c.want {
			t.Errorf("%s = %d, want %d", c.query, n, c.want)
		}
	}
}

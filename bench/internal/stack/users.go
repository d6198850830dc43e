package stack

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/tenantworks/saas/pkg/auth"
	"github.com/tenantworks/saas/pkg/postgres"
)

// Saas runs the saas command line with args and the stack's environment,
// as an operator of this deployment would, and returns its standard output.
func (s *Stack) Saas(ctx context.Context, args ...string) ([]byte, error) {
	bin, err := s.Binary(ctx)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = s.environ()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("saas %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// CreateTenant runs saas tenant create: tenant and domain rows, schema,
// migrations, search index, as in production.
func (s *Stack) CreateTenant(ctx context.Context, schemaName, name, domain string) error {
	_, err := s.Saas(ctx, "tenant", "create", "--schema", schemaName, "--name", name, "--domain", domain)
	return err
}

// CreateUser runs saas user create.
func (s *Stack) CreateUser(ctx context.Context, schemaName, email, password string, staff bool) error {
	args := []string{"user", "create", "--tenant", schemaName, "--email", email, "--password", password}
	if staff {
		args = append(args, "--staff")
	}
	_, err := s.Saas(ctx, args...)
	return err
}

// CreateSuperuser runs saas superuser create.
func (s *Stack) CreateSuperuser(ctx context.Context, email, password string) error {
	_, err := s.Saas(ctx, "superuser", "create", "--email", email, "--password", password)
	return err
}

// User is a user NewUser made, with a bearer token of theirs.
type User struct {
	ID, Email, Token string
}

// NewUser creates a user in the tenant schemaName straight in the database
// (faster than the command line for many users: the password, random and
// the same for every user of the stack, is hashed once) and issues a token
// for them, valid 24 hours.
func (s *Stack) NewUser(ctx context.Context, schemaName, email string, staff bool) (User, error) {
	hash, err := s.hashOnce()
	if err != nil {
		return User{}, err
	}
	u, err := s.db.CreateUser(ctx, schemaName, postgres.NewUser{Email: email, PasswordHash: hash, IsStaff: staff})
	if err != nil {
		return User{}, fmt.Errorf("create user in %s: %w", schemaName, err)
	}
	// As sign-in issues it: the email rides in the token, for the audit trail.
	tok, _, err := s.tokens.IssueFor(schemaName, auth.Subject{ID: u.ID, Staff: staff, Email: email})
	if err != nil {
		return User{}, err
	}
	return User{ID: u.ID, Email: email, Token: tok}, nil
}

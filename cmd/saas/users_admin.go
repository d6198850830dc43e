package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantworks/saas/pkg/accounts"
	"github.com/tenantworks/saas/pkg/domain"
)

// userTenant returns the schema of the tenant the user commands act on:
// it must exist and be active or suspended (an operator may manage the
// users of a suspended tenant). Errors: ENOTFOUND, ECONFLICT.
func (a *app) userTenant(ctx context.Context, schemaName string) (string, error) {
	m, err := a.manager(ctx)
	if err != nil {
		return "", err
	}
	t, err := m.Get(ctx, schemaName)
	if err != nil {
		return "", err
	}
	if t.State != domain.TenantActive && t.State != domain.TenantSuspended {
		return "", domain.Errorf(domain.ECONFLICT, "tenant %s is %s", t.Schema, t.State)
	}
	return t.Schema, nil
}

// tenantAccounts is userTenant with the accounts service the user commands
// act through.
func (a *app) tenantAccounts(ctx context.Context, schemaName string) (string, *accounts.Service, error) {
	s, err := a.userTenant(ctx, schemaName)
	if err != nil {
		return "", nil, err
	}
	acc, err := a.accounts(ctx)
	if err != nil {
		return "", nil, err
	}
	return s, acc, nil
}

// tenantUser is tenantAccounts with the tenant's user of that email.
func (a *app) tenantUser(ctx context.Context, schemaName, email string) (string, *accounts.Service, domain.User, error) {
	s, acc, err := a.tenantAccounts(ctx, schemaName)
	if err != nil {
		return "", nil, domain.User{}, err
	}
	u, err := acc.FindUser(ctx, s, email)
	if err != nil {
		return "", nil, domain.User{}, err
	}
	return s, acc, u, nil
}

// readPassword reads a password from r: everything up to the first line
// end (a password never holds one), so `echo pw | saas ...` works.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", usageError{errors.New("--password-stdin: nothing on stdin")}
	}
	return pw, nil
}

// newPassword is the new password a set command was given on stdin
// (--password-stdin), checked against the password rules; "" without it.
func newPassword(cmd *cobra.Command, fromStdin bool) (string, error) {
	if !fromStdin {
		return "", nil
	}
	pw, err := readPassword(cmd.InOrStdin())
	if err != nil {
		return "", err
	}
	if err := domain.ValidatePassword(pw); err != nil {
		return "", err
	}
	return pw, nil
}

func newUserListCmd(a *app) *cobra.Command {
	var (
		tenantSchema, q string
		staff, active   bool
	)
	cmd := &cobra.Command{
		Use:   "list --tenant S [--q TEXT] [--staff=true|false] [--active=true|false]",
		Short: "List a tenant's users by email, searched and filtered",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "tenant"); err != nil {
				return err
			}
			ctx := cmd.Context()
			schemaName, acc, err := a.tenantAccounts(ctx, tenantSchema)
			if err != nil {
				return err
			}
			query := accounts.UserQuery{Q: q, Limit: 100}
			if cmd.Flags().Changed("staff") {
				query.IsStaff = &staff
			}
			if cmd.Flags().Changed("active") {
				query.IsActive = &active
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "EMAIL\tSTAFF\tACTIVE\tID\tCREATED")
			for {
				us, next, err := acc.ListUsers(ctx, schemaName, query)
				if err != nil {
					return err
				}
				for _, u := range us {
					fmt.Fprintf(w, "%s\t%t\t%t\t%s\t%s\n", u.Email, u.IsStaff, u.IsActive, u.ID, u.CreatedAt.UTC().Format(time.RFC3339))
				}
				if next == "" {
					break
				}
				query.Cursor = next
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&tenantSchema, "tenant", "", "schema name of the tenant")
	cmd.Flags().StringVar(&q, "q", "", "keep the users whose email contains this, whatever the case")
	cmd.Flags().BoolVar(&staff, "staff", false, "keep the staff users (true) or the others (false)")
	cmd.Flags().BoolVar(&active, "active", false, "keep the active users (true) or the deactivated ones (false)")
	return cmd
}

func newUserSetCmd(a *app) *cobra.Command {
	var (
		tenantSchema, email, newEmail string
		staff, active, passwordStdin  bool
	)
	cmd := &cobra.Command{
		Use:   "set --tenant S --email E [--staff=true|false] [--active=true|false] [--new-email E2] [--password-stdin]",
		Short: "Change a user's staff or active flag, email or password",
		Long: `Change a tenant's user, named by email. A deactivated user's tokens stop
working at once, and so do all of a user's tokens after a new password
(read from the first line of stdin with --password-stdin). Each change writes
its audit entry.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "tenant", "email"); err != nil {
				return err
			}
			f := cmd.Flags()
			if !f.Changed("staff") && !f.Changed("active") && !f.Changed("new-email") && !passwordStdin {
				return usageError{errors.New("nothing to change: give --staff, --active, --new-email or --password-stdin")}
			}
			ctx := cmd.Context()
			password, err := newPassword(cmd, passwordStdin)
			if err != nil {
				return err
			}
			schemaName, acc, u, err := a.tenantUser(ctx, tenantSchema, email)
			if err != nil {
				return err
			}
			var ch accounts.UserChange
			if f.Changed("staff") {
				ch.IsStaff = &staff
			}
			if f.Changed("active") {
				ch.IsActive = &active
			}
			if f.Changed("new-email") {
				ch.Email = &newEmail
			}
			// The command line acts for no user of the tenant: no
			// self-lockout to guard against.
			if u, err = acc.UpdateUser(ctx, schemaName, "", u.ID, ch); err != nil {
				return err
			}
			if passwordStdin {
				if err := acc.SetPassword(ctx, schemaName, u.ID, password); err != nil {
					return err
				}
			}
			fmt.Fprintf(a.stdout, "user %s (%s) in %s: staff=%t active=%t", u.Email, u.ID, schemaName, u.IsStaff, u.IsActive)
			if passwordStdin {
				fmt.Fprint(a.stdout, ", password replaced")
			}
			fmt.Fprintln(a.stdout)
			return nil
		},
	}
	cmd.Flags().StringVar(&tenantSchema, "tenant", "", "schema name of the tenant")
	cmd.Flags().StringVar(&email, "email", "", "the user's email address")
	cmd.Flags().BoolVar(&staff, "staff", false, "grant (true) or revoke (false) staff rights")
	cmd.Flags().BoolVar(&active, "active", false, "activate (true) or deactivate (false) the user")
	cmd.Flags().StringVar(&newEmail, "new-email", "", "the user's new email address")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read a new password from the first line of stdin")
	return cmd
}

func newUserDeleteCmd(a *app) *cobra.Command {
	var tenantSchema, email string
	cmd := &cobra.Command{
		Use:   "delete --tenant S --email E",
		Short: "Delete a user: their tokens stop at once, their notifications go, their audit entries stay",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "tenant", "email"); err != nil {
				return err
			}
			ctx := cmd.Context()
			schemaName, acc, u, err := a.tenantUser(ctx, tenantSchema, email)
			if err != nil {
				return err
			}
			if err := acc.DeleteUser(ctx, schemaName, "", u.ID); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "deleted user %s (%s) from %s\n", u.Email, u.ID, schemaName)
			return nil
		},
	}
	cmd.Flags().StringVar(&tenantSchema, "tenant", "", "schema name of the tenant")
	cmd.Flags().StringVar(&email, "email", "", "the user's email address")
	return cmd
}

func newSuperuserListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the platform's superusers by email",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			acc, err := a.accounts(ctx)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "EMAIL\tACTIVE\tID\tCREATED")
			cursor := ""
			for {
				sus, next, err := acc.ListSuperusers(ctx, 100, cursor)
				if err != nil {
					return err
				}
				for _, su := range sus {
					fmt.Fprintf(w, "%s\t%t\t%s\t%s\n", su.Email, su.IsActive, su.ID, su.CreatedAt.UTC().Format(time.RFC3339))
				}
				if next == "" {
					break
				}
				cursor = next
			}
			return w.Flush()
		},
	}
}

func newSuperuserSetCmd(a *app) *cobra.Command {
	var (
		email                 string
		active, passwordStdin bool
	)
	cmd := &cobra.Command{
		Use:   "set --email E [--active=true|false] [--password-stdin]",
		Short: "Activate or deactivate a superuser, or replace their password",
		Long: `Change a platform superuser, named by email. The last active superuser
cannot be deactivated. A deactivated superuser's tokens stop working at once,
and so do all of their tokens after a new password (read from the first line
of stdin with --password-stdin). Each change writes its platform audit entry.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "email"); err != nil {
				return err
			}
			if !cmd.Flags().Changed("active") && !passwordStdin {
				return usageError{errors.New("nothing to change: give --active or --password-stdin")}
			}
			ctx := cmd.Context()
			password, err := newPassword(cmd, passwordStdin)
			if err != nil {
				return err
			}
			acc, err := a.accounts(ctx)
			if err != nil {
				return err
			}
			su, err := acc.FindSuperuser(ctx, email)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("active") {
				if su, err = acc.SetSuperuserActive(ctx, su.ID, active); err != nil {
					return err
				}
			}
			if passwordStdin {
				if su, err = acc.SetSuperuserPassword(ctx, su.ID, password); err != nil {
					return err
				}
			}
			fmt.Fprintf(a.stdout, "superuser %s (%s): active=%t", su.Email, su.ID, su.IsActive)
			if passwordStdin {
				fmt.Fprint(a.stdout, ", password replaced")
			}
			fmt.Fprintln(a.stdout)
			return nil
		},
	}
	cmd.Flags().StringVar(&email, "email", "", "the superuser's email address")
	cmd.Flags().BoolVar(&active, "active", false, "activate (true) or deactivate (false) the superuser")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read a new password from the first line of stdin")
	return cmd
}

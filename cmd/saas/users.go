package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tenantworks/saas/pkg/auth"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
)

func newUserCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage tenant users", Args: noArgs}
	var (
		tenantSchema, email, password string
		staff                         bool
	)
	create := &cobra.Command{
		Use:   "create --tenant S --email E --password P [--staff]",
		Short: "Create a user in a tenant",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "tenant", "email", "password"); err != nil {
				return err
			}
			ctx := cmd.Context()
			e, hash, err := credentials(email, password)
			if err != nil {
				return err
			}
			m, err := a.manager(ctx)
			if err != nil {
				return err
			}
			t, err := m.Get(ctx, tenantSchema)
			if err != nil {
				return err
			}
			if t.State != domain.TenantActive {
				return domain.Errorf(domain.ECONFLICT, "tenant %s is %s", t.Schema, t.State)
			}
			u, err := a.db.CreateUser(ctx, t.Schema, postgres.NewUser{Email: e, PasswordHash: hash, IsStaff: staff})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "created user %s (%s) in %s, staff=%t\n", u.Email, u.ID, t.Schema, u.IsStaff)
			return nil
		},
	}
	create.Flags().StringVar(&tenantSchema, "tenant", "", "schema name of the tenant")
	create.Flags().StringVar(&email, "email", "", "email address, used to sign in")
	create.Flags().StringVar(&password, "password", "", "password, at least 8 characters and at most 72 bytes")
	create.Flags().BoolVar(&staff, "staff", false, "grant staff rights (product writes, tenant admin)")
	cmd.AddCommand(create)
	return cmd
}

func newSuperuserCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "superuser", Short: "Manage platform superusers", Args: noArgs}
	var email, password string
	create := &cobra.Command{
		Use:   "create --email E --password P",
		Short: "Create a platform superuser",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "email", "password"); err != nil {
				return err
			}
			e, hash, err := credentials(email, password)
			if err != nil {
				return err
			}
			db, err := a.database(cmd.Context())
			if err != nil {
				return err
			}
			s, err := db.CreateSuperuser(cmd.Context(), e, hash)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "created superuser %s (%s)\n", s.Email, s.ID)
			return nil
		},
	}
	create.Flags().StringVar(&email, "email", "", "email address")
	create.Flags().StringVar(&password, "password", "", "password, at least 8 characters and at most 72 bytes")
	cmd.AddCommand(create)
	return cmd
}

// credentials validates an email and password and hashes the password.
func credentials(email, password string) (string, string, error) {
	e, err := domain.NormalizeEmail(email)
	if err != nil {
		return "", "", err
	}
	if err := domain.ValidatePassword(password); err != nil {
		return "", "", err
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return "", "", err
	}
	return e, hash, nil
}

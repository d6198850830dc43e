package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tenantworks/saas/pkg/accounts"
	"github.com/tenantworks/saas/pkg/domain"
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
			acc, err := a.accounts(ctx)
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
			u, err := acc.CreateUser(ctx, t.Schema, accounts.NewUser{Email: email, Password: password, IsStaff: staff})
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
			acc, err := a.accounts(cmd.Context())
			if err != nil {
				return err
			}
			s, err := acc.CreateSuperuser(cmd.Context(), email, password)
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

// accounts returns the account use cases on the command's database. The
// CLI signs nobody in, so it needs no limiter; it changes no user's flags,
// so no flag cache.
func (a *app) accounts(ctx context.Context) (*accounts.Service, error) {
	db, err := a.database(ctx)
	if err != nil {
		return nil, err
	}
	return accounts.New(accounts.Deps{Store: db, Log: a.log})
}

package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantworks/saas/pkg/accounts"
	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/domain"
)

func newUserCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Create, list, change and delete a tenant's users", Args: noArgs}
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
	cmd.AddCommand(create, newUserListCmd(a), newUserSetCmd(a), newUserDeleteCmd(a))
	return cmd
}

func newSuperuserCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "superuser", Short: "Create, list and change platform superusers", Args: noArgs}
	var email, password string
	create := &cobra.Command{
		Use:   "create --email E --password P",
		Short: "Create a platform superuser",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "email", "password"); err != nil {
				return err
			}
			ctx := cmd.Context()
			acc, err := a.accounts(ctx)
			if err != nil {
				return err
			}
			s, err := acc.CreateSuperuser(ctx, email, password)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "created superuser %s (%s)\n", s.Email, s.ID)
			return nil
		},
	}
	create.Flags().StringVar(&email, "email", "", "email address")
	create.Flags().StringVar(&password, "password", "", "password, at least 8 characters and at most 72 bytes")
	cmd.AddCommand(create, newSuperuserListCmd(a), newSuperuserSetCmd(a))
	return cmd
}

// userFlagsTTL is how long the API caches a user's flags; the CLI writes
// them through the same cache with the same life.
const userFlagsTTL = time.Minute

// accounts returns the account use cases on the command's database. The
// CLI signs nobody in, so it needs no limiter; it changes users' flags and
// deletes users, so it writes through the API's flag cache: a user it
// deactivates or deletes is refused on their next request.
func (a *app) accounts(ctx context.Context) (*accounts.Service, error) {
	db, err := a.database(ctx)
	if err != nil {
		return nil, err
	}
	rdb, err := a.redis()
	if err != nil {
		return nil, err
	}
	flags := cache.NewUsers(rdb, a.redisKeys, db, userFlagsTTL, a.log)
	return accounts.New(accounts.Deps{Store: db, Flags: flags, Log: a.log})
}

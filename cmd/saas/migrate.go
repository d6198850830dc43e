package main

import (
	"fmt"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/schema"
)

func newMigrateCmd(a *app) *cobra.Command {
	var (
		shared bool
		width  int
	)
	cmd := &cobra.Command{
		Use:   "migrate [--shared]",
		Short: "Apply migrations: the shared schema with --shared, else every tenant schema",
		Long: `With --shared, applies the public schema's migrations.
Without it, brings every active tenant schema up to the latest tenant
migration, --width at a time. A failing tenant is reported and the others
go on; the exit code is non-zero if any failed.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if shared {
				runner, err := schema.NewRunner(a.cfg.DatabaseDirectURL, nil)
				if err != nil {
					return err
				}
				v, err := runner.MigrateShared(ctx)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "shared schema at version %d\n", v)
				return nil
			}
			if width < 1 {
				return usageError{fmt.Errorf("--width must be at least 1")}
			}
			m, err := a.manager(ctx)
			if err != nil {
				return err
			}
			var bar *progressbar.ProgressBar
			opts := tenancy.MigrateOptions{Width: width}
			if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				opts.Progress = func(done, total int) {
					if bar == nil {
						bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(a.stderr),
							progressbar.OptionSetDescription("migrating tenants"), progressbar.OptionShowCount(),
							progressbar.OptionClearOnFinish())
					}
					_ = bar.Set(done)
				}
			}
			start := time.Now()
			rep, err := m.MigrateAll(ctx, opts)
			if err != nil {
				return err
			}
			for _, f := range rep.Failed {
				fmt.Fprintf(a.stderr, "FAILED %s: %v\n", f.Schema, f.Err)
			}
			fmt.Fprintf(a.stdout, "tenant migrations: target version %d, %d pending, %d migrated, %d failed, in %s\n",
				rep.Target, rep.Pending, rep.Migrated, len(rep.Failed), time.Since(start).Round(time.Millisecond))
			if len(rep.Failed) > 0 {
				return fmt.Errorf("%d tenant(s) failed to migrate", len(rep.Failed))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&shared, "shared", false, "migrate the shared (public) schema")
	cmd.Flags().IntVar(&width, "width", 8, "how many tenant schemas to migrate at once, each on a direct connection of its own")
	return cmd
}

package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tenantworks/saas/pkg/tenancy"
)

func newMigrateCmd(a *app) *cobra.Command {
	var (
		shared bool
		width  int
	)
	cmd := &cobra.Command{
		Use:   "migrate [--shared]",
		Short: "Apply migrations: the shared schema with --shared, else every tenant schema; on every cluster",
		Long: `With --shared, applies the public schema's migrations on every cluster
of TENANT_DATABASES (main holds the catalog; the others need the outbox's
notification function), all at once.
Without it, brings every active tenant schema up to the latest tenant
migration on the cluster that holds it, the clusters in parallel and
--width at a time on each. A failing tenant is reported and the others
go on; the exit code is non-zero if any failed.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if !shared && width < 1 {
				return usageError{fmt.Errorf("--width must be at least 1")}
			}
			m, err := a.manager(ctx)
			if err != nil {
				return err
			}
			if shared {
				vs, err := m.MigrateShared(ctx)
				for _, v := range vs {
					if v.Version > 0 {
						fmt.Fprintf(a.stdout, "shared schema at version %d on %s\n", v.Version, v.Cluster)
					}
				}
				return err
			}
			opts := tenancy.MigrateOptions{Width: width}
			if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				opts.Progress = migrateBar(a)
			}
			start := time.Now()
			rep, err := m.MigrateAll(ctx, opts)
			for _, f := range rep.Failed {
				fmt.Fprintf(a.stderr, "FAILED %s on %s: %v\n", f.Schema, f.Cluster, f.Err)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "tenant migrations: target version %d, %d pending, %d migrated, %d failed, in %s\n",
				rep.Target, rep.Pending, rep.Migrated, len(rep.Failed), time.Since(start).Round(time.Millisecond))
			if len(rep.Clusters) > 1 {
				for _, c := range rep.Clusters {
					fmt.Fprintf(a.stdout, "  on %s: %d pending, %d migrated, %d failed\n", c.Cluster, c.Pending, c.Migrated, c.Failed)
				}
			}
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

// migrateBar returns the Progress of a terminal: one bar for the whole run,
// described with each cluster's counts.
func migrateBar(a *app) func(tenancy.MigrateProgress) {
	var (
		bar    *progressbar.ProgressBar
		counts = map[string][2]int{}
		names  []string
	)
	return func(p tenancy.MigrateProgress) {
		if bar == nil {
			bar = progressbar.NewOptions(p.AllTotal, progressbar.OptionSetWriter(a.stderr),
				progressbar.OptionSetDescription("migrating tenants"), progressbar.OptionShowCount(),
				progressbar.OptionClearOnFinish())
		}
		if _, seen := counts[p.Cluster]; !seen {
			names = append(names, p.Cluster)
			slices.Sort(names)
		}
		counts[p.Cluster] = [2]int{p.Done, p.Total}
		if len(names) > 1 {
			parts := make([]string, len(names))
			for i, n := range names {
				parts[i] = fmt.Sprintf("%s %d/%d", n, counts[n][0], counts[n][1])
			}
			bar.Describe("migrating tenants (" + strings.Join(parts, ", ") + ")")
		}
		_ = bar.Set(p.AllDone)
	}
}

package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantworks/saas/pkg/tenancy"
)

// newTenantMoveCmd is `tenant move`: a live move of a tenant's schema to
// another cluster of TENANT_DATABASES (DESIGN.md section 12).
func newTenantMoveCmd(a *app) *cobra.Command {
	var (
		schemaName, to string
		pauseLimit     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "move --schema S --to NAME",
		Short: "Move a live tenant to another PostgreSQL cluster: copy while it serves, a short pause of its writes, switch",
		Long: `Move a live tenant to another PostgreSQL cluster of TENANT_DATABASES by logical
replication of its schema: the target copies the schema while the tenant keeps
serving, then the tenant's writes pause (its reads go on) until the target has
every one of them, and the tenant switches. Writes held past 5 s are answered
503 with Retry-After; a pause longer than --pause-limit gives up. A failure
before the switch leaves the tenant where it was, with nothing lost; run the
command again.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "schema", "to"); err != nil {
				return err
			}
			if pauseLimit < 0 {
				return usageError{fmt.Errorf("--pause-limit must not be negative")}
			}
			db, err := a.database(cmd.Context())
			if err != nil {
				return err
			}
			// The API processes drop their cached placement of the tenant
			// when told, instead of at their next request's 503.
			mover := tenancy.NewMover(db, a.log, tenancy.WithPauseLimit(pauseLimit), tenancy.WithOnMoved(a.announceTenancyChange))
			var (
				phase   tenancy.MovePhase
				printed time.Time
			)
			res, err := mover.Move(cmd.Context(), schemaName, to, func(p tenancy.MoveProgress) {
				// Every phase once, the copy's progress at most once a second.
				if p.Phase == phase && time.Since(printed) < time.Second {
					return
				}
				phase, printed = p.Phase, time.Now()
				if p.Phase == tenancy.MoveCopy {
					fmt.Fprintf(a.stdout, "%s: %d/%d tables, %d rows\n", p.Phase, p.TablesCopied, p.Tables, p.Rows)
					return
				}
				fmt.Fprintf(a.stdout, "%s\n", p.Phase)
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "moved tenant %s from %s to %s: %d rows copied in %s, writes paused %s, %s in all\n",
				res.Schema, res.From, res.To, res.Rows, res.Copy.Round(time.Millisecond), res.Pause.Round(time.Millisecond),
				res.Total.Round(time.Millisecond))
			if res.CleanUp != nil {
				fmt.Fprintf(a.stderr, "warning: the clean-up on %s is incomplete (the next move of the tenant finishes it): %v\n", res.From, res.CleanUp)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&schemaName, "schema", "", "schema name of the tenant")
	cmd.Flags().StringVar(&to, "to", "", "the cluster to move it to, by its name in TENANT_DATABASES (main: DATABASE_URL's)")
	cmd.Flags().DurationVar(&pauseLimit, "pause-limit", tenancy.DefaultPauseLimit, "give up (and leave the tenant where it is) if its writes would be paused longer")
	return cmd
}

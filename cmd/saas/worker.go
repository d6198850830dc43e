package main

import "github.com/spf13/cobra"

// newWorkerCmd is `saas worker <role>`: one event worker role per process.
// Copies of a role share its durable consumer, so a role scales by running
// more of them.
func newWorkerCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run an event worker role (see the subcommands)",
		Args:  noArgs,
	}
	cmd.AddCommand(
		newWorkerIndexerCmd(a),
		&cobra.Command{
			Use:   "cache",
			Short: "Drop cached products and list pages when products change",
			Args:  noArgs,
			RunE:  a.withMetrics(a.runCacheInvalidator),
		},
		&cobra.Command{
			Use:   "notifier",
			Short: "Write notifications for product events and push them to the WebSocket nodes",
			Args:  noArgs,
			RunE:  a.withMetrics(a.runNotifier),
		},
	)
	return cmd
}

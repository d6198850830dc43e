package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantworks/saas/events"
)

func newDLQCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "dlq", Short: "List and re-drive events the workers gave up on", Args: noArgs}
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List dead-lettered events, oldest first",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			js, err := a.jetstream()
			if err != nil {
				return err
			}
			letters, err := events.ListDeadLetters(cmd.Context(), js, limit)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SEQ\tWHEN\tCONSUMER\tSUBJECT\tTRIES\tERROR")
			for _, l := range letters {
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d\t%s\n", l.Seq, l.Time.UTC().Format(time.RFC3339), l.Consumer, l.Subject, l.Deliveries, l.Error)
			}
			return w.Flush()
		},
	}
	list.Flags().IntVar(&limit, "limit", 100, "at most this many")

	var (
		seq uint64
		all bool
	)
	redrive := &cobra.Command{
		Use:   "redrive --seq N | --all",
		Short: "Publish dead-lettered events again on their subjects and remove them from the DLQ",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (seq == 0) == !all {
				return usageError{fmt.Errorf("give exactly one of --seq or --all")}
			}
			js, err := a.jetstream()
			if err != nil {
				return err
			}
			seqs := []uint64{seq}
			if all {
				letters, err := events.ListDeadLetters(cmd.Context(), js, 1<<30)
				if err != nil {
					return err
				}
				seqs = seqs[:0]
				for _, l := range letters {
					seqs = append(seqs, l.Seq)
				}
			}
			for _, s := range seqs {
				if err := events.Redrive(cmd.Context(), js, s); err != nil {
					return err
				}
			}
			fmt.Fprintf(a.stdout, "re-drove %d event(s)\n", len(seqs))
			return nil
		},
	}
	redrive.Flags().Uint64Var(&seq, "seq", 0, "the DLQ sequence number of one event (see `saas dlq list`)")
	redrive.Flags().BoolVar(&all, "all", false, "every dead-lettered event")
	cmd.AddCommand(list, redrive)
	return cmd
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/postgres"
)

func newAuditCmd(a *app) *cobra.Command {
	var (
		tenant   string
		platform bool
		asJSON   bool
		f        postgres.AuditFilter
	)
	cmd := &cobra.Command{
		Use:   "audit --tenant S | --platform [--actor ID] [--action A] [--target-type T] [--target-id I] [--limit N] [--json]",
		Short: "Print the audit trail of a tenant or of the platform, newest first",
		Long: `Print audit entries, newest first: who (actor kind, id, email) did what
(action) to which target, the fields that changed (old -> new), and the
request. --tenant S reads tenant S's trail (products, users); --platform the
platform's (tenants, domains, superusers). --json prints one entry per line.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (tenant == "") == !platform {
				return usageError{fmt.Errorf("give either --tenant S or --platform")}
			}
			if f.Limit < 1 {
				return usageError{fmt.Errorf("--limit must be at least 1")}
			}
			db, err := a.database(cmd.Context())
			if err != nil {
				return err
			}
			list := db.ListPlatformAudit
			if tenant != "" {
				list = func(ctx context.Context, f postgres.AuditFilter) ([]audit.Entry, string, error) {
					return db.ListTenantAudit(ctx, tenant, f)
				}
			}
			entries, err := readAudit(cmd.Context(), list, f)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				for _, e := range entries {
					if err := enc.Encode(e); err != nil {
						return err
					}
				}
				return nil
			}
			return printAudit(a, entries)
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "the tenant's schema name")
	cmd.Flags().BoolVar(&platform, "platform", false, "the platform's trail instead of a tenant's")
	cmd.Flags().StringVar(&f.Actor, "actor", "", "only the entries of this actor id")
	cmd.Flags().StringVar(&f.Action, "action", "", "only the entries of this action, e.g. product.update")
	cmd.Flags().StringVar(&f.TargetType, "target-type", "", "only the entries of this target type, e.g. product")
	cmd.Flags().StringVar(&f.TargetID, "target-id", "", "only the entries of this target id")
	cmd.Flags().IntVar(&f.Limit, "limit", 50, "how many entries, newest first")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON entry per line instead of a table")
	cmd.AddCommand(newAuditPruneCmd(a))
	return cmd
}

// readAudit reads up to f.Limit entries, a page of at most
// postgres.MaxPageSize at a time.
func readAudit(ctx context.Context, list func(context.Context, postgres.AuditFilter) ([]audit.Entry, string, error), f postgres.AuditFilter) ([]audit.Entry, error) {
	want := f.Limit
	var out []audit.Entry
	for len(out) < want {
		f.Limit = min(want-len(out), postgres.MaxPageSize)
		page, next, err := list(ctx, f)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if next == "" {
			break
		}
		f.Cursor = next
	}
	return out, nil
}

func printAudit(a *app, entries []audit.Entry) error {
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "AT\tACTOR\tACTION\tTARGET\tCHANGES\tREQUEST")
	for _, e := range entries {
		who := e.Actor.Kind
		if e.Actor.Email != "" {
			who += ":" + e.Actor.Email
		} else if e.Actor.ID != "" {
			who += ":" + e.Actor.ID
		}
		changes, _ := json.Marshal(e.Changes)
		fmt.Fprintf(w, "%s\t%s\t%s\t%s:%s\t%s\t%s\n", e.At.UTC().Format(time.RFC3339), who, e.Action,
			e.Target.Type, e.Target.ID, oneLine(string(changes)), e.RequestID)
	}
	return w.Flush()
}

// oneLine keeps a table row on one line whatever a changed value holds.
func oneLine(s string) string {
	return strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s)
}

func newAuditPruneCmd(a *app) *cobra.Command {
	var olderThan time.Duration
	cmd := &cobra.Command{
		Use:   "prune [--older-than DURATION]",
		Short: "Delete the audit entries older than AUDIT_RETENTION (or --older-than), in every trail",
		Long: `Delete old audit entries in every tenant's trail and in the platform's, in
batches. The relay does the same every hour; this runs it now. The age is
AUDIT_RETENTION (default 8760h, 365 days) unless --older-than is given;
with AUDIT_RETENTION=0 and no --older-than, nothing is deleted.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			age := a.cfg.AuditRetention
			if cmd.Flags().Changed("older-than") {
				if olderThan <= 0 {
					return usageError{fmt.Errorf("--older-than must be a positive duration such as 720h")}
				}
				age = olderThan
			}
			if age == 0 {
				fmt.Fprintln(a.stdout, "AUDIT_RETENTION is 0: entries are kept for ever, nothing to prune")
				return nil
			}
			db, err := a.database(cmd.Context())
			if err != nil {
				return err
			}
			start := time.Now()
			before := start.Add(-age)
			// A cluster that fails leaves the others pruned: what was done
			// is told all the same.
			rep, err := db.PruneAudit(cmd.Context(), before, 0)
			if err != nil && rep.Tenants == 0 {
				return err
			}
			fmt.Fprintf(a.stdout, "deleted %d audit entries written before %s from %d trails (%d tenants looked at) in %s\n",
				rep.Deleted, before.UTC().Format(time.RFC3339), rep.Pruned, rep.Tenants, time.Since(start).Round(time.Millisecond))
			return err
		},
	}
	cmd.Flags().DurationVar(&olderThan, "older-than", 0, "delete entries older than this (a Go duration: 720h); default AUDIT_RETENTION")
	return cmd
}

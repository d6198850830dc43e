package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/tenancy"
)

func newTenantCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "tenant", Short: "Create, list, show, suspend, resume and delete tenants", Args: noArgs}
	cmd.AddCommand(newTenantCreateCmd(a), newTenantListCmd(a), newTenantShowCmd(a), newTenantDeleteCmd(a), newTenantMoveCmd(a),
		newTenantStateCmd(a, "suspend", "Suspend a tenant: its routes answer 403 and its WebSockets close; its data and events live on",
			(*tenancy.Manager).Suspend),
		newTenantStateCmd(a, "resume", "Serve a suspended tenant again", (*tenancy.Manager).Resume))
	return cmd
}

func newTenantCreateCmd(a *app) *cobra.Command {
	var p tenancy.CreateParams
	cmd := &cobra.Command{
		Use:   "create --schema S --name N --domain D [--cluster NAME]",
		Short: "Create a tenant: its rows, schema, migrations and index, all or nothing",
		Long: `Creates a tenant: its rows, schema, migrations and index, all or nothing.
Its schema goes on --cluster, one of the clusters of TENANT_DATABASES
(main is the catalog's own), or on the cluster with the fewest tenants.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "schema", "name", "domain"); err != nil {
				return err
			}
			m, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			start := time.Now()
			t, err := m.Create(cmd.Context(), p)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "created tenant %s (%q) on %s, cluster %s, schema version %d, in %s\n",
				t.Schema, t.Name, t.Domains[0].Domain, t.Cluster, t.SchemaVersion, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	cmd.Flags().StringVar(&p.Schema, "schema", "", "schema name: 3-63 of a-z, 0-9, _ starting with a letter")
	cmd.Flags().StringVar(&p.Name, "name", "", "display name")
	cmd.Flags().StringVar(&p.Domain, "domain", "", "primary domain, e.g. acme.localhost")
	cmd.Flags().StringVar(&p.Cluster, "cluster", "", "cluster of TENANT_DATABASES to hold the schema (default: the one with the fewest tenants)")
	return cmd
}

func newTenantListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List tenants with their state, schema version, cluster and domains",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			ts, err := m.List(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SCHEMA\tNAME\tSTATE\tVERSION\tCLUSTER\tDOMAINS\tCREATED")
			for _, t := range ts {
				ds := make([]string, len(t.Domains))
				for i, d := range t.Domains {
					ds[i] = d.Domain
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", t.Schema, t.Name, t.State, t.SchemaVersion, t.Cluster,
					strings.Join(ds, ","), t.CreatedAt.UTC().Format(time.RFC3339))
			}
			return w.Flush()
		},
	}
}

// newSchemaCmd builds a command that acts on one tenant named by --schema,
// with the tenancy manager.
func newSchemaCmd(a *app, use, short string, run func(ctx context.Context, m *tenancy.Manager, schemaName string) error) *cobra.Command {
	var schemaName string
	cmd := &cobra.Command{
		Use:   use + " --schema S",
		Short: short,
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "schema"); err != nil {
				return err
			}
			m, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			return run(cmd.Context(), m, schemaName)
		},
	}
	cmd.Flags().StringVar(&schemaName, "schema", "", "schema name of the tenant")
	return cmd
}

func newTenantDeleteCmd(a *app) *cobra.Command {
	return newSchemaCmd(a, "delete", "Delete a tenant: its schema, rows and everything kept for it elsewhere",
		func(ctx context.Context, m *tenancy.Manager, schemaName string) error {
			if err := m.Delete(ctx, schemaName); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "deleted tenant %s\n", schemaName)
			return nil
		})
}

// newTenantStateCmd is `tenant suspend` or `tenant resume`.
func newTenantStateCmd(a *app, verb, short string, change func(*tenancy.Manager, context.Context, string) (domain.Tenant, error)) *cobra.Command {
	return newSchemaCmd(a, verb, short, func(ctx context.Context, m *tenancy.Manager, schemaName string) error {
		t, err := change(m, ctx, schemaName)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "tenant %s is %s\n", t.Schema, t.State)
		return nil
	})
}

func newTenantShowCmd(a *app) *cobra.Command {
	return newSchemaCmd(a, "show", "Show one tenant: state, schema version, cluster, domains",
		func(ctx context.Context, m *tenancy.Manager, schemaName string) error {
			t, err := m.Get(ctx, schemaName)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "schema\t%s\nname\t%s\nstate\t%s\nschema version\t%d\ncluster\t%s\ncreated\t%s\nupdated\t%s\n", t.Schema, t.Name, t.State,
				t.SchemaVersion, t.Cluster, t.CreatedAt.UTC().Format(time.RFC3339), t.UpdatedAt.UTC().Format(time.RFC3339))
			for _, d := range t.Domains {
				primary := ""
				if d.IsPrimary {
					primary = " (primary)"
				}
				fmt.Fprintf(w, "domain\t%s%s\n", d.Domain, primary)
			}
			return w.Flush()
		})
}

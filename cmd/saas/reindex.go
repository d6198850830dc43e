package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/workers/indexer"
)

func newReindexCmd(a *app) *cobra.Command {
	var tenant, from string
	var all bool
	cmd := &cobra.Command{
		Use:   "reindex --tenant S | --all [--from db|stream]",
		Short: "Rebuild tenants' search indices; searches keep answering meanwhile",
		Long: `reindex rebuilds a tenant's search index from the database (one consistent
snapshot) or from the event stream (the tenant's product events, oldest
first). Where the documents go depends on the tenant's size:

  - a tenant with ELASTICSEARCH_DEDICATED_AT products or more (default
    10000) gets a new index of its own; the tenant's alias moves onto it in
    one atomic step, then the old index is deleted, or the tenant's
    documents are taken out of the shared index it was on (a promotion);
  - a tenant with fewer than half of that is rebuilt on a shared index: in
    place if it is on one, else moved back to one the same way;
  - in between, a tenant stays on the kind of index it is on.

Searches keep answering throughout. After the build, the index is
reconciled with the database, so that changes made meanwhile are not lost.
Two rebuilds of one tenant never run at once: the second fails with a
conflict.

With --all every active tenant is rebuilt in turn; a failure is reported
and the others go on, and the exit status says whether any failed.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (tenant == "") == !all {
				return usageError{errors.New("give either --tenant or --all")}
			}
			if from != indexer.FromDB && from != indexer.FromStream {
				return usageError{fmt.Errorf("--from must be db or stream, not %q", from)}
			}
			return a.reindex(cmd.Context(), tenant, all, from)
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "schema name of the tenant to rebuild")
	cmd.Flags().BoolVar(&all, "all", false, "rebuild every active tenant, one after the other")
	cmd.Flags().StringVar(&from, "from", indexer.FromDB, "what to rebuild from: db or stream")
	return cmd
}

func (a *app) reindex(ctx context.Context, tenant string, all bool, from string) error {
	db, err := a.database(ctx)
	if err != nil {
		return err
	}
	es, err := a.searchClient()
	if err != nil {
		return err
	}
	var js jetstream.JetStream
	if from == indexer.FromStream {
		if js, err = a.jetstream(); err != nil {
			return err
		}
	}
	r, err := a.reindexer(ctx, db, es, js)
	if err != nil {
		return err
	}
	tenants := []string{tenant}
	if all {
		m, err := a.manager(ctx)
		if err != nil {
			return err
		}
		ts, err := m.List(ctx)
		if err != nil {
			return err
		}
		tenants = tenants[:0]
		for _, t := range ts {
			if domain.TenantLive(t.State) {
				tenants = append(tenants, t.Schema)
			}
		}
	}
	var failed []error
	for _, t := range tenants {
		bar := a.progress(fmt.Sprintf("%s from %s", t, from))
		rep, err := r.Reindex(ctx, t, from, bar.set)
		bar.finish()
		if err != nil {
			fmt.Fprintf(a.stderr, "reindex %s failed: %v\n", t, err)
			failed = append(failed, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		fmt.Fprintln(a.stdout, rep)
	}
	if all {
		fmt.Fprintf(a.stdout, "reindexed %d of %d tenants, %d failed\n", len(tenants)-len(failed), len(tenants), len(failed))
	}
	switch {
	case len(failed) == 1 && !all:
		return failed[0]
	case len(failed) > 0:
		return fmt.Errorf("reindex: %d of %d tenants failed", len(failed), len(tenants))
	}
	return nil
}

// progress draws a bar on a terminal and nothing elsewhere; the summary
// line is printed either way. The bar is made on the first report, when
// the total is known.
type progress struct {
	w    *os.File
	what string
	bar  *progressbar.ProgressBar
}

func (a *app) progress(what string) *progress {
	f, ok := a.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return &progress{}
	}
	return &progress{w: f, what: what}
}

func (p *progress) set(done, total int) {
	if p.w == nil || total <= 0 {
		return
	}
	if p.bar == nil {
		p.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription("reindex "+p.what), progressbar.OptionShowCount(),
			progressbar.OptionClearOnFinish())
	}
	_ = p.bar.Set(done)
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

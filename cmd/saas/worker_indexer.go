package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/tenantworks/saas/pkg/search"
	"github.com/tenantworks/saas/workers/indexer"
)

func newWorkerIndexerCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "indexer",
		Short: "Keep every tenant's search index in step with its product events",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runIndexer(cmd.Context())
		},
	}
}

// searchClient returns a client of ELASTICSEARCH_URL under
// ELASTICSEARCH_INDEX_PREFIX. It does not contact the server.
func (a *app) searchClient() (*search.Client, error) {
	return search.New(search.Config{URL: a.cfg.ElasticsearchURL, IndexPrefix: a.cfg.ElasticsearchIndexPrefix})
}

// runIndexer runs the indexer role until ctx is done: product events become
// writes to the tenants' search indices, on the shared durable consumer
// events.ConsumerIndexer.
func (a *app) runIndexer(ctx context.Context) error {
	db, err := a.database(ctx)
	if err != nil {
		return err
	}
	js, err := a.jetstream()
	if err != nil {
		return err
	}
	es, err := a.searchClient()
	if err != nil {
		return err
	}
	ix, err := indexer.New(indexer.Config{}, indexer.Deps{DB: db, Search: es, JS: js, Log: a.log})
	if err != nil {
		return err
	}
	return ix.Run(ctx)
}

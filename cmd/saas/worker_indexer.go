package main

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/search"
	"github.com/tenantworks/saas/workers/indexer"
)

func newWorkerIndexerCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "indexer",
		Short: "Keep every tenant's search index in step with its product events",
		Args:  noArgs,
		RunE:  a.withMetrics(a.runIndexer),
	}
}

// searchClient returns a client of ELASTICSEARCH_URL under
// ELASTICSEARCH_INDEX_PREFIX, spreading new tenants over
// ELASTICSEARCH_SHARED_INDICES shared indices. It does not contact the
// server.
func (a *app) searchClient() (*search.Client, error) {
	return search.New(search.Config{URL: a.cfg.ElasticsearchURL, IndexPrefix: a.cfg.ElasticsearchIndexPrefix,
		SharedIndices: a.cfg.ElasticsearchSharedIndices})
}

// reindexer returns the rebuilder of `saas reindex` and of the indexer's
// promotions, with ELASTICSEARCH_DEDICATED_AT as its threshold. Its
// rebuild lock is a session lock, taken on sessionDatabase. js may be nil:
// it is needed only to rebuild from the stream.
func (a *app) reindexer(ctx context.Context, db *postgres.DB, es *search.Client, js jetstream.JetStream) (*indexer.Reindexer, error) {
	session, err := a.sessionDatabase(ctx)
	if err != nil {
		return nil, err
	}
	return indexer.NewReindexer(indexer.ReindexerConfig{DedicatedAt: a.cfg.ElasticsearchDedicatedAt},
		indexer.ReindexerDeps{DB: db, SessionDB: session, Search: es, JS: js, Log: a.log})
}

// runIndexer runs the indexer role until ctx is done: product events become
// writes to the tenants' search indices, on the shared durable consumer
// events.ConsumerIndexer. Tenants that grow past ELASTICSEARCH_DEDICATED_AT
// products are promoted to an index of their own.
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
	promoter, err := a.reindexer(ctx, db, es, nil)
	if err != nil {
		return err
	}
	ix, err := indexer.New(indexer.Config{}, indexer.Deps{DB: db, Search: es, JS: js, Log: a.log, Promoter: promoter})
	if err != nil {
		return err
	}
	return ix.Run(ctx)
}

package main

import (
	"context"

	"github.com/tenantworks/saas/pkg/postgres"
)

// What needs a PostgreSQL session of its own goes to DATABASE_DIRECT_URL,
// never through the pool on DATABASE_URL, which may lead to a pooler in
// transaction mode (DATABASE_POOL_MODE=transaction) that hands the server
// connection to another client after every transaction:
//
//   - the relay's LISTEN connections (relay.Cluster.ListenURL), one per
//     cluster: a notification reaches the session that listens;
//   - migrations (schema.NewRunner): goose holds a session advisory lock
//     per schema while it migrates, on connections whose search_path is
//     set at connect;
//   - the tenant rebuild lock of `saas reindex` and the indexer's
//     promotions (indexer.Reindexer.SessionDB): a session advisory lock
//     held for the whole rebuild;
//   - later, logical replication for tenant moves.
//
// Everything else, the relay's transaction-scoped advisory lock included,
// goes through the pool.

// sessionDatabase returns a pool whose connections are sessions of their
// own: the main pool when DATABASE_URL is one (session mode and no other
// direct URL), else a small pool on DATABASE_DIRECT_URL, opened on first
// use. It holds session locks, one connection per rebuild in progress.
func (a *app) sessionDatabase(ctx context.Context) (*postgres.DB, error) {
	if a.cfg.DatabasePoolMode != string(postgres.PoolTransaction) && a.cfg.DatabaseDirectURL == a.cfg.DatabaseURL {
		return a.database(ctx)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.direct != nil {
		return a.direct, nil
	}
	db, err := postgres.Open(ctx, postgres.Config{URL: a.cfg.DatabaseDirectURL, MaxConns: 4, PoolMode: postgres.PoolSession})
	if err != nil {
		return nil, err
	}
	a.direct = db
	a.closers = append(a.closers, db.Close)
	return db, nil
}

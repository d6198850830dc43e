package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/auth"
	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/config"
	"github.com/tenantworks/saas/pkg/observability"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/search"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/schema"
)

// app holds what the commands share, built on first use so that `--help`
// needs no configuration and no database.
type app struct {
	stdout, stderr io.Writer
	cfg            config.Config
	log            *slog.Logger
	db             *postgres.DB
	direct         *postgres.DB // session work; see sessionDatabase
	nc             *nats.Conn
	rdb            redis.UniversalClient
	redisKeys      cache.Keys // names every key written in rdb
	mu             sync.Mutex // guards the lazily opened clients for `saas dev`
	role           string
	closers        []func()
}

func (a *app) init() error {
	cfg, err := config.FromEnv()
	if err != nil {
		return usageError{err}
	}
	a.cfg = cfg
	if a.redisKeys, err = cache.NewKeys(cfg.RedisKeyPrefix); err != nil {
		return usageError{err}
	}
	a.log = observability.NewLogger(a.stderr, cfg.LogLevel, cfg.LogFormat)
	slog.SetDefault(a.log)
	return nil
}

// tokens returns the token signer and verifier, for the roles that sign or
// verify tokens (api, push, dev) and only them: the operator commands run
// without JWT_SECRET. A missing, short or published secret is a usage error
// (exit code 2), before anything starts.
func (a *app) tokens() (*auth.Tokens, error) {
	if err := a.cfg.CheckTokenSecrets(); err != nil {
		return nil, usageError{err}
	}
	var previous []string
	if a.cfg.JWTSecretPrevious != "" {
		previous = append(previous, a.cfg.JWTSecretPrevious)
	}
	return auth.NewTokens(a.cfg.JWTSecret, 0, previous...), nil
}

func (a *app) database(ctx context.Context) (*postgres.DB, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.db != nil {
		return a.db, nil
	}
	db, err := postgres.Open(ctx, postgres.Config{URL: a.cfg.DatabaseURL, PoolMode: postgres.PoolMode(a.cfg.DatabasePoolMode)})
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, db.Close)
	// The other clusters of TENANT_DATABASES: their URLs are the
	// clusters' own (sessions), used for pools and session work alike.
	var others []postgres.Cluster
	for _, c := range a.cfg.TenantDatabases[1:] {
		cdb, err := postgres.Open(ctx, postgres.Config{URL: c.URL})
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		a.closers = append(a.closers, cdb.Close)
		others = append(others, postgres.Cluster{Name: c.Name, DB: cdb, DirectURL: c.URL})
	}
	if err := db.AttachClusters(a.cfg.DatabaseDirectURL, others); err != nil {
		return nil, err
	}
	a.db = db
	return db, nil
}

// clusters returns every cluster of db (see database), main first, each
// with its direct URL: main's is DATABASE_DIRECT_URL, which db knows only
// when it was given other clusters.
func (a *app) clusters(db *postgres.DB) []postgres.Cluster {
	cs := db.Clusters()
	if cs[0].DirectURL == "" {
		cs[0].DirectURL = a.cfg.DatabaseDirectURL
	}
	return cs
}

func (a *app) manager(ctx context.Context) (*tenancy.Manager, error) {
	db, err := a.database(ctx)
	if err != nil {
		return nil, err
	}
	runner, err := schema.NewRunner(a.cfg.DatabaseDirectURL, nil)
	if err != nil {
		return nil, err
	}
	es, err := a.searchClient()
	if err != nil {
		return nil, err
	}
	rdb, err := a.redis()
	if err != nil {
		return nil, err
	}
	// The search index is part of a tenant: created with it, dropped with
	// it; its cache keys go with it too.
	m := tenancy.NewManager(db, runner, a.log, cache.Hook{Client: rdb, Keys: a.redisKeys}, search.NewHook(es))
	m.OnChange(a.announceTenancyChange)
	m.OnSuspend(a.announceSuspension)
	return m, nil
}

// announceSuspension tells every push node to close a suspended tenant's
// open WebSockets. Best effort, like announceTenancyChange.
func (a *app) announceSuspension(ctx context.Context, schemaName string) {
	nc, err := a.nats()
	if err == nil {
		err = nc.Publish(tenancy.SuspendedSubject, []byte(schemaName))
	}
	if err == nil {
		fctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		err = nc.FlushWithContext(fctx)
	}
	if err != nil {
		a.log.WarnContext(ctx, "could not announce a suspension; open WebSockets of the tenant stay open", slog.String("tenant", schemaName), slog.Any("error", err))
	}
}

// announceTenancyChange tells every API process to drop its cached host
// resolutions. Best effort: without NATS, their cache expires within its TTL.
func (a *app) announceTenancyChange(ctx context.Context) {
	nc, err := a.nats()
	if err == nil {
		err = nc.Publish(tenancy.ChangedSubject, nil)
	}
	if err == nil {
		fctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		err = nc.FlushWithContext(fctx)
	}
	if err != nil {
		a.log.WarnContext(ctx, "could not announce tenancy change; API caches expire on their own", slog.Any("error", err))
	}
}

func (a *app) nats() (*nats.Conn, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.nc != nil {
		return a.nc, nil
	}
	nc, err := events.Connect(a.cfg.NatsURL, "saas-"+a.role)
	if err != nil {
		return nil, err
	}
	a.nc = nc
	a.closers = append(a.closers, nc.Close)
	return nc, nil
}

func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

func newRootCmd(stdout, stderr io.Writer) (*cobra.Command, *app) {
	a := &app{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "saas",
		Short: "Multi-tenant SaaS backend: API, workers and operator commands",
		Long: `saas runs every role of the system and the commands that operate it.
Configuration comes from the environment (see .env.example).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			a.role = cmd.Name()
			if !isRole(cmd) {
				cmd.SetContext(audit.WithCause(cmd.Context(), cliCause()))
			}
			return a.init()
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newAPICmd(a),
		newDevCmd(a),
		newMigrateCmd(a),
		newTenantCmd(a),
		newUserCmd(a),
		newSuperuserCmd(a),
		newPushCmd(a),
		newWorkerCmd(a),
		newReindexCmd(a),
		newRelayCmd(a),
		newDLQCmd(a),
		newProductsCmd(a),
		newAuditCmd(a),
	)
	return root, a
}

// isRole reports whether cmd runs a long-lived role rather than an
// operator command: a role's changes are made for its requests or events,
// never in the name of whoever started the process.
func isRole(cmd *cobra.Command) bool {
	switch cmd.Name() {
	case "api", "push", "relay", "dev":
		return cmd.Parent() != nil && !cmd.Parent().HasParent()
	}
	return cmd.Parent() != nil && cmd.Parent().Name() == "worker"
}

// cliCause is the audit cause of an operator command: the cli actor named by
// $SAAS_OPERATOR, else the OS user, and one request id for everything the
// command changes.
func cliCause() audit.Cause {
	op := os.Getenv("SAAS_OPERATOR")
	if op == "" {
		if u, err := user.Current(); err == nil {
			op = u.Username
		}
	}
	return audit.Cause{Actor: audit.CLI(op), RequestID: "cli-" + uuid.Must(uuid.NewV7()).String()}
}

// noArgs rejects positional arguments with a usage error.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", args[0])}
	}
	return nil
}

func requireFlags(cmd *cobra.Command, names ...string) error {
	var errs []error
	for _, n := range names {
		if !cmd.Flags().Changed(n) {
			errs = append(errs, fmt.Errorf("--%s is required", n))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return usageError{err}
	}
	return nil
}

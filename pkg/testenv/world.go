package testenv

import (
	"context"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/schema"
)

// World is what an integration test starts from: a fresh database of the
// test's own with the shared migrations applied (see MustDatabase), the
// schema Runner on it, a tenancy.Manager to create tenants with, and, with
// WithNATS, a private NATS server carrying the event streams.
//
// Packages that testenv imports (tenancy, events, schema, postgres) can
// use a World only from external test packages (package x_test): an
// internal test importing testenv would be an import cycle.
type World struct {
	*Database // URL and DB of the fresh database

	Runner  *schema.Runner
	Manager *tenancy.Manager
	// Log is the logger given to what the World builds; it discards.
	Log *slog.Logger

	// Set by WithNATS, nil otherwise: the server, a connection to it and
	// JetStream on that connection, with events.EnsureStreams applied.
	NATS *NATSServer
	Conn *nats.Conn
	JS   jetstream.JetStream
}

// Option changes what MustWorld builds.
type Option func(*worldOptions)

type worldOptions struct {
	nats       bool
	clusters   bool
	migrations fs.FS
	hooks      []tenancy.Hook
}

// WithNATS gives the World a private NATS server with JetStream, a
// connection to it and the event streams (see MustStreams).
func WithNATS() Option { return func(o *worldOptions) { o.nats = true } }

// WithClusters gives the World a database of its own on every cluster of
// TENANT_DATABASES, attached (see MustClusterDatabases), so that its
// Manager places tenants on all of them.
func WithClusters() Option { return func(o *worldOptions) { o.clusters = true } }

// WithTenantMigrations makes the Runner apply fsys to tenant schemas
// instead of schema.Tenant.
func WithTenantMigrations(fsys fs.FS) Option {
	return func(o *worldOptions) { o.migrations = fsys }
}

// WithHooks gives the Manager hooks, run on every tenant created and
// deleted (a search index, a cache...).
func WithHooks(hooks ...tenancy.Hook) Option {
	return func(o *worldOptions) { o.hooks = append(o.hooks, hooks...) }
}

// MustWorld builds a World for tb; everything in it goes away when the
// test ends. It fails tb when a service is missing, saying how to start
// it.
func MustWorld(tb testing.TB, opts ...Option) *World {
	tb.Helper()
	var o worldOptions
	for _, opt := range opts {
		opt(&o)
	}
	var db *Database
	if o.clusters {
		db = MustClusterDatabases(tb)
	} else {
		db = MustDatabase(tb)
	}
	runner, err := schema.NewRunner(db.URL, o.migrations)
	if err != nil {
		tb.Fatalf("testenv: runner: %v", err)
	}
	log := slog.New(slog.DiscardHandler)
	w := &World{Database: db, Runner: runner, Log: log, Manager: tenancy.NewManager(db.DB, runner, log, o.hooks...)}
	if o.nats {
		s := MustStreams(tb)
		w.NATS, w.Conn, w.JS = s.Server, s.Conn, s.JS
	}
	return w
}

// Streams is a private NATS server with JetStream, a connection to it,
// and the event streams on it.
type Streams struct {
	Server *NATSServer
	Conn   *nats.Conn
	JS     jetstream.JetStream
}

// MustStreams starts a private NATS server (see MustNATSServer), connects
// to it and applies events.EnsureStreams, so that the test's events reach
// no other test. Everything stops when the test ends.
func MustStreams(tb testing.TB) *Streams {
	tb.Helper()
	s := &Streams{Server: MustNATSServer(tb)}
	var err error
	if s.Conn, err = events.Connect(s.Server.URL, "testenv"); err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	tb.Cleanup(s.Conn.Close)
	if s.JS, err = jetstream.New(s.Conn); err != nil {
		tb.Fatalf("testenv: jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := events.EnsureStreams(ctx, s.JS, events.StreamConfig{}); err != nil {
		tb.Fatalf("testenv: event streams: %v", err)
	}
	return s
}

// MustTenant creates an active tenant whose schema is schemaName, named
// after it, with the domain <schemaName, "_" as "-">.test; the Manager's
// hooks run.
func (w *World) MustTenant(tb testing.TB, schemaName string) domain.Tenant {
	tb.Helper()
	t, err := w.Manager.Create(context.Background(), tenantParams(schemaName))
	if err != nil {
		tb.Fatalf("testenv: create tenant %s: %v", schemaName, err)
	}
	return t
}

// MustTenants creates a tenant per schema name as MustTenant does, up to
// eight at once, and returns them in the order of the names.
func (w *World) MustTenants(tb testing.TB, schemaNames ...string) []domain.Tenant {
	tb.Helper()
	out := make([]domain.Tenant, len(schemaNames))
	errs := make([]error, len(schemaNames))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, s := range schemaNames {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i], errs[i] = w.Manager.Create(context.Background(), tenantParams(s))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			tb.Fatalf("testenv: create tenant %s: %v", schemaNames[i], err)
		}
	}
	return out
}

func tenantParams(schemaName string) tenancy.CreateParams {
	return tenancy.CreateParams{Schema: schemaName, Name: schemaName, Domain: strings.ReplaceAll(schemaName, "_", "-") + ".test"}
}

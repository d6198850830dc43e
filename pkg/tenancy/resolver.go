package tenancy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
)

// ChangedSubject is the NATS subject on which a change of tenants or domains
// is announced, so that every process drops its resolver cache at once.
const ChangedSubject = "saas.tenancy.changed"

// SuspendedSubject carries the schema name of a tenant that was just
// suspended, so that every push node closes its open WebSockets.
const SuspendedSubject = "saas.tenancy.suspended"

// Resolver maps a request's host to its active tenant. Answers are cached in
// process: found hosts for TTL, unknown hosts for a fifth of it (so a flood
// of made-up hosts costs one query each per interval, in bounded memory).
// Purge drops everything; it is called when a change is announced, and TTL
// bounds staleness if an announcement is lost.
type Resolver struct {
	db      *postgres.DB
	found   *expirable.LRU[string, *domain.Tenant]
	unknown *expirable.LRU[string, struct{}]
}

// NewResolver returns a Resolver; ttl 0 means 30 seconds.
func NewResolver(db *postgres.DB, ttl time.Duration) *Resolver {
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	return &Resolver{
		db:      db,
		found:   expirable.NewLRU[string, *domain.Tenant](10000, nil, ttl),
		unknown: expirable.NewLRU[string, struct{}](10000, nil, ttl/5),
	}
}

var errUnknownHost = domain.Errorf(domain.ENOTFOUND, "unknown host")

// Resolve returns the active or suspended tenant of host (the caller
// refuses to serve a suspended one), which must already be
// normalized (lower case, no port, no trailing dot). Errors: ENOTFOUND.
func (r *Resolver) Resolve(ctx context.Context, host string) (*domain.Tenant, error) {
	if t, ok := r.found.Get(host); ok {
		return t, nil
	}
	if _, ok := r.unknown.Get(host); ok {
		return nil, errUnknownHost
	}
	var t domain.Tenant
	err := r.db.Pool.QueryRow(ctx,
		`SELECT t.id, t.schema_name, t.display_name, t.state, t.schema_version, t.cluster, t.created_at, t.updated_at
		 FROM public.domains d JOIN public.tenants t ON t.id = d.tenant_id
		 WHERE d.domain = $1 AND t.state IN ('active', 'suspended')`, host).
		Scan(&t.ID, &t.Schema, &t.Name, &t.State, &t.SchemaVersion, &t.Cluster, &t.CreatedAt, &t.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		r.unknown.Add(host, struct{}{})
		return nil, errUnknownHost
	}
	if err != nil {
		return nil, fmt.Errorf("tenancy: resolve %s: %w", host, postgres.Translate(err))
	}
	r.found.Add(host, &t)
	return &t, nil
}

// Purge forgets every cached answer.
func (r *Resolver) Purge() {
	r.found.Purge()
	r.unknown.Purge()
}

package domain

import (
	"context"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Tenant states. A tenant is served only while active; a suspended one is
// routed but refused (403 tenant_suspended) while its data lives on and its
// events are still handled; provisioning and deleting tenants are invisible
// to request routing.
const (
	TenantProvisioning = "provisioning"
	TenantActive       = "active"
	TenantSuspended    = "suspended"
	TenantDeleting     = "deleting"
)

// TenantLive reports whether a tenant in state keeps its data in step:
// active or suspended. Workers, migrations and rebuilds serve live tenants.
func TenantLive(state string) bool {
	return state == TenantActive || state == TenantSuspended
}

// Tenant is one customer, owning one PostgreSQL schema.
type Tenant struct {
	ID            int64
	Schema        string
	Name          string
	State         string
	SchemaVersion int64
	// Cluster names the PostgreSQL cluster that holds the schema, as
	// TENANT_DATABASES names it ("main": the catalog's).
	Cluster   string
	CreatedAt time.Time
	UpdatedAt time.Time
	Domains   []Domain
}

// Domain is a host name that routes to a tenant.
type Domain struct {
	Domain    string
	IsPrimary bool
}

var schemaNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{2,62}$`)

// ValidateSchemaName reports whether name may be used as a tenant schema:
// 3 to 63 characters of [a-z0-9_] starting with a letter, and none of the
// names PostgreSQL reserves. It returns an EINVALID *Error saying why not.
func ValidateSchemaName(name string) error {
	switch {
	case !schemaNameRE.MatchString(name):
		return &Error{Code: EINVALID, Message: "invalid schema name",
			Details: map[string]string{"schema": "must be 3 to 63 characters of a-z, 0-9 and _, starting with a letter"}}
	case name == "public", name == "information_schema", strings.HasPrefix(name, "pg_"):
		return &Error{Code: EINVALID, Message: "invalid schema name",
			Details: map[string]string{"schema": "is reserved by PostgreSQL"}}
	}
	return nil
}

var domainLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// NormalizeDomain lower-cases a host name and strips one trailing dot, then
// checks it is a syntactically valid DNS name without a port. It returns the
// normalized name or an EINVALID *Error.
func NormalizeDomain(d string) (string, error) {
	d = strings.TrimSuffix(lowerASCII(strings.TrimSpace(d)), ".")
	invalid := func(why string) error {
		return &Error{Code: EINVALID, Message: "invalid domain", Details: map[string]string{"domain": why}}
	}
	if d == "" || len(d) > 253 {
		return "", invalid("must be 1 to 253 characters")
	}
	for _, label := range strings.Split(d, ".") {
		if !domainLabelRE.MatchString(label) {
			return "", invalid("must be a host name of letters, digits, hyphens and dots, without a port")
		}
	}
	return d, nil
}

// lowerASCII lower-cases A-Z only: strings.ToLower also maps the Kelvin
// sign to k and U+0130 to i, which would pass a non-ASCII name for an
// ASCII one.
func lowerASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// ValidateTenantName checks a tenant's display name.
func ValidateTenantName(name string) error {
	n := len([]rune(strings.TrimSpace(name)))
	// Invalid UTF-8 and NUL are refused: PostgreSQL cannot store them in text.
	if n == 0 || n > 200 || !utf8.ValidString(name) || strings.ContainsRune(name, 0) {
		return &Error{Code: EINVALID, Message: "invalid tenant name",
			Details: map[string]string{"name": "must be 1 to 200 characters"}}
	}
	return nil
}

type tenantKey struct{}

// NewTenantContext returns a copy of ctx carrying t.
func NewTenantContext(ctx context.Context, t *Tenant) context.Context {
	return context.WithValue(ctx, tenantKey{}, t)
}

// TenantFromContext returns the tenant carried by ctx, or nil.
func TenantFromContext(ctx context.Context) *Tenant {
	t, _ := ctx.Value(tenantKey{}).(*Tenant)
	return t
}

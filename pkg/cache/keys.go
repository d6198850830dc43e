package cache

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// DefaultPrefix starts every key when no prefix is configured
// (REDIS_KEY_PREFIX).
const DefaultPrefix = "saas"

// ErrInvalidPrefix is returned by NewKeys for a prefix that is empty, longer
// than 32 bytes, or holds anything but letters, digits, '_', '.' and '-'.
// Excluding ':' keeps "<prefix>:<schema>:" unambiguous; excluding the glob
// characters keeps a SCAN pattern built from it literal.
var ErrInvalidPrefix = errors.New("cache: key prefix must be 1 to 32 letters, digits, '_', '.' or '-'")

var prefixPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)

// Keys names every key this project writes in Redis. Each one starts with
// "<prefix>:{<schema>}:", so that several deployments (or test runs) can
// share one Redis and a tenant's keys can be found, and dropped, by one
// pattern:
//
//	<prefix>:{<schema>}:product:<id>                  a cached product
//	<prefix>:{<schema>}:product:<id>:gen              its generation
//	<prefix>:{<schema>}:products:gen                  the tenant's list generation
//	<prefix>:{<schema>}:products:g<gen>:<ordering>:<limit>:<cursor>   a cached list page
//	<prefix>:{<schema>}:user:<id>                     a user's cached flags
//	<prefix>:{<schema>}:user:<id>:gen                 their generation
//	<prefix>:{<realm>}:login:<addr>                   sign-in attempts (realm: schema or "public")
//
// The braces are a Redis Cluster hash tag: only "<schema>" is hashed, so
// every key of a tenant lies in one hash slot, and the scripts and
// transactions that touch several of them (an item and its generation, an
// invalidation's three keys) run on a cluster as on one server, never with
// CROSSSLOT. The prefix holds no brace, so the first "{...}" of a key is
// always its tenant's. Tenants spread over the slots by their names.
//
// A generation holds a random token, and a list page's key holds the list
// generation's token (see newGen). Every key has a TTL. The zero Keys uses
// DefaultPrefix.
type Keys struct{ prefix string }

// NewKeys returns the key names under prefix. Errors: ErrInvalidPrefix.
func NewKeys(prefix string) (Keys, error) {
	if !prefixPattern.MatchString(prefix) {
		return Keys{}, fmt.Errorf("%w: %q", ErrInvalidPrefix, prefix)
	}
	return Keys{prefix: prefix}, nil
}

// Prefix returns the prefix every key starts with (without its ':').
func (k Keys) Prefix() string {
	if k.prefix == "" {
		return DefaultPrefix
	}
	return k.prefix
}

// Tenant returns "<prefix>:{<schema>}:", the start of every key of the
// tenant, its hash tag included.
func (k Keys) Tenant(schemaName string) string { return k.Prefix() + ":{" + schemaName + "}:" }

// Split returns the schema (or realm) a key of this prefix belongs to and
// what follows "<prefix>:{<schema>}:"; ok is false for any other key.
func (k Keys) Split(key string) (schemaName, rest string, ok bool) {
	s, found := strings.CutPrefix(key, k.Prefix()+":{")
	if !found {
		return "", "", false
	}
	schemaName, rest, ok = strings.Cut(s, "}:")
	if !ok || schemaName == "" || strings.ContainsAny(schemaName, "{}") {
		return "", "", false
	}
	return schemaName, rest, true
}

// Product returns the key of a cached product.
func (k Keys) Product(schemaName, id string) string { return k.Tenant(schemaName) + "product:" + id }

// ProductGen returns the key of a product's generation.
func (k Keys) ProductGen(schemaName, id string) string { return k.Product(schemaName, id) + ":gen" }

// ListGen returns the key of a tenant's list generation: the list pages
// that are current are those under its value.
func (k Keys) ListGen(schemaName string) string { return k.Tenant(schemaName) + "products:gen" }

// listPage returns the key of a list page cached under generation gen.
func (k Keys) listPage(schemaName, gen, ordering string, limit int, cursor string) string {
	return k.Tenant(schemaName) + "products:g" + gen + ":" + ordering + ":" + strconv.Itoa(limit) + ":" + cursor
}

func (k Keys) user(schemaName, id string) string    { return k.Tenant(schemaName) + "user:" + id }
func (k Keys) userGen(schemaName, id string) string { return k.user(schemaName, id) + ":gen" }

// limiter returns the key of a limiter bucket: the caller's key
// ("<realm>:login:<addr>") under the prefix, its realm as the hash tag, so
// that a tenant's counters sit with its other keys (and go with them when
// it is deleted). A key without a realm is hashed whole.
func (k Keys) limiter(key string) string {
	realm, rest, ok := strings.Cut(key, ":")
	if !ok || realm == "" {
		return k.Prefix() + ":" + key
	}
	return k.Tenant(realm) + rest
}

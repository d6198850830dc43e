package cache

import "context"

// A read-ahead lets the one Redis round trip that reads a user's flags, at
// a request's authentication, also read the product that request is about
// to ask for: both keys carry the tenant's hash tag, so one MGET answers
// on a single server and on a Redis Cluster alike, and a cached retrieve
// costs one round trip instead of two. The value read ahead is as fresh
// as one read a moment later: both are read after the request arrived, so
// after every write the client had seen answered.
type readAhead struct {
	schema, id string
	// read: the MGET answered; found: the key existed, its value val;
	// taken: GetProduct used it.
	val                string
	read, found, taken bool
}

type readAheadKey struct{}

// WithProductReadAhead returns ctx asking the first Users.GetUserAuth of
// the tenant schemaName made with it to read the product id's cache entry
// in the same round trip, for the Products.GetProduct that follows. id
// must be the canonical spelling the product is read with
// (domain.CanonicalID); any other read ignores the value.
func WithProductReadAhead(ctx context.Context, schemaName, id string) context.Context {
	return context.WithValue(ctx, readAheadKey{}, &readAhead{schema: schemaName, id: id})
}

// pendingReadAhead returns ctx's read-ahead of the tenant schemaName not
// yet read, if any.
func pendingReadAhead(ctx context.Context, schemaName string) *readAhead {
	ra, _ := ctx.Value(readAheadKey{}).(*readAhead)
	if ra == nil || ra.read || ra.schema != schemaName {
		return nil
	}
	return ra
}

// takeReadAhead returns, once, what ctx's read-ahead found of the product
// id of the tenant schemaName: answered is false when it read no such
// thing, found whether the key existed, val its value.
func takeReadAhead(ctx context.Context, schemaName, id string) (val string, found, answered bool) {
	ra, _ := ctx.Value(readAheadKey{}).(*readAhead)
	if ra == nil || !ra.read || ra.taken || ra.schema != schemaName || ra.id != id {
		return "", false, false
	}
	ra.taken = true
	return ra.val, ra.found, true
}

// Package audit describes the audit trail's entries (DESIGN.md section 11):
// who changed what, when, through which request. Every change writes its
// entry in its own transaction (pkg/postgres.WriteTenantAudit and
// WritePlatformAudit); entries are never updated, only pruned by age.
package audit

import (
	"context"
	"encoding/json"
	"reflect"
	"time"
)

// Actor kinds.
const (
	KindUser      = "user"      // a tenant's user, through the API
	KindSuperuser = "superuser" // a platform operator, through the API
	KindCLI       = "cli"       // the saas command line
	KindSystem    = "system"    // the product itself (retention, workers)
)

// Actor is who made a change.
type Actor struct {
	Kind  string `json:"kind"`
	ID    string `json:"id,omitempty"`
	Email string `json:"email,omitempty"`
}

// System is the actor of changes nobody asked for by name.
var System = Actor{Kind: KindSystem}

// CLI is the actor of the command line; Email may name the operator.
func CLI(operator string) Actor { return Actor{Kind: KindCLI, Email: operator} }

// Target is what a change changed.
type Target struct {
	Type string `json:"type"` // product, user, tenant, domain, superuser, import
	ID   string `json:"id"`
}

// Changes maps a field to its [old, new] values. A created object has nil
// old values, a deleted one nil new values. Never a password or a hash.
type Changes map[string][2]any

// Entry is one line of the trail.
type Entry struct {
	ID        int64     `json:"id"`
	At        time.Time `json:"at"`
	Actor     Actor     `json:"actor"`
	Action    string    `json:"action"` // <target type>.<verb>: product.update, user.deactivate
	Target    Target    `json:"target"`
	Changes   Changes   `json:"changes"`
	RequestID string    `json:"request_id"`
}

// Diff returns the fields whose values differ between old and new (both
// field -> value), as Changes. A field missing on one side counts as nil.
func Diff(old, new map[string]any) Changes {
	ch := Changes{}
	for k, o := range old {
		n, ok := new[k]
		if !ok || !reflect.DeepEqual(o, n) {
			ch[k] = [2]any{o, n}
		}
	}
	for k, n := range new {
		if _, ok := old[k]; !ok {
			ch[k] = [2]any{nil, n}
		}
	}
	return ch
}

// MarshalChanges encodes c for the changes column ({} for none).
func MarshalChanges(c Changes) ([]byte, error) {
	if c == nil {
		c = Changes{}
	}
	return json.Marshal(c)
}

type ctxKey struct{}

// Cause is what a context says about the change it carries: its actor and
// its request id.
type Cause struct {
	Actor     Actor
	RequestID string
}

// WithCause returns ctx carrying c. The API sets it for every
// authenticated request, the CLI once for the command.
func WithCause(ctx context.Context, c Cause) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// CauseFrom returns what ctx carries, or the system actor.
func CauseFrom(ctx context.Context) Cause {
	c, ok := ctx.Value(ctxKey{}).(Cause)
	if !ok || c.Actor.Kind == "" {
		c.Actor = System
	}
	return c
}

// New returns an entry of ctx's cause for action on target.
func New(ctx context.Context, action string, target Target, changes Changes) Entry {
	c := CauseFrom(ctx)
	return Entry{Actor: c.Actor, Action: action, Target: target, Changes: changes, RequestID: c.RequestID}
}

package tenancy

import "context"

// WithPausedHook makes a Mover call fn once the tenant's tables are locked
// for the pause, before the final catch-up: how tests put a writer in the
// pause.
func WithPausedHook(fn func(context.Context)) MoverOption {
	return func(m *Mover) { m.paused = fn }
}

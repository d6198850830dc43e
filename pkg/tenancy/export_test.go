package tenancy

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// WithPausedHook makes a Mover call fn once the tenant's tables are locked
// for the pause, before the final catch-up: how tests put a writer in the
// pause.
func WithPausedHook(fn func(context.Context)) MoverOption {
	return func(m *Mover) { m.paused = fn }
}

// WithAfterFenceHook makes a Mover, on a move from a cluster other than main,
// call fn once the source's fence has committed and before the placement's
// transaction on main, tm, commits: how tests make that commit fail.
func WithAfterFenceHook(fn func(ctx context.Context, tm pgx.Tx)) MoverOption {
	return func(m *Mover) { m.afterFence = fn }
}

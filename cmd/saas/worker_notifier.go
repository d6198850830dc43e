package main

import (
	"context"

	"github.com/tenantworks/saas/workers/notifier"
)

// runNotifier runs the notifier role until ctx is done: product.created
// events become notification rows for the tenant's active staff and live
// pushes to the WebSocket nodes.
func (a *app) runNotifier(ctx context.Context) error {
	db, err := a.database(ctx)
	if err != nil {
		return err
	}
	nc, err := a.nats()
	if err != nil {
		return err
	}
	js, err := a.jetstream()
	if err != nil {
		return err
	}
	n, err := notifier.New(notifier.Config{}, notifier.Deps{Store: db, JS: js, NATS: nc, Log: a.log})
	if err != nil {
		return err
	}
	return n.Run(ctx)
}

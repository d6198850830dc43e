//go:build linux

package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/tenantworks/saas/bench/internal/benchenv"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/tenancy"
)

// movesPerFault is how many tenants one move fault moves, one after the
// other.
const movesPerFault = 2

// moveTenants moves the next tenants (in turn, so that each goes back and
// forth over the run) to the cluster after the one that holds them, while
// the load goes on. Their writes pause, and may be answered 503 with a
// Retry-After; every other check of the run must still hold: nothing
// lost, each event once, each notification once, search and cache equal
// to the database.
func moveTenants(ctx context.Context, s *soak) error {
	clusters := s.DB().Clusters()
	names := make([]string, len(clusters))
	for i, c := range clusters {
		names[i] = c.Name
	}
	// Announced as `saas tenant move` does, so that the API drops its
	// cached placement at once.
	announce := func(context.Context) {
		if err := s.nc.Publish(tenancy.ChangedSubject, nil); err == nil {
			_ = s.nc.Flush()
		}
	}
	mover := tenancy.NewMover(s.DB(), slog.New(slog.DiscardHandler), tenancy.WithMoveMigrations(soakMigrations()),
		tenancy.WithOnMoved(announce))
	for range movesPerFault {
		s.mu.Lock()
		t := s.tenants[s.nextMove%len(s.tenants)]
		s.nextMove++
		s.mu.Unlock()
		var (
			res      tenancy.MoveResult
			from, to string
			err      error
		)
		// A move that fails for want of a database (another fault may
		// just have ended the connections) changes nothing and is run
		// again, as an operator would.
		for attempt := 1; ; attempt++ {
			if res, from, to, err = moveOne(ctx, s, mover, names, t.schema); err == nil ||
				domain.ErrorCode(err) != domain.EUNAVAILABLE || attempt == 3 {
				break
			}
			logf("move %s: %v; trying again", t.schema, err)
			if err := sleep(ctx, time.Second); err != nil {
				return err
			}
		}
		if err != nil {
			return fmt.Errorf("move %s from %s to %s: %w", t.schema, from, to, err)
		}
		if res.CleanUp != nil {
			return fmt.Errorf("move %s from %s to %s: clean-up: %w", t.schema, from, to, res.CleanUp)
		}
		logf("moved %s from %s to %s: %d rows copied in %s, writes paused %s", t.schema, from, to, res.Rows,
			res.Copy.Round(time.Millisecond), res.Pause.Round(time.Millisecond))
		s.mu.Lock()
		s.moves = append(s.moves, res)
		s.mu.Unlock()
	}
	return nil
}

// moveOne moves the tenant to the cluster after the one that holds it.
func moveOne(ctx context.Context, s *soak, mover *tenancy.Mover, names []string, schemaName string) (res tenancy.MoveResult, from, to string, err error) {
	s.DB().ForgetPlacement(schemaName)
	if _, from, err = s.DB().ForTenant(ctx, schemaName); err != nil {
		return res, from, to, err
	}
	to = names[(slices.Index(names, from)+1)%len(names)]
	res, err = mover.Move(ctx, schemaName, to, nil)
	return res, from, to, err
}

// movesReport is the report's paragraph on the moves, "" when none ran.
func movesReport(moves []tenancy.MoveResult) string {
	if len(moves) == 0 {
		return ""
	}
	var pauses, copies []time.Duration
	for _, m := range moves {
		pauses = append(pauses, m.Pause)
		copies = append(copies, m.Copy)
	}
	slices.Sort(pauses)
	slices.Sort(copies)
	var b strings.Builder
	fmt.Fprintf(&b, "Tenant moves between clusters: %d; writes paused p50 %s, p99 %s, max %s; copy p50 %s, max %s.\n\n",
		len(moves), benchenv.Percentile(pauses, 50).Round(time.Millisecond), benchenv.Percentile(pauses, 99).Round(time.Millisecond),
		pauses[len(pauses)-1].Round(time.Millisecond), benchenv.Percentile(copies, 50).Round(time.Millisecond),
		copies[len(copies)-1].Round(time.Millisecond))
	return b.String()
}

//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tenantworks/saas/bench/internal/stack"
	"github.com/tenantworks/saas/pkg/tenancy"
)

// soak is the private stack the soak runs on, its tenants, its role
// processes and what it counts about them.
type soak struct {
	*stack.Stack
	o       options
	roles   map[string]*stack.Proc
	api     string // http://127.0.0.1:port of the API
	push    string // of the push node
	tenants []*tenant

	mu          sync.Mutex
	natsVictim  int            // the cluster node the next NATS fault kills
	kills       map[string]int // by role
	poolerKills int            // PgBouncer server connections ended (pooler mode)
	nc          *nats.Conn     // the soak's own connection: moves announce themselves on it
	nextMove    int            // the tenant the next move takes, in turn
	moves       []tenancy.MoveResult
	maxRSS      map[string]int64 // bytes, by role, over every run
}

type tenant struct {
	schema, host string
	staff        []stack.User
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s soak: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// setup starts the stack (saas, a private Redis and NATS, the fresh
// database), makes the tenants and their staff users, and starts every
// role.
func setup(ctx context.Context, o options) (_ *soak, err error) {
	st, err := stack.New(ctx, stack.Options{
		Name:      "soak",
		NATSNodes: o.natsNodes,
		Streams:   true,
		Redis:     stack.RedisPrivate,
		MaxConns:  8,
		Pooler:    o.pooler,
		Search:    true,
		Env:       []string{"LOG_FORMAT=json"},
		Keep:      o.keep,
		Logf:      logf,
	})
	if err != nil {
		return nil, err
	}
	s := &soak{Stack: st, o: o, roles: map[string]*stack.Proc{}, kills: map[string]int{}, maxRSS: map[string]int64{}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if _, err := s.Binary(ctx); err != nil {
		return nil, err
	}
	if err := s.makeTenants(ctx); err != nil {
		return nil, err
	}
	for _, name := range roleNames {
		p, err := s.Start(ctx, name)
		if err != nil {
			return nil, err
		}
		s.roles[name] = p
	}
	s.api, s.push = s.roles["api"].URL(), s.roles["push"].URL()
	return s, nil
}

// makeTenants creates the tenants (with their search indices) and their
// staff users, each with a token.
func (s *soak) makeTenants(ctx context.Context) error {
	if err := makeEventLogs(ctx, s.DB()); err != nil {
		return err
	}
	for i := range s.o.tenants {
		t := &tenant{schema: fmt.Sprintf("soak_t%03d", i), host: fmt.Sprintf("t%03d.soak.localhost", i)}
		if _, err := s.Manager().Create(ctx, tenancy.CreateParams{Schema: t.schema, Name: "soak tenant " + t.schema, Domain: t.host}); err != nil {
			return fmt.Errorf("create tenant %s: %w", t.schema, err)
		}
		for j := range s.o.staff {
			u, err := s.NewUser(ctx, t.schema, "staff"+strconv.Itoa(j)+"@"+t.host, true)
			if err != nil {
				return err
			}
			t.staff = append(t.staff, u)
		}
		if err := s.auditLog(ctx, t.schema); err != nil {
			return err
		}
		s.tenants = append(s.tenants, t)
	}
	return nil
}

// roleNames in start order.
var roleNames = []string{"relay", "indexer", "cache", "notifier", "api", "push"}

// Command stack starts a private deployment of saas on this machine
// (bench/internal/stack: a fresh database, its own nats-server and
// redis-server, an index prefix of its own, the saas binary built from this
// module) with the roles asked for, prints where it is as one line of JSON
// on standard output, and keeps it up until its standard input closes or it
// gets SIGINT, SIGTERM or SIGHUP; then it stops the roles and removes
// everything it made. Progress and errors go to standard error; the exit
// code is 1 when the stack could not start, 2 on bad flags.
//
//	go run ./bench/cmd/stack                          # saas dev; Ctrl-D or Ctrl-C ends it
//	go run ./bench/cmd/stack -roles api -demo         # saas api, a demo tenant and users
//	go run ./bench/cmd/stack -env LOG_LEVEL=info -env WEB_DIR=$PWD/web/dist
//
// The JSON line: {"url": base URL of the first HTTP role, "roles": {name:
// {"url", "pid", "log"}}, "saas": the binary, "dir": the temp dir,
// "database": its name, "env": every variable the roles get from the stack
// (DATABASE_URL, NATS_URL, REDIS_URL, ELASTICSEARCH_URL,
// ELASTICSEARCH_INDEX_PREFIX, PUBLIC_DOMAIN, JWT_SECRET, ...), "demo":
// with -demo, the tenant and the users' credentials}. Run the saas command
// line against the stack with that binary and environment.
//
// web/e2e/stack.mjs and scripts/apifuzz.sh run their stacks with it.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tenantworks/saas/bench/internal/stack"
)

// envFlags collects repeated -env KEY=VALUE.
type envFlags []string

func (e *envFlags) String() string { return strings.Join(*e, " ") }

func (e *envFlags) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

type options struct {
	name      string
	roles     []string
	natsNodes int
	redisDB   int
	env       envFlags
	saas      string
	logs      string
	demo      bool
}

// info is the JSON line.
type info struct {
	URL      string            `json:"url,omitempty"`
	Roles    map[string]role   `json:"roles"`
	Saas     string            `json:"saas"`
	Dir      string            `json:"dir"`
	Database string            `json:"database"`
	Env      map[string]string `json:"env"`
	Demo     *demo             `json:"demo,omitempty"`
}

type role struct {
	URL string `json:"url,omitempty"`
	PID int    `json:"pid"`
	Log string `json:"log"`
}

type demo struct {
	Schema    string      `json:"schema"`
	Domain    string      `json:"domain"`
	Staff     credentials `json:"staff"`
	User      credentials `json:"user"`
	Superuser credentials `json:"superuser"`
}

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func main() {
	var o options
	roles := flag.String("roles", "dev", "saas roles to run, comma-separated, in start order: "+stack.Roles)
	flag.StringVar(&o.name, "name", "stack", "starts the database's name and the index prefix (<name>_<random>): lower-case letters, digits and _")
	flag.IntVar(&o.natsNodes, "nats-nodes", 1, "private nats-server nodes (more than one form a cluster)")
	flag.IntVar(&o.redisDB, "redis-db", -1, "use this database number of the shared Redis ($REDIS_URL; it must be empty, and is flushed at the end) instead of a private redis-server")
	flag.Var(&o.env, "env", "KEY=VALUE added to the roles' environment (repeatable), e.g. LOG_LEVEL=info")
	flag.StringVar(&o.saas, "saas", "", "a saas binary to run (default: build ./cmd/saas of this module)")
	flag.StringVar(&o.logs, "logs", "", "directory for the processes' logs (default: the temp dir, removed at the end)")
	flag.BoolVar(&o.demo, "demo", false, "create a tenant demo (demo.localhost) with a staff user, a plain user and a superuser, made with the saas command line")
	flag.Parse()
	for _, r := range strings.Split(*roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			o.roles = append(o.roles, r)
		}
	}
	if flag.NArg() > 0 || o.natsNodes < 1 {
		fmt.Fprintln(os.Stderr, "stack: no arguments besides flags; -nats-nodes at least 1")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	err := run(ctx, o)
	if err != nil {
		if ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "stack: error:", err)
		}
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "stack: %s\n", fmt.Sprintf(format, args...))
}

// run starts the stack, prints the JSON line and waits for ctx to end.
func run(ctx context.Context, o options) error {
	so := stack.Options{Name: o.name, NATSNodes: o.natsNodes, Saas: o.saas, LogDir: o.logs, Env: o.env, Logf: logf}
	if o.redisDB >= 0 {
		so.Redis, so.RedisDB = stack.RedisSharedDB, o.redisDB
	}
	logf("starting a private stack")
	s, err := stack.New(ctx, so)
	if err != nil {
		return err
	}
	defer func() {
		logf("stopping and removing the stack")
		s.Close()
	}()
	if o.saas == "" {
		logf("building saas")
	}
	bin, err := s.Binary(ctx)
	if err != nil {
		return err
	}
	out := info{Roles: map[string]role{}, Saas: bin, Dir: s.Dir(), Database: s.DatabaseName(), Env: map[string]string{}}
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		out.Env[k] = v
	}
	if o.demo {
		if out.Demo, err = makeDemo(ctx, s); err != nil {
			return err
		}
	}
	for _, r := range o.roles {
		logf("starting %s", r)
		p, err := s.Start(ctx, r)
		if err != nil {
			return err
		}
		out.Roles[p.Name()] = role{URL: p.URL(), PID: p.PID(), Log: p.LogPath()}
		if out.URL == "" {
			out.URL = p.URL()
		}
	}
	line, err := json.Marshal(out)
	if err != nil {
		return err
	}
	if _, err := fmt.Printf("%s\n", line); err != nil {
		return err
	}
	logf("up; close standard input or send SIGINT or SIGTERM to stop it")
	<-ctx.Done()
	return nil
}

// makeDemo creates the demo tenant, its users and a superuser with the
// saas command line, each with a random password.
func makeDemo(ctx context.Context, s *stack.Stack) (*demo, error) {
	pw := func() string { return rand.Text()[:16] }
	d := &demo{Schema: "demo", Domain: "demo.localhost",
		Staff:     credentials{"staff@demo.test", pw()},
		User:      credentials{"user@demo.test", pw()},
		Superuser: credentials{"root@platform.test", pw()},
	}
	logf("creating the demo tenant and users")
	if err := s.CreateTenant(ctx, d.Schema, "Demo", d.Domain); err != nil {
		return nil, err
	}
	if err := s.CreateUser(ctx, d.Schema, d.Staff.Email, d.Staff.Password, true); err != nil {
		return nil, err
	}
	if err := s.CreateUser(ctx, d.Schema, d.User.Email, d.User.Password, false); err != nil {
		return nil, err
	}
	if err := s.CreateSuperuser(ctx, d.Superuser.Email, d.Superuser.Password); err != nil {
		return nil, err
	}
	return d, nil
}

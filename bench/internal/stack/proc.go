package stack

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tenantworks/saas/bench/internal/benchenv"
)

// roles are the saas commands Start knows, and whether each serves HTTP
// (on HTTP_ADDR, a free loopback port, healthy before Start returns).
var roles = map[string]struct {
	args []string
	http bool
}{
	"api":      {[]string{"api"}, true},
	"push":     {[]string{"push"}, true},
	"dev":      {[]string{"dev"}, true},
	"relay":    {[]string{"relay"}, false},
	"indexer":  {[]string{"worker", "indexer"}, false},
	"cache":    {[]string{"worker", "cache"}, false},
	"notifier": {[]string{"worker", "notifier"}, false},
}

// Roles lists the roles Start knows.
const Roles = "api, push, dev, relay, indexer, cache, notifier"

// Start runs the saas role (api, push, dev, relay, indexer, cache or
// notifier) as its own process with the stack's environment plus env, and
// logs to <LogDir>/<role>.log (<role>-2.log for a second copy, ...). An
// HTTP role gets HTTP_ADDR on a free loopback port (unless env sets one)
// and Start returns once it answers GET /health/ (at most 60 s); a worker
// role, once the process has started. Close stops it.
func (s *Stack) Start(ctx context.Context, role string, env ...string) (*Proc, error) {
	r, ok := roles[role]
	if !ok {
		return nil, fmt.Errorf("stack: unknown role %q (known: %s)", role, Roles)
	}
	bin, err := s.Binary(ctx)
	if err != nil {
		return nil, err
	}
	p := &Proc{name: role, http: r.http, bin: bin, args: r.args}
	if r.http {
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "HTTP_ADDR="); ok {
				p.addr = v
			}
		}
		if p.addr == "" {
			if p.addr, err = benchenv.FreeAddr(); err != nil {
				return nil, err
			}
			env = append([]string{"HTTP_ADDR=" + p.addr}, env...)
		}
	}
	p.env = s.environ(env...)
	s.mu.Lock()
	s.names[role]++
	if n := s.names[role]; n > 1 {
		p.name = role + "-" + strconv.Itoa(n)
	}
	s.mu.Unlock()
	p.logPath = s.logPath(p.name)
	s.Defer(p.Stop)
	if err := p.Start(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Proc is one process of a stack: a saas role, a nats-server node or the
// private redis-server. Its methods are safe for concurrent use.
type Proc struct {
	name    string
	addr    string // where it listens, if it does
	http    bool   // it serves GET /health/ on addr
	bin     string
	args    []string
	env     []string // nil: this process's environment
	logPath string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the last started process is gone
	waitErr  error         // its exit, once done is closed
	started  time.Time
	intended bool // stopped or killed on purpose since the last start
}

// Name is the process's name: its role (indexer, api-2, ...), nats,
// nats-<n> or redis.
func (p *Proc) Name() string { return p.name }

// Addr is the loopback host:port it listens on ("" for a worker role).
func (p *Proc) Addr() string { return p.addr }

// URL is the base URL of an HTTP role, http://127.0.0.1:port.
func (p *Proc) URL() string {
	if !p.http {
		return ""
	}
	return "http://" + p.addr
}

// LogPath is the file the process's output is appended to.
func (p *Proc) LogPath() string { return p.logPath }

// PID is the process id of the last start (0 before the first).
func (p *Proc) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Started is when the process was last started.
func (p *Proc) Started() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started
}

// Start starts the process, or starts it again after it exited, and waits
// until it is ready: an HTTP role healthy (60 s), a service accepting
// connections (30 s). Its output is appended to LogPath.
func (p *Proc) Start(ctx context.Context) error {
	p.mu.Lock()
	if p.done != nil {
		select {
		case <-p.done:
		default:
			p.mu.Unlock()
			return fmt.Errorf("start %s: it is running", p.name)
		}
	}
	lf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		p.mu.Unlock()
		return err
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = childAttrs()
	p.started = time.Now()
	err = cmd.Start()
	lf.Close() // the child has its own descriptor
	if err != nil {
		p.mu.Unlock()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(done)
	}()
	p.cmd, p.done, p.intended = cmd, done, false
	p.mu.Unlock()
	switch {
	case p.http:
		return p.waitHealthy(ctx, done, 60*time.Second)
	case p.addr != "":
		return p.waitListening(ctx, done, 30*time.Second)
	}
	return nil
}

// Stop ends the process with SIGTERM, then SIGKILL if it is still there
// after 15 s, and waits until it is gone.
func (p *Proc) Stop() { p.signal(syscall.SIGTERM, 15*time.Second) }

// Kill ends the process with SIGKILL at once and waits until it is gone.
func (p *Proc) Kill() { p.signal(syscall.SIGKILL, 0) }

func (p *Proc) signal(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.intended = true
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-done:
			return
		case <-time.After(grace):
			_ = cmd.Process.Kill()
		}
	}
	<-done
}

// Exited returns an error, with the end of the log, once the process is
// gone; nil while it runs.
func (p *Proc) Exited() error {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		p.mu.Lock()
		err := p.waitErr
		p.mu.Unlock()
		return fmt.Errorf("%s exited: %v\n%s", p.name, err, p.LogTail(3000))
	default:
		return nil
	}
}

// Crashed reports whether the process is gone by itself: not by Stop or
// Kill since it was last started.
func (p *Proc) Crashed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil || p.intended {
		return false
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// LogTail returns the last n bytes of the process's log.
func (p *Proc) LogTail(n int) string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func (p *Proc) waitHealthy(ctx context.Context, done <-chan struct{}, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+"/health/", nil)
		req.Host = "localhost"
		if res, err := client.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			return p.Exited()
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy within %s: %w\n%s", p.name, limit, ctx.Err(), p.LogTail(3000))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *Proc) waitListening(ctx context.Context, done <-chan struct{}, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if c, err := net.DialTimeout("tcp", p.addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return p.Exited()
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen on %s within %s\n%s", p.name, p.addr, limit, p.LogTail(3000))
		}
	}
}

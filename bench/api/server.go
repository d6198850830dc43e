package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// pprofOverlay is compiled into the saas binary the benchmark builds (with
// go build -overlay, so nothing is added to cmd/saas): when
// SAAS_BENCH_PPROF_ADDR is set, the process serves net/http/pprof there.
// The API itself serves Echo, not http.DefaultServeMux, so the handlers are
// reachable only on that listener.
const pprofOverlay = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("SAAS_BENCH_PPROF_ADDR"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
`

// buildServer builds ./cmd/saas of this module, plus pprofOverlay, into dir.
func buildServer(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run from inside the module (go env GOMOD is empty)")
	}
	root := filepath.Dir(gomod)
	src := filepath.Join(dir, "bench_pprof.go")
	if err := os.WriteFile(src, []byte(pprofOverlay), 0o600); err != nil {
		return "", err
	}
	overlay, err := json.Marshal(map[string]map[string]string{
		"Replace": {filepath.Join(root, "cmd", "saas", "zz_bench_pprof.go"): src},
	})
	if err != nil {
		return "", err
	}
	ovl := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ovl, overlay, 0o600); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "saas")
	cmd := exec.CommandContext(ctx, "go", "build", "-overlay", ovl, "-o", bin, "./cmd/saas")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/saas: %w\n%s", err, stderr.String())
	}
	return bin, nil
}

// server is the `saas api` process under test.
type server struct {
	cmd       *exec.Cmd
	done      chan error
	base      string // http://127.0.0.1:port
	pprofAddr string
	logPath   string
	stopOnce  sync.Once
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startServer runs `saas api` on a free loopback port against the bench
// database, with the ceiling route enabled, and waits until it answers.
func startServer(ctx context.Context, bin, dir string, e *benchEnv, o options) (*server, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	pprofAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	dbURL := e.dbURL
	if o.dbPoolMaxConns > 0 {
		u, _ := url.Parse(dbURL)
		q := u.Query()
		q.Set("pool_max_conns", strconv.Itoa(o.dbPoolMaxConns))
		u.RawQuery = q.Encode()
		dbURL = u.String()
	}
	logPath := filepath.Join(dir, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor

	// Not CommandContext: the server is stopped by stop(), gracefully.
	cmd := exec.Command(bin, "api")
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+dbURL,
		"REDIS_URL="+e.redisURL,
		"HTTP_ADDR="+addr,
		"PUBLIC_DOMAIN=localhost",
		"JWT_SECRET="+e.jwtSecret,
		"APP_ENV=development",
		"LOG_LEVEL=warn",
		"LOG_FORMAT=text",
		"SAAS_BENCH_CEILING=1",
		"SAAS_BENCH_PPROF_ADDR="+pprofAddr,
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childAttrs()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start saas api: %w", err)
	}
	s := &server{cmd: cmd, done: make(chan error, 1), base: "http://" + addr, pprofAddr: pprofAddr, logPath: logPath}
	go func() { s.done <- cmd.Wait() }()

	if err := s.waitHealthy(ctx, 30*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *server) waitHealthy(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/health/", nil)
		req.Host = "localhost"
		if res, err := client.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-s.done:
			s.done <- err
			return fmt.Errorf("saas api exited: %v\n%s", err, s.logTail())
		case <-ctx.Done():
			return fmt.Errorf("saas api not healthy within %s: %w\n%s", limit, ctx.Err(), s.logTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop asks the server to shut down and kills it if it has not within 15
// seconds. Calls after the first do nothing.
func (s *server) stop() {
	s.stopOnce.Do(func() {
		select {
		case <-s.done:
			return // already exited
		default:
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
}

// exited reports an error if the server process is gone.
func (s *server) exited() error {
	select {
	case err := <-s.done:
		s.done <- err
		return fmt.Errorf("saas api exited during the benchmark: %v\n%s", err, s.logTail())
	default:
		return nil
	}
}

func (s *server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

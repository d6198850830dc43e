//go:build linux

package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tenantworks/saas/bench/internal/benchenv"
)

// centrifugoVersion is the Centrifugo the push node is compared with,
// built from the Go module proxy as nats-server is.
const centrifugoVersion = "v6.9.1"

// centrifugoBinary returns flagValue if set, else the cached build under
// $SERVICES_DIR/tools/centrifugo-<version>/, building it there first with
// go install when it is missing (once; a minute or two).
func centrifugoBinary(ctx context.Context, flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	dir := filepath.Join(benchenv.Getenv("SERVICES_DIR", "/var/lib/saas-services"), "tools", "centrifugo-"+centrifugoVersion)
	bin := filepath.Join(dir, "centrifugo")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	logf("building centrifugo %s with go install into %s (first run only)", centrifugoVersion, dir)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".centrifugo-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "go", "install", "github.com/centrifugal/centrifugo/v6@"+centrifugoVersion)
	cmd.Dir = os.TempDir() // outside this module: its go.mod must not apply
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install centrifugo %s: %w\n%s", centrifugoVersion, err, out)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(filepath.Join(tmp, "centrifugo"), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// centrifugo is a running Centrifugo: connection tokens signed with its
// HMAC key, each user subscribed to its personal channel on connect.
type centrifugo struct {
	cmd    *exec.Cmd
	addr   string
	secret string
	done   chan struct{}
}

// startCentrifugo runs bin on a free loopback port with a config of its
// own in dir, logging to dir/centrifugo.log, and waits until it listens.
func startCentrifugo(ctx context.Context, bin, dir string) (*centrifugo, error) {
	addr, err := benchenv.FreeAddr()
	if err != nil {
		return nil, err
	}
	internal, err := benchenv.FreeAddr()
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(addr)
	_, iport, _ := net.SplitHostPort(internal)
	c := &centrifugo{addr: addr, secret: rand.Text() + rand.Text(), done: make(chan struct{})}
	p, _ := strconv.Atoi(port)
	ip, _ := strconv.Atoi(iport)
	cfg := map[string]any{
		"http_server": map[string]any{"address": host, "port": p, "internal_port": ip},
		"log":         map[string]any{"level": "error"},
		"client": map[string]any{
			"token":                              map[string]any{"hmac_secret_key": c.secret},
			"allowed_origins":                    []string{"*"},
			"subscribe_to_user_personal_channel": map[string]any{"enabled": true},
		},
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	cfgPath := filepath.Join(dir, "centrifugo.json")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "centrifugo.log"))
	if err != nil {
		return nil, err
	}
	c.cmd = exec.Command(bin, "--config", cfgPath)
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	c.cmd.SysProcAttr = childAttrs()
	if err := c.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start centrifugo: %w", err)
	}
	go func() { _ = c.cmd.Wait(); logFile.Close(); close(c.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return c, nil
		}
		select {
		case <-c.done:
			b, _ := os.ReadFile(filepath.Join(dir, "centrifugo.log"))
			return nil, fmt.Errorf("centrifugo exited at start: %s", b)
		case <-ctx.Done():
			c.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("centrifugo does not listen on %s after 60 s", addr)
		}
	}
}

// token is a connection token for user: its personal channel is #<user>.
func (c *centrifugo) token(user string) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": user, "exp": time.Now().Add(24 * time.Hour).Unix()}).
		SignedString([]byte(c.secret))
}

func (c *centrifugo) url() string { return "ws://" + c.addr + "/connection/websocket" }

func (c *centrifugo) pid() int { return c.cmd.Process.Pid }

// stop ends the process: SIGTERM, then SIGKILL after 10 seconds.
func (c *centrifugo) stop() {
	_ = c.cmd.Process.Signal(os.Interrupt)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

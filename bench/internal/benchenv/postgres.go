package benchenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresServer is a throw-away PostgreSQL server of a program's own: a
// data directory in a temp dir, a free loopback port, the role saas a
// superuser reached with trust on 127.0.0.1 only.
type PostgresServer struct {
	// URL reaches its postgres database as saas.
	URL  string
	dir  string
	bin  string
	asPG bool
}

// postgresBinDir is the folder of initdb and pg_ctl: `pg_config --bindir`,
// else the newest /usr/lib/postgresql/*/bin that has them.
func postgresBinDir(ctx context.Context) (string, error) {
	if out, err := exec.CommandContext(ctx, "pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	return "", errors.New("initdb not found (pg_config --bindir, /usr/lib/postgresql/*/bin)")
}

// StartPostgres initdbs a data directory in a new temp dir and starts a
// PostgreSQL server on it, listening on a free 127.0.0.1 port only (its
// socket in that temp dir), with the server's defaults otherwise (wal_level
// replica, fsync on, as the shared clusters). PostgreSQL refuses to run as
// root: as root, initdb and pg_ctl run as the postgres OS user (runuser),
// who then owns the temp dir. The caller must Stop it, also on error or
// interrupt; the server runs in a process group of its own, so a Ctrl-C
// reaches the program and Stop, not the server.
func StartPostgres(ctx context.Context) (_ *PostgresServer, err error) {
	bin, err := postgresBinDir(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bench-pg-")
	if err != nil {
		return nil, err
	}
	s := &PostgresServer{dir: dir, bin: bin, asPG: os.Geteuid() == 0}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if s.asPG {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, PostgreSQL needs the postgres OS user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	if err := s.run(ctx, "initdb", "-D", data, "-U", "saas", "-E", "UTF8", "--locale=C",
		"--auth-local=trust", "--auth-host=reject", "--no-instructions"); err != nil {
		return nil, err
	}
	// Only the saas role, only over loopback IPv4 or the socket in dir.
	// The file exists (initdb's), so it keeps its owner.
	hba := "local all saas trust\nhost all saas 127.0.0.1/32 trust\n"
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return nil, err
	}
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %s -c unix_socket_directories=%s -c max_connections=200", port, dir)
	if err := s.run(ctx, "pg_ctl", "-D", data, "-l", filepath.Join(dir, "server.log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		return nil, fmt.Errorf("%w\n%s", err, log)
	}
	s.URL = fmt.Sprintf("postgres://saas@127.0.0.1:%s/postgres?sslmode=disable", port)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, s.URL)
	if err != nil {
		return nil, fmt.Errorf("connect the new server: %w", err)
	}
	return s, conn.Close(cctx)
}

// run runs a program of the PostgreSQL bin folder, as postgres when this
// process is root.
func (s *PostgresServer) run(ctx context.Context, prog string, args ...string) error {
	var cmd *exec.Cmd
	switch {
	case s.asPG:
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", filepath.Join(s.bin, prog)}, args...)...)
	default:
		cmd = exec.CommandContext(ctx, filepath.Join(s.bin, prog), args...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", prog, err, out.String())
	}
	return nil
}

// Stop stops the server (fast shutdown, immediate if that fails) and
// removes its temp dir. Calls after the first do nothing.
func (s *PostgresServer) Stop() {
	if s.dir == "" {
		return
	}
	data := filepath.Join(s.dir, "data")
	if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		if err := s.run(ctx, "pg_ctl", "-D", data, "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
			fmt.Fprintf(os.Stderr, "stop the throw-away PostgreSQL: %v\n", err)
			_ = s.run(ctx, "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
		}
		cancel()
	}
	if err := os.RemoveAll(s.dir); err != nil {
		fmt.Fprintf(os.Stderr, "remove %s: %v\n", s.dir, err)
	}
	s.dir = ""
}

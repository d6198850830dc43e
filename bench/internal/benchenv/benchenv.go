// Package benchenv holds what the benchmark and soak programs share:
// building the saas binary, finding the services' binaries, free loopback
// ports, fresh databases, the load average and the environment's defaults.
package benchenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Getenv returns the variable key, or def when it is unset or empty.
func Getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// ModuleRoot is the directory of this module's go.mod.
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run from inside the module (go env GOMOD is empty)")
	}
	return filepath.Dir(gomod), nil
}

// BuildSaas builds ./cmd/saas of this module into dir, with go build
// -overlay when overlay is set (to try a change without editing the tree).
func BuildSaas(ctx context.Context, dir, overlay string) (string, error) {
	root, err := ModuleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "saas")
	args := []string{"build", "-o", bin}
	if overlay != "" {
		abs, err := filepath.Abs(overlay)
		if err != nil {
			return "", err
		}
		args = append(args, "-overlay", abs)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/saas")...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/saas: %w\n%s", err, stderr.String())
	}
	return bin, nil
}

// FindBinary returns flagValue if set, else name on PATH, else name in
// the bin folder of scripts/services.sh ($SERVICES_DIR/bin).
func FindBinary(name, flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := filepath.Join(Getenv("SERVICES_DIR", "/var/lib/saas-services"), "bin", name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found: run scripts/services.sh up or pass its path", name)
	}
	return p, nil
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// LoadAvg is the machine's 1, 5 and 15 minute load averages, or "?" where
// /proc/loadavg cannot be read: every benchmark prints it beside its
// numbers, since other work on the machine moves them.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

// FreshDatabase creates an empty database named <prefix>_<random> on the
// server of $DATABASE_URL and returns its URL and a function that drops it.
func FreshDatabase(ctx context.Context, prefix string) (string, func(), error) {
	return FreshDatabaseOn(ctx, Getenv("DATABASE_URL", "postgres://saas:saas@127.0.0.1:5432/saas?sslmode=disable"), prefix)
}

// FreshDatabaseOn is FreshDatabase on the server of base, a PostgreSQL URL
// (another cluster of TENANT_DATABASES). Its drop also drops the logical
// replication slots an interrupted tenant move may have left for the
// database, which would otherwise keep it from being dropped.
func FreshDatabaseOn(ctx context.Context, base, prefix string) (string, func(), error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, fmt.Errorf("parse database URL: %w", err)
	}
	name := prefix + "_" + strings.ToLower(rand.Text()[:10])
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("connect postgres: %w", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	drop := func() {
		// Dropping a database of tens of thousands of tenant schemas removes
		// about a million files: minutes, not seconds. With a shorter bound
		// the program gave up while the server went on dropping, under the
		// next measurement.
		c, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		conn, err := pgx.Connect(c, base)
		if err == nil {
			defer conn.Close(c)
			_, _ = conn.Exec(c, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
				WHERE database = $1 AND NOT active`, name)
			_, err = conn.Exec(c, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "drop database %s: %v\n", name, err)
		}
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, which must be in ascending order: the smallest value that at
// least p% of the values are at or below. Every benchmark's percentiles
// are this one. Zero when sorted is empty.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(len(sorted)) / 100))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// clockTick is USER_HZ, the unit of /proc CPU times: 100 on every Linux
// architecture Go supports.
const clockTick = 10 * time.Millisecond

// ProcessCPU is the user plus system CPU time of process pid, from
// /proc/<pid>/stat; zero when it cannot be read (the process is gone, or
// this is not Linux).
func ProcessCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	s, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(u+s) * clockTick
}

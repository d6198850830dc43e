package main

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strconv"

	"github.com/tenantworks/saas/bench/internal/benchenv"
	"github.com/tenantworks/saas/bench/internal/stack"
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

// writeOverlay writes pprofOverlay and a go build -overlay file that adds
// it to ./cmd/saas into dir, and returns the overlay file's path.
func writeOverlay(ctx context.Context, dir string) (string, error) {
	root, err := benchenv.ModuleRoot(ctx)
	if err != nil {
		return "", err
	}
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
	return ovl, os.WriteFile(ovl, overlay, 0o600)
}

// server is the `saas api` process under test.
type server struct {
	*stack.Proc
	base      string // http://127.0.0.1:port
	pprofAddr string
}

// startServer runs `saas api` on a free loopback port against the bench
// database, with the ceiling route enabled, and waits until it answers.
func startServer(ctx context.Context, e *benchEnv, o options) (*server, error) {
	pprofAddr, err := benchenv.FreeAddr()
	if err != nil {
		return nil, err
	}
	dbURL := e.DatabaseURL()
	if o.dbPoolMaxConns > 0 {
		u, _ := url.Parse(dbURL)
		q := u.Query()
		q.Set("pool_max_conns", strconv.Itoa(o.dbPoolMaxConns))
		u.RawQuery = q.Encode()
		dbURL = u.String()
	}
	p, err := e.Start(ctx, "api",
		"DATABASE_URL="+dbURL,
		"SAAS_BENCH_CEILING=1",
		"SAAS_BENCH_PPROF_ADDR="+pprofAddr,
	)
	if err != nil {
		return nil, err
	}
	return &server{Proc: p, base: p.URL(), pprofAddr: pprofAddr}, nil
}

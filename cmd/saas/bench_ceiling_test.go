package main

import (
	"log/slog"
	"testing"

	"github.com/tenantworks/saas/api"
	"github.com/tenantworks/saas/pkg/config"
)

func TestTheBenchCeilingRouteIsServedOnlyWhenConfigured(t *testing.T) {
	t.Parallel()
	routes := func(cfg config.Config) map[string]bool {
		a := &app{cfg: cfg}
		srv := api.New(api.Config{PublicDomain: "localhost"}, api.Deps{Log: slog.New(slog.DiscardHandler)}, a.serverOptions()...)
		out := map[string]bool{}
		for _, r := range srv.Routes() {
			out[r.Method+" "+r.Path] = true
		}
		return out
	}
	const ceiling = "GET /api/_bench/fixed/"
	if routes(config.Config{})[ceiling] {
		t.Errorf("%s is served without SAAS_BENCH_CEILING", ceiling)
	}
	if !routes(config.Config{BenchCeiling: true})[ceiling] {
		t.Errorf("%s is not served with SAAS_BENCH_CEILING", ceiling)
	}
}

package main

import (
	"net/http"

	"github.com/tenantworks/saas/api"
)

// benchCeilingBody is the ceiling route's answer: product-shaped, and as
// long as the product bench/api retrieves from the cache.
var benchCeilingBody = []byte(`{"id":"01970000-0000-7000-8000-000000000000","sku":"BENCH-FIXED-0001","name":"Benchmark product","description":"A fixed product-shaped body, served by the cached-retrieve benchmark's ceiling route.","price":"19.99","currency":"EUR","stock":100,"version":1,"created_at":"2025-01-01T00:00:00.123456Z","updated_at":"2025-01-01T00:00:00.123456Z"}` + "\n")

// serverOptions are the API server's routes beyond its own: with
// SAAS_BENCH_CEILING (config.Config.BenchCeiling), GET /api/_bench/fixed/,
// a fixed body behind the tenant API's middleware, which bench/api
// measures the cached retrieve against.
func (a *app) serverOptions() []api.Option {
	if !a.cfg.BenchCeiling {
		return nil
	}
	return []api.Option{api.WithRoute(http.MethodGet, "/api/_bench/fixed/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(benchCeilingBody)
	}))}
}

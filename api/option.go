package api

import "net/http"

// Option adds to the server New builds.
type Option func(*Server)

type extraRoute struct {
	method, path string
	h            http.Handler
}

// WithRoute adds the route method path (the whole path, such as
// /api/_bench/fixed/), served by h behind the tenant API's middleware: the
// request must come on an active tenant's domain with a valid token of that
// tenant's, as for GET /api/catalog/products/. Such a route is not in the
// OpenAPI document: it is for the process that asked for it, such as the
// benchmark's fixed-body ceiling (see cmd/saas).
func WithRoute(method, path string, h http.Handler) Option {
	return func(s *Server) { s.extra = append(s.extra, extraRoute{method: method, path: path, h: h}) }
}

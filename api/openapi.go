package api

import (
	_ "embed"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
)

// openAPIDocument is the OpenAPI 3 document of every route of the API,
// written by hand beside the handlers and kept true by openapi_test.go:
// a route missing from it, a documented route that does not exist, or an
// answer that does not match it fails the tests.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPIDocument returns the OpenAPI 3 document (JSON) of the API, the one
// served at GET /api/openapi.json. The caller owns the returned slice.
func OpenAPIDocument() []byte { return slices.Clone(openAPIDocument) }

// openAPI serves the OpenAPI document. It is registered on every host,
// public and tenant domains alike, with no authentication.
func (s *Server) openAPI(c echo.Context) error {
	return c.JSONBlob(http.StatusOK, openAPIDocument)
}

// RouteInfo is one route the server answers: an HTTP method and a path in
// Echo's syntax (":id" for a path parameter).
type RouteInfo struct {
	Method string
	Path   string
}

// Routes returns the server's routes sorted by path, then method. The
// catch-all routes that Echo adds to every group with middleware, so that
// the group's middleware runs before a 404, are left out: they answer
// nothing but 404.
func (s *Server) Routes() []RouteInfo {
	var out []RouteInfo
	for _, r := range s.echo.Routes() {
		if r.Method == echo.RouteNotFound {
			continue
		}
		out = append(out, RouteInfo{Method: r.Method, Path: r.Path})
	}
	slices.SortFunc(out, func(a, b RouteInfo) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Method, b.Method)
	})
	return out
}

package api

import (
	"bytes"
	"html"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/labstack/echo/v4"
)

// DefaultWebDir is where the built web client is looked for when
// Config.WebDir is empty, relative to the working directory: the output of
// `npm run build` in web/.
const DefaultWebDir = "web/dist"

// The paths the web client never answers, whatever the host: a miss there
// stays the API's JSON 404. webDirs are folders (/api, /api/..., not
// /apiary); webPrefixes are any path that starts so (/health, /healthz).
// /metrics is not served on this port, and stays a 404 rather than the
// client's page, so a scraper pointed here fails plainly.
var (
	webDirs     = []string{"/api", "/ws"}
	webPrefixes = []string{"/health", "/ready", "/metrics"}
)

// webCSP keeps the client to its own origin: scripts and styles from the
// built files only, API and WebSocket calls to the same host.
const webCSP = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// webRoutes serves the built web client on the public domain and every
// tenant domain, as the router's fallback: it only sees requests no route
// took, so it can never shadow an API route. It is registered with
// RouteNotFound rather than as routes, so it adds no route to document;
// it replaces the catch-all 404s ("/" and "/*") the public group
// registered, which it reproduces for everything it does not serve. Misses
// under /api/ and /ws/ never reach it: their groups have their own.
//
// The folder is looked at on each request (one stat and a small read), so
// building the client needs no restart, and a server started without it
// answers exactly as before: a JSON 404.
func (s *Server) webRoutes() {
	dir := s.cfg.WebDir
	if dir == "" {
		dir = DefaultWebDir
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	h := s.serveWeb(os.DirFS(dir))
	s.echo.RouteNotFound("/", h)
	s.echo.RouteNotFound("/*", h)
}

// serveWeb answers GET and HEAD outside the reserved prefixes on known
// hosts: a file of the build as it is (hashed assets cached for a year),
// any other path without an extension with index.html (the client's own
// routes), and everything else with the API's 404. An unknown host gets the
// resolver's 404, as on any tenant route.
func (s *Server) serveWeb(root fs.FS) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if (r.Method != http.MethodGet && r.Method != http.MethodHead) || isWebReserved(r.URL.Path) {
			return echo.ErrNotFound
		}
		if _, err := fs.Stat(root, "index.html"); err != nil {
			return echo.ErrNotFound // no client built
		}
		site, err := s.webSite(c)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if name != "" && name != "index.html" {
			if fi, err := fs.Stat(root, name); err == nil && fi.Mode().IsRegular() {
				h := c.Response().Header()
				h.Set("X-Content-Type-Options", "nosniff")
				if strings.HasPrefix(name, "assets/") { // content-hashed by Vite
					h.Set("Cache-Control", "public, max-age=31536000, immutable")
				} else {
					h.Set("Cache-Control", "no-cache")
				}
				http.ServeFileFS(c.Response(), r, root, name)
				return nil
			}
			if path.Ext(name) != "" {
				return echo.ErrNotFound // a missing file, not a client route
			}
		}
		page, err := fs.ReadFile(root, "index.html")
		if err != nil {
			return echo.ErrNotFound
		}
		h := c.Response().Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Security-Policy", webCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		return c.HTMLBlob(http.StatusOK, injectSite(page, site))
	}
}

// webSiteInfo tells the client which side it is on: the platform admin on
// the public domain, or a tenant (with its display name) anywhere else.
type webSiteInfo struct {
	kind string // "platform" or "tenant"
	name string
}

func (s *Server) webSite(c echo.Context) (webSiteInfo, error) {
	host := hostOf(c.Request())
	if host == s.cfg.PublicDomain {
		return webSiteInfo{kind: "platform"}, nil
	}
	if s.deps.Tenants == nil {
		return webSiteInfo{}, echo.ErrNotFound
	}
	t, err := s.deps.Tenants.Resolve(c.Request().Context(), host)
	if err != nil {
		return webSiteInfo{}, err
	}
	return webSiteInfo{kind: "tenant", name: t.Name}, nil
}

// injectSite adds <meta name="saas-site"> right after <head>; a page
// without <head> is served as it is.
func injectSite(page []byte, site webSiteInfo) []byte {
	i := bytes.Index(page, []byte("<head>"))
	if i < 0 {
		return page
	}
	i += len("<head>")
	meta := `<meta name="saas-site" content="` + site.kind + `" data-name="` + html.EscapeString(site.name) + `">`
	out := make([]byte, 0, len(page)+len(meta))
	out = append(out, page[:i]...)
	out = append(out, meta...)
	return append(out, page[i:]...)
}

func isWebReserved(p string) bool {
	for _, dir := range webDirs {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	for _, pre := range webPrefixes {
		if strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

package api

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/tenantworks/saas/pkg/catalog"
)

const (
	// importPath is the one route whose body may exceed the server's
	// BodyLimit: it has a limit of its own, importBodyLimit.
	importPath = "/api/admin/products/import"
	// importBodyLimit caps an import's CSV: 10 MiB (about 100,000 rows of
	// short products).
	importBodyLimit = "10M"
	// importReadTime is how long a staff user has to upload an import,
	// when Config.ReadTimeout is shorter: 10 MiB in 2 minutes is about
	// 700 kbit/s. Only a signed-in staff user gets this long.
	importReadTime = 2 * time.Minute
)

var errNotCSV = echo.NewHTTPError(http.StatusUnsupportedMediaType, "the body must be text/csv")

// productCSVRoutes registers the import and the export on the staff group.
func (s *Server) productCSVRoutes(staff *echo.Group) {
	staff.POST("/admin/products/import", s.importProducts, middleware.BodyLimit(importBodyLimit))
	staff.GET("/admin/products/export", s.exportProducts)
}

// skipGlobalBodyLimit exempts the import from the server-wide body limit,
// which its route replaces with its own. Echo runs Use middleware after
// routing, so c.Path() is the route.
func skipGlobalBodyLimit(c echo.Context) bool {
	return c.Path() == importPath
}

type importResponse struct {
	Created int `json:"created"`
	Updated int `json:"updated"`
}

// importProducts upserts the products of a CSV body by SKU, all or none
// (catalog.Service.Import): 200 with the counts, 422 naming each bad line,
// 415 for a body that is not text/csv, 413 beyond 10 MiB, 408 when the
// body does not arrive in time.
func (s *Server) importProducts(c echo.Context) error {
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if err != nil || mt != "text/csv" {
		return errNotCSV
	}
	// Extends the connection's read deadline (set by the server from
	// ReadTimeout); a recorder in tests cannot, which is fine.
	_ = http.NewResponseController(c.Response()).SetReadDeadline(time.Now().Add(max(s.cfg.ReadTimeout, importReadTime)))
	// Read in full first: nothing is written before every row is checked
	// anyway, and the database transaction then never waits on a client.
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return readError(err)
	}
	res, err := s.deps.Catalog.Import(c.Request().Context(), tenantOf(c).Schema, bytes.NewReader(body), catalog.ImportOptions{Meta: meta(c)})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, importResponse{Created: res.Created, Updated: res.Updated})
}

// readError maps a failed body read: the body limit's 413, the read
// deadline's 408, anything else (a client gone) a 400.
func readError(err error) error {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return he
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errRequestTimeout
	}
	return echo.NewHTTPError(http.StatusBadRequest, "the request body could not be read")
}

// exportProducts streams the tenant's products as CSV, in SKU order
// (catalog.Service.Export). The status and headers go with the first
// batch, so a failure reading it is still an error answer; a failure
// after that aborts the response, which the client sees as a truncated
// transfer rather than a complete file.
func (s *Server) exportProducts(c echo.Context) error {
	schemaName := tenantOf(c).Schema
	w := &lazyCSV{c: c, filename: schemaName + "-products.csv"}
	n, err := s.deps.Catalog.Export(c.Request().Context(), schemaName, w, catalog.ExportOptions{})
	if err != nil && w.started {
		s.log.WarnContext(c.Request().Context(), "export aborted after its first rows",
			slog.String("tenant", schemaName), slog.Int("rows", n), slog.Any("error", err))
		panic(http.ErrAbortHandler) // net/http closes the connection without ending the stream
	}
	return err
}

// lazyCSV sends the export's status and headers on its first write.
type lazyCSV struct {
	c        echo.Context
	filename string
	started  bool
}

func (w *lazyCSV) Write(p []byte) (int, error) {
	if !w.started {
		w.started = true
		h := w.c.Response().Header()
		h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
		h.Set(echo.HeaderContentDisposition, `attachment; filename="`+w.filename+`"`)
		w.c.Response().WriteHeader(http.StatusOK)
	}
	return w.c.Response().Write(p)
}

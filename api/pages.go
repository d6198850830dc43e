package api

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/tenantworks/saas/pkg/domain"
)

// defaultPageSize is the page size of a list asked for without ?limit=.
const defaultPageSize = 20

// pageLimit reads ?limit=: defaultPageSize when absent; anything but an
// integer from 1 to 100 is a 422 naming limit.
func pageLimit(c echo.Context) (int, error) {
	l := c.QueryParam("limit")
	if l == "" {
		return defaultPageSize, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > 100 {
		return 0, &domain.Error{Code: domain.EINVALID, Message: "invalid limit", Details: map[string]string{"limit": "must be from 1 to 100"}}
	}
	return n, nil
}

// boolParam reads an optional boolean query parameter (true/false, 1/0);
// anything else is a 422 naming it.
func boolParam(c echo.Context, name string) (bool, error) {
	v := c.QueryParam(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, &domain.Error{Code: domain.EINVALID, Message: "invalid " + name, Details: map[string]string{name: "must be true or false"}}
	}
	return b, nil
}

// cursorScope binds a cursor to the tenant (or the platform) and the list
// it came from.
func cursorScope(c echo.Context) string {
	scope := "public"
	if t := tenantOf(c); t != nil {
		scope = t.Schema
	}
	return scope + " " + c.Path()
}

// cursorParam returns the raw cursor of ?cursor= ("" when absent). Cursors
// are the server's: one it did not seal for this tenant and list is a 422,
// before it reaches a query or a cache key.
func (s *Server) cursorParam(c echo.Context) (string, error) {
	v := c.QueryParam("cursor")
	if v == "" {
		return "", nil
	}
	raw, ok := s.cursors.Open(cursorScope(c), v)
	if !ok {
		return "", &domain.Error{Code: domain.EINVALID, Message: "invalid cursor", Details: map[string]string{"cursor": "is not a cursor of this list"}}
	}
	return raw, nil
}

// nextURL returns the absolute URL of the next page, the request's path
// with the query v plus limit and the sealed raw cursor, or nil when there
// is none.
func (s *Server) nextURL(c echo.Context, v url.Values, limit int, raw string) *string {
	if raw == "" {
		return nil
	}
	if v == nil {
		v = url.Values{}
	}
	v.Set("limit", strconv.Itoa(limit))
	v.Set("cursor", s.cursors.Seal(cursorScope(c), raw))
	u := c.Scheme() + "://" + c.Request().Host + c.Request().URL.Path + "?" + v.Encode()
	return &u
}

// pageParams reads the two parameters every list takes: ?limit= (see
// pageLimit) and ?cursor= (see cursorParam).
func (s *Server) pageParams(c echo.Context) (limit int, cursor string, err error) {
	if limit, err = pageLimit(c); err != nil {
		return 0, "", err
	}
	if cursor, err = s.cursorParam(c); err != nil {
		return 0, "", err
	}
	return limit, cursor, nil
}

// writePage answers one page of a list: the items in their response form
// and, when the store handed back a cursor, the next page's URL with the
// query values keep.
func writePage[T, R any](s *Server, c echo.Context, items []T, toResponse func(T) R, keep url.Values, limit int, next string) error {
	out := listResponse[R]{Results: make([]R, len(items)), Next: s.nextURL(c, keep, limit, next)}
	for i, it := range items {
		out.Results[i] = toResponse(it)
	}
	return c.JSON(http.StatusOK, out)
}

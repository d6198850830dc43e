package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/search"
)

// ProductSearcher runs a full-text query in one tenant's search index and
// returns a page of matches and their total. *search.Client is one; it
// answers EUNAVAILABLE when Elasticsearch is down.
type ProductSearcher interface {
	Search(ctx context.Context, schema, q string, from, size int) ([]search.Doc, int, error)
}

var _ ProductSearcher = (*search.Client)(nil)

// maxSearchQuery bounds ?q= in characters.
const maxSearchQuery = 200

// searchCursor is the position of the next page of a search: an offset,
// opaque to clients. Search pages are offsets because relevance has no
// stable key to page on.
type searchCursor struct {
	Offset int `json:"o"`
}

func encodeSearchCursor(offset int) string {
	b, _ := json.Marshal(searchCursor{Offset: offset})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeSearchCursor(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	bad := &domain.Error{Code: domain.EINVALID, Message: "invalid cursor", Details: map[string]string{"cursor": "is not a cursor of this search"}}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) > 64 {
		return 0, bad
	}
	var c searchCursor
	if err := json.Unmarshal(raw, &c); err != nil || c.Offset < 1 || c.Offset >= search.MaxWindow {
		return 0, bad
	}
	return c.Offset, nil
}

// searchProducts is GET /api/catalog/products/search/?q=&limit=&cursor=:
// full-text search in the tenant's own index, answered in the shape of the
// product list. Pages go no deeper than search.MaxWindow matches.
func (s *Server) searchProducts(c echo.Context) error {
	q := strings.TrimSpace(c.QueryParam("q"))
	switch n := utf8.RuneCountInString(q); {
	case n == 0:
		return &domain.Error{Code: domain.EINVALID, Message: "invalid search", Details: map[string]string{"q": "is required"}}
	case n > maxSearchQuery || !utf8.ValidString(q):
		return &domain.Error{Code: domain.EINVALID, Message: "invalid search", Details: map[string]string{"q": "must be 1 to 200 characters"}}
	}
	limit, raw, err := s.pageParams(c)
	if err != nil {
		return err
	}
	from, err := decodeSearchCursor(raw)
	if err != nil {
		return err
	}
	if s.deps.Search == nil {
		return domain.Errorf(domain.EUNAVAILABLE, "search is not configured")
	}
	size := min(limit, search.MaxWindow-from)
	timeout := s.cfg.SearchTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), timeout)
	defer cancel()
	docs, total, err := s.deps.Search.Search(ctx, tenantOf(c).Schema, q, from, size)
	if err != nil && ctx.Err() == context.DeadlineExceeded && c.Request().Context().Err() == nil {
		return domain.Errorf(domain.EUNAVAILABLE, "search did not answer in time")
	}
	if err != nil {
		return err
	}
	out := listResponse[productResponse]{Results: make([]productResponse, len(docs))}
	for i, d := range docs {
		out.Results[i] = toProductResponse(d.Product())
	}
	if end := from + len(docs); len(docs) == size && end < total && end < search.MaxWindow {
		out.Next = s.nextURL(c, url.Values{"q": {q}}, limit, encodeSearchCursor(end))
	}
	return c.JSON(http.StatusOK, out)
}

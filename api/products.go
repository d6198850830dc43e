package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
)

// productRequest is the body of create, PUT and PATCH. Pointers tell a
// missing field from a zero one.
type productRequest struct {
	SKU         *string `json:"sku"`
	Name        *string `json:"name"`
	Description *string `json:"description"`
	Price       *string `json:"price"`
	Currency    *string `json:"currency"`
	Stock       *int64  `json:"stock"`
}

func (r productRequest) toPatch() domain.ProductPatch {
	return domain.ProductPatch{SKU: r.SKU, Name: r.Name, Description: r.Description, Price: r.Price, Currency: r.Currency, Stock: r.Stock}
}

// productResponse is a product as the API shows it.
type productResponse struct {
	ID          string    `json:"id"`
	SKU         string    `json:"sku"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Price       string    `json:"price"`
	Currency    string    `json:"currency"`
	Stock       int64     `json:"stock"`
	Version     int64     `json:"version"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func toProductResponse(p domain.Product) productResponse {
	return productResponse{ID: p.ID, SKU: p.SKU, Name: p.Name, Description: p.Description, Price: p.Price,
		Currency: p.Currency, Stock: p.Stock, Version: p.Version, CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC()}
}

type listResponse[T any] struct {
	Results []T     `json:"results"`
	Next    *string `json:"next"`
}

func etag(version int64) string { return `"v` + strconv.FormatInt(version, 10) + `"` }

// ifMatch reads If-Match: nil when absent or "*", else the version it names.
// A value that names no version of ours can never match (409).
func ifMatch(c echo.Context) (*int64, error) {
	h := strings.TrimSpace(c.Request().Header.Get("If-Match"))
	if h == "" || h == "*" {
		return nil, nil
	}
	h = strings.TrimPrefix(h, "W/")
	if v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(h, `"v`), `"`), 10, 64); err == nil && h == etag(v) {
		return &v, nil
	}
	return nil, &domain.Error{Code: domain.ECONFLICT, Message: "the product was changed by someone else",
		Details: map[string]string{"If-Match": "does not match the current version"}}
}

func meta(c echo.Context) postgres.EventMeta {
	return postgres.EventMeta{RequestID: c.Response().Header().Get(echo.HeaderXRequestID)}
}

func (s *Server) listProducts(c echo.Context) error {
	q := c.QueryParams()
	p := postgres.ListParams{Limit: 20, Ordering: q.Get("ordering"), Cursor: q.Get("cursor")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			return &domain.Error{Code: domain.EINVALID, Message: "invalid limit", Details: map[string]string{"limit": "must be from 1 to 100"}}
		}
		p.Limit = n
	}
	ps, next, err := s.deps.Products.ListProducts(c.Request().Context(), tenantOf(c).Schema, p)
	if err != nil {
		return err
	}
	out := listResponse[productResponse]{Results: make([]productResponse, len(ps))}
	for i, x := range ps {
		out.Results[i] = toProductResponse(x)
	}
	if next != "" {
		v := url.Values{"limit": {strconv.Itoa(p.Limit)}, "cursor": {next}}
		if p.Ordering != "" {
			v.Set("ordering", p.Ordering)
		}
		u := c.Scheme() + "://" + c.Request().Host + c.Request().URL.Path + "?" + v.Encode()
		out.Next = &u
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) getProduct(c echo.Context) error {
	p, err := s.deps.Products.GetProduct(c.Request().Context(), tenantOf(c).Schema, c.Param("id"))
	if err != nil {
		return err
	}
	tag := etag(p.Version)
	c.Response().Header().Set("ETag", tag)
	if inm := c.Request().Header.Get("If-None-Match"); inm != "" && (inm == tag || inm == "W/"+tag || inm == "*") {
		return c.NoContent(http.StatusNotModified)
	}
	return c.JSON(http.StatusOK, toProductResponse(p))
}

func (s *Server) createProduct(c echo.Context) error {
	var req productRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	patch := req.toPatch()
	if err := patch.Validate(true); err != nil {
		return err
	}
	p, err := s.deps.DB.CreateProduct(c.Request().Context(), tenantOf(c).Schema, patch, meta(c))
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", etag(p.Version))
	c.Response().Header().Set("Location", c.Request().URL.Path+p.ID+"/")
	return c.JSON(http.StatusCreated, toProductResponse(p))
}

// replaceProduct is PUT: every writable field is set; description and stock
// fall back to their defaults when missing.
func (s *Server) replaceProduct(c echo.Context) error {
	return s.updateProduct(c, true)
}

func (s *Server) patchProduct(c echo.Context) error {
	return s.updateProduct(c, false)
}

func (s *Server) updateProduct(c echo.Context, full bool) error {
	version, err := ifMatch(c)
	if err != nil {
		return err
	}
	var req productRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	patch := req.toPatch()
	if err := patch.Validate(full); err != nil {
		return err
	}
	if full {
		if patch.Description == nil {
			patch.Description = new(string)
		}
		if patch.Stock == nil {
			patch.Stock = new(int64)
		}
	}
	p, err := s.deps.DB.UpdateProduct(c.Request().Context(), tenantOf(c).Schema, c.Param("id"), patch, version, meta(c))
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", etag(p.Version))
	return c.JSON(http.StatusOK, toProductResponse(p))
}

func (s *Server) deleteProduct(c echo.Context) error {
	version, err := ifMatch(c)
	if err != nil {
		return err
	}
	if err := s.deps.DB.DeleteProduct(c.Request().Context(), tenantOf(c).Schema, c.Param("id"), version, meta(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

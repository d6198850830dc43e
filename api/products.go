package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tenantworks/saas/pkg/catalog"
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

func meta(c echo.Context) catalog.Meta {
	return catalog.Meta{RequestID: c.Response().Header().Get(echo.HeaderXRequestID)}
}

// productLister reads one page of a tenant's products.
type productLister func(ctx context.Context, schemaName string, p postgres.ListParams) ([]domain.Product, string, error)

func (s *Server) listProducts(c echo.Context) error {
	return s.listProductsFrom(c, s.deps.Catalog.List)
}

// listProductsFrom answers a product list page read with list.
func (s *Server) listProductsFrom(c echo.Context, list productLister) error {
	limit, cursor, err := s.pageParams(c)
	if err != nil {
		return err
	}
	p := postgres.ListParams{Limit: limit, Ordering: c.QueryParam("ordering"), Cursor: cursor}
	ps, next, err := list(c.Request().Context(), tenantOf(c).Schema, p)
	if err != nil {
		return err
	}
	keep := url.Values{}
	if p.Ordering != "" {
		keep.Set("ordering", p.Ordering)
	}
	return writePage(s, c, ps, toProductResponse, keep, limit, next)
}

func (s *Server) getProduct(c echo.Context) error {
	p, err := s.deps.Catalog.Get(c.Request().Context(), tenantOf(c).Schema, c.Param("id"))
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
	p, err := s.deps.Catalog.Create(c.Request().Context(), tenantOf(c).Schema, req.toPatch(), meta(c))
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", etag(p.Version))
	c.Response().Header().Set("Location", c.Request().URL.Path+p.ID+"/")
	return c.JSON(http.StatusCreated, toProductResponse(p))
}

// replaceProduct is PUT (see catalog.Service.Replace).
func (s *Server) replaceProduct(c echo.Context) error {
	return s.updateProduct(c, s.deps.Catalog.Replace)
}

func (s *Server) patchProduct(c echo.Context) error {
	return s.updateProduct(c, s.deps.Catalog.Patch)
}

func (s *Server) updateProduct(c echo.Context, update func(context.Context, string, string, domain.ProductPatch, *int64, catalog.Meta) (domain.Product, error)) error {
	version, err := ifMatch(c)
	if err != nil {
		return err
	}
	var req productRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p, err := update(c.Request().Context(), tenantOf(c).Schema, c.Param("id"), req.toPatch(), version, meta(c))
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
	if err := s.deps.Catalog.Delete(c.Request().Context(), tenantOf(c).Schema, c.Param("id"), version, meta(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

package domain

import (
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Product is an item of a tenant's catalog.
type Product struct {
	ID          string
	SKU         string
	Name        string
	Description string
	Price       string // decimal with exactly two places, e.g. "12.50"
	Currency    string // ISO 4217 code, upper case
	Stock       int64
	Version     int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// ProductPatch carries the fields a create or update sets; nil leaves a
// field alone (on create, nil takes the default or is missing).
type ProductPatch struct {
	SKU         *string
	Name        *string
	Description *string
	Price       *string
	Currency    *string
	Stock       *int64
}

var (
	priceRE    = regexp.MustCompile(`^(0|[1-9][0-9]{0,11})(\.[0-9]{1,2})?$`)
	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
	skuRE      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._\-/]{0,63}$`)
)

// Validate checks the fields present in p. With full set, every required
// field (sku, name, price, currency) must be present, as for a create or a
// PUT. Prices are normalized to two places. It returns an EINVALID *Error
// with one message per bad field.
func (p *ProductPatch) Validate(full bool) error {
	d := map[string]string{}
	if full {
		for field, missing := range map[string]bool{"sku": p.SKU == nil, "name": p.Name == nil, "price": p.Price == nil, "currency": p.Currency == nil} {
			if missing {
				d[field] = "is required"
			}
		}
	}
	if p.SKU != nil {
		*p.SKU = strings.TrimSpace(*p.SKU)
		if !skuRE.MatchString(*p.SKU) {
			d["sku"] = "must be 1 to 64 characters of letters, digits, '.', '_', '-' or '/', starting with a letter or digit"
		}
	}
	if p.Name != nil {
		*p.Name = strings.TrimSpace(*p.Name)
		// NUL is refused: PostgreSQL cannot store it in text (a 500, not a 422).
		if n := utf8.RuneCountInString(*p.Name); n == 0 || n > 200 || !utf8.ValidString(*p.Name) || strings.ContainsRune(*p.Name, 0) {
			d["name"] = "must be 1 to 200 characters, without NUL"
		}
	}
	if p.Description != nil && (utf8.RuneCountInString(*p.Description) > 5000 || !utf8.ValidString(*p.Description) || strings.ContainsRune(*p.Description, 0)) {
		d["description"] = "must be at most 5000 characters, without NUL"
	}
	if p.Price != nil {
		if !priceRE.MatchString(*p.Price) {
			d["price"] = "must be a non-negative decimal string with at most 2 decimal places and 12 integer digits"
		} else {
			*p.Price = normalizePrice(*p.Price)
		}
	}
	if p.Currency != nil && !currencyRE.MatchString(*p.Currency) {
		d["currency"] = "must be a 3-letter ISO 4217 code in upper case"
	} else if p.Currency != nil && !knownCurrency(*p.Currency) {
		d["currency"] = "is not an ISO 4217 currency"
	}
	if p.Stock != nil && (*p.Stock < 0 || *p.Stock > 2147483647) {
		d["stock"] = "must be an integer from 0 to 2147483647"
	}
	if len(d) > 0 {
		return &Error{Code: EINVALID, Message: "invalid product", Details: d}
	}
	return nil
}

// normalizePrice writes a valid price with exactly two decimal places.
func normalizePrice(s string) string {
	whole, frac, _ := strings.Cut(s, ".")
	return whole + "." + (frac + "00")[:2]
}

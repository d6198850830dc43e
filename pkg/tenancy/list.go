package tenancy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
)

// ListParams select a page of tenants.
type ListParams struct {
	// Q keeps the tenants whose schema, name or one of whose domains
	// contains it, ignoring case; at most 200 characters.
	Q string
	// State keeps the tenants in that state ("" for all).
	State string
	// Ordering is schema, name or created_at, "-" first for descending;
	// "" means created_at (oldest first).
	Ordering string
	// Limit is 1 to 100.
	Limit int
	// Cursor is a previous page's next cursor, "" for the first page.
	Cursor string
}

// tenantOrderings are the sort keys a tenant list may ask for: the column
// and the SQL type its cursor value is cast to. Only these reach SQL text.
var tenantOrderings = map[string][2]string{
	"schema":     {"t.schema_name", "text"},
	"name":       {"t.display_name", "text"},
	"created_at": {"t.created_at", "timestamptz"},
}

type tenantCursor struct {
	Ordering string `json:"o"`
	Value    string `json:"v"`
	ID       int64  `json:"id"`
}

func invalid(field, msg string) error {
	return &domain.Error{Code: domain.EINVALID, Message: "invalid " + field, Details: map[string]string{field: msg}}
}

// validate normalizes p and decodes its cursor. Errors: EINVALID naming
// the bad parameter.
func (p *ListParams) validate() (*tenantCursor, error) {
	if p.Ordering == "" {
		p.Ordering = "created_at"
	}
	if _, ok := tenantOrderings[strings.TrimPrefix(p.Ordering, "-")]; !ok {
		return nil, invalid("ordering", "must be one of schema, name, created_at, optionally prefixed by -")
	}
	switch p.State {
	case "", domain.TenantProvisioning, domain.TenantActive, domain.TenantSuspended, domain.TenantDeleting:
	default:
		return nil, invalid("state", "must be provisioning, active, suspended or deleting")
	}
	p.Q = strings.TrimSpace(p.Q)
	if utf8.RuneCountInString(p.Q) > 200 || strings.ContainsRune(p.Q, 0) || !utf8.ValidString(p.Q) {
		return nil, invalid("q", "must be at most 200 characters of text")
	}
	if p.Limit < 1 || p.Limit > 100 {
		return nil, invalid("limit", "must be from 1 to 100")
	}
	if p.Cursor == "" {
		return nil, nil
	}
	bad := invalid("cursor", "is not a cursor of this list")
	raw, err := base64.RawURLEncoding.DecodeString(p.Cursor)
	if err != nil || len(raw) > 1024 {
		return nil, bad
	}
	var c tenantCursor
	if err := json.Unmarshal(raw, &c); err != nil || c.Ordering != p.Ordering || c.ID < 1 {
		return nil, bad
	}
	if tenantOrderings[strings.TrimPrefix(p.Ordering, "-")][1] == "timestamptz" {
		if _, err := time.Parse(time.RFC3339Nano, c.Value); err != nil {
			return nil, bad
		}
	}
	return &c, nil
}

// likePattern makes q a substring pattern for ILIKE, its own wildcards
// escaped.
func likePattern(q string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(q) + "%"
}

// Page returns one page of tenants with their domains, and the cursor of
// the next page ("" at the end), by keyset pagination on the ordering and
// the id. Errors: EINVALID naming a bad parameter.
func (m *Manager) Page(ctx context.Context, p ListParams) ([]domain.Tenant, string, error) {
	cur, err := p.validate()
	if err != nil {
		return nil, "", err
	}
	key := tenantOrderings[strings.TrimPrefix(p.Ordering, "-")]
	col, typ := key[0], key[1]
	dir, cmp := "ASC", ">"
	if strings.HasPrefix(p.Ordering, "-") {
		dir, cmp = "DESC", "<"
	}
	args := []any{p.Limit + 1}
	var where []string
	if p.State != "" {
		args = append(args, p.State)
		where = append(where, fmt.Sprintf("t.state = $%d", len(args)))
	}
	if p.Q != "" {
		args = append(args, likePattern(p.Q))
		n := len(args)
		where = append(where, fmt.Sprintf(`(t.schema_name ILIKE $%[1]d OR t.display_name ILIKE $%[1]d
			OR EXISTS (SELECT 1 FROM public.domains d WHERE d.tenant_id = t.id AND d.domain ILIKE $%[1]d))`, n))
	}
	if cur != nil {
		args = append(args, cur.Value, cur.ID)
		where = append(where, fmt.Sprintf("(%s, t.id) %s ($%d::%s, $%d)", col, cmp, len(args)-1, typ, len(args)))
	}
	q := `SELECT ` + tenantColumns + ` FROM public.tenants t`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += fmt.Sprintf(" ORDER BY %s %s, t.id %s LIMIT $1", col, dir, dir)
	rows, err := m.db.Pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("tenancy: page: %w", postgres.Translate(err))
	}
	ts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Tenant, error) { return scanTenant(r) })
	if err != nil {
		return nil, "", fmt.Errorf("tenancy: page: %w", postgres.Translate(err))
	}
	next := ""
	if len(ts) > p.Limit {
		ts = ts[:p.Limit]
		last := ts[len(ts)-1]
		c := tenantCursor{Ordering: p.Ordering, ID: last.ID}
		switch strings.TrimPrefix(p.Ordering, "-") {
		case "schema":
			c.Value = last.Schema
		case "name":
			c.Value = last.Name
		case "created_at":
			c.Value = last.CreatedAt.UTC().Format(time.RFC3339Nano)
		}
		b, _ := json.Marshal(c)
		next = base64.RawURLEncoding.EncodeToString(b)
	}
	return ts, next, nil
}

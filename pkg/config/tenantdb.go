package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// MainDatabase is the name of the PostgreSQL cluster that holds public (the
// catalog of tenants); it is always one of TenantDatabases.
const MainDatabase = "main"

// TenantDatabase is one PostgreSQL cluster that tenant schemas may live on.
type TenantDatabase struct {
	Name string // [a-z][a-z0-9_]{0,30}, what public.tenants records
	URL  string // a postgres:// or postgresql:// URL
}

// TenantDatabases are the clusters of TENANT_DATABASES, main first, then
// the others in the order listed. Names are unique.
type TenantDatabases []TenantDatabase

// URL returns the URL of the cluster called name.
func (d TenantDatabases) URL(name string) (string, bool) {
	for _, db := range d {
		if db.Name == name {
			return db.URL, true
		}
	}
	return "", false
}

// Names returns the clusters' names, main first.
func (d TenantDatabases) Names() []string {
	out := make([]string, len(d))
	for i, db := range d {
		out[i] = db.Name
	}
	return out
}

var tenantDatabaseName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,30}$`)

// ParseTenantDatabases parses TENANT_DATABASES: "name=url,name=url", blanks
// around entries ignored, "" none. main is mainURL (DATABASE_URL) unless the
// list names it, so that it is always there. A URL holding a comma must
// escape it (%2C). It returns an error naming the first bad entry: one
// without '=', a name that is not [a-z][a-z0-9_]{0,30}, a name given twice,
// a URL that is not postgres:// or postgresql:// with a host. Passwords are
// never part of an error.
func ParseTenantDatabases(s, mainURL string) (TenantDatabases, error) {
	out := TenantDatabases{{Name: MainDatabase, URL: mainURL}}
	mainListed := false
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, u, ok := strings.Cut(entry, "=")
		name, u = strings.TrimSpace(name), strings.TrimSpace(u)
		switch {
		case !ok:
			return nil, fmt.Errorf("entry %d is not name=url", i+1)
		case !tenantDatabaseName.MatchString(name):
			return nil, fmt.Errorf("entry %d: name %q must be a lower-case letter then up to 30 lower-case letters, digits or '_'", i+1, name)
		case name == MainDatabase && mainListed, name != MainDatabase && out.has(name):
			return nil, fmt.Errorf("entry %d: %s is listed twice", i+1, name)
		}
		if err := checkPostgresURL(u); err != nil {
			return nil, fmt.Errorf("entry %d (%s): %w", i+1, name, err)
		}
		if name == MainDatabase {
			mainListed = true
			out[0].URL = u
			continue
		}
		out = append(out, TenantDatabase{Name: name, URL: u})
	}
	if out[0].URL == "" {
		return nil, errors.New("main has no URL: set DATABASE_URL or list main=url")
	}
	return out, nil
}

func (d TenantDatabases) has(name string) bool {
	_, ok := d.URL(name)
	return ok
}

func checkPostgresURL(s string) error {
	if s == "" {
		return errors.New("no URL after '='")
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("the URL does not parse")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return fmt.Errorf("the URL's scheme is %q, not postgres or postgresql", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("the URL names no host")
	}
	return nil
}

// redacted returns a copy whose URLs have their passwords masked.
func (d TenantDatabases) redacted() TenantDatabases {
	if d == nil {
		return nil
	}
	out := make(TenantDatabases, len(d))
	for i, db := range d {
		out[i] = TenantDatabase{Name: db.Name, URL: redactURL(db.URL)}
	}
	return out
}

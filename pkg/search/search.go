// Package search is the only code that talks to Elasticsearch: every call
// goes through Client, so the client library can change in one place.
//
// Each tenant has one alias, <prefix>_<schema>_products, and readers and
// the indexer only ever name the alias. Behind it is either a shared
// physical index, <prefix>_shared_<n>, that many small tenants use through
// filtered, routed aliases (see shared.go), or, for a tenant that grew big,
// an index of its own, <alias>_<n>. A rebuild into an index of its own
// fills a new physical index and swaps the alias in one atomic step.
// Documents carry the product's version as Elasticsearch's external
// version, so an older write never replaces a newer one, and an _id
// qualified by the tenant, so tenants sharing an index never meet.
//
// The package only uses what every Elasticsearch 8 distribution has (no
// analysis-common, no scripts, no _delete_by_query or _reindex), so it runs
// against a minimal build as well as a full cluster.
package search

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/tenantworks/saas/pkg/domain"
)

// Config configures New.
type Config struct {
	URL string
	// IndexPrefix starts every index and alias name, so several
	// deployments (or test runs) can share one cluster. Default "saas".
	IndexPrefix string
	// GCDeletes, when set, is the index.gc_deletes of indices created from
	// now on: how long Elasticsearch remembers the version of a deleted
	// document. Elasticsearch's default is 60s. Tests set it very low to
	// show that correctness never depends on it.
	GCDeletes string
	// SharedIndices is how many shared indices new tenants are spread
	// over, by a hash of the schema name; default DefaultSharedIndices.
	// Changing it moves no tenant: it only places tenants created (or
	// rebuilt into a shared index) from then on.
	SharedIndices int
}

// DefaultSharedIndices is the default Config.SharedIndices: four shards
// for every small tenant together, about 2,500 aliases each at 10,000
// tenants.
const DefaultSharedIndices = 4

var prefixRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_]{0,49}$`)

// Validate checks the configuration after defaults are applied.
func (c Config) Validate() error {
	if c.URL == "" {
		return errors.New("search: URL is required")
	}
	if !prefixRE.MatchString(c.IndexPrefix) {
		return fmt.Errorf("search: index prefix %q must be 1 to 50 of a-z, 0-9 and _, starting with a letter or digit", c.IndexPrefix)
	}
	if c.SharedIndices < 1 || c.SharedIndices > 1000 {
		return fmt.Errorf("search: shared indices %d must be 1 to 1000", c.SharedIndices)
	}
	return nil
}

// Client wraps the official Elasticsearch client.
type Client struct {
	es        *elasticsearch.Client
	prefix    string
	gcDeletes string
	shared    int
	known     sync.Map // shared indices known to exist
}

// New returns a Client. It does not contact the server.
func New(cfg Config) (*Client, error) {
	if cfg.IndexPrefix == "" {
		cfg.IndexPrefix = "saas"
	}
	if cfg.SharedIndices == 0 {
		cfg.SharedIndices = DefaultSharedIndices
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses: []string{cfg.URL},
		Transport: &http.Transport{MaxIdleConnsPerHost: 32, ResponseHeaderTimeout: 30 * time.Second},
		// A few quick retries of a refused connection or a 502/503/504,
		// then the caller's own retry policy takes over.
		MaxRetries:   2,
		RetryBackoff: func(attempt int) time.Duration { return time.Duration(attempt) * 50 * time.Millisecond },
	})
	if err != nil {
		return nil, fmt.Errorf("search: new client: %w", err)
	}
	return &Client{es: es, prefix: cfg.IndexPrefix, gcDeletes: cfg.GCDeletes, shared: cfg.SharedIndices}, nil
}

// Ping checks that the cluster answers and is at least yellow. It returns an
// EUNAVAILABLE error otherwise.
func (c *Client) Ping(ctx context.Context) error {
	res, err := c.es.Cluster.Health(c.es.Cluster.Health.WithContext(ctx), c.es.Cluster.Health.WithWaitForStatus("yellow"),
		c.es.Cluster.Health.WithTimeout(2*time.Second))
	if err != nil {
		return fmt.Errorf("search: ping: %w: %w", errUnavailable, err)
	}
	defer res.Body.Close()
	if res.IsError() {
		return fmt.Errorf("search: ping: %w: %s", errUnavailable, res.Status())
	}
	return nil
}

// errUnavailable is the domain error every "Elasticsearch is down or
// overloaded" failure wraps.
var errUnavailable = domain.Errorf(domain.EUNAVAILABLE, "search unavailable")

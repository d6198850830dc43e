// Package search is the only code that talks to Elasticsearch: every call
// goes through Client, so the client library can change in one place.
package search

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/tenantworks/saas/pkg/domain"
)

// Config configures New.
type Config struct {
	URL string
	// IndexPrefix starts every index and alias name, so several
	// deployments (or test runs) can share one cluster.
	IndexPrefix string
}

// Client wraps the official Elasticsearch client.
type Client struct {
	es     *elasticsearch.Client
	prefix string
}

// New returns a Client. It does not contact the server.
func New(cfg Config) (*Client, error) {
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses: []string{cfg.URL},
		Transport: &http.Transport{MaxIdleConnsPerHost: 32, ResponseHeaderTimeout: 30 * time.Second},
	})
	if err != nil {
		return nil, fmt.Errorf("search: new client: %w", err)
	}
	return &Client{es: es, prefix: cfg.IndexPrefix}, nil
}

// Ping checks that the cluster answers and is at least yellow. It returns an
// EUNAVAILABLE error otherwise.
func (c *Client) Ping(ctx context.Context) error {
	res, err := c.es.Cluster.Health(c.es.Cluster.Health.WithContext(ctx), c.es.Cluster.Health.WithWaitForStatus("yellow"),
		c.es.Cluster.Health.WithTimeout(2*time.Second))
	if err != nil {
		return fmt.Errorf("search: ping: %w: %w", domain.Errorf(domain.EUNAVAILABLE, "search unavailable"), err)
	}
	defer res.Body.Close()
	if res.IsError() {
		return fmt.Errorf("search: ping: %w: %s", domain.Errorf(domain.EUNAVAILABLE, "search unavailable"), res.Status())
	}
	return nil
}

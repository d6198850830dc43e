package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/tenantworks/saas/bench/internal/stack"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/tenancy"
)

// pipeline is the benchmark's private stack and its two tenants.
type pipeline struct {
	*stack.Stack
	sfx     string     // the run's random suffix of tenant names
	live    tenantInfo // part 1: staff user, WebSocket, paced writes
	backlog tenantInfo // part 2: 10,000 products written to the database
}

type tenantInfo struct {
	schema, host, token string
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench/pipeline: "+format+"\n", args...)
}

// setup builds saas and starts the stack (the private nats-server, Redis
// db -redis-db, the fresh database), then makes both tenants, with their
// indices, and the staff user.
func setup(ctx context.Context, o options) (_ *pipeline, err error) {
	st, err := stack.New(ctx, stack.Options{
		Name:        "bench_pipeline",
		IndexPrefix: "bpipe",
		NATSServer:  o.natsServer,
		Redis:       stack.RedisSharedDB,
		RedisDB:     o.redisDB,
		MaxConns:    int32(max(o.backlogWorkers, o.tenantWorkers) + 2),
		Search:      true,
		Overlay:     o.buildOverlay,
		Logf:        logf,
	})
	if err != nil {
		return nil, err
	}
	sfx := strings.ToLower(rand.Text()[:10])
	s := &pipeline{
		Stack:   st,
		sfx:     sfx,
		live:    tenantInfo{schema: "bpl_" + sfx, host: "bpl-" + sfx + ".bench.localhost"},
		backlog: tenantInfo{schema: "bpb_" + sfx, host: "bpb-" + sfx + ".bench.localhost"},
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if _, err := s.Binary(ctx); err != nil {
		return nil, err
	}
	// Tenants, with the search hook: each gets its index and alias now,
	// before any role of the stack runs.
	for _, t := range []tenantInfo{s.live, s.backlog} {
		// On main: part 2's relay runs on the main cluster alone, and
		// the extra tenants, which spread over every cluster, must not
		// move the measured two.
		if _, err := s.Manager().Create(ctx, tenancy.CreateParams{Schema: t.schema, Name: "pipeline benchmark " + t.schema, Domain: t.host, Cluster: postgres.MainCluster}); err != nil {
			return nil, fmt.Errorf("create tenant %s: %w", t.schema, err)
		}
	}
	u, err := s.NewUser(ctx, s.live.schema, "staff@"+s.live.host, true)
	if err != nil {
		return nil, err
	}
	s.live.token = u.Token
	return s, nil
}

var esHTTP = &http.Client{Timeout: 30 * time.Second}

// esJSON sends one request to Elasticsearch and decodes the answer into out
// (when not nil). A status of 300 or more is an error.
func esJSON(ctx context.Context, method, u string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := esHTTP.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %.300s", method, u, res.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// refreshInterval reads index.refresh_interval of the alias's index.
func (s *pipeline) refreshInterval(ctx context.Context, schema string) (string, error) {
	var out map[string]struct {
		Settings struct {
			Index struct {
				RefreshInterval string `json:"refresh_interval"`
			} `json:"index"`
		} `json:"settings"`
	}
	if err := esJSON(ctx, http.MethodGet, s.ElasticsearchURL()+"/"+s.Search().Alias(schema)+"/_settings", nil, &out); err != nil {
		return "", err
	}
	for _, v := range out {
		if v.Settings.Index.RefreshInterval == "" {
			return "1s (Elasticsearch default, not set)", nil
		}
		return v.Settings.Index.RefreshInterval, nil
	}
	return "", errors.New("no index behind the alias")
}

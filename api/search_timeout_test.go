package api_test

import (
	"context"
	"net"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tenantworks/saas/pkg/search"
)

// TestSearchAnswers503WhenElasticsearchHangs: a cluster that takes
// connections and never answers (a stopped process, a full queue) gets a
// 503 within the search timeout, not a request held for a minute.
func TestSearchAnswers503WhenElasticsearchHangs(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	es, err := search.New(search.Config{URL: "http://" + ln.Addr().String(), IndexPrefix: "hung"})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, withSearch(es), func(w *wiring) { w.SearchTimeout = time.Second })
	a := e.tenant("srh")
	// The client gives up long after the search timeout, and long before
	// the search client's own.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	hr := httptest.NewRequestWithContext(ctx, "GET", "/api/catalog/products/search/?q=lamp", nil)
	hr.Host = a.Host
	hr.Header.Set("Authorization", "Bearer "+a.UserToken)
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, hr)
	if rec.Code != 503 || ctx.Err() != nil {
		t.Fatalf("%d %s (client gave up: %v), want 503 before the client gives up", rec.Code, rec.Body, ctx.Err())
	}
}

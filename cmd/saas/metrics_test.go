package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer is a JSON log written by a running command and read by the test.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records returns the log's records so far.
func (l *logBuffer) records() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	for sc.Scan() {
		var r map[string]any
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			out = append(out, r)
		}
	}
	return out
}

// find returns the first record whose message starts with msg.
func (l *logBuffer) find(msg string) map[string]any {
	for _, r := range l.records() {
		if m, _ := r["msg"].(string); strings.HasPrefix(m, msg) {
			return r
		}
	}
	return nil
}

// startRole runs `saas args...` in-process, its API on a loopback port,
// until the test ends; it returns the API's address once it listens, and
// the log.
func startRole(t *testing.T, args ...string) (apiAddr string, log *logBuffer) {
	t.Helper()
	t.Setenv("HTTP_ADDR", "127.0.0.1:0")
	log = &logBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, io.Discard, log) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("saas %v: %v", args, err)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if r := log.find("api listening"); r != nil {
			return r["addr"].(string), log
		}
		select {
		case err := <-done:
			t.Fatalf("saas %v ended: %v\n%s", args, err, log.b.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("saas %v is not listening after 30 s", args)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func httpGet(t *testing.T, url, host string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if host != "" {
		req.Host = host
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestMetricsAreServedOnTheirOwnListenerOnly(t *testing.T) {
	useServices(t)
	if _, errOut, code := saas(t, "migrate", "--shared"); code != 0 {
		t.Fatal(errOut)
	}
	t.Setenv("METRICS_ADDR", "127.0.0.1:0")
	for _, role := range []string{"api", "push"} {
		t.Run("saas "+role, func(t *testing.T) {
			api, log := startRole(t, role)
			r := log.find("metrics listening")
			if r == nil {
				t.Fatalf("no metrics listener:\n%s", log.b.String())
			}
			metrics := "http://" + r["addr"].(string) + "/metrics"
			if code, _ := httpGet(t, "http://"+api+"/health/", "localhost"); code != http.StatusOK {
				t.Fatalf("/health/ = %d", code)
			}

			code, body := httpGet(t, metrics, "")
			if code != http.StatusOK {
				t.Fatalf("GET %s = %d", metrics, code)
			}
			for _, name := range []string{"saas_outbox_oldest_pending_seconds", "saas_http_requests_total", "saas_ws_connections", "go_goroutines"} {
				if !strings.Contains(body, name) {
					t.Errorf("metrics lack %s", name)
				}
			}
			for _, host := range []string{"localhost", "LocalHost:8080", "acme.localhost", ""} {
				if code, body := httpGet(t, "http://"+api+"/metrics", host); code != http.StatusNotFound || strings.Contains(body, "go_goroutines") {
					t.Errorf("GET /metrics on the API port, host %q = %d %.80s, want 404", host, code, body)
				}
			}
			if code, _ := httpGet(t, strings.TrimSuffix(metrics, "/metrics")+"/health/", ""); code != http.StatusNotFound {
				t.Errorf("the metrics listener answers /health/ with %d, want 404: metrics only", code)
			}
		})
	}
}

func TestMetricsListenerCanBeOffOrTaken(t *testing.T) {
	useServices(t)
	if _, errOut, code := saas(t, "migrate", "--shared"); code != 0 {
		t.Fatal(errOut)
	}

	t.Run("an address in use is a warning; the role runs without metrics", func(t *testing.T) {
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		t.Setenv("METRICS_ADDR", taken.Addr().String())
		api, log := startRole(t, "api")
		if code, _ := httpGet(t, "http://"+api+"/health/", "localhost"); code != http.StatusOK {
			t.Fatalf("/health/ = %d, want the API serving", code)
		}
		r := log.find("metrics not served")
		if r == nil || r["level"] != "WARN" || r["addr"] != taken.Addr().String() {
			t.Fatalf("log record %v, want a warning naming %s", r, taken.Addr())
		}
	})

	t.Run("off serves none", func(t *testing.T) {
		t.Setenv("METRICS_ADDR", "off")
		api, log := startRole(t, "api")
		if code, _ := httpGet(t, "http://"+api+"/health/", "localhost"); code != http.StatusOK {
			t.Fatalf("/health/ = %d", code)
		}
		if r := log.find("metrics"); r != nil {
			t.Errorf("log record %v, want nothing about metrics", r)
		}
	})
}

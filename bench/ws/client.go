//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// clientJob is what a client process is asked to do: open one idle
// connection per token to URL, Concurrency dials at a time, from the
// loopback address Source.
type clientJob struct {
	Kind        string   `json:"kind"` // "push" or "centrifugo"
	URL         string   `json:"url"`
	Host        string   `json:"host"` // the Host header (push: the tenant's domain)
	Source      string   `json:"source"`
	Concurrency int      `json:"concurrency"`
	Tokens      []string `json:"tokens"`
}

// clientReport is the one line a client process prints once its
// connections are open (or failed).
type clientReport struct {
	Connected int     `json:"connected"`
	Failed    int     `json:"failed"`
	FirstErr  string  `json:"first_err,omitempty"`
	Seconds   float64 `json:"seconds"` // from the first dial to the last connection up
}

// raiseNoFile lifts this process's open-file limit to the hard limit (Go
// does it at start since 1.19; this says so when it cannot).
func raiseNoFile() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, err
		}
	}
	return l.Cur, nil
}

// runClient is the client process: it reads a clientJob on stdin, opens
// the connections, prints a clientReport on stdout, and keeps them open,
// answering pings, until stdin closes.
func runClient() error {
	if _, err := raiseNoFile(); err != nil {
		return fmt.Errorf("raise the open-file limit: %w", err)
	}
	in := bufio.NewReader(os.Stdin)
	line, err := in.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("read job: %w", err)
	}
	var job clientJob
	if err := json.Unmarshal(line, &job); err != nil {
		return fmt.Errorf("decode job: %w", err)
	}
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(job.Source)}, Timeout: 30 * time.Second}
	httpc := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true}}

	var (
		connected, failed atomic.Int64
		firstErr          atomic.Value
		mu                sync.Mutex
		conns             []*websocket.Conn
		wg                sync.WaitGroup
	)
	sem := make(chan struct{}, max(job.Concurrency, 1))
	start := time.Now()
	for _, tok := range job.Tokens {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			conn, err := dial(httpc, job, tok)
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			connected.Add(1)
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			go hold(conn, job.Kind)
		}()
	}
	wg.Wait()
	rep := clientReport{Connected: int(connected.Load()), Failed: int(failed.Load()), Seconds: time.Since(start).Seconds()}
	if e, ok := firstErr.Load().(string); ok {
		rep.FirstErr = e
	}
	b, _ := json.Marshal(rep)
	fmt.Println(string(b))
	_, _ = io.Copy(io.Discard, in) // until the benchmark closes stdin
	for _, c := range conns {
		_ = c.CloseNow()
	}
	return nil
}

// dial opens one connection and, for Centrifugo, sends the connect command
// and waits for its reply (the server subscribes the user to its personal
// channel on connect).
func dial(httpc *http.Client, job clientJob, token string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts := &websocket.DialOptions{HTTPClient: httpc, Host: job.Host}
	if job.Kind == "push" {
		opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + token}}
	}
	conn, resp, err := websocket.Dial(ctx, job.URL, opts)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial: %w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	if job.Kind != "centrifugo" {
		return conn, nil
	}
	cmd, _ := json.Marshal(map[string]any{"id": 1, "connect": map[string]any{"token": token}})
	if err := conn.Write(ctx, websocket.MessageText, cmd); err != nil {
		_ = conn.CloseNow()
		return nil, fmt.Errorf("connect command: %w", err)
	}
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			_ = conn.CloseNow()
			return nil, fmt.Errorf("connect reply: %w", err)
		}
		// Replies may be batched, one JSON object a line.
		for _, l := range splitLines(b) {
			var r struct {
				ID      int             `json:"id"`
				Connect json.RawMessage `json:"connect"`
				Error   json.RawMessage `json:"error"`
			}
			if json.Unmarshal(l, &r) != nil || r.ID != 1 {
				continue
			}
			if r.Error != nil || r.Connect == nil {
				_ = conn.CloseNow()
				return nil, fmt.Errorf("connect refused: %s", l)
			}
			return conn, nil
		}
	}
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		if i > 0 {
			out = append(out, b[:i])
		}
		if i == len(b) {
			break
		}
		b = b[i+1:]
	}
	return out
}

// hold reads the connection until it ends: the library answers WebSocket
// pings; a Centrifugo ping ({}) is answered with a pong ({}).
func hold(conn *websocket.Conn, kind string) {
	for {
		_, b, err := conn.Read(context.Background())
		if err != nil {
			return
		}
		if kind == "centrifugo" && string(b) == "{}" {
			_ = conn.Write(context.Background(), websocket.MessageText, []byte("{}"))
		}
	}
}

package api_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tenantworks/saas/api"
)

// serveReal runs srv with Serve (the production server, timeouts and all)
// on a loopback port until the test ends, and returns its address.
func serveReal(t *testing.T, srv *api.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// trickle sends head at once, then tail a byte every interval, and reports
// how the server answered: its status, or 0 when it closed the connection
// without one, how long that took from the first byte, and whether the
// server then closed the connection.
func trickle(t *testing.T, addr, head, tail string, interval time.Duration) (code int, took time.Duration, closed bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := conn.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := range len(tail) {
			select {
			case <-stop:
				return
			case <-time.After(interval):
			}
			if _, err := conn.Write([]byte{tail[i]}); err != nil {
				return // the server closed the connection
			}
		}
	}()
	// Long enough for any answer, far shorter than the trickle.
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	took = time.Since(start)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("no answer and the connection still open after %v", took.Round(time.Millisecond))
	}
	if err != nil {
		return 0, took, true // closed (EOF or reset)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err = br.ReadByte()
	return res.StatusCode, took, err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func TestAWholeRequestMustArriveWithinTheReadTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(w *wiring) { w.ReadTimeout = time.Second })
	a := e.tenant("slowloris")
	addr := serveReal(t, api.New(e.cfg, e.deps))
	body := fmt.Sprintf(`{"email":%q,"password":%q}`, a.StaffEmail, testPassword)
	head := "POST /api/auth/token HTTP/1.1\r\nHost: " + a.Host + "\r\nConnection: close\r\nContent-Type: application/json\r\n" +
		fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body))
	// A byte every 300 ms: the body takes over 15 s, the headers below 30 s.
	const every = 300 * time.Millisecond

	t.Run("the same request sent at once is answered", func(t *testing.T) {
		if code, _, _ := trickle(t, addr, head+body, "", every); code != http.StatusOK {
			t.Fatalf("= %d, want 200", code)
		}
	})

	t.Run("a body sent a byte at a time is 408 or cut off", func(t *testing.T) {
		code, took, closed := trickle(t, addr, head, body, every)
		t.Logf("answered %d after %v", code, took)
		if (code != http.StatusRequestTimeout && code != 0) || !closed {
			t.Fatalf("= %d after %v (then closed: %v), want 408 or a closed connection", code, took, closed)
		}
		if took > 6*time.Second {
			t.Fatalf("answered after %v, want about the 1 s read timeout", took)
		}
	})

	t.Run("headers sent a byte at a time are cut off", func(t *testing.T) {
		// net/http ends the connection itself, with or without a "400 Bad
		// Request" depending on where the headers stopped: no handler ran.
		tail := "X-Slow: " + strings.Repeat("a", 100) + "\r\n\r\n"
		code, took, closed := trickle(t, addr, "GET /api/catalog/products/ HTTP/1.1\r\nHost: "+a.Host+"\r\n", tail, every)
		if !closed || (code != 0 && code != http.StatusBadRequest && code != http.StatusRequestTimeout) {
			t.Fatalf("= %d after %v (then closed: %v), want the connection closed", code, took, closed)
		}
		if took > 6*time.Second {
			t.Fatalf("answered after %v, want about the 1 s read timeout", took)
		}
	})
}

// TestAWebSocketOutlivesTheReadTimeout: the read deadline bounds the
// upgrade request, not the connection it becomes.
func TestAWebSocketOutlivesTheReadTimeout(t *testing.T) {
	t.Parallel()
	p := newPushEnv(t, api.PushConfig{PingInterval: 200 * time.Millisecond})
	a := p.tenant("wslong")
	cfg := p.cfg
	cfg.ReadTimeout = time.Second
	addr := serveReal(t, api.New(cfg, p.deps))
	t.Cleanup(func() { // before Serve's clean-up: Shutdown does not wait for hijacked connections
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = p.hub.Close(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws/notifications/", &websocket.DialOptions{Host: a.Host,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + a.StaffToken}}})
	if err != nil {
		t.Fatal(err)
	}
	c := read(t, conn)
	// Three read timeouts, during which the node pings and reads the pongs.
	time.Sleep(3 * time.Second)
	if got := c.until(p.mark(a.Schema, a.StaffID)); len(got) != 0 {
		t.Errorf("received %v before the marker", got)
	}
	pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer pcancel()
	if err := conn.Ping(pctx); err != nil {
		t.Fatalf("the node did not answer a ping after the read timeout: %v", err)
	}
	if n := p.hub.Connections(); n != 1 {
		t.Fatalf("the node holds %d connections, want 1", n)
	}
}

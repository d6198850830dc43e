package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/coder/websocket"

	"github.com/tenantworks/saas/api"
)

// refused dials and checks that the upgrade is refused with status and a
// JSON error of code.
func refused(t *testing.T, srv *httptest.Server, o dialOpts, status int, code string) {
	t.Helper()
	conn, resp, err := dialWS(t, srv, o)
	if err == nil {
		conn.CloseNow()
		t.Fatalf("upgraded, want %d before the upgrade", status)
	}
	if resp == nil || resp.StatusCode != status {
		t.Fatalf("dial error %v, response %+v, want %d", err, resp, status)
	}
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error.Code != code || body.Error.Message == "" {
		t.Fatalf("body %+v, %v; want a JSON %s error", body, err, code)
	}
}

func TestWebSocketConnectionsAreCappedPerUser(t *testing.T) {
	t.Parallel()
	p := newPushEnv(t, api.PushConfig{}) // the default: 10 per user
	a, b := p.tenant("wscap"), p.tenant("wscapb")
	staff := dialOpts{host: a.Host, token: a.StaffToken}
	var open []*wsClient
	for range 10 {
		open = append(open, connect(t, p.srv, staff))
	}

	t.Run("the 11th connection of a user is 429 before the upgrade", func(t *testing.T) {
		refused(t, p.srv, staff, http.StatusTooManyRequests, "rate_limited")
		refused(t, p.srv, dialOpts{host: a.Host, token: a.StaffToken, via: viaQuery}, http.StatusTooManyRequests, "rate_limited")
		if n := p.hub.Connections(); n != 10 {
			t.Fatalf("the node holds %d connections, want the 10 accepted", n)
		}
	})

	t.Run("another user, of this tenant or another, still connects", func(t *testing.T) {
		plain := connect(t, p.srv, dialOpts{host: a.Host, token: a.UserToken})
		other := connect(t, p.srv, dialOpts{host: b.Host, token: b.StaffToken})
		if got := plain.until(p.mark(a.Schema, a.UserID)); len(got) != 0 {
			t.Errorf("received %v", got)
		}
		_ = plain.conn.Close(websocket.StatusNormalClosure, "")
		_ = other.conn.Close(websocket.StatusNormalClosure, "")
		wsEventually(t, "their connections are released", func() bool { return p.hub.Connections() == 10 })
	})

	t.Run("closing one lets a new one in", func(t *testing.T) {
		_ = open[0].conn.Close(websocket.StatusNormalClosure, "")
		wsEventually(t, "the closed connection is released", func() bool { return p.hub.Connections() == 9 })
		again := connect(t, p.srv, staff)
		if got := again.until(p.mark(a.Schema, a.StaffID)); len(got) != 0 {
			t.Errorf("received %v", got)
		}
		refused(t, p.srv, staff, http.StatusTooManyRequests, "rate_limited")
		// A client gone without a close frame is released as well.
		_ = open[1].conn.CloseNow()
		wsEventually(t, "the dropped connection is released", func() bool { return p.hub.Connections() == 9 })
		connect(t, p.srv, staff)
	})
}

func TestWebSocketConnectionsAreCappedPerNode(t *testing.T) {
	t.Parallel()
	p := newPushEnv(t, api.PushConfig{})
	a, b := p.tenant("wsfull"), p.tenant("wsfullb")
	hub, srv := p.node(api.PushConfig{MaxPerNode: 2})
	first := connect(t, srv, dialOpts{host: a.Host, token: a.StaffToken})
	connect(t, srv, dialOpts{host: a.Host, token: a.UserToken})

	t.Run("one more on a full node is 503 before the upgrade, whoever asks", func(t *testing.T) {
		refused(t, srv, dialOpts{host: b.Host, token: b.StaffToken}, http.StatusServiceUnavailable, "unavailable")
		refused(t, srv, dialOpts{host: a.Host, token: a.StaffToken}, http.StatusServiceUnavailable, "unavailable")
		if n := hub.Connections(); n != 2 {
			t.Fatalf("the node holds %d connections, want 2", n)
		}
	})

	t.Run("another node is not full", func(t *testing.T) {
		connect(t, p.srv, dialOpts{host: b.Host, token: b.StaffToken})
	})

	t.Run("closing one lets a new one in", func(t *testing.T) {
		_ = first.conn.Close(websocket.StatusNormalClosure, "")
		wsEventually(t, "the closed connection is released", func() bool { return hub.Connections() == 1 })
		c := connect(t, srv, dialOpts{host: b.Host, token: b.StaffToken})
		if got := c.until(p.mark(b.Schema, b.StaffID)); len(got) != 0 {
			t.Errorf("received %v", got)
		}
	})
}

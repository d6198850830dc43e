package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/auth"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/tenancy"
	"github.com/tenantworks/saas/pkg/testenv"
	"github.com/tenantworks/saas/schema"
)

// Both `saas push` and `saas api` serve GET /ws/notifications/ with the
// real wiring, and close their connections with "going away" on shutdown.
func TestPushNodeServesNotificationsAndDrainsOnShutdown(t *testing.T) {
	for _, role := range []string{"push", "api"} {
		t.Run("saas "+role, func(t *testing.T) {
			useServices(t)
			if _, errOut, code := saas(t, "migrate", "--shared"); code != 0 {
				t.Fatal(errOut)
			}
			ctx := context.Background()
			db, err := postgres.Open(ctx, postgres.Config{URL: os.Getenv("DATABASE_DIRECT_URL")})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(db.Close)
			runner, err := schema.NewRunner(os.Getenv("DATABASE_DIRECT_URL"), nil)
			if err != nil {
				t.Fatal(err)
			}
			schemaName := "push_" + testenv.RandomName(8)
			host := strings.ReplaceAll(schemaName, "_", "-") + ".localhost"
			if _, err := tenancy.NewManager(db, runner, slog.New(slog.DiscardHandler)).Create(ctx,
				tenancy.CreateParams{Schema: schemaName, Name: "Push", Domain: host}); err != nil {
				t.Fatal(err)
			}
			u, err := db.CreateUser(ctx, schemaName, postgres.NewUser{Email: "staff@push.test", PasswordHash: "x", IsStaff: true})
			if err != nil {
				t.Fatal(err)
			}

			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			sctx, stop := context.WithCancel(ctx)
			_, a := newRootCmd(&bytes.Buffer{}, &bytes.Buffer{})
			if err := a.init(); err != nil {
				t.Fatal(err)
			}
			a.role = role
			done := make(chan error, 1)
			go func() { done <- a.serveAPI(sctx, ln) }()
			stopped := false
			t.Cleanup(func() {
				if !stopped {
					stop()
					<-done
				}
				a.close()
			})
			base := "http://" + ln.Addr().String()
			get := func(host, path, token string) (int, map[string]any) {
				req, _ := http.NewRequest(http.MethodGet, base+path, nil)
				req.Host = host
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					return 0, nil
				}
				defer res.Body.Close()
				var body map[string]any
				_ = json.NewDecoder(res.Body).Decode(&body)
				return res.StatusCode, body
			}
			deadline := time.Now().Add(10 * time.Second)
			for code, _ := get("localhost", "/health/", ""); code != http.StatusOK; code, _ = get("localhost", "/health/", "") {
				if time.Now().After(deadline) {
					t.Fatalf("/health/ = %d", code)
				}
				time.Sleep(50 * time.Millisecond)
			}

			tok, _, err := auth.NewTokens(a.cfg.JWTSecret, 0).Issue(schemaName, u.ID, true)
			if err != nil {
				t.Fatal(err)
			}
			products, _ := get(host, "/api/catalog/products/", tok)
			if want := map[string]int{"push": http.StatusNotFound, "api": http.StatusOK}[role]; products != want {
				t.Errorf("GET /api/catalog/products/ = %d, want %d", products, want)
			}

			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			conn, resp, err := websocket.Dial(dctx, "ws"+strings.TrimPrefix(base, "http")+"/ws/notifications/",
				&websocket.DialOptions{Host: host, Subprotocols: []string{"bearer." + tok}})
			if err != nil {
				t.Fatalf("dial: %v %+v", err, resp)
			}
			defer conn.CloseNow()

			nc, err := events.Connect(os.Getenv("NATS_URL"), "push-cmd-test")
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			// As the notifier pushes: one message for the event's recipients.
			b, _ := json.Marshal(events.PushFanout{Type: events.PushFanoutType, EventID: "e", Kind: "product.created",
				Title: "hello", Data: json.RawMessage(`{}`), CreatedAt: time.Now().UTC(), Users: []string{u.ID}, IDs: []int64{7}})
			if err := nc.Publish(events.PushTenantSubject(schemaName), b); err != nil {
				t.Fatal(err)
			}
			_, msg, err := conn.Read(dctx)
			var n events.Notification
			if err != nil || json.Unmarshal(msg, &n) != nil || n.ID != 7 || n.Title != "hello" {
				t.Fatalf("read %s, %v; want the pushed notification", msg, err)
			}

			stop()
			stopped = true
			if _, _, err := conn.Read(dctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Errorf("on shutdown the connection ended with %v, want going away", err)
			}
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
}

package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"

	"github.com/tenantworks/saas/events"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/observability"
)

// The WebSocket push node: GET /ws/notifications/ on a tenant domain.
//
// A connection is accepted only with a valid token of the tenant whose user
// is active, checked before the upgrade (401 otherwise). The node then
// subscribes to the user's core NATS subject (events.PushSubject), so a
// notification reaches whichever node holds the connection, wherever the
// notifier ran. With ?since=<id>, the node first subscribes (buffering the
// live messages), then sends the user's notifications with a greater id
// from the database in id order, then the live ones, skipping every id it
// has already sent: no gap and no duplicate at the switch. Ids are compared
// as a set, never by order, since they commit out of order.
//
// A user may hold PushConfig.MaxPerUser connections on a node and the node
// PushConfig.MaxPerNode in all; past either, the upgrade is refused before
// it happens (429 and 503), so one user cannot take a node's memory or
// file descriptors. A connection counts until it is closed.
//
// Each connection has a bounded send queue. A client that does not read
// fast enough fills it and is closed with StatusTooSlow; the NATS callback
// never blocks, so a slow client never holds up the node.

// StatusTooSlow is the close code of a connection whose send queue
// overflowed: the client did not read its notifications fast enough. It
// may reconnect with ?since= to get what it missed.
const StatusTooSlow websocket.StatusCode = 4008

// StatusTenantSuspended closes the connections of a tenant that was
// suspended.
const StatusTenantSuspended websocket.StatusCode = 4003

// PushConfig configures a PushHub. Zero values take the defaults.
type PushConfig struct {
	// PingInterval is how often a connection is pinged and its user's
	// active flag checked again; a ping whose pong has not come back within
	// the interval drops the connection. Default 30 seconds.
	PingInterval time.Duration
	// QueueSize bounds the live notifications waiting to be written to one
	// connection; default 64. When it is full the connection is closed
	// with StatusTooSlow.
	QueueSize int
	// WriteTimeout bounds the write of one message; a connection whose
	// write times out is dropped. Default 10 seconds.
	WriteTimeout time.Duration
	// MaxPerUser caps the open connections of one user (of one tenant) on
	// this node; one more is refused with 429. Default 10.
	MaxPerUser int
	// MaxPerNode caps the open connections of this node; one more is
	// refused with 503. Default 100000.
	MaxPerNode int
}

func (c PushConfig) withDefaults() PushConfig {
	if c.PingInterval <= 0 {
		c.PingInterval = 30 * time.Second
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 64
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxPerUser <= 0 {
		c.MaxPerUser = 10
	}
	if c.MaxPerNode <= 0 {
		c.MaxPerNode = 100000
	}
	return c
}

// PushSource is where a push node hears its users' notifications: core
// NATS. *nats.Conn is one.
type PushSource interface {
	Subscribe(subject string, cb nats.MsgHandler) (*nats.Subscription, error)
	FlushWithContext(ctx context.Context) error
}

// PushHub holds the WebSocket connections of one push node. Set it as
// Deps.Push to serve GET /ws/notifications/; without it the route answers
// 503.
type PushHub struct {
	cfg PushConfig
	src PushSource

	mu       sync.Mutex
	draining bool
	open     int
	tenants  map[string]map[*pushSession]struct{} // open sessions by schema
	perUser  map[string]int                       // open connections by userKey
	done     chan struct{}                        // closed by Drain
	resync   chan struct{}                        // closed (and replaced) by Resync
	wg       sync.WaitGroup
}

// NewPushHub returns a hub whose connections subscribe on src.
func NewPushHub(cfg PushConfig, src PushSource) *PushHub {
	return &PushHub{cfg: cfg.withDefaults(), src: src, perUser: map[string]int{}, done: make(chan struct{}), resync: make(chan struct{}),
		tenants: map[string]map[*pushSession]struct{}{}}
}

// CloseTenant closes every open connection of a tenant with
// StatusTenantSuspended. New ones are refused by the routing (403) once
// the tenant is suspended.
func (h *PushHub) CloseTenant(schemaName string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ps := range h.tenants[schemaName] {
		ps.suspendOnce.Do(func() { close(ps.suspended) })
	}
}

// Resync makes every open connection read from the database what it may
// have missed live: the notifications of its user above the highest id it
// has sent (or its ?since=). Call it when the node's NATS connection comes
// back: what the notifiers pushed while it was away went nowhere, and the
// clients, still connected, would not ask for it. Ids commit in order per
// tenant, so nothing below that id can still appear.
func (h *PushHub) Resync() {
	h.mu.Lock()
	defer h.mu.Unlock()
	close(h.resync)
	h.resync = make(chan struct{})
}

// ResyncOnReconnect calls Resync each time nc reconnects (after nats.go
// has restored the subscriptions). It replaces nc's reconnect handler.
func (h *PushHub) ResyncOnReconnect(nc *nats.Conn) {
	nc.SetReconnectHandler(func(*nats.Conn) { h.Resync() })
}

func (h *PushHub) resyncC() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.resync
}

// Connections returns the number of connections the hub holds.
func (h *PushHub) Connections() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.open
}

// Drain refuses new connections (503) and closes every open one with
// StatusGoingAway. It returns at once; Close waits for the connections.
// Calling it again does nothing.
func (h *PushHub) Drain() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.draining {
		h.draining = true
		close(h.done)
	}
}

// Close drains the hub and waits until every connection is closed or ctx
// is done, whose error it then returns.
func (h *PushHub) Close(ctx context.Context) error {
	h.Drain()
	waited := make(chan struct{})
	go func() { h.wg.Wait(); close(waited) }()
	select {
	case <-waited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("api: push hub close: %w", ctx.Err())
	}
}

var (
	errPushUnavailable = domain.Errorf(domain.EUNAVAILABLE, "notifications push is unavailable")
	errPushDraining    = domain.Errorf(domain.EUNAVAILABLE, "server shutting down")
	errPushNodeFull    = domain.Errorf(domain.EUNAVAILABLE, "this node holds as many WebSocket connections as it may; try again later")
	errPushUserLimit   = domain.Errorf(domain.ERATELIMITED, "too many WebSocket connections for this user; close one first")
	errBadSince        = &domain.Error{Code: domain.EINVALID, Message: "invalid since",
		Details: map[string]string{"since": "must be a notification id"}}
	errNotUpgrade = echo.NewHTTPError(http.StatusUpgradeRequired, "a WebSocket upgrade is required")
)

// pushSession is one connection's live feed: its subscription and its
// bounded queue.
type pushSession struct {
	hub    *PushHub
	user   string // its userKey
	sub    *nats.Subscription
	schema string
	queue  chan events.Notification
	slow   chan struct{} // closed when the queue overflowed
	once   sync.Once

	suspended   chan struct{} // closed by CloseTenant
	suspendOnce sync.Once
}

// userKey identifies a user across tenants, whose ids are their own.
func userKey(schemaName, userID string) string { return schemaName + "/" + userID }

// subscribe registers a connection of userID and subscribes to the user's
// subject; when it returns, the NATS server has the subscription, so
// whatever is pushed from then on is queued. Errors: ERATELIMITED when the
// user holds MaxPerUser connections; EUNAVAILABLE while draining, when the
// node holds MaxPerNode, or when NATS does not take the subscription.
func (h *PushHub) subscribe(ctx context.Context, schemaName, userID string, log *slog.Logger) (*pushSession, error) {
	key := userKey(schemaName, userID)
	h.mu.Lock()
	switch {
	case h.draining:
		h.mu.Unlock()
		return nil, errPushDraining
	case h.perUser[key] >= h.cfg.MaxPerUser:
		h.mu.Unlock()
		return nil, errPushUserLimit
	case h.open >= h.cfg.MaxPerNode:
		h.mu.Unlock()
		return nil, errPushNodeFull
	}
	ps := &pushSession{hub: h, user: key, schema: schemaName, queue: make(chan events.Notification, h.cfg.QueueSize), slow: make(chan struct{}),
		suspended: make(chan struct{})}
	h.open++
	h.perUser[key]++
	if h.tenants[schemaName] == nil {
		h.tenants[schemaName] = map[*pushSession]struct{}{}
	}
	h.tenants[schemaName][ps] = struct{}{}
	h.wg.Add(1)
	h.mu.Unlock()
	observability.WSConnections.Inc()

	sub, err := h.src.Subscribe(events.PushSubject(schemaName, userID), ps.receive(log))
	if err == nil {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = h.src.FlushWithContext(fctx)
		cancel()
		if err != nil {
			_ = sub.Unsubscribe()
		}
	}
	if err != nil {
		ps.release()
		return nil, fmt.Errorf("%w: %w", errPushUnavailable, err)
	}
	ps.sub = sub
	return ps, nil
}

// receive is the subscription's callback. It never blocks: a full queue
// marks the connection too slow and the message is dropped.
func (ps *pushSession) receive(log *slog.Logger) nats.MsgHandler {
	return func(m *nats.Msg) {
		var n events.Notification
		if err := json.Unmarshal(m.Data, &n); err != nil || n.ID <= 0 {
			log.Warn("undecodable push dropped", slog.String("subject", m.Subject))
			return
		}
		select {
		case ps.queue <- n:
		default:
			ps.once.Do(func() {
				observability.WSSendQueueDrops.Inc()
				close(ps.slow)
			})
		}
	}
}

// release unsubscribes and unregisters the connection.
func (ps *pushSession) release() {
	if ps.sub != nil {
		_ = ps.sub.Unsubscribe()
	}
	h := ps.hub
	h.mu.Lock()
	h.open--
	if h.perUser[ps.user]--; h.perUser[ps.user] <= 0 {
		delete(h.perUser, ps.user)
	}
	delete(h.tenants[ps.schema], ps)
	if len(h.tenants[ps.schema]) == 0 {
		delete(h.tenants, ps.schema)
	}
	h.mu.Unlock()
	observability.WSConnections.Dec()
	h.wg.Done()
}

// pushNotifications serves GET /ws/notifications/. The authenticated
// middleware has checked the token (header, subprotocol or ?token=) and
// the user before anything is upgraded.
func (s *Server) pushNotifications(c echo.Context) error {
	hub := s.deps.Push
	if hub == nil {
		return errPushUnavailable
	}
	r := c.Request()
	if !isWebSocketUpgrade(r) {
		return errNotUpgrade
	}
	since, catchUp, err := sinceParam(c.QueryParam("since"))
	if err != nil {
		return err
	}
	t, p := tenantOf(c), principalOf(c)
	log := s.log.With(slog.String("tenant", t.Schema), slog.String("user", p.UserID))
	ps, err := hub.subscribe(r.Context(), t.Schema, p.UserID, log)
	if err != nil {
		return err
	}
	defer ps.release()
	conn, err := websocket.Accept(c.Response(), r, &websocket.AcceptOptions{
		Subprotocols: acceptedSubprotocols(r),
		// The token travels explicitly (header, subprotocol or query),
		// never in a cookie, so a page of another origin cannot ride on a
		// user's session: there is no cross-site hijacking to guard
		// against, and the web client may be served from any origin.
		InsecureSkipVerify: true,
	})
	if err != nil {
		log.DebugContext(r.Context(), "websocket accept failed", slog.Any("error", err))
		return nil // Accept has answered the request
	}
	pc := &pushConn{s: s, hub: hub, ps: ps, conn: conn, schema: t.Schema, userID: p.UserID, gen: p.Generation, log: log, sent: newSentIDs()}
	// The request's context carries the tenant and the request id for the
	// logs; the connection ends on its own terms, not the request's.
	pc.serve(context.WithoutCancel(r.Context()), since, catchUp)
	return nil
}

// sinceParam parses ?since=: absent (or empty) means live messages only.
func sinceParam(raw string) (int64, bool, error) {
	if raw == "" {
		return 0, false, nil
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id < 0 {
		return 0, false, errBadSince
	}
	return id, true, nil
}

// closeReason is how a connection ends: a close frame with a code, or
// (abrupt) just dropped because the peer is gone or stuck.
type closeReason struct {
	code   websocket.StatusCode
	text   string
	abrupt bool
}

var (
	closeGoingAway   = closeReason{code: websocket.StatusGoingAway, text: "server shutting down"}
	closeTooSlow     = closeReason{code: StatusTooSlow, text: "too slow"}
	closeDeactivated = closeReason{code: websocket.StatusPolicyViolation, text: "user deactivated"}
	closeRevoked     = closeReason{code: websocket.StatusPolicyViolation, text: "token revoked"}
	closeUnavailable = closeReason{code: websocket.StatusTryAgainLater, text: "notifications unavailable"}
	closeSuspended   = closeReason{code: StatusTenantSuspended, text: "tenant suspended"}
	closeAbrupt      = closeReason{abrupt: true}
)

// pushConn is one upgraded connection.
type pushConn struct {
	s      *Server
	hub    *PushHub
	ps     *pushSession
	conn   *websocket.Conn
	schema string
	userID string
	gen    int64 // the token's generation: a password change since revokes it
	log    *slog.Logger
	sent   *sentIDs
	high   int64 // the highest id sent, or ?since= if greater
}

// catchUpPage is how many missed notifications one query reads.
const catchUpPage = 100

// serve runs the connection until it ends: the catch-up when asked, then
// the live messages. It is the only writer of data messages.
func (pc *pushConn) serve(ctx context.Context, since int64, catchUp bool) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	// The client sends nothing; reading only answers pings and notices a
	// close. ctx is done once the connection is.
	ctx = pc.conn.CloseRead(ctx)
	stop := make(chan closeReason, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		pc.keepAlive(ctx, stop)
	}()

	// Taken before the catch-up: a NATS reconnect during it still counts.
	resync := pc.hub.resyncC()
	if catchUp {
		pc.high = since
		if r, ok := pc.catchUp(ctx, since); !ok {
			pc.close(ctx, r)
			return
		}
	}
	for {
		select {
		case <-pc.hub.done:
			pc.close(ctx, closeGoingAway)
			return
		case <-resync:
			resync = pc.hub.resyncC()
			// A live-only client that has had nothing yet has no
			// position to resume from.
			if !catchUp && pc.high == 0 {
				continue
			}
			if r, ok := pc.catchUp(ctx, pc.high); !ok {
				pc.close(ctx, r)
				return
			}
		case <-ctx.Done():
			pc.close(ctx, closeAbrupt)
			return
		case <-pc.ps.slow:
			pc.close(ctx, closeTooSlow)
			return
		case <-pc.ps.suspended:
			pc.close(ctx, closeSuspended)
			return
		case r := <-stop:
			pc.close(ctx, r)
			return
		case n := <-pc.ps.queue:
			if err := pc.send(ctx, n); err != nil {
				pc.close(ctx, closeAbrupt)
				return
			}
		}
	}
}

// catchUp sends the user's notifications with an id above since, oldest
// first, while the live ones queue up behind. It reports false, with how
// to close, when the connection must end.
func (pc *pushConn) catchUp(ctx context.Context, since int64) (closeReason, bool) {
	after := since
	for {
		select {
		case <-pc.hub.done:
			return closeGoingAway, false
		case <-pc.ps.slow:
			return closeTooSlow, false
		default:
		}
		rows, err := pc.s.deps.DB.NotificationsAfter(ctx, pc.schema, pc.userID, after, catchUpPage)
		if err != nil {
			if ctx.Err() != nil {
				return closeAbrupt, false
			}
			pc.log.WarnContext(ctx, "cannot read missed notifications", slog.Any("error", err))
			return closeUnavailable, false
		}
		for _, row := range rows {
			if err := pc.send(ctx, events.NotificationFromDomain(row)); err != nil {
				return closeAbrupt, false
			}
			after = row.ID
		}
		if len(rows) < catchUpPage {
			return closeReason{}, true
		}
	}
}

// send writes n unless it was sent before.
func (pc *pushConn) send(ctx context.Context, n events.Notification) error {
	if !pc.sent.add(n.ID) {
		return nil
	}
	pc.high = max(pc.high, n.ID)
	n.Type = events.PushNotification
	b, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode notification: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, pc.hub.cfg.WriteTimeout)
	defer cancel()
	return pc.conn.Write(wctx, websocket.MessageText, b)
}

// keepAlive pings the client every interval and checks that its user is
// still active and its token not revoked by a password change; it reports
// on stop why the connection must end.
func (pc *pushConn) keepAlive(ctx context.Context, stop chan<- closeReason) {
	every := pc.hub.cfg.PingInterval
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A failed lookup (Redis and PostgreSQL down) keeps the connection:
		// a dependency blip must not cut every client off at once.
		ua, err := pc.s.deps.Users.GetUserAuth(ctx, pc.schema, pc.userID)
		if domain.ErrorCode(err) == domain.ENOTFOUND || (err == nil && !ua.Active) {
			stop <- closeDeactivated
			return
		}
		if err == nil && pc.gen < ua.Generation {
			stop <- closeRevoked
			return
		}
		pctx, cancel := context.WithTimeout(ctx, every)
		err = pc.conn.Ping(pctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				pc.log.InfoContext(ctx, "websocket client did not answer a ping, dropped")
				stop <- closeAbrupt
			}
			return
		}
	}
}

func (pc *pushConn) close(ctx context.Context, r closeReason) {
	if r.abrupt {
		_ = pc.conn.CloseNow()
		return
	}
	if r == closeTooSlow {
		pc.log.InfoContext(ctx, "slow websocket client cut off")
	}
	_ = pc.conn.Close(r.code, r.text)
}

// sentIDsCap is how many of the last sent ids a connection remembers.
const sentIDsCap = 10000

// sentIDs remembers the ids sent on a connection (the last sentIDsCap of
// them) so that the duplicates brought by the switch from catch-up to live
// and by redelivered events are dropped.
type sentIDs struct {
	set  map[int64]struct{}
	ring []int64
	next int
}

func newSentIDs() *sentIDs { return &sentIDs{set: map[int64]struct{}{}} }

// add records id and reports whether it is new.
func (s *sentIDs) add(id int64) bool {
	if _, ok := s.set[id]; ok {
		return false
	}
	if len(s.ring) < sentIDsCap {
		s.ring = append(s.ring, id)
	} else {
		delete(s.set, s.ring[s.next])
		s.ring[s.next] = id
		s.next = (s.next + 1) % sentIDsCap
	}
	s.set[id] = struct{}{}
	return true
}

// bearerSubprotocol is the WebSocket subprotocol that carries a token, as
// "bearer.<token>" or as the pair "bearer", "<token>": browsers cannot set
// an Authorization header on a WebSocket.
const bearerSubprotocol = "bearer"

// isWebSocketUpgrade reports whether r asks for a WebSocket upgrade.
func isWebSocketUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && headerHasToken(r.Header, "Connection", "upgrade") &&
		headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// offeredSubprotocols returns the subprotocols a WebSocket request offers.
func offeredSubprotocols(r *http.Request) []string {
	var out []string
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// cutBearerPrefix returns the token of a "bearer.<token>" subprotocol.
func cutBearerPrefix(p string) (string, bool) {
	const prefix = bearerSubprotocol + "."
	if len(p) > len(prefix) && strings.EqualFold(p[:len(prefix)], prefix) {
		return p[len(prefix):], true
	}
	return "", false
}

// subprotocolToken returns the token a WebSocket request carries in its
// subprotocols, or "".
func subprotocolToken(r *http.Request) string {
	protos := offeredSubprotocols(r)
	for i, p := range protos {
		if tok, ok := cutBearerPrefix(p); ok {
			return tok
		}
		if strings.EqualFold(p, bearerSubprotocol) && i+1 < len(protos) {
			return protos[i+1]
		}
	}
	return ""
}

// acceptedSubprotocols lists what the upgrade may answer in
// Sec-WebSocket-Protocol: "bearer" for the pair form, else the
// "bearer.<token>" the client offered (a browser fails a handshake whose
// answer names none of the subprotocols it offered).
func acceptedSubprotocols(r *http.Request) []string {
	out := []string{bearerSubprotocol}
	for _, p := range offeredSubprotocols(r) {
		if _, ok := cutBearerPrefix(p); ok {
			out = append(out, p)
		}
	}
	return out
}

// pushNodePaths are the paths a push node (NewPush) serves.
var pushNodePaths = map[string]bool{
	"/ws/notifications/": true,
	"/health":            true,
	"/health/":           true,
	"/ready":             true,
	"/ready/":            true,
}

// NewPush returns the server of a push node (`saas push`): the WebSocket
// route on tenant domains and health and readiness on the public domain. Every other path is not found (404).
func NewPush(cfg Config, deps Deps) *Server {
	s := New(cfg, deps)
	s.echo.Pre(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !pushNodePaths[c.Request().URL.Path] {
				return echo.ErrNotFound
			}
			return next(c)
		}
	})
	return s
}

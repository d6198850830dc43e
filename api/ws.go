package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
// is active, checked before the upgrade (401 otherwise). The node holds one
// core NATS subscription for all its connections (events.PushWildcard,
// taken at the first connection or by Listen), and hands each push to the
// open connections of its user (the notifier sends one message per event
// with every recipient, which the node fans out to those it holds): a notification reaches whichever node
// holds the connection, wherever the notifier ran, and a connect costs no
// NATS subscription and no round trip. A connection is registered before
// it is upgraded, so what is pushed from then on is queued for it. With
// ?since=<id>, the node then sends the user's notifications with a greater
// id from the database in id order, then the live ones, skipping every id
// it has already sent: no gap and no duplicate at the switch. Ids are
// compared as a set, never by order, since they commit out of order.
//
// A user may hold PushConfig.MaxPerUser connections on a node and the node
// PushConfig.MaxPerNode in all; past either, the upgrade is refused before
// it happens (429 and 503), so one user cannot take a node's memory or
// file descriptors. A connection counts until it is closed.
//
// An idle connection costs one goroutine (its reader, parked on the
// socket), small read and write buffers and its registration. Everything
// else happens on a goroutine started when there is something to do (a
// notification, a catch-up, a ping, a close) that ends when it is done;
// pings come from one ticker for the node, spread over the interval.
//
// Each connection's send queue is bounded. A client that does not read
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
	// CatchUpQueries caps the catch-up queries (?since= and resyncs) the
	// node runs at once, so that a resync of every connection after a NATS
	// reconnect does not take every database connection. Default 8.
	CatchUpQueries int
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
	if c.CatchUpQueries <= 0 {
		c.CatchUpQueries = 8
	}
	return c
}

// PushSource is where a push node hears its users' notifications: core
// NATS. *nats.Conn is one.
type PushSource interface {
	Subscribe(subject string, cb nats.MsgHandler) (*nats.Subscription, error)
	FlushWithContext(ctx context.Context) error
	IsConnected() bool
}

// pingSlots is how many parts of PingInterval the node's pings are spread
// over: each tick pings one connection in pingSlots.
const pingSlots = 16

// PushHub holds the WebSocket connections of one push node. Set it as
// Deps.Push to serve GET /ws/notifications/; without it the route answers
// 503.
type PushHub struct {
	cfg PushConfig
	src PushSource

	subMu sync.Mutex // held while subscribing
	sub   atomic.Pointer[nats.Subscription]

	mu       sync.RWMutex
	draining bool
	open     int
	seq      uint64                            // connections registered, for their ping slot
	tenants  map[string]map[string][]*pushConn // open connections by schema, then user id
	done     chan struct{}                     // closed by Drain
	wg       sync.WaitGroup                    // connections and their running work
	dbSem    chan struct{}                     // catch-up queries running
}

// NewPushHub returns a hub that hears its users' notifications on src.
func NewPushHub(cfg PushConfig, src PushSource) *PushHub {
	cfg = cfg.withDefaults()
	return &PushHub{cfg: cfg, src: src, done: make(chan struct{}), dbSem: make(chan struct{}, cfg.CatchUpQueries),
		tenants: map[string]map[string][]*pushConn{}}
}

// Listen subscribes the node to every user's pushes (events.PushWildcard)
// unless it has already, and waits until the NATS server has the
// subscription; from then on the node's connections hear their
// notifications. The first connection calls it when it has not been;
// calling it at start spares that connection the round trip. It returns
// the error of the subscription or of the round trip (bounded by ctx, and
// by 5 seconds).
func (h *PushHub) Listen(ctx context.Context) error {
	if h.sub.Load() != nil {
		return nil
	}
	h.subMu.Lock()
	defer h.subMu.Unlock()
	if h.sub.Load() != nil {
		return nil
	}
	sub, err := h.src.Subscribe(events.PushWildcard, h.dispatch)
	if err != nil {
		return fmt.Errorf("api: push subscribe: %w", err)
	}
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := h.src.FlushWithContext(fctx); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("api: push subscribe: %w", err)
	}
	h.sub.Store(sub)
	go h.pinger(sub)
	return nil
}

// dispatch is the subscription's callback: it decodes a push once and
// queues it on each connection of its user, or, for an event's fan-out
// (events.PushFanout on events.PushTenantSubject), each recipient's
// message on that recipient's connections. It never blocks.
func (h *PushHub) dispatch(m *nats.Msg) {
	if schemaName, ok := events.ParsePushTenantSubject(m.Subject); ok {
		h.dispatchFanout(schemaName, m)
		return
	}
	schemaName, userID, ok := events.ParsePushSubject(m.Subject)
	if !ok {
		return
	}
	h.mu.RLock()
	n := len(h.tenants[schemaName][userID])
	h.mu.RUnlock()
	if n == 0 {
		return // a user connected to another node, or to none
	}
	// The message is as the client gets it: only its id and type are read
	// (the id for the dedupe), and the bytes are sent on as they are, to
	// every connection of the user.
	var head struct {
		Type string `json:"type"`
		ID   int64  `json:"id"`
	}
	if err := json.Unmarshal(m.Data, &head); err != nil || head.ID <= 0 || head.Type != events.PushNotification {
		slog.Warn("undecodable push dropped", slog.String("subject", m.Subject))
		return
	}
	msg := pushMsg{id: head.ID, raw: m.Data}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, pc := range h.tenants[schemaName][userID] {
		pc.deliver(msg)
	}
}

// dispatchFanout hands an event's notification to the recipients
// connected here. The message is decoded only when the node holds a
// connection of the tenant, and each recipient's JSON is built from the
// shared part encoded once.
func (h *PushHub) dispatchFanout(schemaName string, m *nats.Msg) {
	h.mu.RLock()
	n := len(h.tenants[schemaName])
	h.mu.RUnlock()
	if n == 0 {
		return // no user of the tenant here
	}
	var f events.PushFanout
	err := json.Unmarshal(m.Data, &f)
	if err == nil {
		err = f.Check()
	}
	var encode func(id int64) []byte
	if err == nil {
		encode, err = f.NotificationEncoder()
	}
	if err != nil {
		slog.Warn("undecodable push dropped", slog.String("subject", m.Subject), slog.Any("error", err))
		return
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	users := h.tenants[schemaName]
	for i, userID := range f.Users {
		conns := users[userID]
		if len(conns) == 0 {
			continue
		}
		msg := pushMsg{id: f.IDs[i], raw: encode(f.IDs[i])}
		for _, pc := range conns {
			pc.deliver(msg)
		}
	}
}

// pushMsg is one notification ready to send: its id and its JSON.
type pushMsg struct {
	id  int64
	raw []byte
}

// pinger asks each connection for a ping (and its user's check) once per
// PingInterval, one slot of them per tick, so that 100,000 connections do
// not all ping at once. It also resyncs every connection when the
// subscription dropped messages (a slow consumer): they are in the
// database. It ends with Drain.
func (h *PushHub) pinger(sub *nats.Subscription) {
	tick := time.NewTicker(max(h.cfg.PingInterval/pingSlots, time.Millisecond))
	defer tick.Stop()
	var slot uint64
	var dropped int
	for {
		select {
		case <-h.done:
			return
		case <-tick.C:
		}
		h.each(func(pc *pushConn) {
			if pc.slot == slot {
				pc.requestPing()
			}
		})
		slot = (slot + 1) % pingSlots
		if d, err := sub.Dropped(); err == nil && d > dropped {
			dropped = d
			slog.Warn("push subscription dropped messages; resyncing the connections from the database", slog.Int("dropped", d))
			h.Resync()
		}
	}
}

// each calls f on every open connection, under the hub's read lock.
func (h *PushHub) each(f func(*pushConn)) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, users := range h.tenants {
		for _, conns := range users {
			for _, pc := range conns {
				f(pc)
			}
		}
	}
}

// CloseTenant closes every open connection of a tenant with
// StatusTenantSuspended. New ones are refused by the routing (403) once
// the tenant is suspended.
func (h *PushHub) CloseTenant(schemaName string) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, conns := range h.tenants[schemaName] {
		for _, pc := range conns {
			pc.requestClose(closeSuspended)
		}
	}
}

// Resync makes every open connection read from the database what it may
// have missed live: the notifications of its user above the highest id it
// has sent (or its ?since=). Call it when the node's NATS connection comes
// back: what the notifiers pushed while it was away went nowhere, and the
// clients, still connected, would not ask for it. Ids commit in order per
// tenant, so nothing below that id can still appear. At most
// PushConfig.CatchUpQueries of these queries run at once.
func (h *PushHub) Resync() {
	h.each((*pushConn).resync)
}

// ResyncOnReconnect calls Resync each time nc reconnects (after nats.go
// has restored the node's subscription). It replaces nc's reconnect
// handler.
func (h *PushHub) ResyncOnReconnect(nc *nats.Conn) {
	nc.SetReconnectHandler(func(*nats.Conn) { h.Resync() })
}

// Connections returns the number of connections the hub holds.
func (h *PushHub) Connections() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.open
}

// Drain refuses new connections (503) and closes every open one with
// StatusGoingAway. It returns at once; Close waits for the connections.
// Calling it again does nothing.
func (h *PushHub) Drain() {
	h.mu.Lock()
	if h.draining {
		h.mu.Unlock()
		return
	}
	h.draining = true
	close(h.done)
	h.mu.Unlock()
	h.each(func(pc *pushConn) { pc.requestClose(closeGoingAway) })
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

// register adds a connection of userID, not yet upgraded: from then on
// what is pushed to the user is queued for it. Errors: ERATELIMITED when
// the user holds MaxPerUser connections; EUNAVAILABLE while draining, when
// the node holds MaxPerNode, or when NATS is not connected or does not
// take the node's subscription.
func (h *PushHub) register(ctx context.Context, s *Server, schemaName, userID, requestID string) (*pushConn, error) {
	if err := h.Listen(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w", errPushUnavailable, err)
	}
	// While NATS is away nothing is heard, and a live-only client has no
	// position a resync could start from: it is refused, as it would be
	// if the node had to subscribe now.
	if !h.src.IsConnected() {
		return nil, fmt.Errorf("%w: nats not connected", errPushUnavailable)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	users := h.tenants[schemaName]
	switch {
	case h.draining:
		return nil, errPushDraining
	case len(users[userID]) >= h.cfg.MaxPerUser:
		return nil, errPushUserLimit
	case h.open >= h.cfg.MaxPerNode:
		return nil, errPushNodeFull
	}
	pc := &pushConn{hub: h, s: s, schema: schemaName, userID: userID, requestID: requestID, slot: h.seq % pingSlots}
	h.seq++
	if users == nil {
		users = map[string][]*pushConn{}
		h.tenants[schemaName] = users
	}
	users[userID] = append(users[userID], pc)
	h.open++
	h.wg.Add(1)
	observability.WSConnections.Inc()
	return pc, nil
}

// release unregisters the connection.
func (pc *pushConn) release() {
	h := pc.hub
	h.mu.Lock()
	users := h.tenants[pc.schema]
	if conns := slices.DeleteFunc(users[pc.userID], func(c *pushConn) bool { return c == pc }); len(conns) == 0 {
		delete(users, pc.userID)
	} else {
		users[pc.userID] = conns
	}
	if len(users) == 0 {
		delete(h.tenants, pc.schema)
	}
	h.open--
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
	pc, err := hub.register(r.Context(), s, t.Schema, p.UserID, c.Response().Header().Get(echo.HeaderXRequestID))
	if err != nil {
		return err
	}
	pc.gen = p.Generation
	conn, err := websocket.Accept(slimHijacker{c.Response()}, r, &websocket.AcceptOptions{
		Subprotocols: acceptedSubprotocols(r),
		// The token travels explicitly (header, subprotocol or query),
		// never in a cookie, so a page of another origin cannot ride on a
		// user's session: there is no cross-site hijacking to guard
		// against, and the web client may be served from any origin.
		InsecureSkipVerify: true,
	})
	if err != nil {
		pc.release()
		s.log.DebugContext(r.Context(), "websocket accept failed", slog.Any("error", err))
		return nil // Accept has answered the request
	}
	pc.start(conn, since, catchUp)
	// The connection outlives the request: its reader is a goroutine of
	// its own, with a small stack, and the request's memory goes.
	go pc.read()
	return nil
}

// The buffers of an upgraded connection. net/http hands over 4 KiB each
// way; a client only ever sends pongs and a close (at most 131 bytes a
// frame), and a notification is written through in one or two calls.
const (
	wsReadBuffer  = 256
	wsWriteBuffer = 1024
)

// slimHijacker hands websocket.Accept the hijacked connection with small
// buffers in place of net/http's: they stay for the connection's life.
type slimHijacker struct{ http.ResponseWriter }

func (w slimHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	n := brw.Reader.Buffered()
	if n > wsReadBuffer || brw.Writer.Buffered() > 0 {
		return conn, brw, nil // not the usual handshake: keep what it holds
	}
	br := bufio.NewReaderSize(conn, wsReadBuffer)
	if n > 0 {
		// Bytes the client sent after its request: they come first.
		b, _ := brw.Reader.Peek(n)
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(b)), conn), wsReadBuffer)
		if _, err := br.Peek(n); err != nil {
			return conn, brw, nil
		}
	}
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(conn, wsWriteBuffer)), nil
}

// Unwrap lets http.ResponseController reach the response under it.
func (w slimHijacker) Unwrap() http.ResponseWriter { return w.ResponseWriter }

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

// pushConn is one connection. Its reader goroutine lives as long as the
// connection; its work (catch-up, sends, pings, the close) runs on one
// goroutine at a time, started by kick when there is some and ending when
// there is none, so the connection's writes never overlap.
type pushConn struct {
	hub       *PushHub
	s         *Server
	schema    string
	userID    string
	requestID string
	gen       int64  // the token's generation: a password change since revokes it
	slot      uint64 // which tick of the node's pinger pings it

	high atomic.Int64 // the highest id sent, or ?since= if greater
	sent *sentIDs     // the work's only; made at the first send

	mu       sync.Mutex
	conn     *websocket.Conn // nil until upgraded
	busy     bool            // its work runs
	done     bool            // closed, or its reader gone: nothing more to do
	closeReq *closeReason    // how to close, once asked
	since    bool            // it came with ?since=
	catchUp  bool            // a catch-up is asked
	pingDue  bool
	pending  []pushMsg // live ones to send, at most QueueSize
}

// logger returns a logger with the connection's tenant, user and request.
func (pc *pushConn) logger() *slog.Logger {
	return pc.s.log.With(slog.String("tenant", pc.schema), slog.String("user", pc.userID),
		slog.String("request_id", pc.requestID))
}

// start hands the upgraded connection its conn and starts what is waiting:
// the catch-up when asked, the notifications queued since registering.
func (pc *pushConn) start(conn *websocket.Conn, since int64, catchUp bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.conn = conn
	if catchUp {
		pc.since, pc.catchUp = true, true
		pc.high.Store(since)
	}
	pc.kickLocked()
}

// read runs for the connection's life: the client sends nothing, so
// reading only answers pings, takes pongs and notices a close. A data
// message breaks the protocol and closes the connection.
func (pc *pushConn) read() {
	defer pc.release()
	if _, _, err := pc.conn.Reader(context.Background()); err == nil {
		_ = pc.conn.Close(websocket.StatusPolicyViolation, "unexpected data message")
	}
	_ = pc.conn.CloseNow()
	pc.mu.Lock()
	pc.done, pc.pending = true, nil
	pc.mu.Unlock()
}

// kickLocked starts the connection's work unless it runs, or there is no
// connection yet or any more. pc.mu is held.
func (pc *pushConn) kickLocked() {
	if pc.busy || pc.done || pc.conn == nil {
		return
	}
	pc.busy = true
	pc.hub.wg.Add(1)
	go pc.work()
}

// deliver queues a live notification. It never blocks: when the queue is
// full the connection is closed as too slow and n is dropped.
func (pc *pushConn) deliver(n pushMsg) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.done || pc.closeReq != nil {
		return
	}
	if len(pc.pending) >= pc.hub.cfg.QueueSize {
		observability.WSSendQueueDrops.Inc()
		pc.closeReq, pc.pending = &closeTooSlow, nil
		pc.kickLocked()
		return
	}
	pc.pending = append(pc.pending, n)
	pc.kickLocked()
}

// requestClose asks for the connection to be closed with r; the first
// reason asked wins.
func (pc *pushConn) requestClose(r closeReason) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.closeReq == nil {
		pc.closeReq = &r
	}
	pc.kickLocked()
}

// requestPing asks for a ping and the user's check.
func (pc *pushConn) requestPing() {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.pingDue = true
	pc.kickLocked()
}

// resync asks for a catch-up from the highest id sent. A live-only client
// that has had nothing yet has no position to resume from.
func (pc *pushConn) resync() {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.since || pc.high.Load() > 0 {
		pc.catchUp = true
		pc.kickLocked()
	}
}

// closing reports whether a close was asked or the connection is gone.
func (pc *pushConn) closing() bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.done || pc.closeReq != nil
}

// work does what the connection was asked, one thing at a time, the close
// first, then a catch-up, then the queued notifications, then a ping, and
// ends when nothing is left.
func (pc *pushConn) work() {
	defer pc.hub.wg.Done()
	for {
		pc.mu.Lock()
		switch {
		case pc.done:
			pc.busy = false
			pc.mu.Unlock()
			return
		case pc.closeReq != nil:
			r := *pc.closeReq
			pc.done, pc.busy, pc.pending = true, false, nil
			pc.mu.Unlock()
			pc.close(r)
			return
		case pc.catchUp:
			pc.catchUp = false
			pc.mu.Unlock()
			if r, ok := pc.catchUpFrom(pc.high.Load()); !ok {
				pc.requestClose(r)
			}
		case len(pc.pending) > 0:
			n := pc.pending[0]
			pc.pending[0] = pushMsg{}
			if pc.pending = pc.pending[1:]; len(pc.pending) == 0 {
				pc.pending = nil // an idle connection keeps no buffer
			}
			pc.mu.Unlock()
			if err := pc.send(n); err != nil {
				pc.requestClose(closeAbrupt)
			}
		case pc.pingDue:
			pc.pingDue = false
			pc.mu.Unlock()
			if r, ok := pc.keepAlive(); !ok {
				pc.requestClose(r)
			}
		default:
			pc.busy = false
			pc.mu.Unlock()
			return
		}
	}
}

// catchUpPage is how many missed notifications one query reads.
const catchUpPage = 100

// catchUpTimeout bounds one catch-up query, its wait for a turn included.
const catchUpTimeout = 30 * time.Second

// catchUp sends the user's notifications with an id above since, oldest
// first, while the live ones queue up behind. It reports false, with how
// to close, when the connection must end.
func (pc *pushConn) catchUpFrom(since int64) (closeReason, bool) {
	after := since
	for {
		if pc.closing() {
			return closeReason{}, true // work closes it next
		}
		rows, err := pc.notificationsAfter(after)
		if err != nil {
			if pc.closing() {
				return closeReason{}, true
			}
			pc.logger().Warn("cannot read missed notifications", slog.Any("error", err))
			return closeUnavailable, false
		}
		for _, row := range rows {
			b, err := json.Marshal(events.NotificationFromDomain(row))
			if err != nil {
				pc.logger().Warn("cannot encode a missed notification", slog.Int64("id", row.ID), slog.Any("error", err))
				return closeUnavailable, false
			}
			if err := pc.send(pushMsg{id: row.ID, raw: b}); err != nil {
				return closeAbrupt, false
			}
			after = row.ID
		}
		if len(rows) < catchUpPage {
			return closeReason{}, true
		}
	}
}

// notificationsAfter reads one page of the user's notifications after id,
// taking one of the node's catch-up query slots.
func (pc *pushConn) notificationsAfter(after int64) ([]domain.Notification, error) {
	ctx, cancel := context.WithTimeout(context.Background(), catchUpTimeout)
	defer cancel()
	select {
	case pc.hub.dbSem <- struct{}{}:
		defer func() { <-pc.hub.dbSem }()
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for a catch-up slot: %w", ctx.Err())
	}
	return pc.s.deps.DB.NotificationsAfter(ctx, pc.schema, pc.userID, after, catchUpPage)
}

// send writes n unless it was sent before.
func (pc *pushConn) send(n pushMsg) error {
	if pc.sent == nil {
		pc.sent = newSentIDs()
	}
	if !pc.sent.add(n.id) {
		return nil
	}
	if n.id > pc.high.Load() {
		pc.high.Store(n.id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), pc.hub.cfg.WriteTimeout)
	defer cancel()
	return pc.conn.Write(ctx, websocket.MessageText, n.raw)
}

// keepAlive checks that the connection's user is still active and its
// token not revoked by a password change, then pings the client; it
// reports false, with how to close, when the connection must end.
func (pc *pushConn) keepAlive() (closeReason, bool) {
	every := pc.hub.cfg.PingInterval
	ctx, cancel := context.WithTimeout(context.Background(), every)
	defer cancel()
	// A failed lookup (Redis and PostgreSQL down) keeps the connection:
	// a dependency blip must not cut every client off at once.
	ua, err := pc.s.deps.Users.GetUserAuth(ctx, pc.schema, pc.userID)
	if domain.ErrorCode(err) == domain.ENOTFOUND || (err == nil && !ua.Active) {
		return closeDeactivated, false
	}
	if err == nil && pc.gen < ua.Generation {
		return closeRevoked, false
	}
	pctx, pcancel := context.WithTimeout(context.Background(), every)
	defer pcancel()
	if err := pc.conn.Ping(pctx); err != nil {
		if !pc.closing() {
			pc.logger().Info("websocket client did not answer a ping, dropped")
		}
		return closeAbrupt, false
	}
	return closeReason{}, true
}

func (pc *pushConn) close(r closeReason) {
	if r.abrupt {
		_ = pc.conn.CloseNow()
		return
	}
	if r == closeTooSlow {
		pc.logger().Info("slow websocket client cut off")
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

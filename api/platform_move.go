package api

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/tenancy"
)

// moveTenantRequest is the body of POST /api/platform/tenants/{schema}/move.
type moveTenantRequest struct {
	To string `json:"to"`
}

// moveResponse is a move of a tenant as public.tenant_moves records it,
// its durations in milliseconds once known.
type moveResponse struct {
	ID           int64      `json:"id"`
	Schema       string     `json:"schema"`
	From         string     `json:"from"`
	To           string     `json:"to"`
	State        string     `json:"state"`
	Rows         int64      `json:"rows"`
	TablesCopied int        `json:"tables_copied"`
	Tables       int        `json:"tables"`
	StartedAt    time.Time  `json:"started_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	FinishedAt   *time.Time `json:"finished_at"`
	Error        *string    `json:"error"`
	CleanUpError *string    `json:"cleanup_error"`
	CopyMS       *int64     `json:"copy_ms"`
	PauseMS      *float64   `json:"pause_ms"`
}

func toMoveResponse(r tenancy.MoveRecord) moveResponse {
	out := moveResponse{ID: r.ID, Schema: r.Schema, From: r.From, To: r.To, State: string(r.State), Rows: r.Rows,
		TablesCopied: r.TablesCopied, Tables: r.Tables, StartedAt: r.StartedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	if r.FinishedAt != nil {
		f := r.FinishedAt.UTC()
		out.FinishedAt = &f
	}
	if r.Error != "" {
		out.Error = &r.Error
	}
	if r.CleanUpError != "" {
		out.CleanUpError = &r.CleanUpError
	}
	if r.Copy != nil {
		ms := r.Copy.Milliseconds()
		out.CopyMS = &ms
	}
	if r.Pause != nil {
		ms := float64(r.Pause.Microseconds()) / 1000
		out.PauseMS = &ms
	}
	return out
}

// backgroundMoves are the moves this process runs for its requests: they
// outlive the request and end with the server (Close), undone.
type backgroundMoves struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

func newBackgroundMoves() *backgroundMoves {
	ctx, cancel := context.WithCancel(context.Background())
	return &backgroundMoves{ctx: ctx, cancel: cancel}
}

// add counts one more move unless the server is closing.
func (b *backgroundMoves) add() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.wg.Add(1)
	return true
}

// close cancels the running moves and waits until each is undone (or
// done) and recorded.
func (b *backgroundMoves) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cancel()
	b.wg.Wait()
}

func (s *Server) mover() *tenancy.Mover {
	if s.deps.Tenancy != nil { // the move is announced as the Manager's changes are
		return s.deps.Tenancy.NewMover()
	}
	return tenancy.NewMover(s.deps.DB, s.log)
}

// platformMoveTenant starts moving a live tenant to another cluster (see
// tenancy.Mover.Move) and answers 202 with the move, pending, once it
// holds the tenant; GET on the Location says how it goes. The move runs
// in this process, whatever becomes of the request, until it ends or the
// server shuts down (the move is then undone and recorded failed). A
// second move of the tenant while one runs is a 409.
func (s *Server) platformMoveTenant(c echo.Context) error {
	var req moveTenantRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.To == "" {
		return &domain.Error{Code: domain.EINVALID, Message: "invalid move", Details: map[string]string{"to": "is required"}}
	}
	if !s.moves.add() {
		return &domain.Error{Code: domain.EUNAVAILABLE, Message: "the server is shutting down", RetryAfter: time.Second}
	}
	schemaName := c.Param("schema")
	run, err := s.mover().Start(c.Request().Context(), schemaName, req.To)
	if err != nil {
		s.moves.wg.Done()
		return err
	}
	// The request's values (actor, request id: the audit entry's) go
	// with the move; its end does not.
	ctx, cancel := context.WithCancel(context.WithoutCancel(c.Request().Context()))
	stop := context.AfterFunc(s.moves.ctx, cancel)
	go func() {
		defer s.moves.wg.Done()
		defer cancel()
		defer stop()
		if _, err := run.Run(ctx, nil); err != nil {
			s.log.WarnContext(ctx, "tenant move failed", slog.String("tenant", schemaName), slog.String("to", req.To), slog.Any("error", err))
		}
	}()
	c.Response().Header().Set(echo.HeaderLocation, "/api/platform/tenants/"+schemaName+"/move")
	return c.JSON(http.StatusAccepted, toMoveResponse(run.Record()))
}

// platformGetMove answers the tenant's latest move as recorded: any API
// process can, whichever runs it.
func (s *Server) platformGetMove(c echo.Context) error {
	rec, err := s.mover().LatestMove(c.Request().Context(), c.Param("schema"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toMoveResponse(rec))
}

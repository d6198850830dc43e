package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/tenancy"
)

// moveTenantRequest is the body of POST /api/platform/tenants/{schema}/move.
type moveTenantRequest struct {
	To string `json:"to"`
}

// moveTenantResponse is what a move did, its times in milliseconds.
type moveTenantResponse struct {
	Schema  string  `json:"schema"`
	From    string  `json:"from"`
	To      string  `json:"to"`
	Rows    int64   `json:"rows"`
	CopyMS  int64   `json:"copy_ms"`
	PauseMS float64 `json:"pause_ms"`
	TotalMS int64   `json:"total_ms"`
}

func toMoveTenantResponse(r tenancy.MoveResult) moveTenantResponse {
	return moveTenantResponse{Schema: r.Schema, From: r.From, To: r.To, Rows: r.Rows, CopyMS: r.Copy.Milliseconds(),
		PauseMS: float64(r.Pause.Microseconds()) / 1000, TotalMS: r.Total.Milliseconds()}
}

// platformMoveTenant moves a live tenant to another cluster (see
// tenancy.Mover.Move) and answers once it is done. A client that goes away
// cancels the move, which is then undone.
func (s *Server) platformMoveTenant(c echo.Context) error {
	var req moveTenantRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.To == "" {
		return &domain.Error{Code: domain.EINVALID, Message: "invalid move", Details: map[string]string{"to": "is required"}}
	}
	mover := tenancy.NewMover(s.deps.DB, s.log)
	if s.deps.Tenancy != nil { // the move is announced as the Manager's changes are
		mover = s.deps.Tenancy.NewMover()
	}
	res, err := mover.Move(c.Request().Context(), c.Param("schema"), req.To, nil)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toMoveTenantResponse(res))
}

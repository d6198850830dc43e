package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
)

// notificationRoutes registers a user's own notifications.
func (s *Server) notificationRoutes(user *echo.Group) {
	user.GET("/notifications/", s.listNotifications)
	user.POST("/notifications/:id/read/", s.readNotification)
}

// notificationResponse is a notification as its user sees it.
type notificationResponse struct {
	ID        int64           `json:"id"`
	EventID   string          `json:"event_id"`
	Kind      string          `json:"kind"`
	Title     string          `json:"title"`
	Data      json.RawMessage `json:"data"`
	ReadAt    *time.Time      `json:"read_at"`
	CreatedAt time.Time       `json:"created_at"`
}

// adminNotificationResponse is a notification as tenant staff see it:
// with the user it is for.
type adminNotificationResponse struct {
	notificationResponse
	UserID string `json:"user_id"`
}

func toNotificationResponse(n domain.Notification) notificationResponse {
	out := notificationResponse{ID: n.ID, EventID: n.EventID, Kind: n.Kind, Title: n.Title, Data: n.Data, CreatedAt: n.CreatedAt.UTC()}
	if len(out.Data) == 0 {
		out.Data = json.RawMessage(`{}`)
	}
	if n.ReadAt != nil {
		t := n.ReadAt.UTC()
		out.ReadAt = &t
	}
	return out
}

func toAdminNotificationResponse(n domain.Notification) adminNotificationResponse {
	return adminNotificationResponse{notificationResponse: toNotificationResponse(n), UserID: n.UserID}
}

// notificationQuery reads the query parameters shared by both lists:
// limit, cursor and unread. The query values to repeat in the next page's
// URL are returned beside it.
func (s *Server) notificationQuery(c echo.Context) (postgres.NotificationQuery, url.Values, error) {
	limit, err := pageLimit(c)
	if err != nil {
		return postgres.NotificationQuery{}, nil, err
	}
	unread, err := boolParam(c, "unread")
	if err != nil {
		return postgres.NotificationQuery{}, nil, err
	}
	keep := url.Values{}
	if unread {
		keep.Set("unread", "true")
	}
	cursor, err := s.cursorParam(c)
	if err != nil {
		return postgres.NotificationQuery{}, nil, err
	}
	return postgres.NotificationQuery{Limit: limit, Cursor: cursor, Unread: unread}, keep, nil
}

// listNotifications lists the caller's own notifications, newest first.
func (s *Server) listNotifications(c echo.Context) error {
	q, keep, err := s.notificationQuery(c)
	if err != nil {
		return err
	}
	q.UserID = principalOf(c).UserID
	ns, next, err := s.deps.DB.ListNotifications(c.Request().Context(), tenantOf(c).Schema, q)
	if err != nil {
		return err
	}
	return writePage(s, c, ns, toNotificationResponse, keep, q.Limit, next)
}

var errNotificationNotFound = domain.Errorf(domain.ENOTFOUND, "notification not found")

// readNotification marks one of the caller's notifications read. Another
// user's notification is not found, as is an id that is not one.
func (s *Server) readNotification(c echo.Context) error {
	raw := c.Param("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id < 1 || strconv.FormatInt(id, 10) != raw {
		return errNotificationNotFound
	}
	n, err := s.deps.DB.MarkNotificationRead(c.Request().Context(), tenantOf(c).Schema, principalOf(c).UserID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toNotificationResponse(n))
}

// adminListNotifications lists every notification of the tenant, newest
// first; ?user_id= keeps one user's.
func (s *Server) adminListNotifications(c echo.Context) error {
	q, keep, err := s.notificationQuery(c)
	if err != nil {
		return err
	}
	if u := c.QueryParam("user_id"); u != "" {
		q.UserID = u
		keep.Set("user_id", u)
	}
	ns, next, err := s.deps.DB.ListNotifications(c.Request().Context(), tenantOf(c).Schema, q)
	if err != nil {
		return err
	}
	return writePage(s, c, ns, toAdminNotificationResponse, keep, q.Limit, next)
}

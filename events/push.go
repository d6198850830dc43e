package events

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/tenantworks/saas/pkg/domain"
)

// PushSubject is the core NATS subject on which one user's notifications
// are pushed live: push.<schema>.<user id>. Every push node subscribes to
// all of them (PushWildcard) and keeps those of the users connected to it,
// so a notification reaches whichever node holds the user's WebSocket,
// wherever the notifier ran.
// Core NATS, not JetStream: a push nobody listens to is dropped, and a
// client that was away reads what it missed from the database.
func PushSubject(tenant, userID string) string {
	return "push." + tenant + "." + userID
}

// PushWildcard matches every PushSubject: a push node subscribes to it
// once and hands each message to the connections of its user, so a
// connection costs no NATS subscription and no round trip.
const PushWildcard = "push.>"

// ParsePushSubject returns the tenant and user of a PushSubject; ok is
// false for any other subject. Schema names hold no dot (they are SQL
// identifiers of letters, digits and _), so the first dot after the
// prefix ends the tenant.
func ParsePushSubject(subject string) (tenant, userID string, ok bool) {
	rest, ok := strings.CutPrefix(subject, "push.")
	if !ok {
		return "", "", false
	}
	tenant, userID, ok = strings.Cut(rest, ".")
	if !ok || tenant == "" || userID == "" || strings.Contains(userID, ".") {
		return "", "", false
	}
	return tenant, userID, true
}

// PushNotification is the type of a Notification message.
const PushNotification = "notification"

// Notification is one notification as the WebSocket sends it to its user,
// and as the notifier publishes it on PushSubject.
type Notification struct {
	Type      string          `json:"type"` // always PushNotification
	ID        int64           `json:"id"`
	EventID   string          `json:"event_id"`
	Kind      string          `json:"kind"`
	Title     string          `json:"title"`
	Data      json.RawMessage `json:"data"`
	CreatedAt time.Time       `json:"created_at"` // UTC
}

// NotificationFromDomain converts a notification row to its push message.
func NotificationFromDomain(n domain.Notification) Notification {
	out := Notification{Type: PushNotification, ID: n.ID, EventID: n.EventID, Kind: n.Kind, Title: n.Title,
		Data: n.Data, CreatedAt: n.CreatedAt.UTC()}
	if len(out.Data) == 0 {
		out.Data = json.RawMessage(`{}`)
	}
	return out
}

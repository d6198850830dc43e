package events

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tenantworks/saas/pkg/domain"
)

// PushSubject is the core NATS subject on which one user's notification
// may be pushed live: push.<schema>.<user id>, a Notification. The notifier
// sends PushFanout messages on PushTenantSubject instead; push nodes take
// both. Every push node subscribes to
// all of them (PushWildcard) and keeps those of the users connected to it,
// so a notification reaches whichever node holds the user's WebSocket,
// wherever the notifier ran.
// Core NATS, not JetStream: a push nobody listens to is dropped, and a
// client that was away reads what it missed from the database.
func PushSubject(tenant, userID string) string {
	return "push." + tenant + "." + userID
}

// PushWildcard matches every PushSubject and PushTenantSubject: a push
// node subscribes to it once and hands each message to the connections of
// its user (or recipients), so a connection costs no NATS subscription and
// no round trip.
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

// PushTenantSubject is the core NATS subject on which the notifier pushes
// a tenant's notifications: push.<schema>, PushFanout messages, one per
// event (or per PushFanoutMax recipients of it). One message per event
// rather than per user: the push nodes fan it out to their own
// connections, so 1,000 staff users cost the notifier one publish.
func PushTenantSubject(tenant string) string {
	return "push." + tenant
}

// ParsePushTenantSubject returns the tenant of a PushTenantSubject; ok is
// false for any other subject (a PushSubject included).
func ParsePushTenantSubject(subject string) (tenant string, ok bool) {
	tenant, ok = strings.CutPrefix(subject, "push.")
	if !ok || tenant == "" || strings.Contains(tenant, ".") {
		return "", false
	}
	return tenant, true
}

// PushFanoutType is the type of a PushFanout message.
const PushFanoutType = "notifications"

// PushFanoutMax is the most recipients one PushFanout message carries
// (about 50 bytes each, so some 50 KiB, well under NATS's 1 MiB payload
// limit); an event with more goes out in several messages.
const PushFanoutMax = 1000

// PushFanout is one event's notification to many users, as the notifier
// publishes it on PushTenantSubject: the fields every recipient's row
// shares, then the recipients and their rows' ids (IDs[i] is Users[i]'s).
// Recipient i gets Notification(i).
type PushFanout struct {
	Type      string          `json:"type"` // always PushFanoutType
	EventID   string          `json:"event_id"`
	Kind      string          `json:"kind"`
	Title     string          `json:"title"`
	Data      json.RawMessage `json:"data"`
	CreatedAt time.Time       `json:"created_at"` // UTC
	Users     []string        `json:"users"`
	IDs       []int64         `json:"ids"`
}

// Check reports what makes f unusable: another type, recipients and ids
// that do not pair up, an id that is not positive.
func (f *PushFanout) Check() error {
	if f.Type != PushFanoutType {
		return fmt.Errorf("events: push fan-out of type %q", f.Type)
	}
	if len(f.Users) != len(f.IDs) {
		return fmt.Errorf("events: push fan-out with %d users and %d ids", len(f.Users), len(f.IDs))
	}
	for _, id := range f.IDs {
		if id <= 0 {
			return fmt.Errorf("events: push fan-out with id %d", id)
		}
	}
	return nil
}

// Notification returns recipient i's message.
func (f *PushFanout) Notification(i int) Notification {
	out := Notification{Type: PushNotification, ID: f.IDs[i], EventID: f.EventID, Kind: f.Kind, Title: f.Title,
		Data: f.Data, CreatedAt: f.CreatedAt.UTC()}
	if len(out.Data) == 0 {
		out.Data = json.RawMessage(`{}`)
	}
	return out
}

// NotificationEncoder returns a function that gives the JSON of
// Notification(i) for an id, as json.Marshal would: the shared fields are
// encoded once, so a push node writes 1,000 recipients' messages for the
// price of as many integers.
func (f *PushFanout) NotificationEncoder() (func(id int64) []byte, error) {
	n := Notification{Type: PushNotification, ID: 1, EventID: f.EventID, Kind: f.Kind, Title: f.Title,
		Data: f.Data, CreatedAt: f.CreatedAt.UTC()}
	if len(n.Data) == 0 {
		n.Data = json.RawMessage(`{}`)
	}
	b, err := json.Marshal(n)
	if err != nil {
		return nil, fmt.Errorf("events: encode push fan-out: %w", err)
	}
	// Type and ID come first in Notification's encoding.
	const head = `{"type":"` + PushNotification + `","id":1`
	rest, ok := strings.CutPrefix(string(b), head)
	if !ok {
		return nil, fmt.Errorf("events: encode push fan-out: unexpected encoding %.60s", b)
	}
	prefix := head[:len(head)-1]
	return func(id int64) []byte {
		out := make([]byte, 0, len(prefix)+20+len(rest))
		out = append(out, prefix...)
		out = strconv.AppendInt(out, id, 10)
		return append(out, rest...)
	}, nil
}

// FanoutsOf groups notification rows into the PushFanout messages that
// push them: one per event and creation time (rows of an event written by
// two deliveries differ in it; the other fields, written from the same
// event, do not), at most PushFanoutMax recipients each, in
// the order of their first row.
func FanoutsOf(rows []domain.Notification) []PushFanout {
	type key struct {
		event, kind, title, data string
		at                       time.Time
	}
	var out []PushFanout
	open := map[key]int{} // the message of a key that still has room
	for _, r := range rows {
		k := key{r.EventID, r.Kind, r.Title, string(r.Data), r.CreatedAt.UTC()}
		i, ok := open[k]
		if !ok || len(out[i].IDs) >= PushFanoutMax {
			data := r.Data
			if len(data) == 0 {
				data = json.RawMessage(`{}`)
			}
			out = append(out, PushFanout{Type: PushFanoutType, EventID: r.EventID, Kind: r.Kind, Title: r.Title,
				Data: data, CreatedAt: k.at})
			i = len(out) - 1
			open[k] = i
		}
		out[i].Users = append(out[i].Users, r.UserID)
		out[i].IDs = append(out[i].IDs, r.ID)
	}
	return out
}

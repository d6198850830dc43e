package domain

import (
	"encoding/json"
	"time"
)

// Notification is one message to one user of a tenant, written by the
// notifier when an event concerns them.
type Notification struct {
	ID        int64
	EventID   string
	UserID    string
	Kind      string // the event type, e.g. "product.created"
	Title     string
	Data      json.RawMessage // a JSON object
	ReadAt    *time.Time      // nil while unread
	CreatedAt time.Time
}

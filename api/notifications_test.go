package api_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// ids returns the "id" of every item, in order.
func ids(items []map[string]any) []int64 {
	out := make([]int64, len(items))
	for i, it := range items {
		out[i] = int64(it["id"].(float64))
	}
	return out
}

func TestNotifications(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.tenant("ntfa")
	b := e.tenant("ntfb")

	// Interleave the rows of two users of tenant a, so that their ids mix;
	// tenant b gets more rows than a, so that some of b's ids exist only there.
	var mine, staffs []int64
	for i := range 7 {
		mine = append(mine, e.notify(a.Schema, a.UserID, fmt.Sprintf("mine %d", i)))
		if i%2 == 0 {
			staffs = append(staffs, e.notify(a.Schema, a.StaffID, fmt.Sprintf("staff %d", i)))
		}
	}
	var others []int64
	for i := range 20 {
		others = append(others, e.notify(b.Schema, b.UserID, fmt.Sprintf("other tenant %d", i)))
	}
	slices.Reverse(mine) // newest first
	base := "/api/notifications/"

	t.Run("a user sees only their own notifications, newest first", func(t *testing.T) {
		r := e.do(req{method: "GET", host: a.Host, path: base, token: a.UserToken})
		if r.Code != http.StatusOK || r.JSON["next"] != nil {
			t.Fatalf("list = %d %s", r.Code, r.Raw)
		}
		items := make([]map[string]any, 0)
		for _, it := range r.JSON["results"].([]any) {
			items = append(items, it.(map[string]any))
		}
		if got := ids(items); !slices.Equal(got, mine) {
			t.Fatalf("ids = %v, want %v", got, mine)
		}
		first := items[0]
		if first["kind"] != "product.created" || first["title"] != "mine 6" || first["read_at"] != nil || first["user_id"] != nil {
			t.Fatalf("item = %v", first)
		}
		if d, ok := first["data"].(map[string]any); !ok || d["title"] != "mine 6" {
			t.Fatalf("data = %v, want the JSON object stored", first["data"])
		}
		if ev, _ := first["event_id"].(string); len(ev) != 36 {
			t.Fatalf("event_id = %v, want a UUID", first["event_id"])
		}
		created, _ := first["created_at"].(string)
		if _, err := time.Parse(time.RFC3339, created); err != nil || !strings.HasSuffix(created, "Z") {
			t.Fatalf("created_at = %q, want RFC 3339 in UTC", created)
		}
	})

	t.Run("a walk over small pages returns every notification exactly once, in order", func(t *testing.T) {
		items := e.walk(a.Host, base+"?limit=3", a.UserToken, 3)
		if got := ids(items); !slices.Equal(got, mine) {
			t.Fatalf("walked ids = %v, want %v", got, mine)
		}
		items = e.walk(b.Host, base+"?limit=7", b.UserToken, 7)
		if len(items) != len(others) {
			t.Fatalf("tenant b's user walked %d notifications, want %d", len(items), len(others))
		}
	})

	t.Run("marking one's own notification read sets read_at once", func(t *testing.T) {
		path := fmt.Sprintf("%s%d/read/", base, mine[2])
		r := e.do(req{method: "POST", host: a.Host, path: path, token: a.UserToken})
		if r.Code != http.StatusOK || r.JSON["id"] != float64(mine[2]) {
			t.Fatalf("mark read = %d %s", r.Code, r.Raw)
		}
		readAt, _ := r.JSON["read_at"].(string)
		if _, err := time.Parse(time.RFC3339, readAt); err != nil || !strings.HasSuffix(readAt, "Z") {
			t.Fatalf("read_at = %v, want RFC 3339 in UTC", r.JSON["read_at"])
		}
		time.Sleep(10 * time.Millisecond)
		again := e.do(req{method: "POST", host: a.Host, path: path, token: a.UserToken})
		if again.Code != http.StatusOK || again.JSON["read_at"] != readAt {
			t.Fatalf("second mark read = %d %s, want read_at kept at %s", again.Code, again.Raw, readAt)
		}
		items := e.walk(a.Host, base+"?unread=true&limit=2", a.UserToken, 2)
		want := slices.Delete(slices.Clone(mine), 2, 3)
		if got := ids(items); !slices.Equal(got, want) {
			t.Fatalf("unread ids = %v, want %v", got, want)
		}
		if items := e.walk(a.Host, base+"?unread=false", a.UserToken, 20); len(items) != len(mine) {
			t.Fatalf("unread=false listed %d, want all %d", len(items), len(mine))
		}
	})

	t.Run("another user's, another tenant's or a made-up notification is not found", func(t *testing.T) {
		otherTenantOnly := others[len(others)-1] // beyond every id of tenant a
		for _, id := range []string{fmt.Sprint(staffs[0]), fmt.Sprint(otherTenantOnly), "abc", "0", "-1", "01", "+1", "99999999999999999999"} {
			r := e.do(req{method: "POST", host: a.Host, path: base + id + "/read/", token: a.UserToken})
			if r.Code != http.StatusNotFound || r.errorCode() != "not_found" {
				t.Errorf("mark read of %s = %d %s, want 404", id, r.Code, r.Raw)
			}
		}
		if n := e.count(a.Schema, `SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NOT NULL`, a.StaffID); n != 0 {
			t.Fatalf("the staff user's notifications read: %d, want 0", n)
		}
		if n := e.count(b.Schema, `SELECT count(*) FROM notifications WHERE read_at IS NOT NULL`); n != 0 {
			t.Fatalf("tenant b's notifications read: %d, want 0", n)
		}
	})

	t.Run("a bad parameter is a 422 naming it", func(t *testing.T) {
		notACursor := base64.RawURLEncoding.EncodeToString([]byte("abc"))
		cases := map[string]string{
			"?limit=0": "limit", "?limit=101": "limit", "?limit=ten": "limit",
			"?cursor=%25%25": "cursor", "?cursor=" + notACursor: "cursor", "?cursor=MA": "cursor",
			"?unread=maybe": "unread",
		}
		for q, field := range cases {
			r := e.do(req{method: "GET", host: a.Host, path: base + q, token: a.UserToken})
			if r.Code != http.StatusUnprocessableEntity || r.errorDetails()[field] == nil {
				t.Errorf("GET %s = %d %s, want 422 naming %s", q, r.Code, r.Raw, field)
			}
		}
	})

	t.Run("without a token, or with another tenant's, the answer is 401", func(t *testing.T) {
		for _, tok := range []string{"", b.UserToken} {
			if r := e.do(req{method: "GET", host: a.Host, path: base, token: tok}); r.Code != http.StatusUnauthorized {
				t.Errorf("list with token %.10q = %d, want 401", tok, r.Code)
			}
			if r := e.do(req{method: "POST", host: a.Host, path: fmt.Sprintf("%s%d/read/", base, mine[0]), token: tok}); r.Code != http.StatusUnauthorized {
				t.Errorf("mark read with token %.10q = %d, want 401", tok, r.Code)
			}
		}
	})
}

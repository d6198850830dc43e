package postgres_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/testenv"
)

func TestNotifyActiveStaffManyWritesEachEventOncePerStaffUserInOrder(t *testing.T) {
	t.Parallel()
	w := testenv.MustWorld(t)
	ctx := t.Context()
	const schemaName = "notify_many"
	w.MustTenant(t, schemaName)
	var staff []string
	for _, u := range []struct {
		email string
		staff bool
	}{{"s1@n.test", true}, {"s2@n.test", true}, {"s3@n.test", true}, {"plain@n.test", false}} {
		nu, err := w.DB.CreateUser(ctx, schemaName, postgres.NewUser{Email: u.email, PasswordHash: "x", IsStaff: u.staff})
		if err != nil {
			t.Fatal(err)
		}
		if u.staff {
			staff = append(staff, nu.ID)
		}
	}
	off := false
	if _, err := w.DB.UpdateUser(ctx, schemaName, staff[2], postgres.UserPatch{IsActive: &off}); err != nil {
		t.Fatal(err)
	}
	active := staff[:2]
	slices.Sort(active)
	ev := func(title string) postgres.EventNotification {
		return postgres.EventNotification{EventID: uuid.NewString(), Kind: "product.created", Title: title, Data: json.RawMessage(`{"t":"` + title + `"}`)}
	}

	// An earlier delivery of the first event wrote its rows.
	first, second, third := ev("first"), ev("second"), ev("third")
	earlier, err := w.DB.NotifyActiveStaff(ctx, schemaName, first)
	if err != nil || len(earlier) != 2 {
		t.Fatalf("earlier delivery: %d rows, %v", len(earlier), err)
	}
	// Another title in the database than in this delivery: the rows of
	// an earlier delivery come back as they are stored.
	if err := w.DB.InTenant(ctx, schemaName, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE notifications SET title = 'stored' WHERE event_id = $1`, first.EventID)
		return err
	}); err != nil {
		t.Fatal(err)
	}

	got, err := w.DB.NotifyActiveStaffMany(ctx, schemaName, []postgres.EventNotification{second, first, third, second})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 {
		t.Fatalf("%d rows, want 2 for each of 3 events: %+v", len(got), got)
	}
	byEvent := map[string][]domain.Notification{}
	for i, n := range got {
		if i > 0 && n.ID <= got[i-1].ID {
			t.Fatalf("ids not in order: %d after %d", n.ID, got[i-1].ID)
		}
		byEvent[n.EventID] = append(byEvent[n.EventID], n)
	}
	for _, e := range []postgres.EventNotification{first, second, third} {
		rows := byEvent[e.EventID]
		var users []string
		for _, n := range rows {
			users = append(users, n.UserID)
			wantTitle := e.Title
			if e.EventID == first.EventID {
				wantTitle = "stored"
			}
			var data map[string]string
			if err := json.Unmarshal(n.Data, &data); err != nil || data["t"] != e.Title || n.Kind != e.Kind || n.Title != wantTitle || n.CreatedAt.IsZero() {
				t.Errorf("row %+v of event %q: want kind %s, title %q, data of %q", n, e.Title, e.Kind, wantTitle, e.Title)
			}
		}
		slices.Sort(users)
		if !slices.Equal(users, active) {
			t.Errorf("event %q went to %v, want the active staff %v", e.Title, users, active)
		}
	}
	if ids := []int64{byEvent[first.EventID][0].ID, byEvent[first.EventID][1].ID}; !slices.Equal(ids, []int64{earlier[0].ID, earlier[1].ID}) {
		t.Errorf("the first event's rows are %v, want the earlier delivery's %v", ids, []int64{earlier[0].ID, earlier[1].ID})
	}
	// The new events' ids follow the order they were given in.
	if byEvent[second.EventID][1].ID > byEvent[third.EventID][0].ID {
		t.Errorf("the second event's ids %d.. come after the third's %d..", byEvent[second.EventID][0].ID, byEvent[third.EventID][0].ID)
	}

	var total int
	if err := w.DB.InTenant(ctx, schemaName, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM notifications`).Scan(&total)
	}); err != nil {
		t.Fatal(err)
	}
	if total != 6 {
		t.Errorf("%d rows in the table, want 6", total)
	}

	t.Run("an invalid event fails the call and writes nothing", func(t *testing.T) {
		bad := ev("bad")
		bad.Data = json.RawMessage(`{`)
		if _, err := w.DB.NotifyActiveStaffMany(ctx, schemaName, []postgres.EventNotification{ev("ok"), bad}); domain.ErrorCode(err) != domain.EINVALID {
			t.Fatalf("error %v, want EINVALID", err)
		}
		notUUID := ev("not a uuid")
		notUUID.EventID = "e1"
		if _, err := w.DB.NotifyActiveStaffMany(ctx, schemaName, []postgres.EventNotification{notUUID}); domain.ErrorCode(err) != domain.EINVALID {
			t.Fatalf("error %v, want EINVALID", err)
		}
		var n int
		if err := w.DB.InTenant(ctx, schemaName, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM notifications`).Scan(&n)
		}); err != nil || n != 6 {
			t.Fatalf("%d rows, %v; want 6", n, err)
		}
	})

	t.Run("a tenant whose schema is gone", func(t *testing.T) {
		if _, err := w.DB.NotifyActiveStaffMany(ctx, "notify_never_made", []postgres.EventNotification{ev("x")}); err != postgres.ErrNoSchema {
			t.Fatalf("error %v, want ErrNoSchema", err)
		}
	})
}

func TestNotifyActiveStaffRedeliveredGivesTheFirstDeliverysRowsAndDeletingAUserDeletesTheirs(t *testing.T) {
	t.Parallel()
	w := testenv.MustWorld(t)
	ctx := t.Context()
	const schemaName = "notify_redeliver"
	w.MustTenant(t, schemaName)
	newStaff := func(email string) string {
		t.Helper()
		u, err := w.DB.CreateUser(ctx, schemaName, postgres.NewUser{Email: email, PasswordHash: "x", IsStaff: true})
		if err != nil {
			t.Fatal(err)
		}
		return u.ID
	}
	count := func(sql string, args ...any) int {
		t.Helper()
		var n int
		if err := w.DB.InTenant(ctx, schemaName, func(tx pgx.Tx) error { return tx.QueryRow(ctx, sql, args...).Scan(&n) }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// An event written while the tenant has no staff user: recorded, with
	// no row.
	empty := postgres.EventNotification{EventID: uuid.NewString(), Kind: "product.created", Title: "e", Data: json.RawMessage(`{}`)}
	if got, err := w.DB.NotifyActiveStaffMany(ctx, schemaName, []postgres.EventNotification{empty}); err != nil || len(got) != 0 {
		t.Fatalf("an event with no staff user: %+v, %v; want no row", got, err)
	}
	ann, bob := newStaff("ann@r.test"), newStaff("bob@r.test")
	ev := postgres.EventNotification{EventID: uuid.NewString(), Kind: "product.created", Title: "t", Data: json.RawMessage(`{}`)}
	first, err := w.DB.NotifyActiveStaffMany(ctx, schemaName, []postgres.EventNotification{ev})
	if err != nil || len(first) != 2 {
		t.Fatalf("first delivery: %+v, %v; want a row for each of 2 staff users", first, err)
	}
	off := false
	if _, err := w.DB.UpdateUser(ctx, schemaName, bob, postgres.UserPatch{IsActive: &off}); err != nil {
		t.Fatal(err)
	}

	// A staff user added since, and bob made inactive, change nothing for
	// the events written before: their recipients were fixed then, and a
	// redelivery gets the same rows with the same ids, however often.
	carl := newStaff("carl@r.test")
	for i := range 3 {
		again, err := w.DB.NotifyActiveStaffMany(ctx, schemaName, []postgres.EventNotification{ev, empty})
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != len(first) {
			t.Fatalf("delivery %d: %+v, want the first delivery's %+v", i+2, again, first)
		}
		for j := range first {
			if again[j].ID != first[j].ID || again[j].UserID != first[j].UserID || again[j].EventID != ev.EventID {
				t.Fatalf("delivery %d: row %d is %+v, want %+v", i+2, j, again[j], first[j])
			}
		}
	}
	if n := count(`SELECT count(*) FROM notifications WHERE event_id = $1`, ev.EventID); n != 2 {
		t.Fatalf("%d rows of the event, want 2", n)
	}
	if n := count(`SELECT count(*) FROM notifications WHERE user_id = $1`, carl); n != 0 {
		t.Fatalf("carl has %d notifications, want none", n)
	}
	if n := count(`SELECT count(*) FROM notification_events`); n != 2 {
		t.Fatalf("%d events recorded, want 2", n)
	}

	t.Run("deleting a user deletes their notifications and no one else's", func(t *testing.T) {
		if _, err := w.DB.DeleteUser(ctx, schemaName, bob, nil); err != nil {
			t.Fatal(err)
		}
		if n := count(`SELECT count(*) FROM notifications WHERE user_id = $1`, bob); n != 0 {
			t.Fatalf("the deleted user keeps %d notifications", n)
		}
		if n := count(`SELECT count(*) FROM notifications WHERE user_id = $1`, ann); n != 1 {
			t.Fatalf("ann has %d notifications, want 1", n)
		}
	})
}

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

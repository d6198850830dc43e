package accounts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/accounts"
	"github.com/tenantworks/saas/pkg/audit"
	"github.com/tenantworks/saas/pkg/domain"
)

// entry is one audit row as stored.
type entry struct {
	ActorKind, ActorID, Action, TargetType, TargetID, RequestID string
	Changes                                                     map[string][2]any
}

// auditRows returns a trail's rows in write order: the tenant's, or with
// schemaName "" the platform's.
func auditRows(t *testing.T, w *world, schemaName string) []entry {
	t.Helper()
	ctx := context.Background()
	var out []entry
	read := func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT actor_kind, actor_id, action, target_type, target_id, request_id, changes FROM audit_log ORDER BY id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				e   entry
				raw []byte
			)
			if err := rows.Scan(&e.ActorKind, &e.ActorID, &e.Action, &e.TargetType, &e.TargetID, &e.RequestID, &raw); err != nil {
				return err
			}
			if err := json.Unmarshal(raw, &e.Changes); err != nil {
				return err
			}
			out = append(out, e)
		}
		return rows.Err()
	}
	var err error
	if schemaName == "" {
		err = w.db.InTx(ctx, read)
	} else {
		err = w.db.InTenant(ctx, schemaName, read)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func actions(es []entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Action
	}
	return out
}

var staffCause = audit.Cause{Actor: audit.Actor{Kind: audit.KindUser, ID: "0197a000-0000-7000-8000-00000000000a"}, RequestID: "req-1"}

func TestEveryUserChangeWritesItsAuditEntry(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, 0)
	ctx := audit.WithCause(t.Context(), staffCause)
	actor := staffCause.Actor.ID

	u, err := w.svc.CreateUser(ctx, w.schema, accounts.NewUser{Email: "Ann@X.test", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	f := false
	if _, err := w.svc.UpdateUser(ctx, w.schema, actor, u.ID, accounts.UserChange{IsActive: &f}); err != nil {
		t.Fatal(err)
	}
	tr := true
	if _, err := w.svc.UpdateUser(ctx, w.schema, actor, u.ID, accounts.UserChange{IsActive: &tr}); err != nil {
		t.Fatal(err)
	}
	email := " ANNA@x.test"
	if _, err := w.svc.UpdateUser(ctx, w.schema, actor, u.ID, accounts.UserChange{Email: &email, IsStaff: &tr}); err != nil {
		t.Fatal(err)
	}
	// A change to what already is writes nothing.
	if _, err := w.svc.UpdateUser(ctx, w.schema, actor, u.ID, accounts.UserChange{IsStaff: &tr}); err != nil {
		t.Fatal(err)
	}
	if err := w.svc.SetPassword(ctx, w.schema, u.ID, "a-reset-password"); err != nil {
		t.Fatal(err)
	}
	if err := w.svc.DeleteUser(ctx, w.schema, actor, u.ID); err != nil {
		t.Fatal(err)
	}
	es := auditRows(t, w, w.schema)
	want := []string{"user.create", "user.deactivate", "user.activate", "user.update", "user.password_reset", "user.delete"}
	if !slices.Equal(actions(es), want) {
		t.Fatalf("actions = %v, want %v", actions(es), want)
	}
	for _, e := range es {
		if e.ActorKind != "user" || e.ActorID != actor || e.RequestID != "req-1" || e.TargetType != "user" || e.TargetID != u.ID {
			t.Errorf("%s: entry %+v, want the cause's actor and request on user %s", e.Action, e, u.ID)
		}
		for k := range e.Changes {
			if k != "email" && k != "is_staff" && k != "is_active" {
				t.Errorf("%s: changes hold %q", e.Action, k)
			}
		}
	}
	if got := es[3].Changes; fmt.Sprint(got["email"]) != "[ann@x.test anna@x.test]" || fmt.Sprint(got["is_staff"]) != "[false true]" || len(got) != 2 {
		t.Errorf("user.update changes = %v, want email and is_staff from old to new", got)
	}
	if got := es[0].Changes; fmt.Sprint(got["email"]) != "[<nil> ann@x.test]" {
		t.Errorf("user.create changes = %v", got)
	}
	if got := es[5].Changes; fmt.Sprint(got["email"]) != "[anna@x.test <nil>]" {
		t.Errorf("user.delete changes = %v", got)
	}
	if len(es[4].Changes) != 0 {
		t.Errorf("user.password_reset changes = %v, want none", es[4].Changes)
	}
	if !w.flags.dropped[w.schema+"/"+u.ID] {
		t.Error("the deleted user's cached flags were not dropped")
	}
}

func TestAFailedChangeWritesNoEntry(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, 0)
	ctx := t.Context()
	a, err := w.svc.CreateUser(ctx, w.schema, accounts.NewUser{Email: "a@x.test", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	b, err := w.svc.CreateUser(ctx, w.schema, accounts.NewUser{Email: "b@x.test", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	taken := "A@x.test"
	if _, err := w.svc.UpdateUser(ctx, w.schema, "", b.ID, accounts.UserChange{Email: &taken}); domain.ErrorCode(err) != domain.ECONFLICT {
		t.Fatalf("taking a's email = %v, want a conflict", err)
	}
	bad := "not an email"
	if _, err := w.svc.UpdateUser(ctx, w.schema, "", b.ID, accounts.UserChange{Email: &bad}); domain.ErrorCode(err) != domain.EINVALID {
		t.Fatalf("a bad email = %v, want invalid", err)
	}
	if err := w.svc.DeleteUser(ctx, w.schema, a.ID, a.ID); domain.ErrorCode(err) != domain.ECONFLICT {
		t.Fatalf("deleting oneself = %v, want a conflict", err)
	}
	if err := w.svc.DeleteUser(ctx, w.schema, a.ID, "0197a000-0000-7000-8000-000000000000"); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("deleting nobody = %v, want not found", err)
	}
	es := auditRows(t, w, w.schema)
	if !slices.Equal(actions(es), []string{"user.create", "user.create"}) {
		t.Fatalf("actions = %v, want the two creations alone", actions(es))
	}
	if es[0].ActorKind != "system" {
		t.Errorf("a change without a cause is the system's, got %q", es[0].ActorKind)
	}
}

func TestListUsersFiltersCombine(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, 0)
	ctx := t.Context()
	for _, u := range []struct {
		email         string
		staff, active bool
	}{
		{"alice@x.test", true, true}, {"al_ce@x.test", false, true}, {"bob@x.test", true, false}, {"carol%x@x.test", false, false},
	} {
		nu, err := w.svc.CreateUser(ctx, w.schema, accounts.NewUser{Email: u.email, Password: password, IsStaff: u.staff})
		if err != nil {
			t.Fatal(err)
		}
		if !u.active {
			f := false
			if _, err := w.svc.UpdateUser(ctx, w.schema, "", nu.ID, accounts.UserChange{IsActive: &f}); err != nil {
				t.Fatal(err)
			}
		}
	}
	tr, f := true, false
	for _, c := range []struct {
		name string
		q    accounts.UserQuery
		want []string
	}{
		{"q matches any case", accounts.UserQuery{Q: "ALI"}, []string{"alice@x.test"}},
		{"an underscore in q matches only itself", accounts.UserQuery{Q: "l_c"}, []string{"al_ce@x.test"}},
		{"a percent sign in q matches only itself", accounts.UserQuery{Q: "%"}, []string{"carol%x@x.test"}},
		{"staff only", accounts.UserQuery{IsStaff: &tr}, []string{"alice@x.test", "bob@x.test"}},
		{"inactive only", accounts.UserQuery{IsActive: &f}, []string{"bob@x.test", "carol%x@x.test"}},
		{"filters combine", accounts.UserQuery{Q: "o", IsStaff: &f, IsActive: &f}, []string{"carol%x@x.test"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			q := c.q
			q.Limit = 1
			for pages := 0; pages < 10; pages++ {
				us, next, err := w.svc.ListUsers(ctx, w.schema, q)
				if err != nil {
					t.Fatal(err)
				}
				for _, u := range us {
					got = append(got, u.Email)
				}
				if next == "" {
					break
				}
				q.Cursor = next
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestSetUsersActive(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, 0)
	ctx := audit.WithCause(t.Context(), staffCause)
	var ids []string
	for i := range 3 {
		u, err := w.svc.CreateUser(ctx, w.schema, accounts.NewUser{Email: fmt.Sprintf("u%d@x.test", i), Password: password})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	missing := "0197a000-0000-7000-8000-000000000000"
	t.Run("the caller is never deactivated, and nothing else is either", func(t *testing.T) {
		_, err := w.svc.SetUsersActive(ctx, w.schema, ids[0], ids, false)
		if domain.ErrorCode(err) != domain.ECONFLICT {
			t.Fatalf("err = %v, want a conflict", err)
		}
		if n := len(auditRows(t, w, w.schema)); n != 3 {
			t.Fatalf("%d entries, want the 3 creations", n)
		}
	})
	t.Run("bad ids are invalid", func(t *testing.T) {
		many := make([]string, 501)
		for i := range many {
			many[i] = ids[0]
		}
		for _, bad := range [][]string{nil, many, {"0197A000-0000-7000-8000-000000000000"}} {
			if _, err := w.svc.SetUsersActive(ctx, w.schema, "", bad, false); domain.ErrorCode(err) != domain.EINVALID {
				t.Errorf("%d ids: err = %v, want invalid", len(bad), err)
			}
		}
	})
	t.Run("a deactivation changes those active, audits each, and names the unknown ids", func(t *testing.T) {
		f := false
		if _, err := w.svc.UpdateUser(ctx, w.schema, "", ids[2], accounts.UserChange{IsActive: &f}); err != nil {
			t.Fatal(err)
		}
		res, err := w.svc.SetUsersActive(ctx, w.schema, "", append(slices.Clone(ids), missing, ids[0]), false)
		if err != nil {
			t.Fatal(err)
		}
		if res.Changed != 2 || !slices.Equal(res.NotFound, []string{missing}) {
			t.Fatalf("result = %+v, want 2 changed and %s not found", res, missing)
		}
		es := auditRows(t, w, w.schema)
		if got := actions(es[3:]); !slices.Equal(got, []string{"user.deactivate", "user.deactivate", "user.deactivate"}) {
			t.Fatalf("actions after the creations = %v", got)
		}
		for _, id := range ids {
			if ua, ok := w.flags.got[w.schema+"/"+id]; !ok || ua.Active {
				t.Errorf("cached flags of %s = %+v, %v; want inactive", id, ua, ok)
			}
		}
	})
}

func TestTheLastActiveSuperuserStays(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, 0)
	ctx := audit.WithCause(t.Context(), audit.Cause{Actor: audit.CLI("ops")})
	var ids []string
	for i := range 2 {
		su, err := w.svc.CreateSuperuser(ctx, fmt.Sprintf("root%d@x.test", i), password)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, su.ID)
	}
	// Two deactivations at once of the last two: one passes, one is refused.
	for round := range 5 {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, id := range ids {
			wg.Go(func() { _, errs[i] = w.svc.SetSuperuserActive(ctx, id, false) })
		}
		wg.Wait()
		failed := 0
		for _, err := range errs {
			if err != nil {
				if domain.ErrorCode(err) != domain.ECONFLICT {
					t.Fatalf("round %d: err = %v, want a conflict", round, err)
				}
				failed++
			}
		}
		if failed != 1 {
			t.Fatalf("round %d: %d of 2 concurrent deactivations refused, want 1", round, failed)
		}
		for _, id := range ids {
			if _, err := w.svc.SetSuperuserActive(ctx, id, true); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := w.svc.SetSuperuserActive(ctx, ids[0], false); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.SetSuperuserActive(ctx, ids[1], false); domain.ErrorCode(err) != domain.ECONFLICT {
		t.Fatalf("deactivating the last one = %v, want a conflict", err)
	}
	if _, err := w.svc.SetSuperuserPassword(ctx, ids[1], "another-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.SetSuperuserActive(ctx, "0197a000-0000-7000-8000-000000000000", true); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("an unknown superuser = %v, want not found", err)
	}
	// The world's tenant.create is the platform's too; only the
	// superusers' entries are this test's.
	var es []entry
	for _, e := range auditRows(t, w, "") {
		if strings.HasPrefix(e.Action, "superuser.") {
			es = append(es, e)
		}
	}
	var deact, act, reset int
	for _, e := range es {
		if e.ActorKind != "cli" || e.TargetType != "superuser" {
			t.Errorf("entry %+v, want the CLI's, on a superuser", e)
		}
		switch e.Action {
		case "superuser.deactivate":
			deact++
		case "superuser.activate":
			act++
		case "superuser.password_reset":
			reset++
		}
	}
	if es[0].Action != "superuser.create" || deact != 6 || act != 5 || reset != 1 {
		t.Fatalf("actions = %v, want 2 creations, 6 deactivations, 5 activations, 1 reset", actions(es))
	}
	su, _, err := w.svc.ListSuperusers(ctx, 10, "")
	if err != nil || len(su) != 2 || su[0].IsActive || !su[1].IsActive {
		t.Fatalf("list = %+v, %v", su, err)
	}
}

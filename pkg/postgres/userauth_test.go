package postgres_test

import (
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/testenv"
	"github.com/tenantworks/saas/schema"
)

// GetUserAuth reads the tenant's users table by its qualified name, in one
// statement, on the tenant's cluster: each case checks what it reads and
// that it never reads another tenant's row.
func TestGetUserAuthReadsTheUserOfThisTenantOnItsCluster(t *testing.T) {
	t.Parallel()
	d := testenv.MustClusterDatabases(t)
	ctx := t.Context()
	placeTenant(t, d, "auth_main", postgres.MainCluster)
	placeTenant(t, d, "auth_other", d.Clusters[1].Name)

	for _, schemaName := range []string{"auth_main", "auth_other"} {
		staff, err := d.DB.CreateUser(ctx, schemaName, postgres.NewUser{Email: "staff@" + schemaName, PasswordHash: "x", IsStaff: true})
		if err != nil {
			t.Fatal(err)
		}
		gone, err := d.DB.CreateUser(ctx, schemaName, postgres.NewUser{Email: "gone@" + schemaName, PasswordHash: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.DB.UpdateUser(ctx, schemaName, gone.ID, postgres.UserPatch{IsActive: ptr(false)}); err != nil {
			t.Fatal(err)
		}
		if _, err := d.DB.SetUserPassword(ctx, schemaName, staff.ID, "y", staff.TokenGeneration, nil); err != nil {
			t.Fatal(err)
		}

		t.Run(schemaName+": an active staff user's flags and the generation a password change moved", func(t *testing.T) {
			ua, err := d.DB.GetUserAuth(ctx, schemaName, staff.ID)
			want := postgres.UserAuth{Active: true, Staff: true, Generation: staff.TokenGeneration + 1}
			if err != nil || ua != want {
				t.Fatalf("GetUserAuth = %+v, %v; want %+v", ua, err, want)
			}
		})
		t.Run(schemaName+": a deactivated user reads inactive", func(t *testing.T) {
			ua, err := d.DB.GetUserAuth(ctx, schemaName, gone.ID)
			if err != nil || ua.Active {
				t.Fatalf("GetUserAuth = %+v, %v; want inactive", ua, err)
			}
		})
		for name, id := range map[string]string{"an unknown id": uuid.NewString(), "an id that is not a UUID": "nope"} {
			t.Run(schemaName+": "+name+" is not found", func(t *testing.T) {
				if _, err := d.DB.GetUserAuth(ctx, schemaName, id); domain.ErrorCode(err) != domain.ENOTFOUND {
					t.Fatalf("GetUserAuth(%q) = %v, want ENOTFOUND", id, err)
				}
			})
		}
	}
	t.Run("a user of another tenant is not found", func(t *testing.T) {
		other, err := d.DB.CreateUser(ctx, "auth_other", postgres.NewUser{Email: "x@auth_other", PasswordHash: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.DB.GetUserAuth(ctx, "auth_main", other.ID); domain.ErrorCode(err) != domain.ENOTFOUND {
			t.Fatalf("GetUserAuth of another tenant's user = %v, want ENOTFOUND", err)
		}
	})
	t.Run("an invalid schema name is refused before any query", func(t *testing.T) {
		if _, err := d.DB.GetUserAuth(ctx, `a"; DROP TABLE users; --`, uuid.NewString()); domain.ErrorCode(err) != domain.EINVALID {
			t.Fatalf("GetUserAuth with a bad schema = %v, want EINVALID", err)
		}
	})
}

// A read caught by a move (the schema gone from the cluster this process
// thought held it) is told to retry, as a tenant transaction is.
func TestGetUserAuthCaughtByAMoveIsToldToRetry(t *testing.T) {
	t.Parallel()
	d := testenv.MustClusterDatabases(t)
	ctx := t.Context()
	other := d.Clusters[1]
	placeTenant(t, d, "auth_mover", postgres.MainCluster)
	u, err := d.DB.CreateUser(ctx, "auth_mover", postgres.NewUser{Email: "a@b.c", PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.DB.Pool.Exec(ctx, `CREATE SCHEMA auth_mover`); err != nil {
		t.Fatal(err)
	}
	r, err := schema.NewRunner(other.DirectURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.MigrateTenant(ctx, "auth_mover"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.DB.Pool.Exec(ctx, `UPDATE public.tenants SET cluster = $1 WHERE schema_name = 'auth_mover'`, other.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := d.DB.Pool.Exec(ctx, `DROP SCHEMA auth_mover CASCADE`); err != nil {
		t.Fatal(err)
	}
	_, err = d.DB.GetUserAuth(ctx, "auth_mover", u.ID)
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.EUNAVAILABLE || de.RetryAfter <= 0 {
		t.Fatalf("read caught by the move: %v, want EUNAVAILABLE with a Retry-After", err)
	}
	// The next read goes to the new cluster, where the user is not.
	if _, err := d.DB.GetUserAuth(ctx, "auth_mover", u.ID); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("read after the move: %v, want ENOTFOUND from the new cluster", err)
	}
}

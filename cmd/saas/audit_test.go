package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tenantworks/saas/pkg/audit"
)

func TestAuditCommands(t *testing.T) {
	useServices(t)
	t.Setenv("JWT_SECRET", "")
	t.Setenv("SAAS_OPERATOR", "ops@example.test")
	for _, args := range [][]string{
		{"migrate", "--shared"},
		{"tenant", "create", "--schema", "audcli", "--name", "Acme", "--domain", "audcli.localhost"},
		{"tenant", "suspend", "--schema", "audcli"},
	} {
		if out, errOut, code := saas(t, args...); code != 0 {
			t.Fatalf("saas %v exited %d: %s%s", args, code, out, errOut)
		}
	}

	t.Run("the table names the operator and what changed", func(t *testing.T) {
		out, errOut, code := saas(t, "audit", "--platform", "--target-type", "tenant", "--target-id", "audcli")
		if code != 0 || !strings.Contains(out, "cli:ops@example.test") || !strings.Contains(out, "tenant.create") ||
			!strings.Contains(out, `"state":["active","suspended"]`) {
			t.Fatalf("exit %d:\n%s%s\nwant the create and the suspension by cli:ops@example.test", code, out, errOut)
		}
		if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || !strings.Contains(lines[1], "tenant.suspend") {
			t.Fatalf("table:\n%s\nwant a header, then the suspension, then the create", out)
		}
	})
	t.Run("JSON lines, filtered", func(t *testing.T) {
		out, errOut, code := saas(t, "audit", "--platform", "--json", "--action", "tenant.suspend")
		if code != 0 {
			t.Fatalf("exit %d: %s%s", code, out, errOut)
		}
		var e audit.Entry
		if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &e) != nil {
			t.Fatalf("output:\n%s\nwant one JSON entry", out)
		}
		if e.Actor != audit.CLI("ops@example.test") || !strings.HasPrefix(e.RequestID, "cli-") || e.Target.ID != "audcli" {
			t.Fatalf("entry = %+v, want the operator's suspension of audcli with a cli- request id", e)
		}
	})
	for _, c := range []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"a tenant's trail", []string{"audit", "--tenant", "audcli"}, 0, "AT"},
		{"an unknown tenant is not found", []string{"audit", "--tenant", "nobody"}, 4, "not found"},
		{"neither --tenant nor --platform is bad usage", []string{"audit"}, 2, "--tenant S or --platform"},
		{"both is bad usage", []string{"audit", "--tenant", "audcli", "--platform"}, 2, "--tenant S or --platform"},
		{"a limit of 0 is bad usage", []string{"audit", "--platform", "--limit", "0"}, 2, "--limit"},
		{"pruning with nothing old", []string{"audit", "prune"}, 0, "deleted 0 audit entries"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := saas(t, c.args...)
			if code != c.code || !strings.Contains(out+errOut, c.contains) {
				t.Fatalf("saas %v exited %d with\n%s%s\nwant exit %d and %q", c.args, code, out, errOut, c.code, c.contains)
			}
		})
	}

	t.Run("prune deletes what is older than asked", func(t *testing.T) {
		conn, err := pgx.Connect(context.Background(), os.Getenv("DATABASE_DIRECT_URL"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), `INSERT INTO public.audit_log (at, actor_kind, action, target_type, target_id)
			VALUES (now() - interval '3 days', 'system', 'tenant.old', 'tenant', 'x')`); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := saas(t, "audit", "prune", "--older-than", "48h")
		if code != 0 || !strings.Contains(out, "deleted 1 audit entries") {
			t.Fatalf("exit %d: %s%s; want one entry deleted", code, out, errOut)
		}
		if out, _, _ := saas(t, "audit", "--platform"); strings.Contains(out, "tenant.old") || !strings.Contains(out, "tenant.suspend") {
			t.Fatalf("after pruning:\n%s\nwant the old entry gone and the new ones kept", out)
		}
	})
}

package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestParsePoolMode(t *testing.T) {
	for in, want := range map[string]PoolMode{"": PoolSession, "session": PoolSession, "transaction": PoolTransaction} {
		if got, err := ParsePoolMode(in); err != nil || got != want {
			t.Errorf("ParsePoolMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"statement", "Transaction", "tx"} {
		if _, err := ParsePoolMode(in); err == nil {
			t.Errorf("ParsePoolMode(%q) accepted", in)
		}
	}
}

func TestTransactionModeKeepsNothingInTheSession(t *testing.T) {
	const base = "postgres://u:p@127.0.0.1:1/db?sslmode=disable"
	t.Run("no mode named: exec, caches off", func(t *testing.T) {
		cc, err := pgx.ParseConfig(base)
		if err != nil {
			t.Fatal(err)
		}
		if err := sessionFree(cc, false); err != nil {
			t.Fatal(err)
		}
		if cc.DefaultQueryExecMode != pgx.QueryExecModeExec || cc.StatementCacheCapacity != 0 || cc.DescriptionCacheCapacity != 0 {
			t.Errorf("mode %v, statement cache %d, description cache %d; want exec, 0, 0",
				cc.DefaultQueryExecMode, cc.StatementCacheCapacity, cc.DescriptionCacheCapacity)
		}
	})
	t.Run("the simple protocol named in the URL stays", func(t *testing.T) {
		cc, err := pgx.ParseConfig(base + "&default_query_exec_mode=simple_protocol")
		if err != nil {
			t.Fatal(err)
		}
		if err := sessionFree(cc, true); err != nil || cc.DefaultQueryExecMode != pgx.QueryExecModeSimpleProtocol {
			t.Errorf("mode %v, err %v; want simple protocol", cc.DefaultQueryExecMode, err)
		}
	})
	for _, bad := range []string{
		"&default_query_exec_mode=cache_statement",
		"&default_query_exec_mode=cache_describe",
		"&default_query_exec_mode=describe_exec",
		"&search_path=acme",
		"&statement_timeout=1000",
	} {
		t.Run("Open refuses "+strings.TrimPrefix(bad, "&"), func(t *testing.T) {
			// Refused before any connection is tried (nothing listens on port 1).
			_, err := Open(context.Background(), Config{URL: base + bad, PoolMode: PoolTransaction})
			if err == nil || !strings.Contains(err.Error(), "postgres: ") || strings.Contains(err.Error(), "ping") {
				t.Errorf("Open = %v, want a refusal before connecting", err)
			}
		})
	}
	t.Run("Open refuses an unknown mode", func(t *testing.T) {
		if _, err := Open(context.Background(), Config{URL: base, PoolMode: "statement"}); err == nil || !strings.Contains(err.Error(), "pool mode") {
			t.Errorf("Open = %v, want a pool mode error", err)
		}
	})
}

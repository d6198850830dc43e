package postgres

import (
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// PoolMode says what answers at a pool's URL, and so what a connection of
// the pool may rely on.
type PoolMode string

const (
	// PoolSession: every connection of the pool is a PostgreSQL session of
	// its own, from connect to close (PostgreSQL itself, or a pooler in
	// session mode). Prepared statements are cached per connection. The
	// default.
	PoolSession PoolMode = "session"
	// PoolTransaction: the URL leads to a pooler in transaction mode
	// (PgBouncer with pool_mode = transaction), which lends a server
	// connection for one transaction, or for one statement outside a
	// transaction, then hands it to another client. Nothing may then
	// depend on session state; see sessionFree for what Open changes.
	PoolTransaction PoolMode = "transaction"
)

// ParsePoolMode returns the PoolMode named s ("" is PoolSession), or an
// error naming DATABASE_POOL_MODE's valid values.
func ParsePoolMode(s string) (PoolMode, error) {
	switch m := PoolMode(s); m {
	case "", PoolSession:
		return PoolSession, nil
	case PoolTransaction:
		return m, nil
	}
	return "", fmt.Errorf("postgres: pool mode must be %q or %q, not %q", PoolSession, PoolTransaction, s)
}

// trackedParams are the startup parameters a transaction pooler keeps per
// client and sets again on whichever server connection serves it
// (PgBouncer: client_encoding, DateStyle, TimeZone,
// standard_conforming_strings and application_name). Any other one in the
// URL would be a session setting that the next transaction may not see.
var trackedParams = []string{"application_name", "client_encoding", "datestyle", "timezone", "standard_conforming_strings"}

// sessionFree configures cc so that no statement depends on the server
// session outliving a transaction. explicitMode says whether the URL named
// a default_query_exec_mode.
//
// pgx's query modes (QueryExecMode in the pgx v5 docs), and why one fits:
//
//   - cache_statement, pgx's default, prepares every statement under a
//     name (stmtcache_<hash>) kept for the life of the connection. Behind
//     a transaction pooler the statement was prepared on one server
//     connection and is run on another, where it does not exist, or is
//     prepared again where another client already prepared it: "prepared
//     statement ... already exists (SQLSTATE 42P05)".
//   - cache_describe and describe_exec describe a statement through the
//     unnamed prepared statement in one round trip and execute it in a
//     second; the docs warn that this "may cause problems with connection
//     poolers that switch the underlying connection between round trips",
//     which is what happens outside a transaction ("unnamed prepared
//     statement does not exist"). cache_describe does it once per
//     connection and statement, describe_exec every time.
//   - exec sends each statement with its parameters in one round trip
//     (Parse, Bind, Execute, Sync) as the unnamed statement, parameters and
//     results in text, parameter types left for the server to infer from
//     the statement. Nothing outlives the round trip.
//   - simple_protocol interpolates the parameters into the SQL text on the
//     client. The docs: "Prefer QueryExecModeExec over
//     QueryExecModeSimpleProtocol whenever possible", the simple protocol
//     being for servers that do not support the extended one. PgBouncer
//     does, in transaction mode, for the unnamed statement.
//
// So exec: one round trip, values kept out of the SQL text. A URL may still
// choose simple_protocol; the other modes are refused. The statement and
// description caches are switched off too, so that a query that names a
// caching mode fails at once instead of preparing a named statement.
//
// What exec changes for the code: pgx encodes a parameter by its Go type,
// in text, since it does not ask the server for the type. A string reaches
// any column whose input accepts its text (uuid, numeric, timestamptz,
// jsonb); a []byte goes as bytea ("\x7b..."), which a jsonb or text column
// takes as garbage or refuses, so JSON goes as json.RawMessage or a string,
// under an explicit cast. Results come back in text and pgx decodes them by
// the column's type as it does binary ones (timestamps in time.Local, as
// in binary).
func sessionFree(cc *pgx.ConnConfig, explicitMode bool) error {
	switch {
	case cc.DefaultQueryExecMode == pgx.QueryExecModeSimpleProtocol:
	case !explicitMode || cc.DefaultQueryExecMode == pgx.QueryExecModeExec:
		cc.DefaultQueryExecMode = pgx.QueryExecModeExec
	default:
		return fmt.Errorf("postgres: query exec mode %q needs a session of its own; with DATABASE_POOL_MODE=transaction use default_query_exec_mode=exec or simple_protocol", cc.DefaultQueryExecMode)
	}
	cc.StatementCacheCapacity = 0
	cc.DescriptionCacheCapacity = 0
	for k := range cc.RuntimeParams {
		if !slices.Contains(trackedParams, strings.ToLower(k)) {
			return fmt.Errorf("postgres: the URL sets %s for the session, which a transaction pooler does not keep; set it per transaction instead", k)
		}
	}
	return nil
}

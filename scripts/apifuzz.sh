#!/usr/bin/env bash
# scripts/apifuzz.sh — fuzz the running API against its own OpenAPI document
# with Schemathesis.
#
# It sets up a throwaway deployment with bench/cmd/stack (a fresh database on
# the shared PostgreSQL, a private nats-server and redis-server, an
# Elasticsearch index prefix of its own, saas built from this checkout, then
# a tenant with a staff user and a platform superuser made with the saas
# CLI), with `saas api` on a free loopback port, signs in through the API,
# then runs `schemathesis run`
# on /api/openapi.json twice: the tenant operations on the tenant's host with
# the staff token, and the platform operations on the public domain with the
# superuser token. Every answer must not be a server error and must match
# the document (status, content type, headers, body schema), and the server
# must log no error. Everything it made is removed on exit. The exceptions
# to Schemathesis's checks are in scripts/apifuzz/, each with its reason.
#
# Usage: scripts/apifuzz.sh
# Knobs (environment, all optional):
#   APIFUZZ_MAX_EXAMPLES  test cases per operation (default 100: about 2 to 3
#                         minutes in all on a 2-core machine)
#   APIFUZZ_SEED          Schemathesis seed, to replay a run. Default: random,
#                         but fixed under CI=true, so that CI's verdict
#                         depends on the change alone (explore with new seeds
#                         by running it locally)
#   APIFUZZ_TIMEOUT       hard limit of each of the two runs (default 900 s)
#   APIFUZZ_REDIS_DB      a database number of the shared Redis for the run
#                         (it must be empty; flushed at the end) instead of a
#                         redis-server of its own (the default)
#   APIFUZZ_WORKERS       concurrent Schemathesis workers (default 1: with more,
#                         Python 3.11 can fail in ast.parse, racing in Hypothesis)
#   SERVICES_DIR          where the tool's virtualenv is kept
#                         (default /var/lib/saas-services, as scripts/services.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
eval "$(bash scripts/services.sh env)"

SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES=${APIFUZZ_MAX_EXAMPLES:-100}
WORKERS=${APIFUZZ_WORKERS:-1}
TIMEOUT=${APIFUZZ_TIMEOUT:-900}
if [ -n "${APIFUZZ_SEED:-}" ]; then
  SEED=$APIFUZZ_SEED
elif [ "${CI:-}" = true ]; then
  SEED=1
else
  SEED=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
fi
REQUIREMENTS=scripts/apifuzz/requirements.txt

log() { printf '== %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------
# Schemathesis, in a virtualenv outside the checkout. The directory is named
# after the hash of the pinned requirements, so a change of pins makes a new
# one and a second run finds it ready at once.
# ---------------------------------------------------------------------------
tools_dir="${SERVICES_DIR:-/var/lib/saas-services}/tools"
req_hash=$(sha256sum "$REQUIREMENTS" | cut -c1-12)
venv="$tools_dir/schemathesis-$SCHEMATHESIS_VERSION-$req_hash"
st="$venv/bin/schemathesis"

# venv_python prints a python3 that can make a virtualenv: the one on PATH,
# else Debian's.
venv_python() {
  local py
  for py in python3 /usr/bin/python3; do
    if "$py" -c 'import ensurepip, venv' >/dev/null 2>&1; then
      echo "$py"
      return 0
    fi
  done
  return 1
}

install_schemathesis() {
  local py
  if ! py=$(venv_python); then
    if [ "$(id -u)" != 0 ]; then
      echo "python3 cannot make a virtualenv: apt-get install -y python3-venv as root" >&2
      exit 1
    fi
    log "installing python3-venv"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends python3-venv >&2 ||
      { apt-get update >&2 && apt-get install -y --no-install-recommends python3-venv >&2; }
    py=$(venv_python) || { echo "python3-venv installed, yet no python3 makes a virtualenv" >&2; exit 1; }
  fi
  log "installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  rm -rf "$venv"
  mkdir -p "$tools_dir"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$REQUIREMENTS" >&2
  # Written last: a venv without it is a failed install and is made anew.
  touch "$venv/.installed"
}

if [ ! -f "$venv/.installed" ] || ! "$st" --version >/dev/null 2>&1; then
  install_schemathesis
fi
"$st" --version | grep -qxF "schemathesis, version $SCHEMATHESIS_VERSION" ||
  { echo "$venv has not schemathesis $SCHEMATHESIS_VERSION: check $REQUIREMENTS" >&2; exit 1; }

# ---------------------------------------------------------------------------
# A throwaway deployment: bench/cmd/stack runs `saas api` on a stack of its
# own, with a tenant, its staff user and a platform superuser made with the
# saas CLI, prints where they are as one JSON line, and removes everything
# when its standard input closes.
# ---------------------------------------------------------------------------
work=$(mktemp -d)
public_host="localhost"
stack_pid=""
stack_in=""
failures=()

cleanup() {
  local rc=$?
  set +e
  if [ -n "$stack_in" ]; then
    # End of its standard input: the stack stops the server and removes
    # the database, indices, NATS and Redis it made.
    eval "exec $stack_in>&-" 2>/dev/null
  fi
  if [ -n "$stack_pid" ]; then
    wait "$stack_pid" 2>/dev/null
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building the stack command"
go build -o "$work/stack" ./bench/cmd/stack
stack_args=(-name apifuzz -roles api -demo -logs "$work")
if [ -n "${APIFUZZ_REDIS_DB:-}" ]; then
  stack_args+=(-redis-db "$APIFUZZ_REDIS_DB")
fi
coproc STACK { exec "$work/stack" "${stack_args[@]}"; }
stack_pid=$STACK_PID
stack_in=${STACK[1]}
if ! IFS= read -r -t 600 stack_json <&"${STACK[0]}" || [ -z "$stack_json" ]; then
  echo "the stack did not come up (see above)" >&2
  exit 1
fi
printf '%s\n' "$stack_json" >"$work/stack.json"
# base, server_pid, server_log, DATABASE_URL, the tenant and the accounts.
eval "$("$venv/bin/python" - "$work/stack.json" <<'PY'
import json, shlex, sys
d = json.load(open(sys.argv[1]))
demo = d["demo"]
for k, v in {
    "base": d["url"], "server_pid": d["roles"]["api"]["pid"], "server_log": d["roles"]["api"]["log"],
    "DATABASE_URL": d["env"]["DATABASE_URL"],
    "tenant_schema": demo["schema"], "tenant_host": demo["domain"],
    "staff_email": demo["staff"]["email"], "staff_password": demo["staff"]["password"],
    "admin_email": demo["superuser"]["email"], "admin_password": demo["superuser"]["password"],
}.items():
    print(f"{k}={shlex.quote(str(v))}")
PY
)"
log "saas api on $base, tenant $tenant_schema ($tenant_host)"

# A few notifications, written as the notifier worker writes them (no worker
# runs here), so that reading and marking them is exercised too.
psql "$DATABASE_URL" -XAtq -v ON_ERROR_STOP=1 >/dev/null <<SQL
INSERT INTO "$tenant_schema".notifications (event_id, user_id, kind, title, data)
SELECT gen_random_uuid(), u.id, 'product.created', 'Product ' || g || ' created', jsonb_build_object('sku', 'SEED-' || g)
FROM "$tenant_schema".users u, generate_series(1, 5) g WHERE u.is_staff;
SQL

# token HOST EMAIL PASSWORD PATH: signs in through the API and prints the
# bearer token.
token() {
  local code
  code=$(curl -sS -m 10 -o "$work/token.json" -w '%{http_code}' -H "Host: $1" \
    -H 'Content-Type: application/json' \
    -d "{\"email\": \"$2\", \"password\": \"$3\"}" "$base$4")
  if [ "$code" != 200 ]; then
    echo "sign-in of $2 on $1 answered $code: $(cat "$work/token.json")" >&2
    tail -n 20 "$server_log" >&2
    return 1
  fi
  "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["token"])' <"$work/token.json"
}
staff_token=$(token "$tenant_host" "$staff_email" "$staff_password" /api/auth/token)
admin_token=$(token "$public_host" "$admin_email" "$admin_password" /api/platform/auth/token)

# ---------------------------------------------------------------------------
# The runs.
# ---------------------------------------------------------------------------
# fuzz NAME HOST TOKEN X-HOST: one Schemathesis run over the operations the
# document serves on X-HOST, sent with HOST and TOKEN.
fuzz() {
  local name=$1 host=$2 bearer=$3 where=$4
  log "schemathesis: $name operations on $host (seed $SEED, up to $MAX_EXAMPLES examples per operation)"
  local start=$SECONDS
  # Run from the work directory: Schemathesis and Hypothesis keep their
  # caches in the current one, and these go with the run.
  if (cd "$work" && SCHEMATHESIS_HOOKS="$repo/scripts/apifuzz/hooks.py" timeout -k 30 "$TIMEOUT" \
      "$st" --config-file "$repo/scripts/apifuzz/schemathesis.toml" run "$base/api/openapi.json" \
      --url "$base" \
      --header "Host: $host" \
      --header "Authorization: Bearer $bearer" \
      --include-by "/x-host == \"$where\"" \
      --max-examples "$MAX_EXAMPLES" \
      --workers "$WORKERS" \
      --seed "$SEED" \
      --request-timeout 10 \
      --no-color); then
    log "$name: passed in $((SECONDS - start))s"
    return 0
  else
    local rc=$?
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
      log "$name: TIMED OUT after ${TIMEOUT}s (APIFUZZ_TIMEOUT)"
    else
      log "$name: FAILED in $((SECONDS - start))s, see the report above (replay with APIFUZZ_SEED=$SEED)"
    fi
    failures+=("$name")
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "saas api died during the $name run:" >&2
    tail -n 50 "$server_log" >&2
    exit 1
  fi
}

total=$SECONDS
fuzz tenant "$tenant_host" "$staff_token" tenant
fuzz platform "$public_host" "$admin_token" public

# An internal error the answers did not show (a 5xx is caught above).
if grep -q 'level=ERROR' "$server_log"; then
  echo "saas api logged errors during the runs:" >&2
  grep 'level=ERROR' "$server_log" | tail -n 30 >&2
  failures+=("server log")
fi
if [ "${#failures[@]}" -gt 0 ]; then
  log "api fuzz FAILED (${failures[*]}) in $((SECONDS - total))s, seed $SEED"
  exit 1
fi
log "api fuzz passed in $((SECONDS - total))s, seed $SEED"

#!/usr/bin/env bash
# scripts/apifuzz.sh — fuzz the running API against its own OpenAPI document
# with Schemathesis.
#
# It builds saas, sets up a throwaway deployment (a fresh database on the
# shared PostgreSQL, a Redis database number and an Elasticsearch index
# prefix of its own, a private nats-server, then a tenant with a staff user
# and a platform superuser made with the saas CLI), starts `saas api` on a
# free loopback port, signs in through the API, then runs `schemathesis run`
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
#   APIFUZZ_REDIS_DB      Redis database number of the run (default 14; web
#                         e2e uses 12, bench:pipeline 13)
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
# A throwaway deployment.
# ---------------------------------------------------------------------------
work=$(mktemp -d)
suffix=$(tr -dc 'a-z0-9' </dev/urandom | head -c 10 || true)
db_name="apifuzz_$suffix"
tenant_schema="fuzz_$suffix"
es_prefix="apifuzz_$suffix"
tenant_host="fuzz-$suffix.localhost"
public_host="localhost"
staff_email="staff@$tenant_host"
admin_email="admin@$tenant_host"
password=$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 24 || true)
base_db_url=$DATABASE_URL
server_pid=""
nats_pid=""
failures=()

cleanup() {
  local rc=$?
  set +e
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    for _ in $(seq 1 150); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  if [ -x "$work/saas" ] && [ -n "${saas_env_ready:-}" ]; then
    # Every tenant of this database, the fuzzer's own included, goes the
    # way users' tenants go: schema, search index and cache keys.
    for s in $("$work/saas" tenant list 2>/dev/null | awk 'NR > 1 {print $1}'); do
      "$work/saas" tenant delete --schema "$s" >/dev/null 2>&1 ||
        log "could not delete tenant $s"
    done
  fi
  if [ -n "${REDIS_URL:-}" ] && [ -n "${saas_env_ready:-}" ]; then
    # The platform's sign-in rate limit bucket of this address.
    redis-cli -u "$REDIS_URL" DEL public:login:127.0.0.1 >/dev/null 2>&1
  fi
  if [ -n "$nats_pid" ] && kill -0 "$nats_pid" 2>/dev/null; then
    kill -TERM "$nats_pid"
    wait "$nats_pid" 2>/dev/null
  fi
  # Indexes a half-made tenant could have left (the prefix is this run's).
  for idx in $(curl -sf -m 10 "$ELASTICSEARCH_URL/_cat/indices/${es_prefix}_*?h=index" 2>/dev/null); do
    curl -sf -m 10 -X DELETE "$ELASTICSEARCH_URL/$idx" >/dev/null || log "could not delete index $idx"
  done
  psql "$base_db_url" -XAtq -c "DROP DATABASE IF EXISTS \"$db_name\" WITH (FORCE)" >/dev/null ||
    log "could not drop database $db_name"
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building saas"
go build -o "$work/saas" ./cmd/saas

log "creating database $db_name"
psql "$base_db_url" -XAtq -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$db_name\"" >/dev/null
# with_path URL PATH: URL with its path replaced.
with_path() {
  "$venv/bin/python" - "$1" "$2" <<'PY'
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
print(urllib.parse.urlunsplit(u._replace(path="/" + sys.argv[2])))
PY
}
free_port() {
  "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
DATABASE_URL=$(with_path "$base_db_url" "$db_name")
REDIS_URL=$(with_path "$REDIS_URL" "${APIFUZZ_REDIS_DB:-14}")
port=$(free_port)
export DATABASE_URL REDIS_URL

# A NATS server of its own: tenants made and dropped by the platform run are
# announced there, not to every API process of the machine.
nats_bin=""
for d in "${SERVICES_DIR:-/var/lib/saas-services}/bin" ${PATH//:/ }; do
  [ -x "$d/nats-server" ] && { nats_bin="$d/nats-server"; break; }
done
[ -n "$nats_bin" ] || { echo "nats-server not found: run scripts/services.sh up first" >&2; exit 1; }
nats_port=$(free_port)
"$nats_bin" -a 127.0.0.1 -p "$nats_port" -js -sd "$work/nats" >"$work/nats.log" 2>&1 &
nats_pid=$!
export NATS_URL="nats://127.0.0.1:$nats_port"
for i in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break
  if ! kill -0 "$nats_pid" 2>/dev/null || [ "$i" = 100 ]; then
    echo "nats-server did not come up:" >&2
    tail -n 20 "$work/nats.log" >&2
    exit 1
  fi
  sleep 0.1
done
export ELASTICSEARCH_INDEX_PREFIX="$es_prefix"
export HTTP_ADDR="127.0.0.1:$port"
export PUBLIC_DOMAIN="$public_host"
export JWT_SECRET
JWT_SECRET=$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 48 || true)
export APP_ENV=development LOG_LEVEL=warn LOG_FORMAT=text
saas_env_ready=1

saas() { "$work/saas" "$@" >&2; }
saas migrate --shared
saas tenant create --schema "$tenant_schema" --name "API fuzz" --domain "$tenant_host"
saas user create --tenant "$tenant_schema" --email "$staff_email" --password "$password" --staff
saas superuser create --email "$admin_email" --password "$password"
# A few notifications, written as the notifier worker writes them (no worker
# runs here), so that reading and marking them is exercised too.
psql "$DATABASE_URL" -XAtq -v ON_ERROR_STOP=1 >/dev/null <<SQL
INSERT INTO "$tenant_schema".notifications (event_id, user_id, kind, title, data)
SELECT gen_random_uuid(), u.id, 'product.created', 'Product ' || g || ' created', jsonb_build_object('sku', 'SEED-' || g)
FROM "$tenant_schema".users u, generate_series(1, 5) g WHERE u.is_staff;
SQL

log "starting saas api on $HTTP_ADDR"
"$work/saas" api >"$work/server.log" 2>&1 &
server_pid=$!
base="http://$HTTP_ADDR"
for i in $(seq 1 300); do
  curl -sf -m 1 -H "Host: $public_host" "$base/health/" >/dev/null 2>&1 && break
  if ! kill -0 "$server_pid" 2>/dev/null || [ "$i" = 300 ]; then
    echo "saas api did not come up:" >&2
    tail -n 50 "$work/server.log" >&2
    exit 1
  fi
  sleep 0.1
done

# token HOST EMAIL PATH: signs in through the API and prints the bearer token.
token() {
  local code
  code=$(curl -sS -m 10 -o "$work/token.json" -w '%{http_code}' -H "Host: $1" \
    -H 'Content-Type: application/json' \
    -d "{\"email\": \"$2\", \"password\": \"$password\"}" "$base$3")
  if [ "$code" != 200 ]; then
    echo "sign-in of $2 on $1 answered $code: $(cat "$work/token.json")" >&2
    tail -n 20 "$work/server.log" >&2
    return 1
  fi
  "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["token"])' <"$work/token.json"
}
staff_token=$(token "$tenant_host" "$staff_email" /api/auth/token)
admin_token=$(token "$public_host" "$admin_email" /api/platform/auth/token)

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
    tail -n 50 "$work/server.log" >&2
    exit 1
  fi
}

total=$SECONDS
fuzz tenant "$tenant_host" "$staff_token" tenant
fuzz platform "$public_host" "$admin_token" public

# An internal error the answers did not show (a 5xx is caught above).
if grep -q 'level=ERROR' "$work/server.log"; then
  echo "saas api logged errors during the runs:" >&2
  grep 'level=ERROR' "$work/server.log" | tail -n 30 >&2
  failures+=("server log")
fi
if [ "${#failures[@]}" -gt 0 ]; then
  log "api fuzz FAILED (${failures[*]}) in $((SECONDS - total))s, seed $SEED"
  exit 1
fi
log "api fuzz passed in $((SECONDS - total))s, seed $SEED"

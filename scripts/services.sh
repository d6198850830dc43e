#!/usr/bin/env bash
# scripts/services.sh — install and run the four backing services of the SaaS
# backend (PostgreSQL, Redis, NATS with JetStream, Elasticsearch), PgBouncer
# in front of PostgreSQL, a second PostgreSQL cluster (pg2, port 5433) and a
# three-master Redis Cluster (ports 7001-7003), natively on a Debian 12
# machine without Docker and without systemd.
#
# Usage:
#   scripts/services.sh up                 install (if needed) and start them all
#   scripts/services.sh down               stop them all
#   scripts/services.sh status             one "up"/"down" line per service
#                                          (exit status 0 only if all are up)
#   scripts/services.sh env                print "export X_URL=..." lines and the
#                                          stack's JWT_SECRET, for
#                                          eval "$(scripts/services.sh env)"
#   scripts/services.sh start|stop|restart <postgres|pg2|redis|redis-cluster|nats|elasticsearch|pgbouncer>
#
# Environment knobs (all optional):
#   SERVICES_DIR       state directory (logs, data, pid files, binaries).
#                      Default /var/lib/saas-services. It is deliberately not
#                      inside the repository: the checkout may live under a
#                      directory (e.g. /root) that the unprivileged users the
#                      services run as cannot traverse. It also keeps the
#                      stack's token secret (jwt_secret, mode 600): random,
#                      made on the first "up" or "env", the same ever after.
#   START_TIMEOUT      readiness timeout in seconds for postgres/redis/nats (30)
#   ES_START_TIMEOUT   readiness timeout in seconds for elasticsearch (120)
#   ES_HEAP            elasticsearch heap size (512m)
#   ES_EXTRA_ARGS      extra arguments for bin/elasticsearch, e.g. "-Efoo=bar"
#   REDIS_MAXMEMORY    redis memory bound, past which it evicts keys (256mb)
#   REDIS_CLUSTER_MAXMEMORY  the same for each master of the Redis Cluster (64mb)
#
# Every step is idempotent: "up" on a machine where everything already answers
# only probes the four services and returns within a second or two.
set -euo pipefail

# ---------------------------------------------------------------------------
# Pinned versions and fixed endpoints. Keep in sync with docker-compose.yml.
# ---------------------------------------------------------------------------
NATS_VERSION=v2.12.2
ES_VERSION=8.19.21
ES_ARTIFACT="org.elasticsearch.distribution.integ-test-zip:elasticsearch:${ES_VERSION}:zip"

PG_PORT=5432
PG2_PORT=5433
REDIS_PORT=6379
NATS_PORT=4222
NATS_MONITOR_PORT=8222
ES_PORT=9200
PGBOUNCER_PORT=6432
HOST=127.0.0.1

DB_USER=saas
DB_PASSWORD=saas
DB_NAME=saas
PG_MAX_CONNECTIONS=300

DATABASE_URL="postgres://${DB_USER}:${DB_PASSWORD}@${HOST}:${PG_PORT}/${DB_NAME}?sslmode=disable"
# The second PostgreSQL cluster tenant schemas may live on (DESIGN.md
# section 12): the same installed version, user, password and database.
PG2_URL="postgres://${DB_USER}:${DB_PASSWORD}@${HOST}:${PG2_PORT}/${DB_NAME}?sslmode=disable"
REDIS_URL="redis://${HOST}:${REDIS_PORT}/0"
# A Redis Cluster of three masters and no replicas, beside the single
# Redis: REDIS_URL may name one (pkg/cache.Open), and the cache's tests run
# against it too (go tool task test:rediscluster). Each node's cluster bus
# listens on its port + 10000.
REDIS_CLUSTER_PORTS=(7001 7002 7003)
REDIS_CLUSTER_URL="redis-cluster://${HOST}:7001,${HOST}:7002,${HOST}:7003"
NATS_URL="nats://${HOST}:${NATS_PORT}"
ELASTICSEARCH_URL="http://${HOST}:${ES_PORT}"
# PostgreSQL through PgBouncer in transaction mode (DATABASE_POOL_MODE=transaction).
DATABASE_POOLER_URL="postgres://${DB_USER}:${DB_PASSWORD}@${HOST}:${PGBOUNCER_PORT}/${DB_NAME}?sslmode=disable"

SERVICES_DIR="${SERVICES_DIR:-/var/lib/saas-services}"
START_TIMEOUT="${START_TIMEOUT:-30}"
ES_START_TIMEOUT="${ES_START_TIMEOUT:-120}"
ES_HEAP="${ES_HEAP:-512m}"
ES_EXTRA_ARGS="${ES_EXTRA_ARGS:-}"
# Redis is the backend's cache and limiter store: bounded, and evicting
# rather than refusing writes once full (the cache stays correct whatever
# key goes; DESIGN.md section 10). allkeys-lru rather than volatile-lru:
# every key the backend writes has a TTL, so both choose among the same
# keys, but volatile-lru answers OOM to every write once keys without a
# TTL (from another tool, or an older release's counters) fill the memory.
REDIS_MAXMEMORY="${REDIS_MAXMEMORY:-256mb}"
REDIS_MAXMEMORY_POLICY=allkeys-lru
REDIS_CLUSTER_MAXMEMORY="${REDIS_CLUSTER_MAXMEMORY:-64mb}"

ALL_SERVICES=(postgres pg2 redis redis-cluster nats elasticsearch pgbouncer)

# Elasticsearch refuses to run as root, so it gets its own system user.
ES_USER=saas-es

LOG_DIR="$SERVICES_DIR/log"
BIN_DIR="$SERVICES_DIR/bin"
DL_DIR="$SERVICES_DIR/dl"
NATS_BIN="$BIN_DIR/nats-server"
NATS_DIR="$SERVICES_DIR/nats"
NATS_PID="$NATS_DIR/nats-server.pid"
REDIS_DIR="$SERVICES_DIR/redis"
REDIS_PID="$REDIS_DIR/redis-server.pid"
REDIS_CLUSTER_DIR="$SERVICES_DIR/redis-cluster" # one directory per node: <port>/
ES_HOME="$SERVICES_DIR/elasticsearch-$ES_VERSION"
ES_DIR="$SERVICES_DIR/elasticsearch"     # config, data, logs, tmp, pid files
ES_CONF="$ES_DIR/config"
ES_PID="$ES_DIR/run/elasticsearch.pid"   # written by the ES server JVM itself
ES_LAUNCHER_PID="$ES_DIR/run/launcher.pid" # the bin/elasticsearch CLI JVM
JWT_SECRET_FILE="$SERVICES_DIR/jwt_secret"
PGBOUNCER_DIR="$SERVICES_DIR/pgbouncer" # pgbouncer.ini, userlist.txt, pid file
PGBOUNCER_PID="$PGBOUNCER_DIR/pgbouncer.pid"

# apt must never prompt: the script also runs under CI=true with no stdin.
export DEBIAN_FRONTEND=noninteractive

# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------
log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

log_file() { printf '%s/%s.log' "$LOG_DIR" "$1"; }

# Postgres logs to Debian's per-cluster log file, not to $LOG_DIR.
service_log() {
  if [[ $1 == postgres || $1 == pg2 ]]; then
    # Called inside pg2_do for pg2: the cluster picked is the scope's.
    pg_pick_cluster 2>/dev/null || true
    printf '%s' "${PG_LOG:-/var/log/postgresql}"
  else
    log_file "$1"
  fi
}

# Print an error naming the service and its log (with the tail), then exit.
fail_service() {
  local svc=$1 why=$2 lf
  lf=$(service_log "$svc")
  {
    printf '[services] ERROR: %s did not come up: %s\n' "$svc" "$why"
    printf '[services] log file: %s\n' "$lf"
    if [[ -f $lf ]]; then
      printf '[services] ---- last 20 lines of %s ----\n' "$lf"
      tail -n 20 "$lf"
      printf '[services] ---- end of log ----\n'
    fi
  } >&2
  exit 1
}

# True if the pid in file $1 is alive and its command line contains $2 (guards
# against a stale pid file whose pid was recycled by an unrelated process).
pid_alive() {
  local file=$1 pattern=$2 pid cmdline
  [[ -s $file ]] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  # Read into a variable rather than piping into "grep -q": with pipefail,
  # an early-exiting grep can turn a match into a SIGPIPE failure.
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$pattern"* ]]
}

# SIGTERM the process in pid file $1 (if it matches $2), wait up to $3 seconds,
# then SIGKILL as a last resort. Removes the pid file.
stop_pidfile() {
  local file=$1 pattern=$2 wait_s=$3 pid i
  if pid_alive "$file" "$pattern"; then
    pid=$(<"$file")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < wait_s * 10; i++)); do
      proc_running "$pid" || break
      sleep 0.1
    done
    if proc_running "$pid"; then
      log "pid $pid ($pattern) ignored SIGTERM for ${wait_s}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
    fi
  fi
  rm -f "$file"
}

# Install Debian packages, but only those that are missing; "apt-get update"
# runs only in that case so that the common path does not touch the network.
apt_install() {
  local missing=() p
  for p in "$@"; do
    [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  command -v apt-get >/dev/null || die "apt-get not found; install ${missing[*]} by hand"
  log "installing Debian packages: ${missing[*]}"
  # Lock::Timeout waits for a concurrently running apt/dpkg instead of failing.
  apt-get -o DPkg::Lock::Timeout=600 update -qq </dev/null >&2
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" </dev/null >&2
}

# When each service was launched ($EPOCHREALTIME), to report startup times.
declare -A LAUNCHED_AT=()
mark_launched() { LAUNCHED_AT[$1]=$EPOCHREALTIME; }
elapsed_since() {
  local now=$EPOCHREALTIME
  # Microsecond arithmetic without bc/awk: strip the decimal separator
  # (locale-dependent, hence both . and ,).
  local us=$((10#${now//[.,]/} - 10#${1//[.,]/}))
  printf '%d.%01d' $((us / 1000000)) $((us % 1000000 / 100000))
}

# True if process $1 exists and is not a zombie.
proc_running() {
  local state
  [[ $1 =~ ^[0-9]+$ && -r /proc/$1/stat ]] || return 1
  state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

# Poll "$svc"_answers until it succeeds or the timeout expires. If $3 names a
# pid file, fail early as soon as that process has died (no point in waiting
# the whole timeout for a process that already crashed). The pid was written
# by us moments ago, so plain existence is checked: the process may still be
# between fork and exec, with a command line that matches no pattern yet.
wait_ready() {
  local svc=$1 timeout=$2 pidfile=${3:-} start
  start=$SECONDS
  until "${svc}_answers"; do
    if [[ -n $pidfile ]] && ! proc_running "$(cat "$pidfile" 2>/dev/null)"; then
      sleep 0.5 # let the process flush its last log lines
      "${svc}_answers" && return 0
      fail_service "$svc" "the process exited during startup"
    fi
    if ((SECONDS - start >= timeout)); then
      if "${svc}_process_alive"; then
        fail_service "$svc" "not ready after ${timeout}s (its process is left running in case it is just slow; '$0 stop $svc' stops it)"
      fi
      fail_service "$svc" "not ready after ${timeout}s and no process of ours is running"
    fi
    sleep 0.5
  done
  local t0=${LAUNCHED_AT[$svc]:-$EPOCHREALTIME}
  log "$svc is up ($(elapsed_since "$t0")s after launch)"
}

# State directory must be traversable (0755) by the service users.
ensure_dirs() {
  mkdir -p "$SERVICES_DIR" "$LOG_DIR"
  chmod 0755 "$SERVICES_DIR" "$LOG_DIR"
}

# ---------------------------------------------------------------------------
# PostgreSQL — Debian's packaged cluster, driven by pg_ctlcluster (no systemd)
# ---------------------------------------------------------------------------
PG_MAIN_PORT=$PG_PORT
PG_VER="" PG_CLUSTER="" PG_LOG=""
# The functions below act on the cluster named PG_NAME on PG_PORT, reached
# at DATABASE_URL, and speak of it as PG_SVC: the main one unless pg2_do
# says otherwise.
PG_NAME=main PG_SVC=postgres

# Choose the cluster listening on $PG_PORT (Debian's default "main" cluster).
pg_pick_cluster() {
  [[ -n $PG_VER ]] && return 0
  command -v pg_lsclusters >/dev/null || return 1
  local line
  line=$(pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p {print; exit}')
  [[ -n $line ]] || return 1
  read -r PG_VER PG_CLUSTER _ _ _ _ PG_LOG <<<"$line"
}

postgres_answers() {
  command -v pg_isready >/dev/null && pg_isready -q -h "$HOST" -p "$PG_PORT" -t 1
}

# Stronger check used by "up": the app's URL works and the settings are in
# place, i.e. nothing at all is left to do.
postgres_provisioned() {
  command -v psql >/dev/null || return 1
  # One round trip: the setting, and whether the role may end other sessions
  # (tests drop their databases WITH (FORCE), which may have to stop an
  # autovacuum worker).
  # A tenant move publishes a schema and subscribes to it, which
  # PostgreSQL 15 allows superusers only (16 has pg_create_subscription).
  [[ $(PGCONNECT_TIMEOUT=2 psql "$DATABASE_URL" -XAtqc \
    "SELECT current_setting('max_connections') || ':' || pg_has_role('pg_signal_backend', 'member')::int
            || ':' || (SELECT rolsuper::int FROM pg_roles WHERE rolname = current_user)
            || ':' || current_setting('wal_level')" 2>/dev/null) \
    == "$PG_MAX_CONNECTIONS:1:1:logical" ]]
}

postgres_install() {
  apt_install postgresql # pulls in the matching postgresql-client-NN
  if ! pg_pick_cluster; then
    # No cluster on our port (e.g. the package was installed with
    # create_main_cluster=false): create Debian's default one.
    local ver
    # A second cluster runs the main one's version; the main one the
    # newest installed.
    ver=$(pg_lsclusters -h 2>/dev/null | awk -v p="$PG_MAIN_PORT" '$3 == p {print $1; exit}')
    [[ -n $ver ]] || ver=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -n | tail -n1)
    [[ -n $ver ]] || die "$PG_SVC: no server version found under /usr/lib/postgresql"
    log "creating PostgreSQL cluster $ver/$PG_NAME on port $PG_PORT"
    pg_createcluster --port "$PG_PORT" "$ver" "$PG_NAME" >&2
    pg_pick_cluster || die "$PG_SVC: no cluster on port $PG_PORT after pg_createcluster"
  fi
}

pg_running() {
  local st
  st=$(pg_lsclusters -h 2>/dev/null | awk -v v="$PG_VER" -v c="$PG_CLUSTER" '$1 == v && $2 == c {print $4}')
  [[ $st == online* ]]
}

# Our settings live in conf.d (Debian's postgresql.conf has include_dir =
# 'conf.d'), so package upgrades never conflict with them. Returns 0 if the
# file changed (the caller then restarts a running cluster: both settings
# need a restart).
pg_write_conf() {
  local f="/etc/postgresql/$PG_VER/$PG_CLUSTER/conf.d/50-saas.conf" want
  want="# Managed by scripts/services.sh — overwritten on every run.
listen_addresses = '$HOST'
max_connections = $PG_MAX_CONNECTIONS
# Tenant moves between clusters use logical replication of a schema.
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
max_logical_replication_workers = 8
max_sync_workers_per_subscription = 4
"
  [[ -f $f && $(<"$f")$'\n' == "$want" ]] && return 1
  mkdir -p "$(dirname "$f")"
  printf '%s' "$want" >"$f"
  chmod 0644 "$f"
  return 0
}

postgres_start() {
  postgres_install
  if pg_write_conf && pg_running; then
    log "$PG_SVC: settings changed, restarting cluster $PG_VER/$PG_CLUSTER"
    mark_launched "$PG_SVC"
    pg_ctlcluster "$PG_VER" "$PG_CLUSTER" restart >&2 9>&- || fail_service "$PG_SVC" "pg_ctlcluster restart failed"
  elif ! pg_running; then
    log "starting PostgreSQL $PG_VER/$PG_CLUSTER"
    mark_launched "$PG_SVC"
    # pg_ctlcluster waits until the server accepts connections.
    pg_ctlcluster "$PG_VER" "$PG_CLUSTER" start >&2 9>&- || fail_service "$PG_SVC" "pg_ctlcluster start failed"
  fi
}

postgres_wait() {
  wait_ready "$PG_SVC" "$START_TIMEOUT"
  postgres_provision
}

# Create role and database if missing. Runs as the postgres superuser over the
# Unix socket (peer auth); the password is (re)set every time so that a role
# created by someone else still matches DATABASE_URL.
postgres_provision() {
  postgres_provisioned && return 0
  log "$PG_SVC: ensuring role '$DB_USER' and database '$DB_NAME'"
  runuser -u postgres -- psql -X -q -p "$PG_PORT" -d postgres -v ON_ERROR_STOP=1 >&2 <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') THEN
    CREATE ROLE "$DB_USER" LOGIN CREATEDB SUPERUSER REPLICATION PASSWORD '$DB_PASSWORD';
  ELSE
    ALTER ROLE "$DB_USER" LOGIN CREATEDB SUPERUSER REPLICATION PASSWORD '$DB_PASSWORD';
  END IF;
END
\$\$;
GRANT pg_signal_backend TO "$DB_USER";
SELECT 'CREATE DATABASE "$DB_NAME" OWNER "$DB_USER"'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME')\gexec
SQL
  postgres_provisioned || fail_service "$PG_SVC" "cannot connect with $DATABASE_URL (or max_connections != $PG_MAX_CONNECTIONS, wal_level not logical, or the role not a superuser)"
}

postgres_process_alive() { pg_pick_cluster && pg_running; }

postgres_stop() {
  pg_pick_cluster || return 0
  if pg_running; then
    log "stopping PostgreSQL $PG_VER/$PG_CLUSTER"
    pg_ctlcluster "$PG_VER" "$PG_CLUSTER" stop >&2
  fi
}

# pg2: a second cluster of the same PostgreSQL, "pg2" on PG2_PORT (its own
# data directory, /var/lib/postgresql/<version>/pg2, and configuration), run
# by the functions above: bash's locals are dynamically scoped, so every
# function pg2_do calls sees these values in place of the main cluster's.
pg2_do() {
  local PG_PORT=$PG2_PORT PG_NAME=pg2 PG_SVC=pg2 PG_VER="" PG_CLUSTER="" PG_LOG="" DATABASE_URL=$PG2_URL
  "$@"
}
pg2_answers() { pg2_do postgres_answers; }
pg2_provisioned() { pg2_do postgres_provisioned; }
pg2_start() { pg2_do postgres_start; }
pg2_wait() { pg2_do postgres_wait; }
pg2_process_alive() { pg2_do postgres_process_alive; }
pg2_stop() { pg2_do postgres_stop; }

# ---------------------------------------------------------------------------
# Redis — Debian's redis-server binary, but launched by us (not by the package
# init script) so that it uses our directory, no persistence, and our log.
# ---------------------------------------------------------------------------
redis_answers() {
  command -v redis-cli >/dev/null &&
    [[ $(timeout 2 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
}

redis_start() {
  apt_install redis-server # depends on redis-tools (redis-cli)
  # The package's init may already have started a redis on our port; that
  # one is good enough once bounded (redis_answers is checked before we get
  # here).
  if redis_answers; then
    redis_configure
    return 0
  fi
  mkdir -p "$REDIS_DIR"
  log "starting redis-server"
  mark_launched redis
  redis-server --daemonize yes --port "$REDIS_PORT" --bind "$HOST" \
    --dir "$REDIS_DIR" --pidfile "$REDIS_PID" --logfile "$(log_file redis)" \
    --save '' --appendonly no \
    --maxmemory "$REDIS_MAXMEMORY" --maxmemory-policy "$REDIS_MAXMEMORY_POLICY" \
    </dev/null >/dev/null 9>&- ||
    fail_service redis "redis-server failed to start"
}

# A redis that was already running (started by the package's init, or by an
# older version of this script) gets the same memory bound and eviction
# policy. CONFIG SET is idempotent and takes effect at once.
redis_configure() {
  redis_config_set maxmemory "$REDIS_MAXMEMORY"
  redis_config_set maxmemory-policy "$REDIS_MAXMEMORY_POLICY"
}

redis_config_set() {
  local out
  out=$(redis-cli -h "$HOST" -p "$REDIS_PORT" config set "$1" "$2" 2>&1) || true
  [[ $out == OK ]] || die "redis: CONFIG SET $1 $2 failed: $out"
}

redis_wait() { wait_ready redis "$START_TIMEOUT"; }

# redis-server writes its pid file only once it listens, so a redis that
# failed to bind has none.
redis_process_alive() { pid_alive "$REDIS_PID" redis-server; }

redis_stop() {
  # SHUTDOWN works for any redis on the port, whoever started it (ours or
  # the Debian package's init script).
  if redis_answers; then
    log "stopping redis"
    redis-cli -h "$HOST" -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    local i
    for ((i = 0; i < 100; i++)); do
      redis_answers || break
      sleep 0.1
    done
  fi
  # Covers a redis that is alive but not answering PING.
  stop_pidfile "$REDIS_PID" redis-server 10
}

# ---------------------------------------------------------------------------
# Redis Cluster — three masters of Debian's redis-server on loopback, each
# with its own directory, no persistence of data (nodes.conf keeps who holds
# which slots, so a restart brings the same cluster back), bounded and
# evicting like the single Redis. Made once with redis-cli --cluster create.
# ---------------------------------------------------------------------------
rc_cli() { timeout 5 redis-cli -h "$HOST" -p "$@"; }

# The field $2 of CLUSTER INFO on the node at port $1 ("" when it does not
# answer).
rc_info() {
  local out
  out=$(rc_cli "$1" cluster info 2>/dev/null) || return 0
  out=$(printf '%s\n' "$out" | tr -d '\r' | sed -n "s/^$2://p")
  printf '%s' "$out"
}

rc_node_answers() { [[ $(rc_cli "$1" ping 2>/dev/null) == PONG ]]; }

# Up: every node answers, sees the cluster whole (all slots served) and
# knows all the others.
redis-cluster_answers() {
  command -v redis-cli >/dev/null || return 1
  local p
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do
    [[ $(rc_info "$p" cluster_state) == ok && $(rc_info "$p" cluster_known_nodes) == "${#REDIS_CLUSTER_PORTS[@]}" ]] || return 1
  done
}

redis-cluster_start() {
  apt_install redis-server
  local p dir
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do
    rc_node_answers "$p" && continue
    dir="$REDIS_CLUSTER_DIR/$p"
    mkdir -p "$dir"
    log "starting redis-server $p (Redis Cluster node)"
    mark_launched redis-cluster
    redis-server --daemonize yes --port "$p" --bind "$HOST" \
      --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" --cluster-node-timeout 5000 \
      --dir "$dir" --pidfile "$dir/redis-server.pid" --logfile "$(log_file "redis-cluster-$p")" \
      --save '' --appendonly no \
      --maxmemory "$REDIS_CLUSTER_MAXMEMORY" --maxmemory-policy "$REDIS_MAXMEMORY_POLICY" \
      </dev/null >/dev/null 9>&- ||
      fail_service redis-cluster "redis-server on port $p failed to start"
  done
}

# Waits for the nodes, makes the cluster if they hold no slots yet, then
# waits for it to serve every slot. Nodes that know of slots but do not come
# together (a nodes.conf lost or from another cluster) are reset and the
# cluster made again: it holds only cache entries, all of which may go.
redis-cluster_wait() {
  local p start=$SECONDS assigned
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do
    until rc_node_answers "$p"; do
      ((SECONDS - start < START_TIMEOUT)) || fail_service redis-cluster "node $p does not answer after ${START_TIMEOUT}s (log: $(log_file "redis-cluster-$p"))"
      sleep 0.2
    done
  done
  redis-cluster_answers && { log "redis-cluster is up"; return 0; }
  local n
  assigned=0
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do
    n=$(rc_info "$p" cluster_slots_assigned)
    assigned=$((assigned + ${n:-0}))
  done
  if ((assigned > 0)); then
    # Known slots: give the nodes a moment to find each other again.
    for ((start = SECONDS; SECONDS - start < 10; )); do
      redis-cluster_answers && { log "redis-cluster is up"; return 0; }
      sleep 0.5
    done
    log "redis-cluster: the nodes do not form one cluster; resetting them (cache only)"
    for p in "${REDIS_CLUSTER_PORTS[@]}"; do
      rc_cli "$p" flushall >/dev/null 2>&1 || true
      rc_cli "$p" cluster reset hard >/dev/null 2>&1 ||
        fail_service redis-cluster "CLUSTER RESET HARD failed on node $p"
    done
  fi
  local nodes=()
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do nodes+=("$HOST:$p"); done
  log "redis-cluster: creating a cluster of ${#nodes[@]} masters"
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes </dev/null >&2 ||
    fail_service redis-cluster "redis-cli --cluster create failed"
  wait_ready redis-cluster "$START_TIMEOUT"
}

redis-cluster_process_alive() {
  local p
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do
    pid_alive "$REDIS_CLUSTER_DIR/$p/redis-server.pid" redis-server && return 0
  done
  return 1
}

redis-cluster_stop() {
  local p i
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do
    if rc_node_answers "$p"; then
      log "stopping redis-cluster node $p"
      rc_cli "$p" shutdown nosave >/dev/null 2>&1 || true
      for ((i = 0; i < 100; i++)); do
        rc_node_answers "$p" || break
        sleep 0.1
      done
    fi
    stop_pidfile "$REDIS_CLUSTER_DIR/$p/redis-server.pid" redis-server 10
  done
}

# ---------------------------------------------------------------------------
# NATS — built from source with the Go toolchain (no binary downloads needed;
# the Go module proxy is reachable), run with JetStream.
# ---------------------------------------------------------------------------
nats_answers() {
  curl -sf -m 2 "http://$HOST:$NATS_MONITOR_PORT/healthz?js-enabled-only=true" >/dev/null 2>&1
}

find_go() {
  # sudo's secure_path usually drops /usr/local/go/bin, hence the fallbacks.
  local g
  for g in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go /usr/lib/go/bin/go; do
    [[ -n $g && -x $g ]] && { printf '%s' "$g"; return 0; }
  done
  return 1
}

nats_install() {
  if [[ -x $NATS_BIN && $("$NATS_BIN" --version 2>/dev/null) == *"$NATS_VERSION"* ]]; then
    return 0
  fi
  local go
  go=$(find_go) || die "nats: the 'go' command is required to build nats-server $NATS_VERSION (install Go >= 1.24 and retry)"
  mkdir -p "$BIN_DIR"
  log "building nats-server $NATS_VERSION with $go install (first run only)"
  # Run outside any module (cd /) so the repo's go.mod/go.work cannot
  # interfere; CGO off so no C compiler is needed.
  (cd / && GOBIN="$BIN_DIR" CGO_ENABLED=0 GOWORK=off GOFLAGS=-mod=mod \
    "$go" install "github.com/nats-io/nats-server/v2@$NATS_VERSION") >&2 ||
    die "nats: go install github.com/nats-io/nats-server/v2@$NATS_VERSION failed"
  [[ $("$NATS_BIN" --version 2>/dev/null) == *"$NATS_VERSION"* ]] || die "nats: built binary does not report $NATS_VERSION"
}

nats_start() {
  nats_install
  if nats_process_alive; then
    return 0 # running (maybe still starting): just wait for it
  fi
  mkdir -p "$NATS_DIR/jetstream"
  log "starting nats-server $NATS_VERSION"
  mark_launched nats
  # setsid + nohup: detach from our session so the server survives this
  # script and the terminal/CI step that ran it. nats-server writes its own
  # pid file (-P); $! is the same pid because setsid does not fork here.
  setsid nohup "$NATS_BIN" -js -sd "$NATS_DIR/jetstream" -a "$HOST" -p "$NATS_PORT" \
    -m "$NATS_MONITOR_PORT" -P "$NATS_PID" \
    </dev/null >>"$(log_file nats)" 2>&1 9>&- &
  echo $! >"$NATS_PID"
}

nats_wait() { wait_ready nats "$START_TIMEOUT" "$NATS_PID"; }
nats_process_alive() { pid_alive "$NATS_PID" nats-server; }

nats_stop() {
  if nats_process_alive; then
    log "stopping nats-server"
  elif nats_answers; then
    log "WARNING: a NATS server answers on :$NATS_MONITOR_PORT but was not started by this script ($NATS_PID missing); leaving it alone"
  fi
  stop_pidfile "$NATS_PID" nats-server 15
}

# ---------------------------------------------------------------------------
# Elasticsearch — the integ-test-zip distribution from Maven Central (the
# regular tarball is only on artifacts.elastic.co, which is not reachable).
# It has no bundled JDK, so it runs on the system Java 17.
# ---------------------------------------------------------------------------
elasticsearch_answers() {
  curl -sf -m 3 "$ELASTICSEARCH_URL/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null 2>&1
}

find_java_home() {
  local j
  j=$(command -v java 2>/dev/null) || return 1
  j=$(readlink -f "$j")
  printf '%s' "${j%/bin/java}"
}

elasticsearch_install() {
  find_java_home >/dev/null || apt_install openjdk-17-jre-headless
  command -v unzip >/dev/null || apt_install unzip
  id -u "$ES_USER" >/dev/null 2>&1 ||
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$ES_USER"

  if [[ ! -x $ES_HOME/bin/elasticsearch ]]; then
    local zip="$DL_DIR/elasticsearch-$ES_VERSION.zip" tmp
    if [[ ! -s $zip ]]; then
      command -v mvn >/dev/null || apt_install maven
      mkdir -p "$DL_DIR"
      log "fetching $ES_ARTIFACT from Maven Central"
      # Output is shown only on failure: even with -q and colours off, the
      # Debian maven prints stray ANSI reset codes.
      local out
      if ! out=$(cd "$DL_DIR" && mvn -q -B -Dstyle.color=never dependency:copy \
        -Dartifact="$ES_ARTIFACT" -DoutputDirectory="$DL_DIR" </dev/null 2>&1); then
        printf '%s\n' "$out" >&2
        die "elasticsearch: mvn dependency:copy of $ES_ARTIFACT failed (Maven Central reachable? ~/.m2/settings.xml proxy?)"
      fi
      [[ -s $zip ]] || die "elasticsearch: $zip missing after mvn dependency:copy"
    fi
    log "unpacking $zip"
    # Unpack next to the target and rename, so an interrupted unzip never
    # leaves a half-populated ES_HOME behind.
    tmp=$(mktemp -d "$SERVICES_DIR/.unzip.XXXXXX")
    unzip -q "$zip" -d "$tmp"
    rm -rf "$ES_HOME"
    mv "$tmp/elasticsearch-$ES_VERSION" "$ES_HOME"
    rm -rf "$tmp"
    chown -R "$ES_USER:" "$ES_HOME"
  fi

  mkdir -p "$ES_DIR"/{data,logs,tmp,run}
  if [[ ! -f $ES_CONF/jvm.options ]]; then
    # Our own config dir (ES_PATH_CONF) keeps the distribution pristine; ES
    # writes its keystore here, so it must be owned by $ES_USER.
    mkdir -p "$ES_CONF"
    cp -a "$ES_HOME/config/." "$ES_CONF/"
  fi
  es_write_config
  # Only chown when needed: a recursive chown of a big data dir is slow.
  local d
  for d in "$ES_DIR" "$ES_CONF" "$ES_DIR/data" "$ES_DIR/logs" "$ES_DIR/tmp" "$ES_DIR/run"; do
    [[ $(stat -c %U "$d") == "$ES_USER" ]] || chown -R "$ES_USER:" "$d"
  done
  chown "$ES_USER:" "$ES_CONF/elasticsearch.yml"
  setpriv --reuid "$ES_USER" --regid "$ES_USER" --clear-groups test -r "$ES_HOME/bin/elasticsearch" ||
    die "elasticsearch: user $ES_USER cannot read $ES_HOME; every parent of SERVICES_DIR must be traversable (chmod o+x)"
}

es_write_config() {
  local f="$ES_CONF/elasticsearch.yml" want
  want="# Managed by scripts/services.sh — overwritten on every start.
cluster.name: saas-dev
node.name: saas-dev-1
discovery.type: single-node
network.host: $HOST
http.port: $ES_PORT
path.data: $ES_DIR/data
path.logs: $ES_DIR/logs
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: false
"
  # Settings of modules that this distribution may not contain: ES rejects
  # settings it does not know, so only emit them if the module is there.
  if [[ -d $ES_HOME/modules/ingest-geoip ]]; then
    want+="ingest.geoip.downloader.enabled: false  # no network here
"
  fi
  if [[ -d $ES_HOME/modules/x-pack-security ]]; then
    # Plain http without authentication for local development and tests.
    want+="xpack.security.enabled: false
"
  fi
  [[ -f $f && $(<"$f")$'\n' == "$want" ]] && return 0
  printf '%s' "$want" >"$f"
}

elasticsearch_start() {
  elasticsearch_install
  if elasticsearch_process_alive; then
    return 0 # running (maybe still starting): just wait for it
  fi
  # Single-node discovery on a loopback address skips the bootstrap checks,
  # so a low vm.max_map_count only yields a warning; raise it if we can.
  local mmc
  mmc=$(sysctl -n vm.max_map_count 2>/dev/null || echo 0)
  if ((mmc < 262144)); then
    sysctl -q -w vm.max_map_count=262144 >/dev/null 2>&1 ||
      log "note: vm.max_map_count=$mmc and cannot be raised here; fine for single-node on loopback"
  fi
  local java_home
  java_home=$(find_java_home) || die "elasticsearch: no java found"
  rm -f "$ES_PID"
  log "starting elasticsearch $ES_VERSION (java: $java_home)"
  mark_launched elasticsearch
  local extra=()
  # Word splitting of ES_EXTRA_ARGS is intended (several -E options).
  # shellcheck disable=SC2206
  [[ -n $ES_EXTRA_ARGS ]] && extra=($ES_EXTRA_ARGS)
  # setpriv drops to $ES_USER and execs (no extra process), setsid + nohup
  # detach from this script's session. Not using -d: in the foreground
  # the launcher stays around, so a crash is noticed by wait_ready at once,
  # and the timeout stays under our control.
  (
    cd "$ES_DIR"
    # ES warns below 65535 open files; raise the soft limit as far as allowed.
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    exec setsid nohup setpriv --reuid "$ES_USER" --regid "$ES_USER" --clear-groups \
      env HOME="$ES_DIR" ES_JAVA_HOME="$java_home" ES_PATH_CONF="$ES_CONF" ES_TMPDIR="$ES_DIR/tmp" \
      ES_JAVA_OPTS="-Xms$ES_HEAP -Xmx$ES_HEAP" \
      "$ES_HOME/bin/elasticsearch" -p "$ES_PID" "${extra[@]}" \
      </dev/null >>"$(log_file elasticsearch)" 2>&1
  ) 9>&- &
  echo $! >"$ES_LAUNCHER_PID"
}

elasticsearch_wait() {
  wait_ready elasticsearch "$ES_START_TIMEOUT" "$ES_LAUNCHER_PID"
}

elasticsearch_process_alive() {
  pid_alive "$ES_PID" org.elasticsearch || pid_alive "$ES_LAUNCHER_PID" elasticsearch
}

elasticsearch_stop() {
  if elasticsearch_process_alive; then
    log "stopping elasticsearch"
  elif elasticsearch_answers; then
    log "WARNING: an Elasticsearch answers on :$ES_PORT but was not started by this script; leaving it alone"
  fi
  # SIGTERM to the server JVM makes it shut down cleanly; the launcher JVM
  # then exits by itself. The launcher is stopped too in case the server
  # never got as far as writing its pid file.
  stop_pidfile "$ES_PID" org.elasticsearch 60
  stop_pidfile "$ES_LAUNCHER_PID" elasticsearch 30
}

# ---------------------------------------------------------------------------
# PgBouncer — Debian's package, in transaction mode in front of PostgreSQL,
# as production runs it for many tenants (DATABASE_POOL_MODE=transaction).
# Launched by us with our config in $PGBOUNCER_DIR, as the postgres user
# (PgBouncer refuses to run as root).
# ---------------------------------------------------------------------------
PGBOUNCER_USER=postgres # made by Debian's postgresql package
PGBOUNCER_POOL_SIZE=20  # server connections per database and user
# Every test package may open a pool of its own through PgBouncer; each
# client connection costs PgBouncer one file descriptor, under the
# machine's hard limit of open files (raised to it at launch).
PGBOUNCER_MAX_CLIENT_CONN=2000

pgbouncer_answers() {
  command -v psql >/dev/null &&
    [[ $(PGCONNECT_TIMEOUT=2 psql "$DATABASE_POOLER_URL" -XAtqc 'SELECT 1' 2>/dev/null) == 1 ]]
}

# The wanted pgbouncer.ini and auth file, in PGBOUNCER_INI_WANT and
# PGBOUNCER_AUTH_WANT.
pgbouncer_config() {
  PGBOUNCER_INI_WANT="; Managed by scripts/services.sh — overwritten on every run.
[databases]
; Any database name is passed through (tests make one per test).
* = host=$HOST port=$PG_PORT

[pgbouncer]
listen_addr = $HOST
listen_port = $PGBOUNCER_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $PGBOUNCER_DIR/userlist.txt
; A server connection serves one transaction, then another client's.
pool_mode = transaction
default_pool_size = $PGBOUNCER_POOL_SIZE
max_client_conn = $PGBOUNCER_MAX_CLIENT_CONN
; Sent at startup by some drivers (lib/pq, JDBC; pgx does not), refused
; otherwise: only client_encoding, DateStyle, TimeZone,
; standard_conforming_strings and application_name are carried over.
ignore_startup_parameters = extra_float_digits
; Back within a second of a PostgreSQL restart (default 15 s).
server_login_retry = 1
; Give back the server connections of idle (e.g. dropped test) databases.
server_idle_timeout = 30
autodb_idle_timeout = 60
; SHOW POOLS and friends on the admin database pgbouncer.
stats_users = $DB_USER
log_connections = 0
log_disconnections = 0
"
  # The role's password in clear: PgBouncer needs it to log in to
  # PostgreSQL with SCRAM on the client's behalf. It is the published local
  # one of DATABASE_URL; the file is readable by $PGBOUNCER_USER only.
  PGBOUNCER_AUTH_WANT="\"$DB_USER\" \"$DB_PASSWORD\""
}

pgbouncer_config_current() {
  pgbouncer_config
  [[ -f $PGBOUNCER_DIR/pgbouncer.ini && $(<"$PGBOUNCER_DIR/pgbouncer.ini")$'\n' == "$PGBOUNCER_INI_WANT" &&
    -f $PGBOUNCER_DIR/userlist.txt && $(<"$PGBOUNCER_DIR/userlist.txt") == "$PGBOUNCER_AUTH_WANT" ]]
}

# Nothing left to do: our PgBouncer runs with the current config and
# reaches PostgreSQL.
pgbouncer_provisioned() {
  pgbouncer_process_alive && pgbouncer_config_current && pgbouncer_answers
}

pgbouncer_start() {
  apt_install pgbouncer
  # Where policy-rc.d allows it, the package starts its own instance
  # (/etc/pgbouncer, localhost:6432): it would hold our port.
  if pid_alive /run/postgresql/pgbouncer.pid pgbouncer; then
    log "stopping the Debian package's own pgbouncer instance (it holds port $PGBOUNCER_PORT)"
    stop_pidfile /run/postgresql/pgbouncer.pid pgbouncer 10
  fi
  if ! pgbouncer_config_current; then
    mkdir -p "$PGBOUNCER_DIR"
    printf '%s' "$PGBOUNCER_INI_WANT" >"$PGBOUNCER_DIR/pgbouncer.ini"
    (umask 077 && printf '%s\n' "$PGBOUNCER_AUTH_WANT" >"$PGBOUNCER_DIR/userlist.txt")
    chmod 0600 "$PGBOUNCER_DIR/userlist.txt"
    chown -R "$PGBOUNCER_USER:" "$PGBOUNCER_DIR"
    chmod 0750 "$PGBOUNCER_DIR"
    if pgbouncer_process_alive; then
      log "pgbouncer: settings changed, restarting"
      pgbouncer_stop
    fi
  fi
  if pgbouncer_process_alive; then
    return 0 # running (maybe still starting): just wait for it
  fi
  log "starting pgbouncer ($(pgbouncer --version 2>/dev/null | head -n1), transaction mode)"
  mark_launched pgbouncer
  # Not daemonized (-d): the pid is ours to record, and its log goes to
  # stderr, hence to our log file. setpriv execs, so $! is PgBouncer's pid.
  (
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    exec setsid nohup setpriv --reuid "$PGBOUNCER_USER" --regid "$PGBOUNCER_USER" --clear-groups \
      pgbouncer "$PGBOUNCER_DIR/pgbouncer.ini" </dev/null >>"$(log_file pgbouncer)" 2>&1
  ) 9>&- &
  echo $! >"$PGBOUNCER_PID"
}

pgbouncer_wait() { wait_ready pgbouncer "$START_TIMEOUT" "$PGBOUNCER_PID"; }
pgbouncer_process_alive() { pid_alive "$PGBOUNCER_PID" pgbouncer; }

pgbouncer_stop() {
  if pgbouncer_process_alive; then
    log "stopping pgbouncer"
  fi
  # SIGTERM: immediate shutdown (PgBouncer 1.18), open transactions fail.
  stop_pidfile "$PGBOUNCER_PID" pgbouncer 10
}

# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------
valid_service() {
  local s
  for s in "${ALL_SERVICES[@]}"; do [[ $1 == "$s" ]] && return 0; done
  return 1
}

cmd_up() {
  local pending=() svc
  # Elasticsearch first: it is by far the slowest to boot, so the others get
  # installed and started while its JVM warms up.
  for svc in elasticsearch nats redis redis-cluster postgres pg2 pgbouncer; do
    if [[ $svc == postgres || $svc == pg2 || $svc == pgbouncer ]] && "${svc}_provisioned"; then continue; fi
    if [[ $svc == redis ]] && redis_answers; then
      redis_configure
      continue
    fi
    if [[ $svc != postgres && $svc != pg2 && $svc != pgbouncer ]] && "${svc}_answers"; then continue; fi
    "${svc}_start"
    pending+=("$svc")
  done
  # PgBouncer after PostgreSQL: its readiness check goes through to it.
  for svc in postgres pg2 pgbouncer redis redis-cluster nats elasticsearch; do
    if [[ " ${pending[*]} " == *" $svc "* ]]; then "${svc}_wait"; fi
  done
  jwt_secret >/dev/null
  cmd_summary
}

cmd_start() {
  local svc=$1
  if [[ $svc == postgres || $svc == pg2 || $svc == pgbouncer ]]; then
    "${svc}_provisioned" && return 0
  elif [[ $svc == redis ]] && redis_answers; then
    redis_configure
    return 0
  else
    "${svc}_answers" && return 0
  fi
  "${svc}_start"
  "${svc}_wait"
}

cmd_down() {
  local svc
  for svc in elasticsearch nats redis redis-cluster pgbouncer pg2 postgres; do "${svc}_stop"; done
}

cmd_status() {
  local svc rc=0
  for svc in "${ALL_SERVICES[@]}"; do
    if "${svc}_answers"; then
      printf '%-14s up\n' "$svc"
    else
      printf '%-14s down\n' "$svc"
      rc=3
    fi
  done
  return "$rc"
}

cmd_env() {
  local secret
  # Single quotes: the '?' in DATABASE_URL must not glob under eval.
  printf "export DATABASE_URL='%s'\n" "$DATABASE_URL"
  printf "export REDIS_URL='%s'\n" "$REDIS_URL"
  printf "export REDIS_CLUSTER_URL='%s'\n" "$REDIS_CLUSTER_URL"
  printf "export NATS_URL='%s'\n" "$NATS_URL"
  printf "export ELASTICSEARCH_URL='%s'\n" "$ELASTICSEARCH_URL"
  printf "export DATABASE_POOLER_URL='%s'\n" "$DATABASE_POOLER_URL"
  # main is left out: it defaults to DATABASE_URL, so that a process pointed
  # at another database of the main cluster (each test's) keeps it there.
  printf "export TENANT_DATABASES='pg2=%s'\n" "$PG2_URL"
  # Last: without the secret the URLs are still of use (operator commands).
  secret=$(jwt_secret) || exit 1
  printf "export JWT_SECRET='%s'\n" "$secret"
}

# jwt_secret prints the stack's token secret, making it on first use: 48
# random bytes, base64url (64 characters, nothing to quote). There is no
# default secret anywhere; this one never leaves the machine. Made under
# another name and hard-linked into place, so two first calls at once agree
# on one secret. Under sudo the file goes to the invoking user, who runs
# "env" without root later.
jwt_secret() {
  if [[ ! -s $JWT_SECRET_FILE ]]; then
    mkdir -p "$SERVICES_DIR" 2>/dev/null || true
    [[ -w $SERVICES_DIR ]] ||
      die "no token secret in $JWT_SECRET_FILE and no right to make one: run $0 up first"
    local tmp="$JWT_SECRET_FILE.$$"
    (umask 077 && head -c 48 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=' >"$tmp")
    if [[ -n ${SUDO_USER:-} ]]; then chown "$SUDO_USER" "$tmp"; fi
    ln "$tmp" "$JWT_SECRET_FILE" 2>/dev/null || true
    rm -f "$tmp"
  fi
  [[ -r $JWT_SECRET_FILE ]] || die "cannot read $JWT_SECRET_FILE (mode 600): run as its owner or as root"
  cat "$JWT_SECRET_FILE"
}

cmd_summary() {
  printf '\nservices (state in %s, logs in %s):\n' "$SERVICES_DIR" "$LOG_DIR"
  printf '  %-14s %-4s %s\n' \
    postgres "$(postgres_answers && echo up || echo down)" "$DATABASE_URL" \
    pg2 "$(pg2_answers && echo up || echo down)" "$PG2_URL (TENANT_DATABASES)" \
    redis "$(redis_answers && echo up || echo down)" "$REDIS_URL" \
    redis-cluster "$(redis-cluster_answers && echo up || echo down)" "$REDIS_CLUSTER_URL (3 masters)" \
    nats "$(nats_answers && echo up || echo down)" "$NATS_URL" \
    elasticsearch "$(elasticsearch_answers && echo up || echo down)" "$ELASTICSEARCH_URL" \
    pgbouncer "$(pgbouncer_answers && echo up || echo down)" "$DATABASE_POOLER_URL (transaction mode)"
  printf '  %-19s %s\n' "token secret" "$JWT_SECRET_FILE"
  # The $(...) is meant literally: it is the command the user should type.
  # shellcheck disable=SC2016
  printf 'load the URLs and the secret with: eval "$(%s env)"\n' "$0"
}

usage() {
  cat >&2 <<EOF
usage: $0 up|down|status|env
       $0 start|stop|restart postgres|pg2|redis|redis-cluster|nats|elasticsearch|pgbouncer
EOF
  exit 2
}

# Commands that change state need root (apt, pg_ctlcluster, dropping to the
# ES user) and are serialised with a lock so that parallel invocations (e.g.
# several test packages calling "start") do not race. Every daemon is started
# with "9>&-" so that it does not inherit (and hold forever) the lock fd.
need_root_and_lock() {
  if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null || die "must run as root (or with sudo available)"
    exec sudo -n --preserve-env=SERVICES_DIR,START_TIMEOUT,ES_START_TIMEOUT,ES_HEAP,ES_EXTRA_ARGS,REDIS_MAXMEMORY,REDIS_CLUSTER_MAXMEMORY,CI \
      "$0" "$@"
  fi
  ensure_dirs
  exec 9>"$SERVICES_DIR/.lock"
  flock 9
}

main() {
  local cmd=${1:-}
  case $cmd in
    up)
      [[ $# -eq 1 ]] || usage
      need_root_and_lock "$@"
      cmd_up
      ;;
    down)
      [[ $# -eq 1 ]] || usage
      need_root_and_lock "$@"
      cmd_down
      ;;
    status)
      [[ $# -eq 1 ]] || usage
      cmd_status
      ;;
    env)
      [[ $# -eq 1 ]] || usage
      cmd_env
      ;;
    start | stop | restart)
      if [[ $# -ne 2 ]] || ! valid_service "$2"; then usage; fi
      need_root_and_lock "$@"
      case $cmd in
        start) cmd_start "$2" ;;
        stop) "${2}_stop" ;;
        restart)
          "${2}_stop"
          cmd_start "$2"
          ;;
      esac
      ;;
    *) usage ;;
  esac
}

main "$@"

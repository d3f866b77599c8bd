#!/usr/bin/env bash
# The benchmark suite (`make bench`, issue 6): pgbench against
#   - plain:    one plain PostgreSQL 15 node,
#   - pgquorum: the coordinator (dist/) over 3 nodes,
#   - pgpool:   pgpool-II in native replication mode over the same 3 nodes,
# all started here from one `pgquorum dev up --nodes 4 --no-fsync` cluster in a
# temporary directory (node 4 is the plain node). pgpool-II (Debian package
# pgpool2) is installed when missing.
#
# Scenarios (pgbench -c 16 -j 2, scale 10, BENCH_SECONDS per run):
#   select-only -M simple / -M prepared, TPC-B -M simple / -M prepared, and
#   TPC-B -M prepared while 184 more sessions stay connected and idle.
# TPC-B simple also runs on a fourth target, plain-2pc: the plain node with
# each transaction committed by PREPARE TRANSACTION / COMMIT PREPARED
# (bench/tpcb-2pc.sql), what PostgreSQL's own two-phase commit costs on one
# node with no coordinator (a reference for pgquorum, which commits so), and
# on pgquorum-fsync: pgquorum with state.fsync on. The dev cluster's nodes run
# with fsync off and its config has state.fsync off to match (a commit
# decision no more durable than the prepared transactions it decides);
# pgquorum-fsync shows what syncing each decision to disk costs.
# Scenarios 1-4 also run on pgbouncer: PgBouncer (Debian package pgbouncer,
# installed when missing) in session pooling mode in front of the plain node,
# what one pooling hop in front of one node costs; the reference a proxy can
# be held to (a hop that routes nothing and replicates nothing).
# Each round runs every scenario on plain, pgquorum, pgpool (then the
# references above) in turn;
# BENCH_ROUNDS rounds, the median is reported. The coordinator and pgpool-II
# are started afresh for every run (so the coordinator's VmHWM is that run's
# peak) and stopped after it. Every run on every target is preceded by an
# unmeasured warm-up, BENCH_WARMUP seconds of the same pgbench command
# (caches, pgpool-II's backend connections, the coordinator's JIT): the
# table is what a server that has been up for a while does, not its first
# seconds. CPU per transaction counts the measured run only: the coordinator's
# (or pgpool-II's) own, and the whole machine's (every process: pgbench, the
# nodes, the proxy; from /proc/stat) with the share of time the CPUs were idle.
# At the end `pgquorum verify` checks that the 3 nodes still hold the same data.
#
# Output: bench/results/<UTC stamp>.md and .json, bench/results/latest.md,
# and the table between <!-- bench:begin --> and <!-- bench:end --> in README.md.
#
# Environment: BENCH_SECONDS (30), BENCH_ROUNDS (3), BENCH_SCALE (10),
# BENCH_WARMUP (10; seconds of warm-up before each run, 0: none),
# BENCH_SCENARIOS (e.g. "1 5": only these scenarios, numbered as above),
# BENCH_KEEP=1 (keep the work directory), BENCH_README=0 (do not touch README.md),
# BENCH_NODE_TRANSPORT: how pgquorum and pgpool-II reach the 3 nodes (and
# PgBouncer the plain one), `unix`
# (default; the nodes' Unix-domain sockets, as any middleware on the nodes'
# machine would) or `tcp` (127.0.0.1). pgbench always connects over TCP.
# Needs root (apt-get, and the dev cluster and PgBouncer run as `postgres`),
# a built dist/ (`make bench` builds it) and pgbench/psql (PostgreSQL 15 client).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

SECS=${BENCH_SECONDS:-30}
WARMUP=${BENCH_WARMUP:-10}
ROUNDS=${BENCH_ROUNDS:-3}
SCALE=${BENCH_SCALE:-10}
CLIENTS=16
JOBS=2
IDLE=184
CLI="$repo/dist/src/cli/main.js"
LIB="$repo/bench/lib.mjs"

SCEN_NAME=("select-only simple" "select-only prepared" "TPC-B simple" "TPC-B prepared" "TPC-B prepared, 200 connected")
SCEN_ARGS=("-S -M simple" "-S -M prepared" "-M simple" "-M prepared" "-M prepared")
SCEN_IDLE=(0 0 0 0 "$IDLE")
SCENARIOS=${BENCH_SCENARIOS:-"1 2 3 4 5"}
TRANSPORT=${BENCH_NODE_TRANSPORT:-unix}

log() { echo "bench: $*" >&2; }
fail() {
  log "FAILED: $*"
  exit 1
}

[[ "$SECS" =~ ^[1-9][0-9]*$ ]] || fail "BENCH_SECONDS must be a positive integer, got '$SECS'"
[[ "$WARMUP" =~ ^[0-9]+$ ]] || fail "BENCH_WARMUP must be a whole number of seconds, got '$WARMUP'"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || fail "BENCH_ROUNDS must be a positive integer, got '$ROUNDS'"
[[ "$SCALE" =~ ^[1-9][0-9]*$ ]] || fail "BENCH_SCALE must be a positive integer, got '$SCALE'"
for s in $SCENARIOS; do [[ "$s" =~ ^[1-5]$ ]] || fail "BENCH_SCENARIOS: unknown scenario '$s' (1-5)"; done
[[ "$TRANSPORT" =~ ^(unix|tcp)$ ]] || fail "BENCH_NODE_TRANSPORT must be unix or tcp, got '$TRANSPORT'"
[ -f "$CLI" ] || fail "$CLI is missing: run 'make bench' (it builds dist/ first)"
for t in pgbench psql timeout setsid; do command -v "$t" >/dev/null || fail "$t not found"; done

# ------------------------------------------------------------------ cleanup

W=""
COORD_PID=""
POOL_PID=""
BOUNCER_PID=""
IDLE_PID=""
PGBENCH_PID=""
CLUSTER_UP=""

# stop_pid PID SIGNAL SECONDS: signal a process we started (its own process
# group, from setsid), wait, then SIGKILL the group.
stop_pid() {
  local pid=$1 sig=$2 secs=$3 i
  [ -n "$pid" ] || return 0
  kill -s "$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid did not stop after ${secs}s: SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  [ -n "$PGBENCH_PID" ] && stop_pid "$PGBENCH_PID" TERM 10
  [ -n "$IDLE_PID" ] && stop_pid "$IDLE_PID" TERM 10
  [ -n "$COORD_PID" ] && stop_pid "$COORD_PID" TERM 35
  [ -n "$POOL_PID" ] && stop_pid "$POOL_PID" INT 20
  [ -n "$BOUNCER_PID" ] && stop_pid "$BOUNCER_PID" INT 20
  if [ -n "$CLUSTER_UP" ]; then
    node "$CLI" dev down --dir "$W/c" >/dev/null 2>&1 || log "dev down --dir $W/c failed"
  fi
  if [ -n "$W" ] && [ -d "$W" ]; then
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
      log "work directory kept: $W"
    elif [ "$rc" -ne 0 ]; then
      rm -rf "$W/c" # the node data is big; keep the logs
      log "logs kept in $W"
    else
      rm -rf "$W"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

tail_of() { # tail_of FILE: the end of a log, indented, on stderr
  [ -f "$1" ] && { echo "---- end of $1:" >&2; tail -n "${2:-30}" "$1" | sed 's/^/  /' >&2; }
  return 0
}

# ------------------------------------------------------------------ pgpool-II, PgBouncer

# install_quietly PACKAGE COMMAND: apt-get install PACKAGE unless COMMAND exists,
# without letting the package start its own service.
APT_UPDATED=""
install_quietly() {
  local pkg=$1 cmd=$2
  if command -v "$cmd" >/dev/null; then return 0; fi
  [ "$(id -u)" = 0 ] || fail "$cmd is missing and we are not root: apt-get install $pkg"
  log "installing $pkg (Debian package)"
  # A policy-rc.d that denies every start, unless one is already there.
  local policy=/usr/sbin/policy-rc.d made_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, from pgquorum bench/run.sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
  fi
  local rc=0
  if [ -z "$APT_UPDATED" ]; then
    apt-get update -qq >>"$W/apt.log" 2>&1 || rc=$?
    APT_UPDATED=1
  fi
  [ "$rc" -eq 0 ] && { DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >>"$W/apt.log" 2>&1 || rc=$?; }
  [ -n "$made_policy" ] && rm -f "$policy"
  if [ "$rc" -ne 0 ]; then
    tail_of "$W/apt.log"
    fail "apt-get install $pkg failed"
  fi
  command -v "$cmd" >/dev/null || fail "$pkg installed but no $cmd command"
  # In case a service started anyway (or is enabled for the next boot).
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl stop "$pkg" >/dev/null 2>&1 || true
    systemctl disable "$pkg" >/dev/null 2>&1 || true
  elif [ -x "/etc/init.d/$pkg" ]; then
    "/etc/init.d/$pkg" stop >/dev/null 2>&1 || true
  fi
}

# write_pgpool_conf DIR PORT PASSWORD NODE_HOST:NODE_PORT...
write_pgpool_conf() {
  local dir=$1 port=$2 pw=$3
  shift 3
  mkdir -p "$dir"
  {
    cat <<EOF
# Generated by pgquorum bench/run.sh
backend_clustering_mode = 'native_replication'
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
pcp_listen_addresses = ''
pcp_port = $((port + 1))
pcp_socket_dir = '$dir'
wd_ipc_socket_dir = '$dir'
pid_file_name = '$dir/pgpool.pid'
logdir = '$dir'
log_destination = 'stderr'
logging_collector = off
log_min_messages = warning
log_connections = off
log_statement = off

enable_pool_hba = on
pool_passwd = '$dir/pool_passwd'
allow_clear_text_frontend_auth = off
authentication_timeout = 60

# 16 active + 184 idle clients, plus headroom; one cached backend
# connection set per child (one user, one database).
num_init_children = 210
max_pool = 1
reserved_connections = 0
child_life_time = 0
child_max_connections = 0
connection_life_time = 0
client_idle_limit = 0
connection_cache = on

replicate_select = off
load_balance_mode = on
statement_level_load_balance = off
insert_lock = off
lobj_lock_table = ''
replication_stop_on_mismatch = off
failover_if_affected_tuples_mismatch = off
memory_cache_enabled = off

# No health checks, failover or watchdog: they would only get in the way.
health_check_period = 0
sr_check_period = 0
failover_command = ''
failback_command = ''
failover_on_backend_error = off
auto_failback = off
use_watchdog = off
EOF
    local i=0 hp
    for hp in "$@"; do
      cat <<EOF

backend_hostname$i = '${hp%:*}'
backend_port$i = ${hp##*:}
backend_weight$i = 1
backend_flag$i = 'DISALLOW_TO_FAILOVER'
EOF
      i=$((i + 1))
    done
  } >"$dir/pgpool.conf"
  # pgpool does SCRAM with its clients and with the nodes from this password.
  printf 'postgres:TEXT%s\n' "$pw" >"$dir/pool_passwd"
  printf 'local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n' >"$dir/pool_hba.conf"
  : >"$dir/pcp.conf"
  chmod 600 "$dir/pool_passwd" "$dir/pgpool.conf"
}

# write_pgbouncer_conf DIR PORT PASSWORD NODE_HOST:NODE_PORT: PgBouncer in
# session pooling mode in front of one node (the plain one). Session mode, as
# 16 pgbench clients on 20 server connections need no more, and prepared
# statements (-M prepared) work only there in this PgBouncer (1.18).
write_pgbouncer_conf() {
  local dir=$1 port=$2 pw=$3 hp=$4
  mkdir -p "$dir"
  cat >"$dir/pgbouncer.ini" <<EOF
; Generated by pgquorum bench/run.sh
[databases]
postgres = host=${hp%:*} port=${hp##*:} dbname=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = session
default_pool_size = 20
max_client_conn = 100
log_connections = 0
log_disconnections = 0
log_pooler_errors = 1
EOF
  # PgBouncer does SCRAM with its clients and with the node from this password.
  printf '"postgres" "%s"\n' "$pw" >"$dir/userlist.txt"
  chmod 600 "$dir/userlist.txt" "$dir/pgbouncer.ini"
  chown -R postgres "$dir" # it refuses to run as root: -u postgres below
}

# ------------------------------------------------------------------ targets

# wait_ready PORT PID NAME LOG: until `SELECT 1` works on PORT (30 s)
wait_ready() {
  local port=$1 pid=$2 name=$3 logf=$4 i
  for ((i = 0; i < 300; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail_of "$logf" 40
      fail "$name exited while starting"
    fi
    if PGCONNECT_TIMEOUT=2 psql -X -q -h 127.0.0.1 -p "$port" -d postgres -Atc 'SELECT 1' >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  tail_of "$logf" 40
  fail "$name does not accept connections on port $port after 30 s"
}

# start_coordinator [CONFIG]: the coordinator with CONFIG (default $CFG).
start_coordinator() {
  setsid node "$CLI" start --config "${1:-$CFG}" >>"$W/logs/coordinator.log" 2>&1 &
  COORD_PID=$!
  wait_ready "$PQ_PORT" "$COORD_PID" "the pgquorum coordinator" "$W/logs/coordinator.log"
}

# check_pgquorum_nodes WHEN: all 3 nodes must still be `up` (a node taken out
# of service would make the figures meaningless).
check_pgquorum_nodes() {
  local st up
  st=$(timeout 30 node "$CLI" status --config "$CFG" --json 2>&1) || { echo "$st" >&2; fail "pgquorum status failed $1"; }
  up=$(node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).filter(n=>n.state==="up").length))' <<<"$st")
  if [ "$up" != 3 ]; then
    echo "$st" >&2
    tail_of "$W/logs/coordinator.log"
    fail "pgquorum has $up of 3 nodes up $1"
  fi
}

stop_coordinator() {
  stop_pid "$COORD_PID" TERM 35
  COORD_PID=""
}

start_pgpool() {
  rm -f "$W/pgpool/pgpool.pid" "$W/pgpool/pgpool_status"
  # -n: foreground (we hold its PID), -D: forget any saved node status.
  setsid pgpool -n -D -f "$W/pgpool/pgpool.conf" -F "$W/pgpool/pcp.conf" -a "$W/pgpool/pool_hba.conf" \
    >>"$W/logs/pgpool.log" 2>&1 &
  POOL_PID=$!
  wait_ready "$PP_PORT" "$POOL_PID" "pgpool-II" "$W/logs/pgpool.log"
  if [ ! -f "$W/logs/pool_nodes.txt" ]; then
    # Once: pgpool-II must see the 3 nodes up, in native replication mode.
    psql -X -p "$PP_PORT" -c 'SHOW pool_nodes' >"$W/logs/pool_nodes.txt" 2>&1 || true
    local up
    up=$(psql -X -p "$PP_PORT" -AtF'|' -c 'SHOW pool_nodes' 2>/dev/null | awk -F'|' '$4 == "up" || $4 == "waiting"' | wc -l)
    if [ "$up" -ne 3 ]; then
      cat "$W/logs/pool_nodes.txt" >&2
      tail_of "$W/logs/pgpool.log"
      fail "pgpool-II sees $up of 3 nodes up"
    fi
  fi
}

stop_pgpool() {
  stop_pid "$POOL_PID" INT 20 # fast shutdown
  POOL_PID=""
}

start_pgbouncer() {
  # Foreground (we hold its PID); it drops root for postgres itself.
  setsid pgbouncer -u postgres "$W/pgbouncer/pgbouncer.ini" >>"$W/logs/pgbouncer.log" 2>&1 &
  BOUNCER_PID=$!
  wait_ready "$PB_PORT" "$BOUNCER_PID" "PgBouncer" "$W/logs/pgbouncer.log"
}

stop_pgbouncer() {
  stop_pid "$BOUNCER_PID" INT 20 # SIGINT: safe shutdown
  BOUNCER_PID=""
}

target_port() {
  case $1 in
    plain | plain-2pc) echo "$PLAIN_PORT" ;;
    pgquorum | pgquorum-fsync) echo "$PQ_PORT" ;;
    pgpool) echo "$PP_PORT" ;;
    pgbouncer) echo "$PB_PORT" ;;
  esac
}

# run_one TARGET SCENARIO_INDEX ROUND
run_one() {
  local target=$1 si=$2 round=$3
  local name=${SCEN_NAME[$si]} idle=${SCEN_IDLE[$si]} port run procpid="" tree="" before="" after="" idle_json=""
  port=$(target_port "$target")
  run="$W/runs/r$round-s$((si + 1))-$target"
  mkdir -p "$run/tx"
  case $target in
    pgquorum) start_coordinator; procpid=$COORD_PID ;;
    pgquorum-fsync) start_coordinator "$CFG_FSYNC"; procpid=$COORD_PID ;;
    pgpool) start_pgpool; procpid=$POOL_PID; tree=tree ;;
    pgbouncer) start_pgbouncer; procpid=$BOUNCER_PID ;;
  esac
  if [ "$idle" -gt 0 ]; then
    setsid node "$repo/bench/idle-clients.mjs" --port "$port" --count "$idle" >"$run/idle.out" 2>"$run/idle.err" &
    IDLE_PID=$!
    local i
    for ((i = 0; i < 1200; i++)); do
      grep -q '^ready' "$run/idle.out" 2>/dev/null && break
      kill -0 "$IDLE_PID" 2>/dev/null || { tail_of "$run/idle.err"; fail "$target: could not open $idle idle sessions"; }
      sleep 0.1
    done
    grep -q '^ready' "$run/idle.out" || { tail_of "$run/idle.err"; fail "$target: $idle idle sessions not open after 120 s"; }
  fi
  local args=${SCEN_ARGS[$si]}
  [ "$target" = plain-2pc ] && args="-M simple -f $repo/bench/tpcb-2pc.sql"
  if [ "$WARMUP" -gt 0 ]; then
    # shellcheck disable=SC2086 # args holds several words
    timeout -k 10 $((WARMUP * 2 + 120)) pgbench -n $args -c "$CLIENTS" -j "$JOBS" -T "$WARMUP" \
      -h 127.0.0.1 -p "$port" -U postgres postgres >"$run/warmup.out" 2>&1 ||
      { tail_of "$run/warmup.out" 40; fail "$target, $name: the warm-up run failed"; }
  fi
  [ -n "$procpid" ] && before=$(node "$LIB" proc "$procpid" $tree)
  local stat_before stat_after
  stat_before=$(head -n 1 /proc/stat)

  # shellcheck disable=SC2086 # args holds several words
  timeout -k 10 $((SECS * 2 + 120)) pgbench -n $args -c "$CLIENTS" -j "$JOBS" -T "$SECS" \
    -h 127.0.0.1 -p "$port" -U postgres -l --log-prefix "$run/tx/tx" postgres >"$run/pgbench.out" 2>&1 &
  PGBENCH_PID=$!
  local rc=0
  wait "$PGBENCH_PID" || rc=$?
  PGBENCH_PID=""
  stat_after=$(head -n 1 /proc/stat)

  [ -n "$procpid" ] && after=$(node "$LIB" proc "$procpid" $tree)
  if [ -n "$IDLE_PID" ]; then
    stop_pid "$IDLE_PID" TERM 30
    IDLE_PID=""
    idle_json=$(tail -n 1 "$run/idle.out")
  fi
  if [ "$rc" -ne 0 ]; then
    tail_of "$run/pgbench.out" 40
    case $target in
      pgquorum*) tail_of "$W/logs/coordinator.log" ;;
      pgpool) tail_of "$W/logs/pgpool.log" ;;
      pgbouncer) tail_of "$W/logs/pgbouncer.log" ;;
    esac
    [ "$rc" -eq 124 ] && fail "$target, $name: pgbench timed out"
    fail "$target, $name: pgbench exited with $rc"
  fi
  case $target in
    pgquorum*) check_pgquorum_nodes "after $name (round $round)" && stop_coordinator ;;
    pgpool) stop_pgpool ;;
    pgbouncer) stop_pgbouncer ;;
  esac
  node "$LIB" run-summary "$W/runs.jsonl" target="$target" scenario="$name" round="$round" \
    out="$run/pgbench.out" logs="$run/tx" stat_before="$stat_before" stat_after="$stat_after" ${before:+before="$before"} ${after:+after="$after"} ${idle_json:+idle="$idle_json"}
  rm -rf "$run/tx" # the per-transaction logs can be large
}

# ------------------------------------------------------------------ main

W=$(mktemp -d /tmp/pgq-bench.XXXXXX)
chmod 755 "$W"
mkdir -p "$W/logs" "$W/runs"
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "work directory $W; $SECS s per run after $WARMUP s of warm-up, $ROUNDS round(s), scale $SCALE, scenarios $SCENARIOS"

install_quietly pgpool2 pgpool
install_quietly pgbouncer pgbouncer

BASE=$(node "$LIB" free-port 9) # coordinator BASE, nodes BASE+1..4, pgpool BASE+6 (pcp BASE+7), PgBouncer BASE+8
PQ_PORT=$BASE
PLAIN_PORT=$((BASE + 4))
PP_PORT=$((BASE + 6))
PB_PORT=$((BASE + 8))
log "ports: pgquorum $PQ_PORT, nodes $((BASE + 1))-$((BASE + 3)), plain $PLAIN_PORT, pgpool-II $PP_PORT, PgBouncer $PB_PORT"

CLUSTER_UP=1
CFG=$(node "$CLI" dev up --nodes 4 --port "$BASE" --dir "$W/c" --no-fsync 2>"$W/logs/dev-up.log") ||
  { tail_of "$W/logs/dev-up.log"; fail "dev up failed"; }
PGPASSWORD=$(node "$LIB" cfg-prepare "$CFG" 3 "$TRANSPORT" "$W/c/devcluster.json")
CFG_FSYNC="$(dirname "$CFG")/pgquorum-fsync.json" # same nodes and state directory, state.fsync on
node "$LIB" cfg-fsync "$CFG" "$CFG_FSYNC"
export PGPASSWORD PGUSER=postgres PGHOST=127.0.0.1 PGDATABASE=postgres
PG_VERSION=$(psql -X -p "$PLAIN_PORT" -Atc 'SHOW server_version')

# The same node addresses as the coordinator's (socket directories or 127.0.0.1).
# shellcheck disable=SC2046 # one word per node
write_pgpool_conf "$W/pgpool" "$PP_PORT" "$PGPASSWORD" $(node "$LIB" cfg-nodes "$CFG")
write_pgbouncer_conf "$W/pgbouncer" "$PB_PORT" "$PGPASSWORD" "$(node "$LIB" dev-node "$W/c/devcluster.json" n4 "$TRANSPORT")"

log "pgbench -i -s $SCALE on the plain node and through pgquorum (all 3 nodes)"
timeout 1800 pgbench -i -s "$SCALE" -q -p "$PLAIN_PORT" >"$W/logs/init-plain.log" 2>&1 ||
  { tail_of "$W/logs/init-plain.log"; fail "pgbench -i on the plain node"; }
start_coordinator
timeout 1800 pgbench -i -s "$SCALE" -q -p "$PQ_PORT" >"$W/logs/init-pgquorum.log" 2>&1 ||
  { tail_of "$W/logs/init-pgquorum.log"; tail_of "$W/logs/coordinator.log"; fail "pgbench -i through pgquorum"; }
check_pgquorum_nodes "after pgbench -i"
stop_coordinator

for ((round = 1; round <= ROUNDS; round++)); do
  for s in $SCENARIOS; do
    si=$((s - 1))
    log "round $round/$ROUNDS: ${SCEN_NAME[$si]}"
    targets="plain pgquorum pgpool"
    [ "$si" -le 3 ] && targets="$targets pgbouncer"                 # not with 200 clients: one hop's cost is the point
    [ "$si" = 2 ] && targets="$targets pgquorum-fsync plain-2pc" # TPC-B simple: also the synced-decision and 2PC references
    for target in $targets; do
      run_one "$target" "$si" "$round"
    done
  done
done

log "checking that the 3 nodes hold the same data (pgquorum verify)"
start_coordinator
vrc=0
timeout 600 node "$CLI" verify --config "$CFG" >"$W/logs/verify.log" 2>&1 || vrc=$?
stop_coordinator
case $vrc in
  0) VERIFY="identical (\`pgquorum verify\`: $(grep '^verify: IDENTICAL' "$W/logs/verify.log" | sed 's/^verify: IDENTICAL: //' || true))" ;;
  1) VERIFY="**the nodes DIFFER** (\`pgquorum verify\`: $(grep -m1 'DIFFERS' "$W/logs/verify.log" || true))" ;;
  *) VERIFY="could not check (\`pgquorum verify\` exit $vrc: $(tail -n 1 "$W/logs/verify.log"))" ;;
esac
[ "$vrc" -eq 0 ] || { tail_of "$W/logs/verify.log"; log "WARNING: verify exit $vrc"; }

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
SCEN_JSON=""
for s in $SCENARIOS; do SCEN_JSON+="${SCEN_NAME[$((s - 1))]}|${SCEN_IDLE[$((s - 1))]}"$'\n'; done
export STARTED SECS WARMUP ROUNDS SCALE CLIENTS JOBS LOAD_BEFORE LOAD_AFTER VERIFY PG_VERSION SCEN_JSON TRANSPORT
node -e '
const e = process.env;
console.log(JSON.stringify({
  startedAt: e.STARTED, seconds: +e.SECS, warmup: +e.WARMUP, rounds: +e.ROUNDS, scale: +e.SCALE, clients: +e.CLIENTS, jobs: +e.JOBS,
  loadBefore: e.LOAD_BEFORE, loadAfter: e.LOAD_AFTER, verify: e.VERIFY, postgresVersion: e.PG_VERSION, nodeTransport: e.TRANSPORT,
  scenarios: e.SCEN_JSON.trim().split("\n").map((l) => ({ name: l.split("|")[0], idle: Number(l.split("|")[1]) })),
}, null, 2));
' >"$W/meta.json"

readme="$repo/README.md"
[ "${BENCH_README:-1}" = 0 ] && readme=""
node "$LIB" report "$W/runs.jsonl" "$W/meta.json" "$repo/bench/results" "$readme"
cat "$repo/bench/results/latest.md"

#!/bin/bash
# Where the machine's CPU goes per transaction: plain PostgreSQL against
# pgquorum over 3 nodes (the figures behind issue 6's note on what bounds the
# TPC-B ratio on a 2-core machine). One `dev up --nodes 4 --no-fsync` cluster
# (n4 is the plain node, n1-n3 are behind the coordinator over their
# Unix-domain sockets, as in `make bench`), scale 10, pgbench -c 16 -j 2.
# For each measured run it prints, per transaction, the CPU of each node's
# whole process tree (postmaster, backends, and backends that exited:
# `bench/lib.mjs proc PID tree`), of the coordinator, of the whole machine
# (/proc/stat) and the rest (pgbench, kernel threads), the share of time the
# CPUs were idle, and for pgquorum the machine CPU per transaction that a
# ratio of 0.30 to the plain run leaves (NCPU / (0.30 x plain tps)) against
# what the nodes and the rest took without the coordinator.
# Usage (as root; dist/ built): M="-M simple" T=20 R=2 bench/adhoc/cpu-breakdown.sh
#   M: pgbench mode arguments (default TPC-B simple; "-S -M prepared": select-only),
#   T: seconds per run (20), R: rounds (2), PORT: first port (7950), D: work directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
M=${M:-"-M simple"}
T=${T:-20}
R=${R:-2}
PORT=${PORT:-7950}
D=${D:-/tmp/pgq-cpu}
CLI=dist/src/cli/main.js
COORD=""

cleanup() {
  set +e
  if [ -n "$COORD" ]; then
    kill -TERM "$COORD" 2>/dev/null
    wait "$COORD" 2>/dev/null
  fi
  node "$CLI" dev down --dir "$D" >/dev/null 2>&1
}
trap cleanup EXIT

rm -rf "$D"
cfg=$(node "$CLI" dev up --nodes 4 --port "$PORT" --dir "$D" --no-fsync 2>"$D.dev-up.log")
PGPASSWORD=$(node bench/lib.mjs cfg-prepare "$cfg" 3 unix "$D/devcluster.json")
export PGPASSWORD PGUSER=postgres PGHOST=127.0.0.1 PGDATABASE=postgres
setsid node "$CLI" start --config "$cfg" >"$D/coordinator.log" 2>&1 &
COORD=$!
for _ in $(seq 300); do
  psql -X -q -p "$PORT" -Atc 'SELECT 1' >/dev/null 2>&1 && break
  sleep 0.1
done
PLAIN=$((PORT + 4))
pgbench -i -q -s 10 -p "$PLAIN" >"$D/init-plain.log" 2>&1
pgbench -i -q -s 10 -p "$PORT" >"$D/init-pgquorum.log" 2>&1
# Settle what loading left behind (autovacuum of the new tables would
# otherwise run in the first measured runs and count as node CPU).
for i in 1 2 3 4; do
  psql -X -q -h "$D/node$i" -p $((PORT + i)) -c 'VACUUM ANALYZE' -c 'CHECKPOINT' >/dev/null
done

# snapshot: one line of JSON, {"n1":<bench/lib.mjs proc output>, ..., "n4":.., "coord":..}
snapshot() {
  local i out="{"
  for i in 1 2 3 4; do
    out+="\"n$i\":$(node bench/lib.mjs proc "$(head -n 1 "$D/node$i/postmaster.pid")" tree),"
  done
  echo "$out\"coord\":$(node bench/lib.mjs proc "$COORD")}"
}

PLAIN_TPS=""
for ((round = 1; round <= R; round++)); do
  for target in plain pgquorum; do
    port=$PORT
    [ "$target" = plain ] && port=$PLAIN
    # shellcheck disable=SC2086 # M holds several words
    pgbench -n $M -c 16 -j 2 -T 10 -p "$port" >/dev/null 2>&1 # warm-up
    before=$(snapshot)
    stat_before=$(head -n 1 /proc/stat)
    # shellcheck disable=SC2086
    out=$(pgbench -n $M -c 16 -j 2 -T "$T" -p "$port" 2>&1)
    stat_after=$(head -n 1 /proc/stat)
    after=$(snapshot)
    tx=$(grep -oP 'processed: \K\d+' <<<"$out" | head -n 1)
    machine=$(node bench/lib.mjs machine-cpu "$stat_before" "$stat_after" "$tx")
    tps=$(grep -oP 'tps = \K[\d.]+' <<<"$out")
    [ "$target" = plain ] && PLAIN_TPS=$tps
    node - "$target" "$tx" "$tps" "$PLAIN_TPS" "$before" "$after" "$machine" <<'JS'
const [target, tx, tps, plainTps, before, after, machineJson] = process.argv.slice(2);
const b = JSON.parse(before), a = JSON.parse(after);
const ms = (k) => ((a[k].cpu - b[k].cpu) * 1000) / Number(tx);
const { machineCpuMsPerTx: machine, machineIdlePct } = JSON.parse(machineJson);
const nodes = target === 'plain' ? ['n4'] : ['n1', 'n2', 'n3'];
const nodeMs = nodes.map((n) => ms(n));
const coord = target === 'plain' ? 0 : ms('coord');
const sum = nodeMs.reduce((s, v) => s + v, 0);
const f = (v) => v.toFixed(3);
let line = `${target.padEnd(8)} tps ${Number(tps).toFixed(0).padStart(6)}  machine ${f(machine)} ms/tx  idle ${machineIdlePct.toFixed(1)} %  ` +
  nodes.map((n, i) => `${n} ${f(nodeMs[i])}`).join(' ') + (nodes.length > 1 ? `  nodes ${f(sum)}` : '') +
  (target === 'plain' ? '' : `  coordinator ${f(coord)}`) + `  rest ${f(machine - sum - coord)}`;
if (target !== 'plain' && plainTps) {
  const ncpu = require('node:os').cpus().length;
  line += `\n         at 0.30 of plain (${Number(plainTps).toFixed(0)} tps) the machine has ${f(ncpu / (0.3 * Number(plainTps)) * 1000)} ms/tx; ` +
    `without the coordinator this run took ${f(machine - coord)}`;
}
console.log(line);
JS
  done
done

#!/usr/bin/env bash
# Installs what pgquorum needs, idempotently and without prompts (works as
# root on a fresh Debian 12 with Node 20 and no stdin): PostgreSQL 15 server
# and client, node_modules, and the TypeScript build. One line per action.
#   --quiet     say nothing when there is nothing to do
#   --no-build  skip the TypeScript build (the Makefile builds itself)
set -euo pipefail
quiet=0
build=1
for a in "$@"; do
  case "$a" in
    -q|--quiet) quiet=1 ;;
    --no-build) build=0 ;;
    *) echo "usage: scripts/ensure-deps.sh [--quiet] [--no-build]" >&2; exit 2 ;;
  esac
done
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec </dev/null

say() { echo "ensure-deps: $*" >&2; }
ok() { if [ "$quiet" = 0 ]; then say "$*"; fi; }
# Run a command with its output hidden; show the end of it when it fails.
run() {
  local log rc=0
  log="$(mktemp)"
  "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" != 0 ]; then
    tail -n 40 "$log" >&2
    say "failed (exit $rc): $*"
    rm -f "$log"
    exit "$rc"
  fi
  rm -f "$log"
}

# ---- PostgreSQL 15 ----------------------------------------------------------
pgbin="${PGQUORUM_PG_BINDIR:-/usr/lib/postgresql/15/bin}"
have_pg() {
  for t in postgres initdb pg_ctl psql pgbench pg_dump; do [ -x "$pgbin/$t" ] || return 1; done
  # pg_stat_statements ships in postgresql-15 (Debian has no separate contrib-15 package).
  [ -n "${PGQUORUM_PG_BINDIR:-}" ] || [ -f /usr/lib/postgresql/15/lib/pg_stat_statements.so ]
}
if have_pg; then
  ok "PostgreSQL 15 present in $pgbin"
else
  if [ "$(id -u)" = 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    say "PostgreSQL 15 is missing and installing it needs root: apt-get install postgresql-15 postgresql-client-15"
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    say "PostgreSQL 15 is missing and there is no apt-get: install it yourself and set PGQUORUM_PG_BINDIR to its bin directory"
    exit 1
  fi
  # pgquorum never uses the distribution's default cluster: ask postgresql-common not to create one.
  say "configuring postgresql-common not to create a default cluster"
  run "${sudo[@]}" mkdir -p /etc/postgresql-common/createcluster.d
  run "${sudo[@]}" sh -c 'echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/pgquorum.conf'
  say "apt-get update"
  run "${sudo[@]}" apt-get update
  say "apt-get install postgresql-15 postgresql-client-15 (server, psql, pgbench, pg_stat_statements)"
  run "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    postgresql-15 postgresql-client-15
  have_pg || { say "PostgreSQL 15 still missing in $pgbin after installing"; exit 1; }
fi

# ---- node_modules -----------------------------------------------------------
marker=node_modules/.package-lock.json
if [ ! -d node_modules ] || [ ! -f "$marker" ] ||
  { [ -f package-lock.json ] && [ package-lock.json -nt "$marker" ]; } ||
  [ package.json -nt "$marker" ]; then
  if [ -f package-lock.json ]; then
    say "npm ci"
    run npm ci --no-audit --no-fund
  else
    say "npm install"
    run npm install --no-audit --no-fund
  fi
  [ -f "$marker" ] && touch "$marker"
else
  ok "node_modules up to date"
fi

# ---- TypeScript build -------------------------------------------------------
if [ "$build" = 1 ]; then
  stamp=dist/.build-stamp
  if [ ! -f "$stamp" ] || [ -n "$(find src test bench tsconfig.json package.json -newer "$stamp" -type f -print -quit 2>/dev/null)" ]; then
    scripts/build.sh
  else
    ok "dist/ up to date"
  fi
fi

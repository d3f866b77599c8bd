#!/bin/bash
# TPC-B of this checkout vs another build (OTHER=dir of a built checkout,
# e.g. `git worktree add /tmp/old 66485dd && (cd /tmp/old && ln -s $PWD/node_modules . && npx tsc)`),
# same 3 nodes, alternating, 3 rounds. Usage: OTHER=/tmp/old T=15 bench/adhoc/commit-compare.sh
set -e
D=${D:-/tmp/pgq-2pc}; rm -rf $D
OTHER=${OTHER:?set OTHER to a checkout of the commit to compare, built with npx tsc}
cd "$(dirname "$0")/../.."
cfg=$(bin/pgquorum dev up --nodes 3 --port 7900 --dir $D --no-fsync 2>/dev/null)
PW=$(python3 -c "import json;print(json.load(open('$cfg'))['users'][0]['password'])")
python3 - "$cfg" <<'PY'
import json,sys
c=json.load(open(sys.argv[1])); c.setdefault('log',{})['level']='warn'
json.dump(c,open(sys.argv[1],'w'))
PY
export PGPASSWORD=$PW PGUSER=postgres PGHOST=127.0.0.1 PGDATABASE=postgres
node dist/src/cli/main.js start --config $cfg > $D/c2pc.log 2>&1 & A=$!
sleep 2; pgbench -i -s 2 -q -p 7900 >/dev/null 2>&1; kill $A; wait $A 2>/dev/null || true
for round in 1 2 3; do
  for which in ordered 2pc; do
    if [ $which = ordered ]; then node $OTHER/dist/src/cli/main.js start --config $cfg > $D/c.log 2>&1 & P=$!
    else node dist/src/cli/main.js start --config $cfg > $D/c.log 2>&1 & P=$!; fi
    sleep 2
    for mode in simple prepared; do
      tps=$(pgbench -n -c 16 -j 2 -T ${T:-15} -M $mode -p 7900 2>/dev/null | grep -oP 'tps = \K[\d.]+' | head -1)
      echo "round=$round commit=$which mode=$mode tps=$tps"
    done
    kill -TERM $P; wait $P 2>/dev/null || true
  done
done
bin/pgquorum dev down --dir $D >/dev/null 2>&1

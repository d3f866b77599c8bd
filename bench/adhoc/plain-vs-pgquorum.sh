#!/bin/bash
# Quick side-by-side before the benchmark suite exists (issue 6): a plain node
# vs pgquorum over 3 nodes of one `dev up --nodes 4 --no-fsync` cluster,
# pgbench -s 2 -c 16 -j 2, T seconds per run (default 15). Usage: T=15 bench/adhoc/plain-vs-pgquorum.sh
set -e
cd "$(dirname "$0")/../.."
D=${D:-/tmp/pgq-measure}; rm -rf $D
cfg=$(bin/pgquorum dev up --nodes 4 --port 7700 --dir $D --no-fsync 2>/dev/null)
PW=$(python3 -c "import json;print(json.load(open('$cfg'))['users'][0]['password'])")
python3 - "$cfg" <<'PY'
import json,sys
c=json.load(open(sys.argv[1])); c['nodes']=c['nodes'][:3]; c.setdefault('log',{})['level']='warn'
json.dump(c,open(sys.argv[1],'w'))
PY
node dist/src/cli/main.js start --config $cfg > $D/coord.log 2>&1 &
CP=$!
sleep 2
export PGPASSWORD=$PW PGUSER=postgres PGHOST=127.0.0.1 PGDATABASE=postgres
pgbench -i -s 2 -q -p 7704 >/dev/null 2>&1
pgbench -i -s 2 -q -p 7700 >/dev/null 2>&1
for mode in simple prepared; do
  for sel in "-S" ""; do
    for port in 7704 7700; do
      tps=$(pgbench -n $sel -c 16 -j 2 -T ${T:-15} -M $mode -p $port 2>/dev/null | grep -oP 'tps = \K[\d.]+' | head -1)
      echo "mode=$mode sel=${sel:-tpcb} port=$port tps=$tps"
    done
  done
done
kill -TERM $CP; wait $CP || true
bin/pgquorum dev down --dir $D >/dev/null 2>&1

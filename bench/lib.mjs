// Helpers for bench/run.sh (plain Node ESM, no build step, no dependencies).
//
//   node bench/lib.mjs free-port N            first port P of N free consecutive loopback ports
//   node bench/lib.mjs cfg-prepare CFG NODES [TRANSPORT DEVCLUSTER_JSON]
//                                             keep the first NODES nodes of a pgquorum config,
//                                             log level warn; each node's host from the dev
//                                             cluster's devcluster.json: TRANSPORT unix, its socket
//                                             directory (its data directory); tcp, its address;
//                                             prints the first user's password
//   node bench/lib.mjs cfg-nodes CFG          host:port of each node of CFG, one per line
//   node bench/lib.mjs cfg-fsync CFG OUT      CFG with state.fsync on, written to OUT (same directory)
//   node bench/lib.mjs dev-node DEVCLUSTER_JSON ID TRANSPORT
//                                             host:port of one dev cluster node (unix: its socket
//                                             directory, tcp: its address)
//   node bench/lib.mjs proc PID [tree]        {"cpu":seconds,"hwmKiB":..,"pssKiB":..,"procs":n} of PID
//                                             (tree: PID and all its descendants, plus the CPU of
//                                             reaped children)
//   node bench/lib.mjs machine-cpu STAT_BEFORE STAT_AFTER TX
//                                             {"machineCpuMsPerTx":..,"machineIdlePct":..,"machineStealPct":..}
//                                             between two /proc/stat "cpu" lines, over TX transactions
//   node bench/lib.mjs run-summary JSONL k=v... parse one pgbench run (out=FILE, logs=DIR with the
//                                             -l files, before=/after= proc JSON, idle= JSON and
//                                             any other k=v) and append one JSON line to JSONL
//   node bench/lib.mjs report JSONL META OUTDIR README
//                                             write OUTDIR/<UTC stamp>.md/.json and latest.md, and
//                                             replace the README block between the bench markers
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';

const TARGETS = ['plain', 'pgquorum', 'pgpool', 'pgbouncer', 'pgquorum-fsync', 'plain-2pc'];
const TARGET_LABEL = { plain: 'plain PostgreSQL (1 node)', pgquorum: 'pgquorum (3 nodes)', pgpool: 'pgpool-II (3 nodes)' };
const BEGIN = '<!-- bench:begin -->';
const END = '<!-- bench:end -->';

function die(msg) {
  console.error(`bench/lib.mjs: ${msg}`);
  process.exit(1);
}

// ---------------------------------------------------------------- free-port

function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/**
 * The first port the kernel may hand out as an outgoing connection's local
 * port. The bench restarts pgpool-II (and the coordinator) on its ports for
 * every run, so its ports must lie below this: else a client's or a node's
 * outgoing connection can take one between two runs ("Address already in use").
 */
function ephemeralLow() {
  try {
    const low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : 32768;
  } catch {
    return 32768;
  }
}

async function freePort(n) {
  const low = 10000;
  const high = Math.max(low + n, Math.min(ephemeralLow(), 40000) - n);
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = low + Math.floor(Math.random() * (high - low));
    let ok = true;
    for (let p = base; p < base + n && ok; p++) ok = await portFree(p);
    if (ok) return base;
  }
  die(`no ${n} free consecutive ports found`);
}

/** ' after N s of warm-up' when the runs had one (BENCH_WARMUP). */
function warm(meta) {
  return meta.warmup > 0 ? ` after ${meta.warmup} s of warm-up` : '';
}

// ---------------------------------------------------------------- proc

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

function statOf(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
    return { ppid: Number(f[1]), utime: Number(f[11]), stime: Number(f[12]), cutime: Number(f[13]), cstime: Number(f[14]) };
  } catch {
    return null;
  }
}

function kib(pid, file, key) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/${file}`, 'utf8').match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function procInfo(pid, tree) {
  const root = statOf(pid);
  if (!root) return { cpu: null, hwmKiB: null, pssKiB: null, procs: 0 };
  const pids = [pid];
  if (tree) {
    const children = new Map();
    for (const e of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      const st = statOf(Number(e));
      if (st) children.set(st.ppid, [...(children.get(st.ppid) ?? []), Number(e)]);
    }
    for (let i = 0; i < pids.length; i++) pids.push(...(children.get(pids[i]) ?? []));
  }
  let ticks = root.cutime + root.cstime; // children that already exited and were reaped
  let hwm = 0;
  let pss = 0;
  for (const p of pids) {
    const st = statOf(p);
    if (!st) continue;
    ticks += st.utime + st.stime;
    hwm += kib(p, 'status', 'VmHWM');
    pss += kib(p, 'smaps_rollup', 'Pss');
  }
  return { cpu: ticks / CLK_TCK, hwmKiB: hwm, pssKiB: pss, procs: pids.length };
}

// ---------------------------------------------------------------- machine-cpu

/**
 * The whole machine between two readings of the /proc/stat "cpu" line (user
 * nice system idle iowait irq softirq steal ...): busy CPU ms per transaction,
 * and the shares of the time idle and stolen.
 */
function machineCpu(statBefore, statAfter, transactions) {
  const t0 = statBefore.trim().split(/\s+/).slice(1).map(Number);
  const t1 = statAfter.trim().split(/\s+/).slice(1).map(Number);
  const d = t1.map((v, i) => v - (t0[i] ?? 0));
  const busy = d[0] + d[1] + d[2] + d[5] + d[6];
  const idle = d[3] + d[4];
  const steal = d[7] ?? 0;
  const all = busy + idle + steal;
  return {
    machineCpuMsPerTx: transactions > 0 ? ((busy / CLK_TCK) * 1000) / transactions : null,
    machineIdlePct: all > 0 ? (100 * idle) / all : null,
    machineStealPct: all > 0 ? (100 * steal) / all : null,
  };
}

// ---------------------------------------------------------------- run-summary

function parsePgbench(text) {
  const num = (re) => {
    const m = text.match(re);
    return m ? Number(m[1]) : null;
  };
  return {
    tps: num(/^tps = ([\d.]+) \(without initial connection time\)/m),
    transactions: num(/^number of transactions actually processed: (\d+)/m),
    failed: num(/^number of failed transactions: (\d+)/m) ?? 0,
    latencyAvgMs: num(/^latency average = ([\d.]+) ms/m),
    connectMs: num(/^initial connection time = ([\d.]+) ms/m),
  };
}

/** Latencies (µs, column 3) of every successful transaction in pgbench -l files. */
function readLatencies(dir) {
  const chunks = [];
  let n = 0;
  for (const f of fs.readdirSync(dir)) {
    const arr = [];
    for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      const v = Number(line.split(' ')[2]); // "failed" (or an empty line) is NaN: skipped
      if (Number.isFinite(v)) arr.push(v);
    }
    chunks.push(Float64Array.from(arr));
    n += arr.length;
  }
  const all = new Float64Array(n);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return all.sort();
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function runSummary(jsonl, kv) {
  const a = Object.fromEntries(kv.map((s) => [s.slice(0, s.indexOf('=')), s.slice(s.indexOf('=') + 1)]));
  const out = fs.readFileSync(a.out, 'utf8');
  const pb = parsePgbench(out);
  if (pb.tps === null || pb.transactions === null) die(`no tps in ${a.out}`);
  const lat = readLatencies(a.logs);
  const rec = {
    target: a.target,
    scenario: a.scenario,
    round: Number(a.round),
    ...pb,
    logged: lat.length,
    p50Ms: lat.length ? percentile(lat, 50) / 1000 : null,
    p99Ms: lat.length ? percentile(lat, 99) / 1000 : null,
  };
  if (a.before && a.after) {
    const b = JSON.parse(a.before);
    const e = JSON.parse(a.after);
    rec.cpuSeconds = e.cpu !== null && b.cpu !== null ? e.cpu - b.cpu : null;
    rec.cpuPer1kTx = rec.cpuSeconds !== null && pb.transactions > 0 ? rec.cpuSeconds / (pb.transactions / 1000) : null;
    rec.peakRssMiB = e.hwmKiB / 1024; // single process: VmHWM; a tree: sum of the VmHWM of its processes
    rec.pssMiB = e.pssKiB / 1024; // proportional set size at the end of the run (shared pages split)
    rec.procs = e.procs;
  }
  if (a.stat_before && a.stat_after) Object.assign(rec, machineCpu(a.stat_before, a.stat_after, pb.transactions));
  if (a.idle) rec.idle = JSON.parse(a.idle);
  fs.appendFileSync(jsonl, JSON.stringify(rec) + '\n');
  const f = (v, d = 1) => (v === null || v === undefined ? '-' : v.toFixed(d));
  console.log(
    `  ${a.target.padEnd(8)} tps ${f(rec.tps)}  p50 ${f(rec.p50Ms, 2)} ms  p99 ${f(rec.p99Ms, 2)} ms  failed ${rec.failed}` +
      (rec.machineCpuMsPerTx !== undefined ? `  machine ${f(rec.machineCpuMsPerTx, 3)} ms/tx idle ${f(rec.machineIdlePct)} %` : '') +
      (rec.cpuPer1kTx !== undefined ? `  cpu/1k tx ${f(rec.cpuPer1kTx, 3)} s  rss ${f(rec.peakRssMiB)} MiB  pss ${f(rec.pssMiB)} MiB` : '') +
      (rec.idle ? `  idle held ${rec.idle.held} lost ${rec.idle.lost}` : ''),
  );
}

// ---------------------------------------------------------------- report

function median(values) {
  const v = values.filter((x) => x !== null && x !== undefined && Number.isFinite(x)).sort((x, y) => x - y);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** First line a command prints (stdout, else stderr: `pgpool --version` writes there), or "unknown". */
function sh(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error || r.status !== 0) return 'unknown';
  return (r.stdout.trim() || r.stderr.trim()).split('\n')[0] || 'unknown';
}

function machine(meta) {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const memKiB = Number(fs.readFileSync('/proc/meminfo', 'utf8').match(/^MemTotal:\s+(\d+)/m)?.[1] ?? 0);
  return {
    nproc: Number(sh('nproc', [])) || os.cpus().length,
    cpuModel: cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? 'unknown',
    ramGiB: Math.round((memKiB / 1024 / 1024) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    postgres: meta.postgresVersion ?? 'unknown',
    pgpool: sh('pgpool', ['--version']).replace(/^pgpool-II version /, ''),
    pgbouncer: sh('pgbouncer', ['--version']).replace(/^PgBouncer /, ''),
    pgbench: sh('pgbench', ['--version']),
    node: process.version,
    commit: sh('git', ['rev-parse', '--short', 'HEAD']),
  };
}

function fmt(v, digits) {
  return v === null || v === undefined ? '–' : v.toFixed(digits);
}

function ratio(a, b) {
  return a === null || b === null || !b ? '–' : `${(a / b).toFixed(2)}×`;
}

function report(jsonl, metaFile, outdir, readme) {
  const runs = fs
    .readFileSync(jsonl, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8'));
  const m = machine(meta);
  const scenarios = meta.scenarios.map((s) => s.name);
  const summary = [];
  for (const scenario of scenarios) {
    for (const target of TARGETS) {
      const rs = runs.filter((r) => r.scenario === scenario && r.target === target);
      if (rs.length === 0) continue;
      const med = (k) => median(rs.map((r) => r[k]));
      summary.push({
        scenario,
        target,
        rounds: rs.length,
        tps: med('tps'),
        p50Ms: med('p50Ms'),
        p99Ms: med('p99Ms'),
        latencyAvgMs: med('latencyAvgMs'),
        failed: rs.reduce((s, r) => s + (r.failed ?? 0), 0),
        cpuPer1kTx: med('cpuPer1kTx'),
        machineCpuMsPerTx: med('machineCpuMsPerTx'),
        machineIdlePct: med('machineIdlePct'),
        peakRssMiB: rs.some((r) => r.peakRssMiB !== undefined) ? Math.max(...rs.map((r) => r.peakRssMiB ?? 0)) : null,
        pssMiB: rs.some((r) => r.pssMiB !== undefined) ? Math.max(...rs.map((r) => r.pssMiB ?? 0)) : null,
        idleLost: rs.some((r) => r.idle) ? rs.reduce((s, r) => s + (r.idle?.lost ?? 0), 0) : null,
      });
    }
  }
  const get = (scenario, target) => summary.find((s) => s.scenario === scenario && s.target === target) ?? null;

  const stamp = meta.startedAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z'); // 20250101T120000Z
  const short = meta.seconds < 30 || meta.rounds < 3;
  const header = [
    `# pgquorum benchmark ${meta.startedAt.replace(/\.\d+Z$/, 'Z')}`,
    '',
    ...(short ? [`**Short run (${meta.seconds} s × ${meta.rounds} round${meta.rounds === 1 ? '' : 's'}): not representative.**`, ''] : []),
    `- Machine: ${m.nproc} CPUs (${m.cpuModel}), ${m.ramGiB} GiB RAM, ${m.kernel}`,
    `- Software: PostgreSQL ${m.postgres}, pgpool-II ${m.pgpool}, PgBouncer ${m.pgbouncer}, Node ${m.node}, pgquorum ${m.commit}`,
    `- Load average before / after: ${meta.loadBefore} / ${meta.loadAfter}`,
    `- Settings: ${m.pgbench}, scale ${meta.scale}, ${meta.clients} clients, ${meta.jobs} threads, ${meta.seconds} s per run${warm(meta)}, ` +
      `${meta.rounds} round${meta.rounds === 1 ? '' : 's'} (median reported), targets alternating (plain, pgquorum, pgpool-II, then the references). ` +
      `All on this machine, nodes with fsync=off and the coordinator with state.fsync off (its commit decisions no more durable than the nodes' data). ` +
      `pgbench connects over loopback TCP; ${meta.nodeTransport === 'unix' ? "pgquorum, pgpool-II and PgBouncer reach the nodes over the nodes' Unix-domain sockets" : 'pgquorum, pgpool-II and PgBouncer reach the nodes over loopback TCP too'}.`,
    `- Targets: a plain PostgreSQL node; pgquorum over 3 nodes; pgpool-II native replication over the same 3 nodes ` +
      `(load_balance_mode on, replicate_select off); in TPC-B simple also pgquorum-fsync, pgquorum with state.fsync on ` +
      `(every commit decision synced to disk before COMMIT PREPARED, the default), and plain-2pc, the plain node committing each ` +
      `transaction with PREPARE TRANSACTION / COMMIT PREPARED (bench/tpcb-2pc.sql): what two-phase commit costs PostgreSQL itself; ` +
      `in all but the 200-client scenario also pgbouncer, PgBouncer ${m.pgbouncer} in session pooling mode in front of the plain node: ` +
      `what one pooling hop costs, with nothing routed or replicated.`,
    `- Consistency after the runs: ${meta.verify ?? 'not checked'}`,
    '',
  ];
  const table = [
    '| scenario | target | tps | vs plain | vs pgpool-II | p50 ms | p99 ms | failed tx | CPU s / 1k tx | machine CPU ms / tx | idle % | memory MiB |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const scenario of scenarios) {
    const plain = get(scenario, 'plain');
    const pgpool = get(scenario, 'pgpool');
    for (const target of TARGETS) {
      const s = get(scenario, target);
      if (!s) continue;
      const mem = target.startsWith('pgquorum') || target === 'pgbouncer' ? fmt(s.peakRssMiB, 0) : target === 'pgpool' ? `${fmt(s.pssMiB, 0)}¹` : '–';
      table.push(
        `| ${scenario} | ${target} | ${fmt(s.tps, 0)} | ${target === 'plain' ? '1.00×' : ratio(s.tps, plain?.tps ?? null)} | ` +
          `${target.startsWith('pgquorum') ? ratio(s.tps, pgpool?.tps ?? null) : '–'} | ${fmt(s.p50Ms, 2)} | ${fmt(s.p99Ms, 2)} | ${s.failed} | ` +
          `${target.startsWith('plain') ? '–' : fmt(s.cpuPer1kTx, 3)} | ${fmt(s.machineCpuMsPerTx, 3)} | ${fmt(s.machineIdlePct, 0)} | ${mem} |`,
      );
    }
  }
  const notes = [
    '',
    'tps: pgbench "without initial connection time"; p50/p99: from the per-transaction logs (`pgbench -l`) of every run; ' +
      'each figure is the median over the rounds. CPU s / 1k tx: user+system CPU of the pgquorum coordinator (or of all ' +
      'pgpool-II processes, or of PgBouncer) during the run, per 1,000 transactions. Machine CPU ms / tx: the busy CPU time of the whole machine ' +
      '(every process: pgbench, the nodes, the proxy; /proc/stat) per transaction, and idle %: the share of that time the CPUs ' +
      'had nothing to run. Plain keeps the CPUs nearly always busy, so a target needing k times plain\'s machine CPU per ' +
      'transaction reaches at most about 1/k of plain\'s tps on this machine, and less when its CPUs idle more. Memory: peak RSS (VmHWM) of the pgquorum coordinator ' +
      '(or PgBouncer), which is restarted for every run; ¹ pgpool-II: sum of the proportional set size (PSS) of its processes at the end of the run.' +
      (meta.warmup > 0
        ? ` Every run, on every target, follows ${meta.warmup} s of the same pgbench command, not measured (BENCH_WARMUP): ` +
          'tps, latencies and CPU are those of the measured run only; the peak RSS includes the warm-up.'
        : ''),
  ];
  const idle = meta.scenarios.find((s) => s.idle);
  if (idle) notes.push(`"${idle.name}": ${idle.idle} idle sessions (bench/idle-clients.mjs) stay connected while pgbench runs.`);
  const lost = summary.filter((s) => s.idleLost);
  for (const s of lost) notes.push(`**Warning:** ${s.target} lost ${s.idleLost} idle session(s) during "${s.scenario}".`);
  const failedRuns = summary.filter((s) => s.failed > 0);
  for (const s of failedRuns) notes.push(`**Warning:** ${s.target} had ${s.failed} failed transaction(s) in "${s.scenario}".`);

  const md = [...header, ...table, ...notes, ''].join('\n');
  fs.mkdirSync(outdir, { recursive: true });
  const base = path.join(outdir, stamp);
  fs.writeFileSync(`${base}.md`, md);
  fs.writeFileSync(`${base}.json`, JSON.stringify({ machine: m, settings: meta, summary, runs }, null, 2) + '\n');
  fs.writeFileSync(path.join(outdir, 'latest.md'), md);

  if (readme && fs.existsSync(readme)) {
    const text = fs.readFileSync(readme, 'utf8');
    const i = text.indexOf(BEGIN);
    const j = text.indexOf(END);
    if (i < 0 || j < i) {
      console.error(`bench: ${readme} has no ${BEGIN} ... ${END} block; not updated`);
    } else {
      const rel = path.relative(path.dirname(readme), `${base}.md`);
      const block = [
        BEGIN,
        `Latest \`make bench\` (${meta.startedAt.replace(/\.\d+Z$/, 'Z')}, ${m.nproc} CPUs, ${meta.seconds} s${warm(meta)} × ${meta.rounds} ` +
          `round${meta.rounds === 1 ? '' : 's'}, ` +
          `pgquorum ${m.commit}; full report: [${rel}](${rel})):`,
        ...(short ? ['', '**Short run: not representative.**'] : []),
        '',
        ...table,
        '',
        'Ratios compare tps. Nodes run with fsync=off and pgquorum with state.fsync off (its decision log no more durable ' +
          'than the nodes); pgquorum-fsync: the same with state.fsync on (the default: each commit decision synced to disk). ' +
          'plain-2pc: the plain node committing each TPC-B transaction with PREPARE TRANSACTION / ' +
          'COMMIT PREPARED (bench/tpcb-2pc.sql), no coordinator. ' +
          'pgbouncer: PgBouncer in session pooling mode in front of the plain node, one hop that routes and replicates nothing. ' +
          (meta.nodeTransport === 'unix'
            ? "pgbench connects over loopback TCP; pgquorum, pgpool-II and PgBouncer reach the nodes over the nodes' Unix-domain sockets. "
            : 'Everything connects over loopback TCP. ') +
          'CPU: user+system seconds per 1,000 transactions of the coordinator (all pgpool-II processes; PgBouncer). ' +
          'Machine CPU: busy CPU time of the whole machine (pgbench, nodes, proxy) per transaction; idle: the share of the run ' +
          'the CPUs were idle. A target needing k times plain\'s machine CPU per transaction reaches at most about 1/k of its tps here. ' +
          'Memory: coordinator (PgBouncer) peak RSS; ¹ pgpool-II: PSS of all its processes.',
        END,
      ].join('\n');
      fs.writeFileSync(readme, text.slice(0, i) + block + text.slice(j + END.length));
      console.log(`bench: updated the results table in ${readme}`);
    }
  }
  console.log(`bench: wrote ${base}.md, ${base}.json and ${path.join(outdir, 'latest.md')}`);
}

// ---------------------------------------------------------------- main

const [cmd, ...rest] = process.argv.slice(2);
switch (cmd) {
  case 'free-port':
    console.log(await freePort(Number(rest[0] ?? 1)));
    break;
  case 'cfg-prepare': {
    const [file, nodes, transport = 'tcp', devcluster] = rest;
    const c = JSON.parse(fs.readFileSync(file, 'utf8'));
    c.nodes = c.nodes.slice(0, Number(nodes));
    if (devcluster) {
      // unix: the socket directory (the dev cluster's nodes keep their sockets in their data
      // directories; what `dev up` writes); tcp: the address the node listens on.
      const dev = JSON.parse(fs.readFileSync(devcluster, 'utf8'));
      for (const n of c.nodes) {
        const d = dev.nodes.find((x) => x.id === n.id);
        n.host = transport === 'unix' ? d.dataDir : d.host;
      }
    }
    c.log = { ...(c.log ?? {}), level: 'warn' };
    fs.writeFileSync(file, JSON.stringify(c, null, 2) + '\n', { mode: 0o600 });
    console.log(c.users[0].password);
    break;
  }
  case 'dev-node': {
    const [file, id, transport] = rest;
    const d = JSON.parse(fs.readFileSync(file, 'utf8')).nodes.find((x) => x.id === id);
    if (!d) die(`no node ${id} in ${file}`);
    console.log(`${transport === 'unix' ? d.dataDir : d.host}:${d.port}`);
    break;
  }
  case 'cfg-nodes': // host:port of each node of a pgquorum config, one per line
    for (const n of JSON.parse(fs.readFileSync(rest[0], 'utf8')).nodes) console.log(`${n.host}:${n.port}`);
    break;
  case 'cfg-fsync': {
    const [file, out] = rest;
    const c = JSON.parse(fs.readFileSync(file, 'utf8'));
    c.state = { ...(c.state ?? {}), fsync: true };
    fs.writeFileSync(out, JSON.stringify(c, null, 2) + '\n', { mode: 0o600 });
    break;
  }
  case 'proc':
    console.log(JSON.stringify(procInfo(Number(rest[0]), rest[1] === 'tree')));
    break;
  case 'machine-cpu':
    console.log(JSON.stringify(machineCpu(rest[0], rest[1], Number(rest[2]))));
    break;
  case 'run-summary':
    runSummary(rest[0], rest.slice(1));
    break;
  case 'report':
    report(rest[0], rest[1], rest[2], rest[3]);
    break;
  default:
    die(`unknown command ${cmd ?? ''}; see the header of bench/lib.mjs`);
}

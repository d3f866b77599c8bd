// Issue 5's main check: 5 real nodes, pgbench TPC-B in the prepared
// protocol with 16 clients and retries; a replica is SIGKILLed (postmaster
// and every backend) at 15 s and the main node at 35 s. pgbench must finish
// with no failed transaction, pgbench_history must hold exactly the
// transactions pgbench counts as processed, the 3 survivors must be
// identical, SHOW pgquorum.nodes must show the two as down with the reason,
// and psql sessions opened before each failure must keep working.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { tableChecksums, useClusterWithCoordinator } from '../helpers/coordinator.js';
import { nodeRow, PsqlSession, showNodes, waitFor } from '../helpers/ha.js';
import { runProcess, type Run } from '../helpers/cli.js';
import { killTree, livePostmaster } from '../../src/devcluster/index.js';

const run = promisify(execFile);
const SECONDS = Number(process.env.PGQUORUM_HA_SECONDS ?? '60');
const KILL_REPLICA_AT = (SECONDS * 15) / 60;
const KILL_MAIN_AT = (SECONDS * 35) / 60;

const f = useClusterWithCoordinator({
  nodes: 5,
  edit: (c) => {
    c.health = { period: 1, connect_timeout: 2, query_timeout: 2, retries: 1, auto_attach: true };
  },
});

const sessions: PsqlSession[] = [];
after(() => {
  for (const s of sessions) s.close();
});

function pgbench(args: string[]): Promise<Run> {
  return runProcess('pgbench', args, { env: f.coord.env() });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('pgbench -M prepared -c 16 survives SIGKILL of a replica and then of the main node', async () => {
  await run('pgbench', ['-i', '-s', '1', '-q'], { env: f.coord.env(), timeout: 300_000 });
  const admin = await f.coord.client();
  const before = new PsqlSession(f.coord.env());
  sessions.push(before);
  assert.equal((await before.run('SELECT count(*) FROM pgbench_branches;')).out, '1');
  assert.equal((await nodeRow(admin, 'n1')).role, 'main');

  const t0 = Date.now();
  const bench = pgbench(['-n', '-c', '16', '-j', '2', '-T', String(SECONDS), '-M', 'prepared', '--max-tries=10']);

  // 15 s: SIGKILL a replica (n3), its postmaster and all its backends.
  await sleep(KILL_REPLICA_AT * 1000 - (Date.now() - t0));
  killTree(livePostmaster(f.cluster.nodes[2]!.dataDir)!);
  await waitFor(async () => (await nodeRow(admin, 'n3')).state === 'down', 15_000, 'n3 down');
  // the psql session from before still works, and so does a write through it
  assert.equal((await before.run('SELECT count(*) FROM pgbench_branches;')).out, '1');
  assert.equal((await before.run("BEGIN; UPDATE pgbench_branches SET filler = 'after n3' WHERE bid = 1; COMMIT;")).err, '');
  const between = new PsqlSession(f.coord.env());
  sessions.push(between);
  assert.equal((await between.run('SELECT count(*) FROM pgbench_tellers;')).out, '10');

  // 35 s: SIGKILL the main node (n1) the same way.
  await sleep(KILL_MAIN_AT * 1000 - (Date.now() - t0));
  killTree(livePostmaster(f.cluster.nodes[0]!.dataDir)!);
  await waitFor(async () => (await nodeRow(admin, 'n1')).state === 'down', 15_000, 'n1 down');
  assert.equal((await nodeRow(admin, 'n2')).role, 'main');
  for (const s of [before, between]) {
    assert.equal((await s.run('SELECT count(*) FROM pgbench_branches;')).out, '1');
    const w = await s.run("UPDATE pgbench_branches SET filler = 'after n1' WHERE bid = 1;");
    assert.equal(w.err, '', 'a write through a psql session opened before the main node was lost');
  }

  const r = await bench;
  assert.equal(r.code, 0, `pgbench failed:\n${r.stderr.slice(-3000)}`);
  const processed = Number(/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1]);
  const failed = Number(/number of failed transactions: (\d+)/.exec(r.stdout)?.[1] ?? '0');
  const retried = /number of transactions retried: (\d+)/.exec(r.stdout)?.[1] ?? '0';
  assert.ok(processed > 0, r.stdout);
  assert.equal(failed, 0, `pgbench reports failed transactions:\n${r.stdout}`);
  process.stdout.write(`# ha-pgbench: ${processed} transactions processed, ${retried} retried, 0 failed\n`);

  // Survivors n2, n4, n5: identical, with exactly one history row per processed transaction.
  const survivors = [1, 3, 4];
  for (const i of survivors) {
    const h = Number(f.cluster.psqlNode(i, 'SELECT count(*) FROM pgbench_history'));
    assert.equal(h, processed, `node ${i + 1}: pgbench_history has ${h} rows, pgbench processed ${processed}`);
    const [a, b, t, d] = f.cluster
      .psqlNode(i, 'SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(bbalance) FROM pgbench_branches), (SELECT sum(tbalance) FROM pgbench_tellers), (SELECT sum(delta) FROM pgbench_history)')
      .split('|');
    assert.ok(a === b && b === t && t === d, `node ${i + 1}: balances disagree: ${a} ${b} ${t} ${d}`);
  }
  const sums = await Promise.all(survivors.map((i) => tableChecksums(f.cluster, i)));
  for (const s of sums.slice(1)) assert.deepEqual(s, sums[0]);
  await waitFor(() => survivors.every((i) => f.cluster.psqlNode(i, 'SELECT count(*) FROM pg_prepared_xacts') === '0'), 10_000, 'no prepared transactions left');

  const rows = await showNodes(admin);
  const byId = new Map(rows.map((x) => [x.id, x]));
  for (const id of ['n1', 'n3']) {
    assert.equal(byId.get(id)!.state, 'down', `${id} state`);
    assert.match(byId.get(id)!.reason, /lost connection|health check failed|PREPARE|COMMIT/, `${id} reason`);
  }
  for (const id of ['n2', 'n4', 'n5']) assert.equal(byId.get(id)!.state, 'up', `${id} state`);
  assert.equal(byId.get('n2')!.role, 'main');
  // The two lost nodes missed commits: attaching them is refused; they need recovery.
  await assert.rejects(admin.query('PGQUORUM NODE ATTACH n1'), /needs recovery|cannot be attached/);
});

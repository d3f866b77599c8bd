// High availability without a workload (issue 5): detach/attach, no-quorum
// read-only mode with hung and killed nodes, automatic re-admission, and a
// psql session that lives through all of it. 3 real nodes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startTestCoordinator, tableChecksums, useClusterWithCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { nodeRow, PsqlSession, showNodes, waitFor } from '../helpers/ha.js';
import { killTree, livePostmaster, signalTree, startNodes } from '../../src/devcluster/index.js';

const HEALTH = { period: 0.5, connect_timeout: 1, query_timeout: 1, retries: 1, auto_attach: false };
/** Longest time a hung node may stay `up` with HEALTH: period + query_timeout + retries x (connect + query). */
const EJECT_BOUND_MS = (HEALTH.period + HEALTH.query_timeout + HEALTH.retries * (HEALTH.connect_timeout + HEALTH.query_timeout)) * 1000;
/** Slack for a shared, noisy machine (the bound is checked, generously). */
const SLACK_MS = 4000;

const f = useClusterWithCoordinator({
  nodes: 3,
  edit: (c) => {
    c.health = { ...HEALTH };
  },
});

let psql: PsqlSession | null = null;
let admin: pg.Client;
const stopped: number[] = [];
after(() => {
  psql?.close();
  for (const pid of stopped) signalTree(pid, 'SIGCONT');
});

async function expectCode(p: Promise<unknown>, code: string, re?: RegExp): Promise<pg.DatabaseError> {
  try {
    await p;
  } catch (e) {
    const err = e as pg.DatabaseError;
    assert.equal(err.code, code, `expected SQLSTATE ${code}, got ${err.code}: ${err.message}`);
    if (re) assert.match(err.message, re);
    return err;
  }
  assert.fail(`expected an error with SQLSTATE ${code}`);
}

async function identical(nodes: number[]): Promise<void> {
  const sums = await Promise.all(nodes.map((i) => tableChecksums(f.cluster, i)));
  for (const s of sums.slice(1)) assert.deepEqual(s, sums[0]);
}

test('setup: a table, a psql session kept open, SHOW pgquorum.nodes', async () => {
  admin = await f.coord.client();
  await admin.query('CREATE TABLE ha_t (id int PRIMARY KEY, v text)');
  await admin.query("INSERT INTO ha_t VALUES (1, 'one')");
  psql = new PsqlSession(f.coord.env());
  assert.equal((await psql.run('SELECT count(*) FROM ha_t;')).out, '1');
  const rows = await showNodes(admin);
  assert.deepEqual(rows.map((r) => [r.id, r.state, r.role]), [['n1', 'up', 'main'], ['n2', 'up', 'replica'], ['n3', 'up', 'replica']]);
  for (const col of ['host', 'port', 'weight', 'reads', 'writes', 'state_changed_at', 'reason']) assert.ok(col in rows[0]!, `column ${col}`);
});

test('detach then attach with no write in between: the node is back and gets the next writes, also from sessions older than the attach', async () => {
  const old = await f.coord.client(); // connected while n3 is up
  const res = await admin.query('PGQUORUM NODE DETACH n3');
  assert.equal((res as unknown as { command: string }).command, 'PGQUORUM');
  let n3 = await nodeRow(admin, 'n3');
  assert.equal(n3.state, 'down');
  assert.equal(n3.detached, 'true');
  assert.equal(n3.missed_writes, 'false');
  assert.match(n3.reason, /detached by an administrator/);
  // reads go on; the detached node is not used
  assert.equal((await old.query('SELECT count(*)::int AS n FROM ha_t')).rows[0].n, 1);
  const notices: string[] = [];
  admin.on('notice', (m) => notices.push(m.message ?? ''));
  await admin.query('PGQUORUM NODE ATTACH n3');
  admin.removeAllListeners('notice');
  assert.ok(notices.some((m) => /node n3 attached/.test(m)), notices.join('; '));
  n3 = await nodeRow(admin, 'n3');
  assert.equal(n3.state, 'up');
  assert.equal(n3.detached, 'false');
  // a session that started before the attach (it had dropped its connection to n3) writes to n3 too
  await old.query("INSERT INTO ha_t VALUES (2, 'two')");
  assert.deepEqual(await f.cluster.queryNode(2, 'SELECT v FROM ha_t WHERE id = 2'), [{ v: 'two' }]);
  await identical([0, 1, 2]);
});

test('no quorum: n2 SIGKILLed and n3 hung (SIGSTOP), no workload: ejected within the bound, writes refused with 25006, reads served; started and attached again, writes work', async () => {
  const p2 = livePostmaster(f.cluster.nodes[1]!.dataDir)!;
  const p3 = livePostmaster(f.cluster.nodes[2]!.dataDir)!;
  const t0 = Date.now();
  killTree(p2);
  signalTree(p3, 'SIGSTOP');
  stopped.push(p3);
  const row = await waitFor(async () => {
    const r = await nodeRow(admin, 'n3');
    return r.state === 'down' ? r : null;
  }, EJECT_BOUND_MS + SLACK_MS, 'n3 ejected');
  const took = Date.now() - t0;
  assert.ok(took <= EJECT_BOUND_MS + SLACK_MS, `hung node ejected after ${took} ms`);
  assert.match(row.reason, /health check failed/);
  const r2 = await nodeRow(admin, 'n2');
  assert.equal(r2.state, 'down');
  for (const r of [row, r2]) assert.equal(r.missed_writes, 'false'); // nothing was being written
  const t1 = Date.now();
  await expectCode(admin.query("INSERT INTO ha_t VALUES (5, 'five')"), '25006', /only 1 of 3 nodes are up and 2 are needed/);
  assert.ok(Date.now() - t1 < 5000, 'refused at once');
  assert.equal((await admin.query('SELECT count(*)::int AS n FROM ha_t')).rows[0].n, 2);
  // the psql session connected at the start still works, read-only
  assert.equal((await psql!.run('SELECT count(*) FROM ha_t;')).out, '2');
  assert.match((await psql!.run("INSERT INTO ha_t VALUES (6, 'six');")).err, /cannot write/);
  for (const id of ['n2', 'n3']) assert.equal((await nodeRow(admin, id)).missed_writes, 'false'); // refused writes mark nobody
  // start both again and attach them (auto_attach is off here)
  signalTree(stopped.pop()!, 'SIGCONT');
  await startNodes(f.cluster.dir);
  await expectCode(admin.query("INSERT INTO ha_t VALUES (5, 'five')"), '25006');
  await admin.query('PGQUORUM NODE ATTACH n2');
  await admin.query('PGQUORUM NODE ATTACH n3');
  assert.deepEqual((await showNodes(admin)).map((r) => r.state), ['up', 'up', 'up']);
  await admin.query("INSERT INTO ha_t VALUES (5, 'five')");
  assert.equal((await psql!.run("INSERT INTO ha_t VALUES (6, 'six'); SELECT count(*) FROM ha_t;")).out, '4');
  await identical([0, 1, 2]);
});

test('no quorum during a write: the replicas hang while it is in flight; it is refused (25006), committed nowhere, and marks nobody', async () => {
  const pids = [1, 2].map((i) => livePostmaster(f.cluster.nodes[i]!.dataDir)!);
  for (const pid of pids) {
    signalTree(pid, 'SIGSTOP');
    stopped.push(pid);
  }
  await expectCode(admin.query("INSERT INTO ha_t VALUES (8, 'eight')"), '25006');
  assert.equal((await admin.query('SELECT count(*)::int AS n FROM ha_t WHERE id = 8')).rows[0].n, 0);
  for (const id of ['n2', 'n3']) {
    const r = await nodeRow(admin, id);
    assert.equal(r.state, 'down');
    assert.equal(r.missed_writes, 'false');
  }
  for (const pid of pids) signalTree(pid, 'SIGCONT');
  stopped.length = 0;
  await admin.query('PGQUORUM NODE ATTACH n2');
  await admin.query('PGQUORUM NODE ATTACH n3');
  await admin.query("INSERT INTO ha_t VALUES (8, 'eight')");
  await identical([0, 1, 2]);
});

test('detach, write, attach: refused, the node needs recovery', async () => {
  await admin.query('PGQUORUM NODE DETACH n3');
  await admin.query("INSERT INTO ha_t VALUES (30, 'thirty')");
  assert.equal((await nodeRow(admin, 'n3')).missed_writes, 'true');
  const err = await expectCode(admin.query('PGQUORUM NODE ATTACH n3'), '55000', /node n3 cannot be attached: writes were committed without it.*needs recovery/);
  assert.ok(err.hint);
  assert.equal((await nodeRow(admin, 'n3')).state, 'down');
  // the other two carry on
  await admin.query("INSERT INTO ha_t VALUES (31, 'thirty-one')");
  await identical([0, 1]);
});

test('admin commands: unknown node, inside a transaction, syntax, non-superuser', async () => {
  await expectCode(admin.query('PGQUORUM NODE ATTACH n9'), '42704', /not in the configuration/);
  await expectCode(admin.query('PGQUORUM NODE REBOOT n1'), '42601');
  await admin.query('BEGIN');
  await expectCode(admin.query('PGQUORUM NODE DETACH n2'), '25001');
  await admin.query('ROLLBACK');
  await admin.query("CREATE ROLE ha_plain LOGIN PASSWORD 'plain-pw'");
  const cfg = f.coord.coordinator.ctx.config;
  cfg.users.push({ name: 'ha_plain', password: 'plain-pw' });
  const c = await f.coord.client({ user: 'ha_plain', password: 'plain-pw' });
  await expectCode(c.query('PGQUORUM NODE DETACH n2'), '42501');
  await c.end();
});

test('automatic re-admission (health.auto_attach): a node lost while nothing is written comes back by itself', async (t) => {
  let c2: TestCoordinator | null = null;
  t.after(() => c2?.stop());
  c2 = await startTestCoordinator(f.cluster, (c) => {
    c.health = { ...HEALTH, auto_attach: true };
  });
  const cli = await c2.client();
  // n3 is behind (missed writes on the first coordinator): this coordinator's view starts fresh, so take n3 out of it first
  await cli.query('PGQUORUM NODE DETACH n3');
  const p2 = livePostmaster(f.cluster.nodes[1]!.dataDir)!;
  killTree(p2);
  await waitFor(async () => (await nodeRow(cli, 'n2')).state === 'down', EJECT_BOUND_MS + SLACK_MS, 'n2 down');
  await expectCode(cli.query('INSERT INTO ha_t VALUES (10, $1)', ['ten']), '25006');
  await startNodes(f.cluster.dir);
  const back = await waitFor(async () => {
    const r = await nodeRow(cli, 'n2');
    return r.state === 'up' ? r : null;
  }, 15_000, 'n2 back by itself');
  assert.match(back.reason, /answers again and missed no write/);
  await cli.query('INSERT INTO ha_t VALUES (10, $1)', ['ten']);
  // the detached node stays out
  assert.equal((await nodeRow(cli, 'n3')).state, 'down');
  await identical([0, 1]);
});

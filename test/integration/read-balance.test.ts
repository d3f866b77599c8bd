// Read balancing (docs/routing.md "Balancing reads") and the read fast path
// ("The read fast path") against 3 real nodes: with reads.balance = session
// every session reads from one node and sessions are spread evenly; with
// reads.balance = statement one session's reads reach every node. Results
// that arrive in many chunks, errors and notices pass the fast path intact.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type pg from 'pg';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { showNodes } from '../helpers/ha.js';
import { RawClient, cstr, int16, int32, msg } from '../helpers/raw-client.js';

let cluster: TestCluster;
let coord: TestCoordinator;

before(async () => {
  cluster = await startTestCluster({ nodes: 3 });
  coord = await startTestCoordinator(cluster);
});

after(async () => {
  await coord?.stop();
  await cluster?.stop();
});

async function readsPerNode(c: pg.Client): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const r of await showNodes(c)) out[r.id] = Number(r['reads']);
  return out;
}

function delta(a: Record<string, number>, b: Record<string, number>): number[] {
  return Object.keys(b)
    .sort()
    .map((k) => b[k]! - (a[k] ?? 0));
}

test('reads.balance = session: each session reads from one node, 6 sessions spread 2 per node', async () => {
  const admin = await coord.client();
  const clients = await Promise.all([0, 1, 2, 3, 4, 5].map(() => coord.client()));
  const before = await readsPerNode(admin);
  for (const c of clients) {
    for (let i = 0; i < 10; i++) {
      assert.equal((await c.query(`SELECT ${i} AS v`)).rows[0].v, i); // simple protocol: the fast path
      assert.equal((await c.query('SELECT $1::int AS v', [i])).rows[0].v, i); // extended protocol
    }
  }
  const after = await readsPerNode(admin);
  assert.deepEqual(delta(before, after), [40, 40, 40], 'every node serves two sessions of 20 reads');
  // each session's backend pid is the same for all its reads: one node, one backend
  for (const c of clients) {
    const pids = new Set<number>();
    for (let i = 0; i < 5; i++) pids.add((await c.query('SELECT pg_backend_pid() AS p')).rows[0].p);
    assert.equal(pids.size, 1);
  }
});

test('the fast path relays big results, errors and notices, and the session goes on', async () => {
  const c = await coord.client();
  // many chunks: about 8 MB
  const r = await c.query("SELECT count(*) AS n, sum(length(x)) AS len FROM (SELECT repeat('x', 80) || g AS x FROM generate_series(1, 100000) g) s");
  assert.equal(Number(r.rows[0].n), 100000);
  const rows = await c.query("SELECT g, repeat('y', 60) AS pad FROM generate_series(1, 100000) g");
  assert.equal(rows.rows.length, 100000);
  assert.equal(rows.rows[99999].g, 100000);
  await assert.rejects(c.query('SELECT 1/0'), (e: { code?: string }) => e.code === '22012');
  await assert.rejects(c.query('SELECT * FROM no_such_table'), (e: { code?: string }) => e.code === '42P01');
  const notices: string[] = [];
  c.on('notice', (n) => notices.push(n.message ?? ''));
  await c.query("CREATE FUNCTION say(t text) RETURNS int STABLE LANGUAGE plpgsql AS $$BEGIN RAISE NOTICE 'said %', t; RETURN 1; END$$");
  assert.equal((await c.query("SELECT say('hello') AS v")).rows[0].v, 1);
  assert.deepEqual(notices, ['said hello']);
  // ParameterStatus from a read reaches the client and the session state
  assert.equal((await c.query('SELECT 42 AS v')).rows[0].v, 42);
});

test('reads.balance = statement: one session reaches every node', async () => {
  await coord.stop();
  coord = await startTestCoordinator(cluster, (cfg) => {
    cfg.reads = { ...cfg.reads, balance: 'statement' };
  });
  const c = await coord.client();
  const before = await readsPerNode(c);
  for (let i = 0; i < 90; i++) await c.query(`SELECT ${i}`);
  const d = delta(before, await readsPerNode(c));
  assert.equal(
    d.reduce((a, b) => a + b, 0),
    90,
  );
  for (const n of d) assert.ok(n > 0, `every node served some of the reads: ${d}`);
});

test('extended protocol: a named read statement run again is relayed (Bind/Describe/Execute/Sync), errors and the next requests intact', async () => {
  const c = await coord.client();
  await c.query('CREATE TABLE fb (id int PRIMARY KEY, s text)');
  await c.query("INSERT INTO fb SELECT g, 's' || g FROM generate_series(1, 50) g");
  for (let i = 1; i <= 20; i++) {
    const r = await c.query({ name: 'fb_get', text: 'SELECT id, s FROM fb WHERE id = $1', values: [i] });
    assert.deepEqual(r.rows, [{ id: i, s: `s${i}` }]);
    assert.deepEqual(r.fields.map((f) => f.name), ['id', 's']);
  }
  // a run-time error, then the session goes on
  await assert.rejects(c.query({ name: 'fb_div', text: 'SELECT 1 / $1::int AS v', values: [1] }).then(() => c.query({ name: 'fb_div', text: 'SELECT 1 / $1::int AS v', values: [0] })), { code: '22012' });
  assert.equal((await c.query({ name: 'fb_div', text: 'SELECT 1 / $1::int AS v', values: [1] })).rows[0].v, 1);
  // a Bind the node refuses (wrong parameter count): its error, ReadyForQuery, and the session goes on
  const r = await RawClient.connect(coord.port);
  try {
    await r.login('postgres', cluster.password);
    const parse = msg('P', cstr('raw_get'), cstr('SELECT s FROM fb WHERE id = $1'), int16(0));
    const sync = msg('S');
    await r.write(Buffer.concat([parse, sync]));
    assert.equal((await r.until('Z')).map((m) => m.type).join(''), '1Z');
    const bind = (params: string[]) =>
      msg('B', cstr(''), cstr('raw_get'), int16(0), int16(params.length), ...params.flatMap((p) => [int32(Buffer.byteLength(p)), Buffer.from(p)]), int16(0));
    const run = Buffer.concat([msg('D', Buffer.from('P'), cstr('')), msg('E', cstr(''), int32(0)), sync]);
    await r.write(Buffer.concat([bind(['7']), run]));
    assert.equal((await r.until('Z')).map((m) => m.type).join(''), '2TDCZ');
    await r.write(Buffer.concat([bind(['7', '8']), run]));
    assert.equal((await r.until('Z')).map((m) => m.type).join(''), 'EZ');
    await r.write(Buffer.concat([bind(['8']), run]));
    assert.equal((await r.until('Z')).map((m) => m.type).join(''), '2TDCZ');
  } finally {
    r.destroy();
  }
  await c.end();
});

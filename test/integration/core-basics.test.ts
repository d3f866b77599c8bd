// Basic coordinator behaviour against 3 real nodes: simple and extended
// queries, writes reaching every node, transactions, savepoints, errors,
// session state, temp tables, COPY both ways, cancel, LISTEN/NOTIFY.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { sendCancel, tableChecksums, useClusterWithCoordinator } from '../helpers/coordinator.js';

const fx = useClusterWithCoordinator({ nodes: 3 });

async function sameOnAllNodes(): Promise<void> {
  const sums = await Promise.all([0, 1, 2].map((i) => tableChecksums(fx.cluster, i)));
  assert.deepEqual(sums[1], sums[0]);
  assert.deepEqual(sums[2], sums[0]);
}

test('writes reach every node, reads work, row counts come back', async () => {
  const c = await fx.coord.client();
  await c.query('CREATE TABLE t (id int PRIMARY KEY, v text)');
  const ins = await c.query("INSERT INTO t (id, v) VALUES (1, 'a'), (2, 'b'), (3, 'c')");
  assert.equal(ins.rowCount, 3);
  const up = await c.query("UPDATE t SET v = v || 'x' WHERE id >= $1", [2]);
  assert.equal(up.rowCount, 2);
  const r = await c.query('SELECT id, v FROM t ORDER BY id');
  assert.deepEqual(r.rows, [
    { id: 1, v: 'a' },
    { id: 2, v: 'bx' },
    { id: 3, v: 'cx' },
  ]);
  for (const i of [0, 1, 2]) assert.equal(fx.cluster.psqlNode(i, 'SELECT string_agg(v, \',\' ORDER BY id) FROM t'), 'a,bx,cx');
  await sameOnAllNodes();
});

test('now() and CURRENT_TIMESTAMP give every node the same value', async () => {
  const c = await fx.coord.client();
  await c.query('CREATE TABLE times (id serial PRIMARY KEY, a timestamptz, b timestamptz, d date)');
  await c.query('INSERT INTO times (a, b, d) VALUES (now(), CURRENT_TIMESTAMP, CURRENT_DATE)');
  await c.query('INSERT INTO times (a, b, d) VALUES ($1, now(), CURRENT_DATE)', [new Date()]);
  await c.query('BEGIN');
  await c.query('INSERT INTO times (a, b) VALUES (now(), statement_timestamp())');
  await c.query('INSERT INTO times (a, b) VALUES (now(), statement_timestamp())');
  await c.query('COMMIT');
  const same = await c.query('SELECT count(DISTINCT a) AS n FROM times WHERE id > 2');
  assert.equal(Number(same.rows[0].n), 1, 'now() is constant within a transaction');
  await sameOnAllNodes();
});

test('transactions, savepoints and errors leave every node the same', async () => {
  const c = await fx.coord.client();
  await c.query('CREATE TABLE acct (id int PRIMARY KEY, bal int NOT NULL CHECK (bal >= 0))');
  await c.query('INSERT INTO acct SELECT g, 100 FROM generate_series(1, 10) g');
  await c.query('BEGIN');
  await c.query('UPDATE acct SET bal = bal - 10 WHERE id = 1');
  await c.query('SAVEPOINT s1');
  await c.query('UPDATE acct SET bal = bal + 10 WHERE id = 2');
  await assert.rejects(c.query('UPDATE acct SET bal = bal - 1000 WHERE id = 3'), (e: { code?: string }) => e.code === '23514');
  await assert.rejects(c.query('SELECT 1'), (e: { code?: string }) => e.code === '25P02');
  await c.query('ROLLBACK TO SAVEPOINT s1');
  await c.query('UPDATE acct SET bal = bal + 10 WHERE id = 4');
  await c.query('COMMIT');
  const r = await c.query('SELECT sum(bal)::int AS s, (SELECT bal FROM acct WHERE id = 2) AS b2 FROM acct');
  assert.deepEqual(r.rows[0], { s: 1000, b2: 100 });
  await c.query('BEGIN');
  await c.query('UPDATE acct SET bal = 0');
  await c.query('ROLLBACK');
  await assert.rejects(c.query('INSERT INTO acct VALUES (1, 5)'), (e: { code?: string }) => e.code === '23505');
  await sameOnAllNodes();
});

test('read-only transaction and reads inside a write transaction', async () => {
  const c = await fx.coord.client();
  await c.query('CREATE TABLE rw (id int PRIMARY KEY)');
  await c.query('BEGIN READ ONLY');
  await c.query('SELECT count(*) FROM rw');
  await assert.rejects(c.query('INSERT INTO rw VALUES (1)'), (e: { code?: string }) => e.code === '25006');
  await c.query('ROLLBACK');
  await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
  await c.query('INSERT INTO rw VALUES (1)');
  const r = await c.query('SELECT count(*)::int AS n FROM rw');
  assert.equal(r.rows[0].n, 1, 'a read after a write sees the write (main node)');
  await c.query('COMMIT');
  await sameOnAllNodes();
});

test('multi-statement simple queries', async () => {
  const c = await fx.coord.client();
  const res = (await c.query('CREATE TABLE ms (a int); INSERT INTO ms VALUES (1); INSERT INTO ms VALUES (2); SELECT sum(a)::int AS s FROM ms')) as unknown as Array<{ rows: unknown[] }>;
  assert.deepEqual(res[3]!.rows, [{ s: 3 }]);
  await assert.rejects(c.query('INSERT INTO ms VALUES (3); SELECT 1/0; INSERT INTO ms VALUES (4)'), (e: { code?: string }) => e.code === '22012');
  const r = await c.query('SELECT count(*)::int AS n FROM ms');
  assert.equal(r.rows[0].n, 2, 'the implicit transaction of a failed string is rolled back');
  await c.query('BEGIN; INSERT INTO ms VALUES (5); COMMIT');
  await sameOnAllNodes();
});

test('SET reaches every node connection; ParameterStatus once', async () => {
  const c = await fx.coord.client();
  await c.query("SET application_name = 'pgq-test'");
  await c.query("SET TimeZone = 'Asia/Tokyo'");
  for (let i = 0; i < 12; i++) {
    const r = await c.query('SHOW TimeZone');
    assert.equal(r.rows[0].TimeZone, 'Asia/Tokyo');
  }
  const r = await c.query("SELECT set_config('work_mem', '7MB', false) AS v");
  assert.equal(r.rows[0].v, '7MB');
  for (let i = 0; i < 9; i++) assert.equal((await c.query('SHOW work_mem')).rows[0].work_mem, '7MB');
  await c.query('RESET ALL');
  assert.notEqual((await c.query('SHOW TimeZone')).rows[0].TimeZone, 'Asia/Tokyo');
});

test('temporary tables live on the main node and the session reads them there', async () => {
  const c = await fx.coord.client();
  await c.query('CREATE TEMP TABLE tmp1 (a int)');
  await c.query('INSERT INTO tmp1 VALUES (1), (2)');
  for (let i = 0; i < 6; i++) assert.equal((await c.query('SELECT count(*)::int AS n FROM tmp1')).rows[0].n, 2);
  await c.query('DROP TABLE tmp1');
});

test('prepared statements (named) and portals with row limits', async () => {
  const c = await fx.coord.client();
  await c.query('CREATE TABLE pp (id int PRIMARY KEY, v text)');
  for (let i = 0; i < 20; i++) await c.query({ name: 'ins', text: 'INSERT INTO pp VALUES ($1, $2)', values: [i, `v${i}`] });
  for (let i = 0; i < 10; i++) {
    const r = await c.query({ name: 'sel', text: 'SELECT v FROM pp WHERE id = $1', values: [i] });
    assert.equal(r.rows[0].v, `v${i}`);
  }
  await sameOnAllNodes();
});

test('COPY FROM STDIN reaches every node; COPY TO STDOUT reads it back', async () => {
  const c = await fx.coord.client();
  await c.query('CREATE TABLE cp (id int, v text)');
  const lines: string[] = [];
  for (let i = 0; i < 5000; i++) lines.push(`${i}\tvalue ${i}\n`);
  await pipeline(Readable.from(lines), c.query(copyFrom('COPY cp FROM STDIN')));
  assert.equal((await c.query('SELECT count(*)::int AS n FROM cp')).rows[0].n, 5000);
  const chunks: Buffer[] = [];
  const out = c.query(copyTo('COPY (SELECT * FROM cp ORDER BY id) TO STDOUT'));
  for await (const ch of out) chunks.push(ch as Buffer);
  assert.equal(Buffer.concat(chunks).toString(), lines.join(''));
  await sameOnAllNodes();
});

test('cancel stops a pg_sleep on the node; the session goes on', async () => {
  const c = await fx.coord.client();
  const t0 = Date.now();
  const p = c.query('SELECT pg_sleep(30)');
  await new Promise((r) => setTimeout(r, 500));
  const killer = await fx.coord.client();
  await killer.query('SELECT 1');
  // node-postgres sends a CancelRequest with the BackendKeyData it received.
  await sendCancel(fx.coord.port, c);
  await assert.rejects(p, (e: { code?: string }) => e.code === '57014');
  assert.ok(Date.now() - t0 < 20_000);
  assert.equal((await c.query('SELECT 1 AS x')).rows[0].x, 1);
});

test('LISTEN/NOTIFY through the main node', async () => {
  const a = await fx.coord.client();
  const b = await fx.coord.client();
  await a.query('LISTEN chan1');
  const got = new Promise<string>((resolve) => a.on('notification', (n) => resolve(n.payload ?? '')));
  await b.query("NOTIFY chan1, 'hello'");
  assert.equal(await got, 'hello');
});

test('a statement the coordinator refuses inside a transaction aborts it like any error', async () => {
  const c = await fx.coord.client();
  await c.query('CREATE TABLE refused (id int PRIMARY KEY)');
  await c.query('CREATE TEMP TABLE refused_src AS SELECT 1 AS id');
  await c.query('BEGIN');
  await c.query('INSERT INTO refused VALUES (100)');
  await assert.rejects(c.query('INSERT INTO refused SELECT id FROM refused_src'), (e: { code?: string }) => e.code === '0A000');
  await assert.rejects(c.query('INSERT INTO refused VALUES (101)'), (e: { code?: string }) => e.code === '25P02');
  const r = await c.query('COMMIT');
  assert.equal(r.command, 'ROLLBACK');
  assert.equal((await c.query('SELECT count(*)::int AS n FROM refused')).rows[0].n, 0);
  for (const i of [0, 1, 2]) assert.equal(fx.cluster.psqlNode(i, 'SELECT count(*) FROM refused'), '0');
});

test('SQL-level PREPARE/EXECUTE with now(): every node stores the same time, fresh at each EXECUTE', async () => {
  const c = await fx.coord.client();
  await c.query('CREATE TABLE pe (id int PRIMARY KEY, at timestamptz)');
  await c.query('PREPARE ins_now (int) AS INSERT INTO pe VALUES ($1, now())');
  await c.query('EXECUTE ins_now(1)');
  await new Promise((r) => setTimeout(r, 20));
  await c.query('EXECUTE ins_now(2)');
  const r = await c.query('SELECT count(DISTINCT at)::int AS n FROM pe');
  assert.equal(r.rows[0].n, 2);
  await c.query('DEALLOCATE ins_now');
  await sameOnAllNodes();
});

test('SHOW pgquorum.nodes and SHOW pgquorum.transactions are answered by the coordinator', async () => {
  const c = await fx.coord.client();
  const r = await c.query('SHOW pgquorum.nodes');
  assert.deepEqual(
    r.rows.map((x) => [x.id, x.state, x.role]),
    [
      ['n1', 'up', 'main'],
      ['n2', 'up', 'replica'],
      ['n3', 'up', 'replica'],
    ],
  );
  assert.ok(r.rows.every((x) => Number(x.writes) > 0));
  const t = await c.query('SHOW pgquorum.transactions');
  assert.deepEqual(t.fields.map((f) => f.name), ['gxid', 'gid', 'session', 'phase', 'started_at', 'nodes']);
});

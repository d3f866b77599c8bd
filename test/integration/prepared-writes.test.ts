// Keyed writes sent by the simple protocol run on the nodes as prepared
// statements, and keyed reads on their node (docs/routing.md "Keyed
// statements as prepared statements"). Checked
// on the nodes themselves: what the coordinator's backends ran
// (pg_stat_activity), the rows every node holds, and that the client sees
// exactly what a plain PostgreSQL would answer (rows, errors, positions).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { assertNodesIdentical, startTestCoordinator, useClusterWithCoordinator } from '../helpers/coordinator.js';
import { MAX_OWN_STATEMENTS } from '../../src/txn/prepared-write.js';
import { RawClient, query } from '../helpers/raw-client.js';

const fx = useClusterWithCoordinator({
  nodes: 3,
  setup: async () => {
    const c = await fx.coord.client();
    await c.query('CREATE TABLE pw (id int PRIMARY KEY, v int NOT NULL, b bigint, n numeric, t timestamptz, s text)');
    await c.query("INSERT INTO pw SELECT g, 0, 0, 0, NULL, 's' || g FROM generate_series(1, 10) g ORDER BY g");
    await c.end();
  },
});

const sameOnAllNodes = (): Promise<void> => assertNodesIdentical(fx.cluster, [0, 1, 2]);

/** The text the backends serving application `app` ran last, per node. */
function lastQuery(app: string): string[] {
  return [0, 1, 2].map((i) => fx.cluster.psqlNode(i, `SELECT string_agg(query, ' | ') FROM pg_stat_activity WHERE application_name = '${app}'`));
}

/** Some backend serving application `app` ran `sql` last (the session's own, or a shared read connection of its login). */
function ranLast(app: string, sql: string): boolean {
  return lastQuery(app).some((q) => q.split(' | ').includes(sql));
}

/** What a plain node answers: the statement run on node 3 directly, in a transaction rolled back. */
type Sql = string | pg.QueryConfig;
const textOf = (sql: Sql): string => (typeof sql === 'string' ? sql : sql.text);

async function onNode(sql: Sql): Promise<{ rows?: unknown[]; error?: { code?: string; position?: string; message: string } }> {
  const c = new pg.Client(fx.cluster.nodeClientConfig(2));
  await c.connect();
  try {
    await c.query('BEGIN');
    return { rows: (await c.query(sql)).rows };
  } catch (e) {
    const x = e as { code?: string; position?: string; message: string };
    return { error: { code: x.code, position: x.position, message: x.message } };
  } finally {
    await c.query('ROLLBACK').catch(() => undefined);
    await c.end();
  }
}

async function throughPgquorum(c: pg.Client, sql: Sql): Promise<{ rows?: unknown[]; error?: { code?: string; position?: string; message: string } }> {
  try {
    return { rows: (await c.query(sql)).rows };
  } catch (e) {
    const x = e as { code?: string; position?: string; message: string };
    return { error: { code: x.code, position: x.position, message: x.message } };
  }
}

/** `sql` through pgquorum, in a transaction rolled back, answers what a plain node answers; returns that answer. */
async function assertAsOnNode(c: pg.Client, sql: Sql): Promise<Awaited<ReturnType<typeof onNode>>> {
  const want = await onNode(sql);
  await c.query('BEGIN');
  const got = await throughPgquorum(c, sql);
  await c.query('ROLLBACK');
  assert.deepEqual(got, want, textOf(sql));
  return want;
}

test('a keyed write sent as a query runs on every node as a prepared statement, with the values PostgreSQL would give its literals', async () => {
  const c = await fx.coord.client({ application_name: 'pw-values' });
  await c.query('BEGIN');
  await c.query('UPDATE pw SET v = v + -7, b = 9223372036854775807, n = - 1.50e2 WHERE id = 1');
  assert.deepEqual(lastQuery('pw-values')[0], 'UPDATE pw SET v = v + $1, b = $2, n = $3 WHERE id = $4', 'the main node ran the prepared form');
  await c.query("INSERT INTO pw VALUES (11, -2147483648, 2147483648, 0.001, CURRENT_TIMESTAMP, 'x')");
  await c.query('COMMIT');
  // autocommit, and a DELETE
  await c.query('UPDATE pw SET v = v * 3 WHERE id = 1');
  await c.query('DELETE FROM pw WHERE id = 10');
  for (const i of [0, 1, 2]) {
    assert.equal(fx.cluster.psqlNode(i, 'SELECT v, b, n FROM pw WHERE id = 1'), '-21|9223372036854775807|-150');
    assert.equal(fx.cluster.psqlNode(i, 'SELECT v, b, n, t IS NOT NULL FROM pw WHERE id = 11'), '-2147483648|2147483648|0.001|t');
    assert.equal(fx.cluster.psqlNode(i, 'SELECT count(*) FROM pw WHERE id = 10'), '0');
  }
  // writes.prepare = off: the text as sent
  const other = await startTestCoordinator(fx.cluster, (cfg) => {
    cfg.writes = { replicate: 'at_commit', prepare: 'off' };
  });
  try {
    const o = await other.client({ application_name: 'pw-off' });
    await o.query('BEGIN');
    await o.query('UPDATE pw SET v = v + 1 WHERE id = 2');
    assert.equal(lastQuery('pw-off')[0], 'UPDATE pw SET v = v + 1 WHERE id = 2');
    await o.query('ROLLBACK');
  } finally {
    await other.stop();
  }
  await sameOnAllNodes();
  await c.end();
});

test('the client sees what PostgreSQL answers: RETURNING rows, errors with their SQLSTATE and position', async () => {
  const c = await fx.coord.client();
  for (const sql of [
    'UPDATE pw SET v = v + 5 WHERE id = 3 RETURNING id, v, n * 2 AS twice',
    'UPDATE pw SET v = 123456789 WHERE nocol = 1', // 42703, position after a replaced number
    'UPDATE pw SET nocol = 123456789 WHERE id = 1', // 42703, position before it
    'UPDATE pw SET v = -2147483648 * 2 WHERE id = 4', // 22003: int4 arithmetic, as the literal
    'UPDATE pw SET v = 99999999999 WHERE id = 4', // 22003 on assignment from int8
    "UPDATE pw SET v = 1 WHERE id = 4 AND s = 1", // 42883: text = integer
    'INSERT INTO pw (id, v) VALUES (1, 1)', // 23505
    'DELETE FROM pw WHERE id = 99 RETURNING *',
  ]) {
    await assertAsOnNode(c, sql);
  }
  await sameOnAllNodes();
  await c.end();
});

test('writes whose time functions the coordinator replaced: error positions point into the client\'s text', async () => {
  const c = await fx.coord.client();
  for (const sql of [
    'UPDATE pw SET t = now() WHERE nocol = 1', // 42703 after now()
    'UPDATE pw SET t = now(), v = 1 WHERE id = 2 AND nocol = 3',
    "UPDATE pw SET t = CURRENT_TIMESTAMP, s = 'é😀' || nocol WHERE id > 100", // multibyte and astral characters
    'UPDATE pw SET nocol = statement_timestamp() WHERE id = 1', // before the replaced function
    "INSERT INTO pw (id, v, t, s) VALUES (20, 1, clock_timestamp(), nosuch)",
    "UPDATE pw SET t = now() WHERE id = 2; UPDATE pw SET t = now() WHERE nocol = 2", // the second statement
    'UPDATE pw SET t = now(), v = nocol + 12 WHERE id = 2', // keyed: the coordinator's prepared statement, with the time and 12 as parameters
    "UPDATE pw SET t = now(), s = 'é😀' WHERE id = 2 + nocol",
  ]) {
    const want = await assertAsOnNode(c, sql);
    assert.ok(want.error?.position, `the node reports a position for ${sql}`);
  }
  await sameOnAllNodes();
  await c.end();
});

test("statements the client prepares (extended protocol) whose time functions became parameters: error positions point into the client's text", async () => {
  const c = await fx.coord.client();
  for (const sql of [
    { text: 'UPDATE pw SET t = now() WHERE nocol = $1', values: [1] },
    { text: "UPDATE pw SET t = CURRENT_TIMESTAMP, s = 'é😀' || nocol WHERE id > $1", values: [100] }, // multibyte and astral characters
    { text: 'UPDATE pw SET nocol = statement_timestamp() WHERE id = $1', values: [1] }, // before the replaced function
    { name: 'pw-pos-named', text: 'UPDATE pw SET t = now(), v = $1 WHERE id = 2 AND nocol = 3', values: [1] },
    { text: 'INSERT INTO pw (id, v, t, s) VALUES ($1, 1, clock_timestamp(), nosuch)', values: [20] },
    { text: 'UPDATE pw SET t = now(), v = nocol + $1 WHERE id = 2', values: [12] },
  ]) {
    const want = await assertAsOnNode(c, sql);
    assert.ok(want.error?.position, `the node reports a position for ${sql.text}`);
  }
  // A statement without time functions in the same session is left as the node reports it.
  const plainText = { text: 'UPDATE pw SET v = nocol WHERE id = $1', values: [1] };
  assert.ok((await assertAsOnNode(c, plainText)).error?.position);
  await sameOnAllNodes();
  await c.end();
});

test(`more statement shapes than a node connection keeps (${MAX_OWN_STATEMENTS}): the oldest are closed and made again`, async () => {
  const c = await fx.coord.client();
  const shapes = MAX_OWN_STATEMENTS + 6;
  for (let round = 0; round < 2; round++) {
    await c.query('BEGIN');
    for (let k = 0; k < shapes; k++) await c.query(`UPDATE pw SET v = v + 1 WHERE id = ${(k % 5) + 5} /* shape ${k} */`);
    await c.query('COMMIT');
    for (let k = 0; k < shapes; k += 7) await c.query(`UPDATE pw SET b = b + ${k} WHERE id = 6 /* shape ${k} */`);
  }
  const v = fx.cluster.psqlNode(0, 'SELECT sum(v) FROM pw WHERE id BETWEEN 5 AND 9');
  for (const i of [1, 2]) assert.equal(fx.cluster.psqlNode(i, 'SELECT sum(v) FROM pw WHERE id BETWEEN 5 AND 9'), v);
  assert.equal(fx.coord.coordinator.ctx.cluster.nodes.filter((n) => n.state === 'up').length, 3, 'no node was ejected');
  await sameOnAllNodes();
  await c.end();
});

test('statements first made in a transaction that rolled back (the held copies never ran) are made again, not assumed', async () => {
  const c = await fx.coord.client();
  // simple protocol: the prepared form, first used in a transaction that rolls back
  await c.query('BEGIN');
  await c.query('UPDATE pw SET v = v + 100 WHERE id = 7 /* first in a rollback */');
  await c.query('ROLLBACK');
  await c.query('BEGIN');
  await c.query('UPDATE pw SET v = v + 1 WHERE id = 7 /* first in a rollback */');
  await c.query('COMMIT');
  // extended protocol: a named statement first parsed in a transaction that rolls back
  await c.query('BEGIN');
  await c.query({ name: 'pw_named', text: 'UPDATE pw SET v = v + $1 WHERE id = $2', values: [100, 8] });
  await c.query('ROLLBACK');
  await c.query('BEGIN');
  await c.query({ name: 'pw_named', text: 'UPDATE pw SET v = v + $1 WHERE id = $2', values: [1, 8] });
  await c.query('COMMIT');
  // and one whose held copy failed on the others (the transaction failed before COMMIT ran it)
  await c.query('BEGIN');
  await c.query('UPDATE pw SET v = v + 100 WHERE id = 9 /* before a failure */');
  await assert.rejects(c.query('SELECT 1/0'), { code: '22012' });
  await c.query('ROLLBACK');
  await c.query('UPDATE pw SET v = v + 1 WHERE id = 9 /* before a failure */');
  assert.equal(fx.coord.coordinator.ctx.cluster.nodes.filter((n) => n.state === 'up').length, 3, 'no node was ejected');
  for (const i of [0, 1, 2]) assert.equal(fx.cluster.psqlNode(i, 'SELECT v FROM pw WHERE id = 7'), fx.cluster.psqlNode(0, 'SELECT v FROM pw WHERE id = 7'));
  await sameOnAllNodes();
  await c.end();
});

/** Rows and the result's columns (name, type), or the error. */
async function answer(c: pg.Client, sql: string): Promise<unknown> {
  try {
    const r = await c.query(sql);
    return { rows: r.rows, fields: r.fields.map((f) => [f.name, f.dataTypeID]) };
  } catch (e) {
    const x = e as { code?: string; position?: string; message: string };
    return { error: { code: x.code, position: x.position, message: x.message } };
  }
}

const READS = [
  'SELECT id, v, n * 2 AS twice, 1.5 AS x, 2147483648 AS big, -3 AS neg FROM pw WHERE id = 3',
  'SELECT nocol FROM pw WHERE id = 123456789', // 42703: an error in the prepared form's Parse
  "SELECT v FROM pw WHERE id = 4 AND s = 1", // 42883, with a position
  'SELECT v FROM pw WHERE id = 4 AND v / 0 = 1', // 22012 while it runs
  'SELECT v FROM pw WHERE id = 99999999999', // an int8 parameter against an int4 key
  'SELECT * FROM pw WHERE id = 99', // no row: the columns still come
];

test('a keyed read sent as a query runs on its node as a prepared statement, and the client sees what PostgreSQL answers', async () => {
  const c = await fx.coord.client({ application_name: 'pr-read' });
  await c.query('SELECT v FROM pw WHERE id = 2'); // the first one asks the catalog for the key
  await c.query('SELECT v FROM pw WHERE id = 3'); // then the fast path
  assert.ok(ranLast('pr-read', 'SELECT v FROM pw WHERE id = $1'), `a node ran the prepared form: ${lastQuery('pr-read').join(' / ')}`);
  await c.query('BEGIN');
  await c.query('SELECT s FROM pw WHERE id = 5');
  assert.ok(ranLast('pr-read', 'SELECT s FROM pw WHERE id = $1'), 'in a transaction block too');
  await c.query('COMMIT');
  // on the wire, the simple protocol's answer: no ParseComplete / BindComplete, in and out of a transaction block
  const r = await RawClient.connect(fx.coord.port);
  try {
    await r.login('postgres', fx.cluster.password);
    for (const sql of ['SELECT v FROM pw WHERE id = 6', 'SELECT v FROM pw WHERE id = 7', 'BEGIN', 'SELECT v FROM pw WHERE id = 8', 'COMMIT', 'SELECT nocol FROM pw WHERE id = 1']) {
      await r.write(query(sql));
      const types = (await r.until('Z')).map((m) => m.type).join('');
      const want = sql.startsWith('SELECT v') ? 'TDCZ' : sql.includes('nocol') ? 'EZ' : 'CZ';
      assert.equal(types, want, sql);
    }
  } finally {
    r.destroy();
  }
  // a read that is not by a unique key goes as sent
  await c.query('SELECT count(*) FROM pw WHERE v = 12345');
  assert.ok(ranLast('pr-read', 'SELECT count(*) FROM pw WHERE v = 12345'));
  const node = new pg.Client(fx.cluster.nodeClientConfig(2));
  await node.connect();
  try {
    for (const sql of READS) {
      const want = await answer(node, sql);
      assert.deepEqual(await answer(c, sql), want, `autocommit: ${sql}`);
      await c.query('BEGIN');
      assert.deepEqual(await answer(c, sql), want, `in a transaction block: ${sql}`);
      await c.query('ROLLBACK');
    }
  } finally {
    await node.end();
  }
  // reads.prepare = off: the text as sent
  const other = await startTestCoordinator(fx.cluster, (cfg) => {
    cfg.reads = { ...cfg.reads, prepare: 'off' };
  });
  try {
    const o = await other.client({ application_name: 'pr-off' });
    for (let i = 0; i < 3; i++) await o.query(`SELECT v FROM pw WHERE id = ${i + 1}`);
    assert.ok(lastQuery('pr-off').includes('SELECT v FROM pw WHERE id = 3'), lastQuery('pr-off').join(' / '));
    await o.end();
  } finally {
    await other.stop();
  }
  await c.end();
});

test("DEALLOCATE ALL by the client also drops the coordinator's statements: they are made again, nothing fails", async () => {
  const c = await fx.coord.client({ application_name: 'pr-dealloc' });
  const readWrite = async (k: number): Promise<void> => {
    assert.equal((await c.query(`SELECT id FROM pw WHERE id = ${k}`)).rows[0].id, k);
    await c.query('BEGIN');
    await c.query(`UPDATE pw SET v = v + 1 WHERE id = ${k}`);
    assert.equal((await c.query(`SELECT id FROM pw WHERE id = ${k}`)).rows[0].id, k);
    await c.query('COMMIT');
  };
  await readWrite(1);
  await c.query('DEALLOCATE ALL');
  await readWrite(2);
  // one by one: the coordinator's names are its own (the nodes need not all hold them); refused, in and out of a transaction block
  const names = (await c.query("SELECT name FROM pg_prepared_statements WHERE name LIKE 'pgquorum\\_%'")).rows.map((r) => r.name as string);
  assert.ok(names.length > 0);
  for (const n of names) await assert.rejects(c.query(`DEALLOCATE ${n}`), { code: '26000' });
  await assert.rejects(c.query(`PREPARE ${names[0]} AS SELECT 1`), { code: '42P05' });
  await c.query('BEGIN');
  await assert.rejects(c.query(`DEALLOCATE ${names[0]}`), { code: '26000' });
  await c.query('ROLLBACK');
  await readWrite(3);
  assert.equal(fx.coord.coordinator.ctx.cluster.nodes.filter((n) => n.state === 'up').length, 3, 'no node was ejected');
  await sameOnAllNodes();
  await c.end();
});

// Keyed writes sent by the simple protocol run on the nodes as prepared
// statements (docs/routing.md "Keyed writes as prepared statements"). Checked
// on the nodes themselves: what the coordinator's backends ran
// (pg_stat_activity), the rows every node holds, and that the client sees
// exactly what a plain PostgreSQL would answer (rows, errors, positions).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { assertNodesIdentical, startTestCoordinator, useClusterWithCoordinator } from '../helpers/coordinator.js';
import { MAX_OWN_STATEMENTS } from '../../src/txn/prepared-write.js';

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

/** What a plain node answers: the statement run on node 3 directly, in a transaction rolled back. */
async function onNode(sql: string): Promise<{ rows?: unknown[]; error?: { code?: string; position?: string; message: string } }> {
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

async function throughPgquorum(c: pg.Client, sql: string): Promise<{ rows?: unknown[]; error?: { code?: string; position?: string; message: string } }> {
  try {
    return { rows: (await c.query(sql)).rows };
  } catch (e) {
    const x = e as { code?: string; position?: string; message: string };
    return { error: { code: x.code, position: x.position, message: x.message } };
  }
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
    const want = await onNode(sql);
    await c.query('BEGIN');
    const got = await throughPgquorum(c, sql);
    await c.query('ROLLBACK');
    assert.deepEqual(got, want, sql);
  }
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

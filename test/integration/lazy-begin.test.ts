// Lazy BEGIN (docs/routing.md "Transactions"): a plain BEGIN sent as a
// simple Query is answered by the coordinator and reaches the nodes with the
// transaction's first statement. Checked on the nodes themselves
// (pg_stat_statements counts every BEGIN a node ran) and against what
// PostgreSQL answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type pg from 'pg';
import { assertNodesIdentical, perNode, useClusterWithCoordinator } from '../helpers/coordinator.js';

const fx = useClusterWithCoordinator({
  nodes: 3,
  setup: async () => {
    const c = await fx.coord.client();
    await c.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await c.query('CREATE TABLE lb (id int PRIMARY KEY, v text)');
    await c.end();
  },
});

/** BEGINs each node ran (pg_stat_statements keeps utility statements by text). */
function begins(): number[] {
  return [0, 1, 2].map((i) =>
    Number(fx.cluster.psqlNode(i, "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query ~* '^\\s*(begin|start)'")),
  );
}

const delta = perNode;
const sameOnAllNodes = (): Promise<void> => assertNodesIdentical(fx.cluster, [0, 1, 2]);

/** The command tags and notices a simple Query gets (node-postgres returns one result per statement). */
async function tagOf(c: pg.Client, sql: string): Promise<string | null> {
  const r = (await c.query(sql)) as unknown as { command: string | null };
  return r.command;
}

test('BEGIN then COMMIT or ROLLBACK with nothing between: answered as PostgreSQL does, and no node runs anything', async () => {
  const c = await fx.coord.client();
  const b0 = begins();
  assert.equal(await tagOf(c, 'BEGIN'), 'BEGIN');
  assert.equal(await tagOf(c, 'COMMIT'), 'COMMIT');
  assert.equal(await tagOf(c, 'START TRANSACTION'), 'START');
  assert.equal(await tagOf(c, 'END'), 'COMMIT');
  assert.equal(await tagOf(c, 'begin work;'), 'BEGIN');
  assert.equal(await tagOf(c, 'ABORT'), 'ROLLBACK');
  assert.equal(await tagOf(c, 'BEGIN TRANSACTION'), 'BEGIN');
  assert.equal(await tagOf(c, 'ROLLBACK WORK'), 'ROLLBACK');
  assert.deepEqual(delta(b0, begins()), [0, 0, 0]);
  await c.end();
});

test('the first statement carries the BEGIN: a read to one node, a write to every node, committed with two-phase commit', async () => {
  const c = await fx.coord.client();
  let b0 = begins();
  await c.query('BEGIN');
  const r = await c.query('SELECT count(*)::int AS n FROM lb');
  assert.equal(r.rows[0].n, 0);
  assert.equal(await tagOf(c, 'COMMIT'), 'COMMIT');
  assert.deepEqual(
    delta(b0, begins()).sort(),
    [0, 0, 1],
    'one node ran the read-only transaction',
  );
  b0 = begins();
  await c.query('BEGIN');
  await c.query("INSERT INTO lb VALUES (1, 'one')");
  await c.query("UPDATE lb SET v = v || '!' WHERE id = 1");
  assert.equal(await tagOf(c, 'COMMIT'), 'COMMIT');
  assert.deepEqual(delta(b0, begins()), [1, 1, 1]);
  for (const i of [0, 1, 2]) {
    assert.equal(fx.cluster.psqlNode(i, 'SELECT v FROM lb WHERE id = 1'), 'one!');
    assert.equal(fx.cluster.psqlNode(i, 'SELECT count(*) FROM pg_prepared_xacts'), '0');
  }
  await sameOnAllNodes();
  await c.end();
});

test('errors inside a lazily begun transaction: 25P02 afterwards, COMMIT answers ROLLBACK, nothing written', async () => {
  const c = await fx.coord.client();
  // refused by the coordinator itself, before any node saw the transaction
  await c.query('BEGIN');
  await assert.rejects(c.query("PREPARE TRANSACTION 'x'"), (e: { code?: string }) => e.code === '0A000');
  await assert.rejects(c.query('SELECT 1'), (e: { code?: string }) => e.code === '25P02');
  await assert.rejects(c.query("INSERT INTO lb VALUES (2, 'no')"), (e: { code?: string }) => e.code === '25P02');
  assert.equal(await tagOf(c, 'COMMIT'), 'ROLLBACK');
  // refused by a node on the first statement
  await c.query('BEGIN');
  await assert.rejects(c.query('SELECT 1/0'), (e: { code?: string }) => e.code === '22012');
  await assert.rejects(c.query('SELECT 1'), (e: { code?: string }) => e.code === '25P02');
  assert.equal(await tagOf(c, 'COMMIT'), 'ROLLBACK');
  // a broken write as the first statement
  await c.query('BEGIN');
  await assert.rejects(c.query("INSERT INTO lb VALUES (1, 'dup')"), (e: { code?: string }) => e.code === '23505');
  assert.equal(await tagOf(c, 'ROLLBACK'), 'ROLLBACK');
  // the session goes on
  assert.equal((await c.query('SELECT count(*)::int AS n FROM lb')).rows[0].n, 1);
  for (const i of [0, 1, 2]) assert.equal(fx.cluster.psqlNode(i, "SELECT count(*) FROM lb WHERE v IN ('no', 'dup')"), '0');
  await sameOnAllNodes();
  await c.end();
});

test('BEGIN twice warns as PostgreSQL does; savepoints and SET LOCAL as the first statements', async () => {
  const c = await fx.coord.client();
  const notices: { code?: string; message: string }[] = [];
  c.on('notice', (n) => notices.push(n as { code?: string; message: string }));
  await c.query('BEGIN');
  await c.query('BEGIN');
  assert.equal(notices.length, 1);
  assert.equal(notices[0]!.code, '25001');
  assert.match(notices[0]!.message, /already a transaction in progress/);
  await c.query('COMMIT');

  await c.query('BEGIN');
  await c.query('SAVEPOINT s1');
  await c.query("INSERT INTO lb VALUES (10, 'rolled back')");
  await c.query('ROLLBACK TO SAVEPOINT s1');
  await c.query("INSERT INTO lb VALUES (11, 'kept')");
  await c.query('COMMIT');
  for (const i of [0, 1, 2]) assert.equal(fx.cluster.psqlNode(i, 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM lb WHERE id >= 10'), '11');

  await c.query('BEGIN');
  await c.query("SET LOCAL statement_timeout = '1234ms'");
  assert.equal((await c.query('SHOW statement_timeout')).rows[0].statement_timeout, '1234ms');
  await c.query('COMMIT');
  assert.equal((await c.query('SHOW statement_timeout')).rows[0].statement_timeout, '0');
  await sameOnAllNodes();
  await c.end();
});

test('now() in a lazily begun transaction is the time its first statement reached the nodes, in reads and in writes', async () => {
  const c = await fx.coord.client();
  await c.query('CREATE TABLE lbt (id int PRIMARY KEY, at timestamptz)');
  await c.query('BEGIN');
  const begun = Date.now();
  await new Promise((r) => setTimeout(r, 1000));
  await c.query('INSERT INTO lbt VALUES (1, now())');
  const r = await c.query('SELECT (SELECT at FROM lbt WHERE id = 1) AS written, now() AS read');
  await c.query('COMMIT');
  const written = (r.rows[0].written as Date).getTime();
  const read = (r.rows[0].read as Date).getTime();
  // not the time of the BEGIN (a second earlier): the nodes' transactions started with the INSERT
  assert.ok(written - begun >= 900, `now() written ${written - begun} ms after BEGIN`);
  assert.ok(Math.abs(written - read) < 500, `now() written and read differ by ${written - read} ms`);
  await sameOnAllNodes();
  await c.end();
});

test('extended-protocol statements inside a lazily begun transaction', async () => {
  const c = await fx.coord.client();
  await c.query('BEGIN');
  await c.query('INSERT INTO lb VALUES ($1, $2)', [20, 'twenty']);
  const r = await c.query('SELECT v FROM lb WHERE id = $1', [20]);
  assert.equal(r.rows[0].v, 'twenty');
  await c.query('COMMIT');
  for (const i of [0, 1, 2]) assert.equal(fx.cluster.psqlNode(i, 'SELECT v FROM lb WHERE id = 20'), 'twenty');
  await sameOnAllNodes();
  await c.end();
});

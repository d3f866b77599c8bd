// Transactions PostgreSQL cannot prepare (docs/two-phase-commit.md): the
// documented rule for each, checked on the nodes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useClusterWithCoordinator } from '../helpers/coordinator.js';

const fx = useClusterWithCoordinator({
  nodes: 3,
  setup: async () => {
    const c = await fx.coord.client();
    await c.query('CREATE TABLE np (id int PRIMARY KEY, v text)');
  },
});

const code = (want: string) => (e: { code?: string }) => e.code === want;
function onEveryNode(sql: string, want: string): void {
  for (const i of [0, 1, 2]) assert.equal(fx.cluster.psqlNode(i, sql), want, `node ${i + 1}: ${sql}`);
}

test('a transaction that used a temporary table: replicated writes commit everywhere, the main node commits plainly', async () => {
  const c = await fx.coord.client();
  await c.query('BEGIN');
  await c.query('CREATE TEMP TABLE scratch (id int)');
  await c.query('INSERT INTO scratch VALUES (1), (2)');
  await c.query("INSERT INTO np VALUES (1, 'with temp')");
  assert.equal((await c.query('COMMIT')).command, 'COMMIT');
  onEveryNode('SELECT v FROM np WHERE id = 1', 'with temp');
  onEveryNode('SELECT count(*) FROM pg_prepared_xacts', '0');
  assert.equal((await c.query('SELECT count(*)::int AS n FROM scratch')).rows[0].n, 2);
});

test('NOTIFY and LISTEN inside a writing transaction: commit works and the notification arrives after it', async () => {
  const listener = await fx.coord.client();
  const got = new Promise<string>((resolve) => listener.on('notification', (n) => resolve(n.payload ?? '')));
  await listener.query('BEGIN');
  await listener.query('LISTEN np_chan');
  await listener.query("INSERT INTO np VALUES (2, 'listen')");
  await listener.query('COMMIT');
  const c = await fx.coord.client();
  await c.query('BEGIN');
  await c.query("INSERT INTO np VALUES (3, 'notify')");
  await c.query("NOTIFY np_chan, 'after commit'");
  await c.query('COMMIT');
  assert.equal(await got, 'after commit');
  onEveryNode('SELECT count(*) FROM np WHERE id IN (2, 3)', '2');
  onEveryNode('SELECT count(*) FROM pg_prepared_xacts', '0');
});

test('statements that cannot run in a transaction block: outside one they reach every node, inside one PostgreSQL refuses', async () => {
  const c = await fx.coord.client();
  await c.query('CREATE DATABASE np_db');
  onEveryNode("SELECT count(*) FROM pg_database WHERE datname = 'np_db'", '1');
  await c.query('VACUUM np');
  await c.query('CREATE INDEX CONCURRENTLY np_v ON np (v)');
  onEveryNode("SELECT count(*) FROM pg_indexes WHERE indexname = 'np_v'", '1');
  await c.query('BEGIN');
  await assert.rejects(c.query('VACUUM np'), code('25001'));
  await c.query('ROLLBACK');
  await c.query('BEGIN');
  await assert.rejects(c.query('CREATE DATABASE np_db2'), code('25001'));
  await c.query('ROLLBACK');
  await c.query('DROP DATABASE np_db');
  onEveryNode("SELECT count(*) FROM pg_database WHERE datname = 'np_db'", '0');
});

test('PREPARE TRANSACTION and COMMIT PREPARED from a client are refused with 0A000', async () => {
  const c = await fx.coord.client();
  await c.query('BEGIN');
  await c.query("INSERT INTO np VALUES (4, 'x')");
  await assert.rejects(c.query("PREPARE TRANSACTION 'mine'"), code('0A000'));
  await c.query('ROLLBACK');
  await assert.rejects(c.query("COMMIT PREPARED 'mine'"), code('0A000'));
  onEveryNode('SELECT count(*) FROM np WHERE id = 4', '0');
});

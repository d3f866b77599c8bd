// Invariant 2: with 2 of 3 nodes stopped, writes are refused with 25006
// (documented in docs/two-phase-commit.md) while reads go on, and nothing
// hangs; a transaction that wrote on every node commits with two-phase
// commit and leaves no prepared transaction behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestCoordinator, useClusterWithCoordinator } from '../helpers/coordinator.js';
import { livePostmaster } from '../../src/devcluster/index.js';

const fx = useClusterWithCoordinator({ nodes: 3 });

async function stopNode(i: number): Promise<void> {
  const pid = livePostmaster(fx.cluster.nodes[i]!.dataDir);
  assert.ok(pid, `node ${i + 1} runs`);
  process.kill(pid, 'SIGINT');
  for (let t = 0; t < 200 && livePostmaster(fx.cluster.nodes[i]!.dataDir); t++) await new Promise((r) => setTimeout(r, 50));
}

test('two-phase commit: explicit and autocommit writes leave no prepared transaction', async () => {
  const c = await fx.coord.client();
  await c.query('CREATE TABLE q (id int PRIMARY KEY)');
  await c.query('BEGIN');
  await c.query('INSERT INTO q VALUES (1)');
  await c.query('INSERT INTO q VALUES (2)');
  const r = await c.query('COMMIT');
  assert.equal(r.command, 'COMMIT');
  await c.query('INSERT INTO q VALUES (3)');
  for (const i of [0, 1, 2]) {
    assert.equal(fx.cluster.psqlNode(i, 'SELECT count(*) FROM q'), '3');
    assert.equal(fx.cluster.psqlNode(i, 'SELECT count(*) FROM pg_prepared_xacts'), '0');
  }
  // A failed transaction's COMMIT still answers ROLLBACK.
  await c.query('BEGIN');
  await assert.rejects(c.query('INSERT INTO q VALUES (1)'), (e: { code?: string }) => e.code === '23505');
  assert.equal((await c.query('COMMIT')).command, 'ROLLBACK');
});

test('without a quorum writes are refused with 25006 and reads go on', async () => {
  const c = await fx.coord.client();
  // A transaction whose only write is held on the main node (docs/routing.md): the others stop before its COMMIT.
  const h = await fx.coord.client();
  await h.query('BEGIN');
  await h.query('INSERT INTO q VALUES (50)');
  await stopNode(2);
  await stopNode(1);
  await assert.rejects(h.query('COMMIT'), (e: { code?: string }) => /^(25006|40001)$/.test(e.code ?? ''));
  assert.equal(fx.cluster.psqlNode(0, 'SELECT count(*) FROM q WHERE id = 50'), '0', 'the main node did not commit alone');
  assert.equal(fx.cluster.psqlNode(0, 'SELECT count(*) FROM pg_prepared_xacts'), '0');
  const t0 = Date.now();
  // The first write may meet the dead connections; within a few tries the refusal is clean.
  let code = '';
  for (let i = 0; i < 5 && code !== '25006'; i++) {
    try {
      await c.query('INSERT INTO q VALUES (100)');
    } catch (e) {
      code = (e as { code?: string }).code ?? '';
    }
  }
  assert.equal(code, '25006');
  assert.ok(Date.now() - t0 < 15_000, 'no hang');
  const fresh = await fx.coord.client();
  await assert.rejects(fresh.query('INSERT INTO q VALUES (101)'), (e: { code?: string }) => e.code === '25006');
  await assert.rejects(fresh.query('UPDATE q SET id = id'), (e: { code?: string }) => e.code === '25006');
  assert.equal((await fresh.query('SELECT count(*)::int AS n FROM q')).rows[0].n, 3);
  assert.equal(fx.cluster.psqlNode(0, 'SELECT count(*) FROM q'), '3');
});

test('node states are kept in the state store: after a restart the stopped nodes are still down', async () => {
  const first = fx.coord.coordinator.ctx.config;
  await fx.coord.stop();
  const again = await startTestCoordinator(fx.cluster, (c) => {
    c.state.dir = first.state.dir;
    c.coordinator.id = first.coordinator.id;
  });
  try {
    const c = await again.client();
    const r = await c.query('SHOW pgquorum.nodes');
    assert.deepEqual(
      r.rows.map((x) => [x.id, x.state]),
      [
        ['n1', 'up'],
        ['n2', 'down'],
        ['n3', 'down'],
      ],
    );
    await assert.rejects(c.query('INSERT INTO q VALUES (102)'), (e: { code?: string }) => e.code === '25006');
  } finally {
    await again.stop();
  }
});

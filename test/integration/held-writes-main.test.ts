// Writes held until COMMIT (docs/routing.md): when the other nodes outvote
// the main node on a held write, the client already had the main node's
// answer, so the transaction cannot commit: COMMIT fails with 40001, nothing
// is committed anywhere, the main node is ejected and the next main node
// takes the next transaction.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertNodesIdentical, useClusterWithCoordinator } from '../helpers/coordinator.js';

const fx = useClusterWithCoordinator({
  nodes: 3,
  setup: async () => {
    const c = await fx.coord.client();
    await c.query('CREATE TABLE hm (id int PRIMARY KEY, v int NOT NULL)');
    await c.query('INSERT INTO hm SELECT g, 0 FROM generate_series(1, 5) g ORDER BY g');
    await c.end();
  },
});

test('the main node outvoted on a held write: COMMIT fails with 40001 and nothing commits', async () => {
  // Only the main node (n1) has row 77, behind the coordinator's back.
  fx.cluster.psqlNode(0, 'INSERT INTO hm VALUES (77, 0)');
  const c = await fx.coord.client();
  await c.query('BEGIN');
  await c.query('UPDATE hm SET v = 1 WHERE id = 1');
  assert.equal((await c.query('UPDATE hm SET v = 1 WHERE id = 77')).rowCount, 1, 'the main node answers at once');
  await assert.rejects(c.query('COMMIT'), (e: { code?: string; message?: string }) => {
    assert.equal(e.code, '40001', String(e));
    assert.match(e.message ?? '', /main node n1 was outvoted/);
    return true;
  });
  const states = fx.coord.coordinator.ctx.cluster.nodes.map((n) => `${n.id}:${n.state}`);
  assert.deepEqual(states, ['n1:diverged', 'n2:up', 'n3:up']);
  for (const i of [0, 1, 2]) {
    assert.equal(fx.cluster.psqlNode(i, 'SELECT v FROM hm WHERE id = 1'), '0', `node ${i + 1}: nothing committed`);
    assert.equal(fx.cluster.psqlNode(i, 'SELECT count(*) FROM pg_prepared_xacts'), '0');
  }
  // The session goes on with the next main node.
  const r = (await c.query('SELECT 1 AS one')) as unknown as { rows: { one: number }[] };
  assert.deepEqual(r.rows, [{ one: 1 }]);
  await c.query('BEGIN');
  await c.query('UPDATE hm SET v = 2 WHERE id = 2');
  await c.query('COMMIT');
  for (const i of [1, 2]) assert.equal(fx.cluster.psqlNode(i, 'SELECT v FROM hm WHERE id = 2'), '2');
  await assertNodesIdentical(fx.cluster, [1, 2]);
  await c.end();
});

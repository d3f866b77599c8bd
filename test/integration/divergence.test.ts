// Divergence (issue 4 item 8): a node whose data was changed behind the
// coordinator's back answers a write differently, is outvoted and becomes
// `diverged`, while the client gets the majority's answer and the other two
// nodes stay identical. Both a different row count and different RETURNING
// rows (same row count) count as a different outcome; the same rows returned
// in another physical order do not.
//
// One set of nodes for the file; every scenario runs its own table through a
// fresh coordinator (fresh state directory: every node starts `up`), so an
// ejection in one scenario does not leak into the next.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type pg from 'pg';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { startTestCoordinator, tableChecksums, type TestCoordinator } from '../helpers/coordinator.js';

let cluster: TestCluster;

before(async () => {
  cluster = await startTestCluster({ nodes: 3 });
});

after(async () => {
  await cluster?.stop();
});

/** Runs `fn` with a fresh coordinator over the file's nodes and a client of it. */
async function withCoordinator(fn: (c: pg.Client, coord: TestCoordinator) => Promise<void>): Promise<void> {
  const coord = await startTestCoordinator(cluster);
  try {
    await fn(await coord.client(), coord);
  } finally {
    await coord.stop();
  }
}

async function nodeStates(c: pg.Client): Promise<Record<string, { state: string; reason: string }>> {
  const r = await c.query('SHOW pgquorum.nodes');
  return Object.fromEntries(r.rows.map((x) => [x.id as string, { state: x.state as string, reason: x.reason as string }]));
}

async function checksum(table: string, node: number): Promise<string> {
  const all = await tableChecksums(cluster, node);
  const sum = all[`public.${table}`];
  assert.ok(sum, `table ${table} exists on node ${node + 1}`);
  return sum;
}

async function createFilled(c: pg.Client, table: string, rows: number, pk: boolean): Promise<void> {
  await c.query(`CREATE TABLE ${table} (k int${pk ? ' PRIMARY KEY' : ''}, v int NOT NULL)`);
  await c.query(`INSERT INTO ${table} SELECT g, g * 10 FROM generate_series(1, ${rows}) g`);
}

test('same rows in another physical order: UPDATE ... RETURNING ejects nobody', async () => {
  await withCoordinator(async (c) => {
    await createFilled(c, 't_order', 10, false);
    // Behind the coordinator's back, on node 2: rewrite rows 1 and 2 unchanged. Their new
    // versions go to the end of the heap, so a sequential scan meets them last there.
    await cluster.queryNode(1, 'UPDATE t_order SET v = v WHERE k IN (1, 2)');
    const order = async (i: number) => (await cluster.queryNode<{ k: number }>(i, 'SELECT k FROM t_order')).map((r) => r.k);
    assert.deepEqual(await order(0), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.deepEqual(await order(1), [3, 4, 5, 6, 7, 8, 9, 10, 1, 2], 'node 2 scans the rows in another order');

    const r = await c.query('UPDATE t_order SET v = v + 1 WHERE k <= 5 RETURNING k, v');
    assert.equal(r.rowCount, 5);
    assert.deepEqual(
      r.rows.map((x) => [x.k, x.v]).sort((a, b) => a[0] - b[0]),
      [1, 2, 3, 4, 5].map((k) => [k, k * 10 + 1]),
    );
    // In a transaction block too, and with several statements' rows.
    await c.query('BEGIN');
    const r2 = await c.query('UPDATE t_order SET v = v - 1 WHERE k <= 5 RETURNING k');
    assert.equal(r2.rowCount, 5);
    await c.query('COMMIT');

    const states = await nodeStates(c);
    assert.deepEqual(Object.values(states).map((s) => s.state), ['up', 'up', 'up'], JSON.stringify(states));
    const sums = await Promise.all([0, 1, 2].map((i) => checksum('t_order', i)));
    assert.equal(sums[1], sums[0]);
    assert.equal(sums[2], sums[0]);
  });
});

test('a different row count on one node: the client gets the majority count, the node is diverged', async () => {
  await withCoordinator(async (c, coord) => {
    await createFilled(c, 't_count', 20, true);
    const before3 = await cluster.queryNode<{ s: string }>(2, 'SELECT sum(v)::text AS s FROM t_count');
    // Behind the coordinator's back, on node 3: one row less below k = 10.
    await cluster.queryNode(2, 'DELETE FROM t_count WHERE k = 3');

    const r = await c.query('UPDATE t_count SET v = v + 1 WHERE k < 10');
    assert.equal(r.command, 'UPDATE');
    assert.equal(r.rowCount, 9, 'the majority says 9 rows (node 3 would say 8)');

    const states = await nodeStates(c);
    assert.equal(states.n1?.state, 'up');
    assert.equal(states.n2?.state, 'up');
    assert.equal(states.n3?.state, 'diverged');
    assert.match(states.n3!.reason, /outvoted/);
    assert.match(states.n3!.reason, /UPDATE 8/);
    assert.equal(coord.coordinator.ctx.cluster.nodes.find((n) => n.id === 'n3')?.state, 'diverged');

    // The other two are identical; node 3 did not commit the write it was outvoted on.
    assert.equal(await checksum('t_count', 1), await checksum('t_count', 0));
    const after3 = await cluster.queryNode<{ s: string }>(2, 'SELECT sum(v)::text AS s FROM t_count');
    assert.equal(Number(after3[0]!.s), Number(before3[0]!.s) - 30, 'node 3 has only its own change');

    // Writes go on with the two remaining nodes.
    await c.query('INSERT INTO t_count VALUES (100, 0)');
    assert.equal(await checksum('t_count', 1), await checksum('t_count', 0));
    assert.equal((await cluster.queryNode(2, 'SELECT 1 FROM t_count WHERE k = 100')).length, 0, 'node 3 is no longer written');
  });
});

/** One node's row differs in a column value only; UPDATE ... RETURNING of that row must eject it. */
async function returningScenario(table: string, odd: number): Promise<void> {
  await withCoordinator(async (c) => {
    await createFilled(c, table, 10, true);
    // Behind the coordinator's back, on one node: same rows, another value in row 5.
    await cluster.queryNode(odd, `UPDATE ${table} SET v = 999 WHERE k = 5`);

    const r = await c.query(`UPDATE ${table} SET v = v + 1 WHERE k = 5 RETURNING *`);
    assert.equal(r.rowCount, 1, 'every node updates one row: the command tags agree');
    assert.deepEqual(r.rows, [{ k: 5, v: 51 }], "the client gets the majority's row");

    const states = await nodeStates(c);
    const id = `n${odd + 1}`;
    for (const [n, s] of Object.entries(states)) {
      assert.equal(s.state, n === id ? 'diverged' : 'up', `${n}: ${JSON.stringify(s)}`);
    }
    const rest = [0, 1, 2].filter((i) => i !== odd);
    assert.equal(await checksum(table, rest[1]!), await checksum(table, rest[0]!));
    const row = await cluster.queryNode<{ v: number }>(rest[0]!, `SELECT v FROM ${table} WHERE k = 5`);
    assert.equal(row[0]!.v, 51);

    // The remaining nodes keep working.
    const again = await c.query(`UPDATE ${table} SET v = v + 1 WHERE k = 5 RETURNING v`);
    assert.deepEqual(again.rows, [{ v: 52 }]);
    assert.equal(await checksum(table, rest[1]!), await checksum(table, rest[0]!));
  });
}

test('RETURNING rows differ on a replica (same row count): the replica is diverged', async () => {
  await returningScenario('t_ret_replica', 1);
});

test('RETURNING rows differ on the main node (same row count): the main node is diverged', async () => {
  await returningScenario('t_ret_main', 0);
});

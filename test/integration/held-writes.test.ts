// Writes held until COMMIT (docs/routing.md): in a transaction block, a
// keyed write (INSERT ... VALUES, UPDATE/DELETE by a unique key that touched
// one row, on a self-contained table) runs on the main node at once and on
// the other nodes, pipelined, at the transaction's next statement that needs
// them. Checked on the nodes themselves: pg_stat_statements counts what each
// node ran, and every node's rows are compared.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { assertNodesIdentical, perNode, startTestCoordinator, useClusterWithCoordinator } from '../helpers/coordinator.js';

const fx = useClusterWithCoordinator({
  nodes: 3,
  setup: async () => {
    const c = await fx.coord.client();
    await c.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await c.query('CREATE TABLE hw (id int PRIMARY KEY, v int NOT NULL, note text)');
    await c.query("INSERT INTO hw SELECT g, 0, 'n' || g FROM generate_series(1, 20) g ORDER BY g");
    await c.query('CREATE TABLE hw_log (at int)');
    await c.query('CREATE TABLE hw_trig (id int PRIMARY KEY, v int)');
    await c.query('INSERT INTO hw_trig VALUES (1, 0)');
    await c.query(`CREATE FUNCTION hw_note() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO hw_log SELECT count(*) FROM hw; RETURN NEW; END $$`);
    await c.query('CREATE TRIGGER hw_trig_t AFTER UPDATE ON hw_trig FOR EACH ROW EXECUTE FUNCTION hw_note()');
    await c.end();
  },
});

/** Calls of statements matching `pattern` (pg_stat_statements' normalized text) on each node. */
function calls(pattern: string): number[] {
  return [0, 1, 2].map((i) =>
    Number(fx.cluster.psqlNode(i, `SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query ILIKE '${pattern}'`)),
  );
}

const delta = perNode;
const sameOnAllNodes = (): Promise<void> => assertNodesIdentical(fx.cluster, [0, 1, 2]);

test('keyed writes run on the main node at once and on the other nodes at COMMIT', async () => {
  const c = await fx.coord.client();
  const u0 = calls('UPDATE hw SET%');
  const i0 = calls('INSERT INTO hw VALUES%');
  const d0 = calls('DELETE FROM hw WHERE%');
  await c.query('BEGIN');
  const u = await c.query('UPDATE hw SET v = v + 5 WHERE id = 1 RETURNING v');
  assert.equal(u.rowCount, 1);
  assert.deepEqual(u.rows, [{ v: 5 }]);
  assert.equal((await c.query("INSERT INTO hw VALUES (21, 1, 'x'), (22, 2, 'y')")).rowCount, 2);
  assert.equal((await c.query('DELETE FROM hw WHERE id = 2')).rowCount, 1);
  // reads of the transaction see its writes (they go to the main node)
  assert.equal((await c.query('SELECT count(*)::int AS n FROM hw')).rows[0].n, 21);
  assert.deepEqual(delta(u0, calls('UPDATE hw SET%')), [1, 0, 0], 'only the main node ran the UPDATE before COMMIT');
  assert.deepEqual(delta(i0, calls('INSERT INTO hw VALUES%')), [1, 0, 0]);
  assert.deepEqual(delta(d0, calls('DELETE FROM hw WHERE%')), [1, 0, 0]);
  await c.query('COMMIT');
  assert.deepEqual(delta(u0, calls('UPDATE hw SET%')), [1, 1, 1], 'every node ran it by the end of COMMIT');
  assert.deepEqual(delta(i0, calls('INSERT INTO hw VALUES%')), [1, 1, 1]);
  assert.deepEqual(delta(d0, calls('DELETE FROM hw WHERE%')), [1, 1, 1]);
  for (const i of [0, 1, 2]) {
    assert.equal(fx.cluster.psqlNode(i, 'SELECT v FROM hw WHERE id = 1'), '5');
    assert.equal(fx.cluster.psqlNode(i, 'SELECT count(*) FROM hw'), '21');
  }
  await sameOnAllNodes();
  await c.end();
});

test('writes whose effect is not fixed by the rows they lock run on every node at once', async () => {
  const c = await fx.coord.client();
  const cases: [string, string][] = [
    ['UPDATE hw SET v = v + 1 WHERE v > 100', 'UPDATE hw SET v = v + $1 WHERE v >%'], // no key
    ['UPDATE hw SET v = (SELECT max(v) FROM hw) WHERE id = 3', 'UPDATE hw SET v = (SELECT%'], // reads other rows
    ['UPDATE hw SET v = 9 WHERE id = 999', 'UPDATE hw SET v = $1 WHERE id = $2'], // touched no row: nothing locked
    ['INSERT INTO hw SELECT 30, 0, $$s$$', 'INSERT INTO hw SELECT%'], // INSERT ... SELECT
    ['UPDATE hw_trig SET v = v + 1 WHERE id = 1', 'UPDATE hw_trig SET%'], // a user trigger may read anything
  ];
  for (const [sql, pattern] of cases) {
    const before = calls(pattern);
    await c.query('BEGIN');
    await c.query(sql);
    assert.deepEqual(delta(before, calls(pattern)), [1, 1, 1], `${sql}: every node ran it before COMMIT`);
    await c.query('COMMIT');
  }
  await sameOnAllNodes();
  await c.end();
});

test('writes.replicate = per_statement: no write is held', async () => {
  const other = await startTestCoordinator(fx.cluster, (cfg) => {
    cfg.writes = { replicate: 'per_statement', prepare: 'keyed' };
  });
  try {
    const c = await other.client();
    const before = calls('UPDATE hw SET note%');
    await c.query('BEGIN');
    await c.query("UPDATE hw SET note = 'ps' WHERE id = 4");
    assert.deepEqual(delta(before, calls('UPDATE hw SET note%')), [1, 1, 1]);
    await c.query('COMMIT');
    await c.end();
  } finally {
    await other.stop();
  }
  await sameOnAllNodes();
});

test('ROLLBACK: the other nodes never run the held writes', async () => {
  const c = await fx.coord.client();
  const before = calls('UPDATE hw SET note%');
  await c.query('BEGIN');
  await c.query("UPDATE hw SET note = 'gone' WHERE id = 5");
  await c.query("UPDATE hw SET note = 'gone' WHERE id = 6");
  await c.query('ROLLBACK');
  assert.deepEqual(delta(before, calls('UPDATE hw SET note%')), [2, 0, 0]);
  for (const i of [0, 1, 2]) assert.equal(fx.cluster.psqlNode(i, "SELECT count(*) FROM hw WHERE note = 'gone'"), '0');
  await sameOnAllNodes();
  await c.end();
});

test('SAVEPOINT, ROLLBACK TO and SET LOCAL after held writes keep their order on every node', async () => {
  const c = await fx.coord.client();
  await c.query('BEGIN');
  await c.query('UPDATE hw SET v = 100 WHERE id = 7');
  await c.query('SAVEPOINT a');
  await c.query('UPDATE hw SET v = 200 WHERE id = 7');
  await c.query('UPDATE hw SET v = 200 WHERE id = 8');
  await c.query('ROLLBACK TO SAVEPOINT a');
  await c.query('UPDATE hw SET v = 300 WHERE id = 9');
  await c.query("SET LOCAL application_name = 'held'");
  await c.query('UPDATE hw SET v = v + 1 WHERE id = 9');
  await c.query('COMMIT');
  for (const i of [0, 1, 2]) {
    assert.equal(fx.cluster.psqlNode(i, 'SELECT string_agg(v::text, \',\' ORDER BY id) FROM hw WHERE id IN (7, 8, 9)'), '100,0,301');
  }
  await sameOnAllNodes();
  await c.end();
});

test('errors: a failed statement after held writes, then ROLLBACK TO; a failed transaction; a unique violation', async () => {
  const c = await fx.coord.client();
  await c.query('BEGIN');
  await c.query('UPDATE hw SET v = 11 WHERE id = 10');
  await c.query('SAVEPOINT s');
  await assert.rejects(c.query("INSERT INTO hw VALUES (10, 0, 'dup')"), (e: { code?: string }) => e.code === '23505');
  await c.query('ROLLBACK TO s');
  await c.query('UPDATE hw SET v = 12 WHERE id = 11');
  await c.query('COMMIT');
  await c.query('BEGIN');
  await c.query('UPDATE hw SET v = 13 WHERE id = 12');
  await assert.rejects(c.query('SELECT 1/0'), (e: { code?: string }) => e.code === '22012');
  const r = (await c.query('COMMIT')) as unknown as { command: string };
  assert.equal(r.command, 'ROLLBACK');
  for (const i of [0, 1, 2]) {
    assert.equal(fx.cluster.psqlNode(i, "SELECT string_agg(v::text, ',' ORDER BY id) FROM hw WHERE id IN (10, 11, 12)"), '11,12,0');
  }
  await sameOnAllNodes();
  await c.end();
});

test('extended protocol: named prepared statements held, and used again in later transactions', async () => {
  const c = await fx.coord.client();
  for (let round = 0; round < 3; round++) {
    await c.query('BEGIN');
    for (const id of [13, 14, 15]) {
      const r = await c.query({ name: 'hw_upd', text: 'UPDATE hw SET v = v + $1 WHERE id = $2', values: [round + 1, id] });
      assert.equal(r.rowCount, 1);
    }
    await c.query({ name: 'hw_ins', text: 'INSERT INTO hw VALUES ($1, $2, $3)', values: [40 + round, round, 'p'] });
    await c.query('COMMIT');
  }
  for (const i of [0, 1, 2]) assert.equal(fx.cluster.psqlNode(i, 'SELECT sum(v) FROM hw WHERE id IN (13, 14, 15)'), '18');
  await sameOnAllNodes();
  await c.end();
});

test('concurrent transactions on the same rows: pgbench-style transfers stay identical on every node', async () => {
  const clients = await Promise.all([0, 1, 2, 3].map(() => fx.coord.client()));
  await Promise.all(
    clients.map(async (c, k) => {
      for (let n = 0; n < 40; n++) {
        const a = 1 + ((n * 7 + k) % 5);
        const b = 1 + ((n * 3 + k + 1) % 5);
        try {
          await c.query('BEGIN');
          await c.query('UPDATE hw SET v = v - 1 WHERE id = $1', [a]);
          await c.query('UPDATE hw SET v = v + 1 WHERE id = $1', [b]);
          await c.query('INSERT INTO hw_log VALUES ($1)', [n]);
          await c.query('COMMIT');
        } catch (e) {
          assert.equal((e as { code?: string }).code, '40P01', `only deadlocks between the sessions themselves: ${String(e)}`);
          await c.query('ROLLBACK');
        }
      }
    }),
  );
  await Promise.all(clients.map((c) => c.end()));
  await sameOnAllNodes();
});

test('a long transaction holds at most 1000 writes: the next write makes the other nodes catch up', async () => {
  const c = await fx.coord.client();
  await c.query('CREATE TABLE hw_bulk (id int PRIMARY KEY)');
  const before = calls('INSERT INTO hw_bulk%');
  await c.query('BEGIN');
  for (let i = 1; i <= 1001; i++) await c.query(`INSERT INTO hw_bulk VALUES (${i})`);
  assert.deepEqual(delta(before, calls('INSERT INTO hw_bulk%')), [1001, 1001, 1001], 'the 1001st write made them catch up and ran everywhere');
  await c.query('INSERT INTO hw_bulk VALUES (1002)');
  assert.deepEqual(delta(before, calls('INSERT INTO hw_bulk%')), [1002, 1001, 1001], 'holding starts again');
  await c.query('COMMIT');
  for (const i of [0, 1, 2]) assert.equal(fx.cluster.psqlNode(i, 'SELECT count(*) FROM hw_bulk'), '1002');
  await sameOnAllNodes();
  await c.end();
});

test('a held write that times out on a lock on another node at COMMIT: the COMMIT fails with that SQLSTATE and nothing commits anywhere', async () => {
  // A direct session on n2 holds row 17's lock: n2 waits when COMMIT sends it the held UPDATE with the PREPAREs.
  const v0 = fx.cluster.psqlNode(0, 'SELECT v FROM hw WHERE id = 17');
  const blocker = new pg.Client(fx.cluster.nodeClientConfig(1));
  await blocker.connect();
  await blocker.query('BEGIN');
  await blocker.query('SELECT v FROM hw WHERE id = 17 FOR UPDATE');
  const c = await fx.coord.client();
  try {
    await c.query("SET lock_timeout = '300ms'");
    await c.query('BEGIN');
    assert.equal((await c.query('UPDATE hw SET v = v + 1 WHERE id = 17')).rowCount, 1, 'the main node answers at once');
    await assert.rejects(c.query('COMMIT'), (e: { code?: string }) => {
      assert.equal(e.code, '55P03', String(e));
      return true;
    });
  } finally {
    await blocker.query('ROLLBACK');
    await blocker.end();
  }
  assert.deepEqual(
    fx.coord.coordinator.ctx.cluster.nodes.map((n) => n.state),
    ['up', 'up', 'up'],
    'a lock timeout is an answer of the moment: nobody is ejected',
  );
  for (const i of [0, 1, 2]) assert.equal(fx.cluster.psqlNode(i, 'SELECT v FROM hw WHERE id = 17'), v0, `node ${i + 1}: nothing committed`);
  for (const i of [0, 1, 2]) assert.equal(fx.cluster.psqlNode(i, 'SELECT count(*) FROM pg_prepared_xacts'), '0');
  await c.query('RESET lock_timeout');
  await c.query('BEGIN');
  await c.query('UPDATE hw SET v = v + 1 WHERE id = 17');
  await c.query('COMMIT');
  await sameOnAllNodes();
  await c.end();
});

test('a node that disagrees with a held write is ejected at COMMIT, and the transaction commits on the others', async () => {
  // Node n3 lost row 16 behind the coordinator's back: its UPDATE touches no row.
  fx.cluster.psqlNode(2, 'DELETE FROM hw WHERE id = 16');
  const c = await fx.coord.client();
  await c.query('BEGIN');
  assert.equal((await c.query('UPDATE hw SET v = 77 WHERE id = 16')).rowCount, 1);
  await c.query('COMMIT');
  const states = fx.coord.coordinator.ctx.cluster.nodes.map((n) => `${n.id}:${n.state}`);
  assert.deepEqual(states, ['n1:up', 'n2:up', 'n3:diverged']);
  assert.match(fx.coord.coordinator.ctx.cluster.nodes[2]!.stateReason ?? '', /outvoted on "UPDATE hw SET v = 77 WHERE id = 16"/);
  for (const i of [0, 1]) assert.equal(fx.cluster.psqlNode(i, 'SELECT v FROM hw WHERE id = 16'), '77');
  for (const i of [0, 1, 2]) assert.equal(fx.cluster.psqlNode(i, 'SELECT count(*) FROM pg_prepared_xacts'), '0');
  await c.end();
});

// Determinism (issue 4, docs/determinism.md): every construct that could give
// each node a different value is rewritten, serialized or refused. Each test
// checks the facts on the nodes themselves: ordered-row checksums of every
// table and the state of every sequence, compared across the 3 nodes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { sequenceStates, tableChecksums, useClusterWithCoordinator } from '../helpers/coordinator.js';
import type { TestCluster } from '../helpers/cluster.js';
import { killTree, livePostmaster } from '../../src/devcluster/index.js';

const f = useClusterWithCoordinator({ nodes: 3 });

/** Every table and every sequence is the same on the nodes given (default all). */
async function assertNodesIdentical(cluster: TestCluster, nodes = [0, 1, 2]): Promise<void> {
  const sums = await Promise.all(nodes.map((i) => tableChecksums(cluster, i)));
  const seqs = await Promise.all(nodes.map((i) => sequenceStates(cluster, i)));
  for (let i = 1; i < nodes.length; i++) {
    assert.deepEqual(sums[i], sums[0], `tables of node ${nodes[i]! + 1} equal node ${nodes[0]! + 1}`);
    assert.equal(seqs[i], seqs[0], `sequences of node ${nodes[i]! + 1} equal node ${nodes[0]! + 1}`);
  }
}

async function refused(c: pg.Client, sql: string, rule: string): Promise<void> {
  await assert.rejects(c.query(sql), (e: Error & { code?: string }) => {
    assert.equal(e.code, '0A000', `${sql}: ${e.message}`);
    assert.match(e.message, new RegExp(`rule "${rule}"`), sql);
    return true;
  });
}

describe('determinism', () => {
  it('column defaults with now(), current_date, random() and gen_random_uuid() get one value on every node', async () => {
    const c = await f.coord.client();
    await c.query(`CREATE TABLE dflt (
      id int PRIMARY KEY, v text,
      created timestamptz DEFAULT now(), day date DEFAULT current_date, at_stmt timestamptz DEFAULT statement_timestamp(),
      r float8 DEFAULT random(), u uuid DEFAULT gen_random_uuid(), n int DEFAULT 7)`);
    await c.query("INSERT INTO dflt (id, v) VALUES (1, 'a')");
    await c.query("INSERT INTO dflt (id, v) VALUES (2, 'b'), (3, 'c'), (4, 'd')");
    await c.query("INSERT INTO dflt VALUES (5, 'e')"); // no column list
    await c.query("INSERT INTO dflt (id, v, created, u) VALUES (6, 'f', DEFAULT, DEFAULT)");
    await c.query('INSERT INTO dflt (id, v) SELECT g, g::text FROM generate_series(7, 20) g');
    await c.query('INSERT INTO dflt (id) SELECT id + 100 FROM dflt WHERE id < 5 ORDER BY id');
    await c.query("INSERT INTO dflt (id, v) VALUES (1, 'again') ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v, created = now(), r = random()");
    await c.query("INSERT INTO dflt (id, v) VALUES (21, 'x') RETURNING id, u, r");
    // extended protocol (node-postgres with parameters), a prepared statement reused across transactions
    for (let i = 30; i < 35; i++) {
      await c.query({ name: 'ins_dflt', text: 'INSERT INTO dflt (id, v) VALUES ($1, $2)', values: [i, `p${i}`] });
    }
    const rows = await c.query('SELECT count(DISTINCT u) AS u, count(DISTINCT r) AS r, count(*) AS n FROM dflt');
    assert.equal(rows.rows[0].u, rows.rows[0].n, 'every row got its own uuid');
    const times = await c.query('SELECT count(DISTINCT created) AS t FROM dflt WHERE id BETWEEN 30 AND 34');
    assert.equal(Number(times.rows[0].t), 5, 'a prepared INSERT gets a fresh transaction time at each execution');
    const uuid = await c.query("SELECT u::text FROM dflt WHERE id = 2");
    assert.match(uuid.rows[0].u, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}$/, 'a version-4 UUID');
    await assertNodesIdentical(f.cluster);
  });

  it('random() and UUIDs in statements: seeded on every node; a multi-row UPDATE drawing them is refused', async () => {
    const c = await f.coord.client();
    await c.query('CREATE TABLE rnd (id int PRIMARY KEY, r float8, u uuid)');
    await c.query('INSERT INTO rnd SELECT g, random(), gen_random_uuid() FROM generate_series(1, 200) g');
    await c.query('UPDATE rnd SET r = random() * 10 WHERE id = 5');
    await c.query('BEGIN');
    await c.query('UPDATE rnd SET u = gen_random_uuid() WHERE id = 6');
    await c.query('INSERT INTO rnd VALUES (1000, random(), NULL)');
    await c.query('COMMIT');
    await refused(c, 'UPDATE rnd SET r = random() WHERE id < 50', 'row-order');
    const distinct = await c.query('SELECT count(DISTINCT r) AS n FROM rnd');
    assert.ok(Number(distinct.rows[0].n) > 190, 'random() still gives different values per row');
    // setseed() then random(): repeatable through pgquorum too
    const a: number[] = [];
    for (let run = 0; run < 2; run++) {
      await c.query('SELECT setseed(0.25)');
      await c.query(`INSERT INTO rnd VALUES (${2000 + run}, random(), NULL)`);
      a.push((await c.query(`SELECT r FROM rnd WHERE id = ${2000 + run}`)).rows[0].r);
    }
    assert.equal(a[0], a[1], 'the same setseed() gives the same values');
    await assertNodesIdentical(f.cluster);
  });

  it('serial, bigserial, identity and nextval(): 32 concurrent sessions, identical values and sequence state', async () => {
    const c = await f.coord.client();
    await c.query(`CREATE TABLE s1 (id serial PRIMARY KEY, b bigserial, who int, v text);
      CREATE TABLE s2 (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, who int, x int);
      CREATE TABLE s3 (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, who int);
      CREATE SEQUENCE free_seq;
      CREATE TABLE s4 (k int PRIMARY KEY, n bigint)`);
    const clients = await Promise.all(Array.from({ length: 32 }, () => f.coord.client()));
    await Promise.all(
      clients.map(async (k, who) => {
        for (let i = 0; i < 8; i++) {
          const step = (who + i) % 6;
          if (step === 0) await k.query(`INSERT INTO s1 (who, v) VALUES (${who}, 'a'), (${who}, 'b')`);
          else if (step === 1) await k.query({ text: 'INSERT INTO s2 (who, x) VALUES ($1, $2)', values: [who, i] });
          else if (step === 2) await k.query(`INSERT INTO s3 (who) SELECT ${who} FROM generate_series(1, 3)`);
          else if (step === 3) await k.query(`INSERT INTO s4 VALUES (${who * 100 + i}, nextval('free_seq'))`);
          else if (step === 4) {
            await k.query('BEGIN');
            await k.query(`INSERT INTO s1 (who, v) VALUES (${who}, 'txn')`);
            await k.query(`INSERT INTO s3 (who) VALUES (${who}) RETURNING id`);
            await k.query('COMMIT');
          } else {
            await pipeline(Readable.from([`${who}\tcopy1\n${who}\tcopy2\n`]), k.query(copyFrom('COPY s1 (who, v) FROM STDIN')));
          }
        }
      }),
    );
    await Promise.all(clients.map((k) => k.end()));
    await c.query(`UPDATE s4 SET n = nextval('free_seq') WHERE k = 0`);
    await c.query('INSERT INTO s1 (who, v) SELECT who, v FROM s1 WHERE who = 0 ORDER BY id');
    const dup = await c.query('SELECT count(*) - count(DISTINCT b) AS d FROM s1');
    assert.equal(Number(dup.rows[0].d), 0);
    await assertNodesIdentical(f.cluster);
  });

  it('constructs that cannot be made safe are refused with the rule that says why', async () => {
    const c = await f.coord.client();
    await c.query('CREATE TABLE rf (id serial PRIMARY KEY, x bigint, t timestamptz DEFAULT now())');
    await c.query('INSERT INTO rf (x) VALUES (1), (2), (3)');
    await refused(c, 'INSERT INTO rf (x) VALUES (txid_current())', 'per-server-value');
    await refused(c, 'INSERT INTO rf (x) VALUES (pg_backend_pid())', 'per-server-value');
    await refused(c, 'INSERT INTO rf (x) SELECT inet_server_port()', 'per-server-value');
    await refused(c, "UPDATE rf SET x = 0 WHERE ctid = '(0,1)'", 'per-server-value');
    await refused(c, 'DELETE FROM rf WHERE id IN (SELECT id FROM rf WHERE x > 0 ORDER BY x LIMIT 1)', 'limit-without-total-order');
    await refused(c, 'INSERT INTO rf (x) SELECT x FROM rf LIMIT 2', 'limit-without-total-order');
    await refused(c, 'INSERT INTO rf (x) SELECT x * 2 FROM rf', 'insert-select-order');
    await refused(c, "INSERT INTO rf (x) VALUES (nextval('rf_' || 'id_seq'))", 'computed-sequence-name');
    await refused(c, "CREATE FUNCTION stamp() RETURNS timestamptz LANGUAGE sql AS 'SELECT now()'", 'function-body');
    await refused(c, 'DO $$BEGIN INSERT INTO rf (x) VALUES (random() * 100); END$$', 'function-body');
    await assert.rejects(
      pipeline(Readable.from(['5\n']), c.query(copyFrom('COPY rf (x) FROM STDIN'))),
      /rule "copy-volatile-default"/,
    );
    // inside a transaction the refusal aborts it like any error
    await c.query('BEGIN');
    await refused(c, 'INSERT INTO rf (x) VALUES (txid_current())', 'per-server-value');
    await assert.rejects(c.query('SELECT 1'), /current transaction is aborted/);
    await c.query('ROLLBACK');
    // the safe forms of the same work
    await c.query('DELETE FROM rf WHERE id IN (SELECT id FROM rf WHERE x > 0 ORDER BY id LIMIT 1)');
    await c.query('INSERT INTO rf (x) SELECT x * 2 FROM rf ORDER BY id');
    await c.query("INSERT INTO rf (x) VALUES (nextval('rf_id_seq'))");
    await pipeline(Readable.from(['5\t2026-01-01 00:00:00+00\n']), c.query(copyFrom('COPY rf (x, t) FROM STDIN')));
    // a SELECT of per-server values alone is answered by the main node
    const x = await c.query('SELECT txid_current() AS x, pg_backend_pid() AS p');
    assert.ok(Number(x.rows[0].x) > 0);
    await assertNodesIdentical(f.cluster);
  });

  it('SELECT of a user function: replicated when the catalog says volatile, one node when stable', async () => {
    const c = await f.coord.client();
    await c.query('CREATE TABLE hits (n int)');
    await c.query("CREATE FUNCTION hit() RETURNS int LANGUAGE sql VOLATILE AS 'INSERT INTO hits VALUES (1) RETURNING 1'");
    await c.query("CREATE FUNCTION two() RETURNS int LANGUAGE sql STABLE AS 'SELECT 2'");
    assert.equal((await c.query('SELECT hit() AS h')).rows[0].h, 1);
    for (let i = 0; i < 3; i++) {
      const n = await f.cluster.queryNode<{ n: string }>(i, 'SELECT count(*) AS n FROM hits');
      assert.equal(n[0]!.n, '1', `the volatile function ran on node ${i + 1}`);
    }
    const before = f.coord.coordinator.ctx.cluster.nodes.map((n) => n.writes);
    for (let i = 0; i < 6; i++) assert.equal((await c.query('SELECT two() AS t')).rows[0].t, 2);
    const after = f.coord.coordinator.ctx.cluster.nodes.map((n) => n.writes);
    assert.deepEqual(after, before, 'a stable function is a read: no node counted a write');
  });

  it('the main node changes: sequences continue without duplicate or reused values', async () => {
    const c = await f.coord.client();
    await c.query('CREATE TABLE mc (id bigserial PRIMARY KEY, v int)');
    for (let i = 0; i < 20; i++) await c.query(`INSERT INTO mc (v) VALUES (${i}), (${i})`);
    const max = Number((await c.query('SELECT max(id) AS m FROM mc')).rows[0].m);
    const pid = livePostmaster(f.cluster.nodes[0]!.dataDir);
    assert.ok(pid);
    killTree(pid);
    // the first statement may meet the dead main node (40001/08006); then writes go to the new main
    let k: pg.Client | null = null;
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        k = await f.coord.client();
        await k.query('INSERT INTO mc (v) VALUES (100)');
        break;
      } catch {
        await k?.end().catch(() => {});
        k = null;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    assert.ok(k, 'writes work again with the second node as main');
    for (let i = 0; i < 10; i++) await k.query(`INSERT INTO mc (v) VALUES (${200 + i})`);
    const after = await k.query('SELECT min(id) FILTER (WHERE v >= 100) AS lo, count(*) - count(DISTINCT id) AS dup FROM mc');
    assert.equal(Number(after.rows[0].dup), 0, 'no duplicate keys');
    assert.ok(Number(after.rows[0].lo) > max, 'no reused values');
    await assertNodesIdentical(f.cluster, [1, 2]);
  });
});

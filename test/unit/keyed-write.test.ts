// Which writes may be held until COMMIT (src/sql/keyed-write.ts): their text
// must show that they read nothing but the rows they lock.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { initParser } from '../../src/sql/parser.js';
import { classify } from '../../src/sql/classify.js';

before(async () => {
  await initParser();
});

const keyed = (sql: string) => classify(sql).statements[0]?.keyed;

test('keyed: INSERT ... VALUES, and UPDATE / DELETE with column = value terms', () => {
  assert.deepEqual(keyed("INSERT INTO t VALUES (1, 'a'), ($1, now())"), { eq: null });
  assert.deepEqual(keyed('INSERT INTO t (a, b) VALUES (1, 2) RETURNING a'), { eq: null });
  assert.deepEqual(keyed('UPDATE t SET v = v + $1 WHERE aid = $2'), { eq: ['aid'] });
  assert.deepEqual(keyed('UPDATE s.t x SET v = 1 WHERE x.a = 1 AND 2 = b AND c > 3'), { eq: ['a', 'b'] });
  assert.deepEqual(keyed('UPDATE t SET v = 1 WHERE (a = 1 AND (b = 2::int AND c = lower($1)))'), { eq: ['a', 'b', 'c'] });
  assert.deepEqual(keyed('DELETE FROM t WHERE id = 5 RETURNING *'), { eq: ['id'] });
  // the classification cache gives the same answer for another text of the same shape
  assert.deepEqual(keyed('UPDATE t SET v = v + 7 WHERE aid = 8'), keyed('UPDATE t SET v = v + 1 WHERE aid = 2'));
});

test('not keyed: anything that reads other rows, a cursor, or has no equality on a column', () => {
  for (const sql of [
    'UPDATE t SET v = 1',
    'UPDATE t SET v = 1 WHERE a > 1',
    'UPDATE t SET v = 1 WHERE a = 1 OR b = 2',
    'UPDATE t SET v = 1 WHERE a = b',
    'UPDATE t SET v = (SELECT max(v) FROM t) WHERE a = 1',
    'UPDATE t SET v = 1 WHERE a = (SELECT 1)',
    'UPDATE t SET v = 1 WHERE a = 1 AND EXISTS (SELECT 1 FROM u)',
    'UPDATE t SET v = u.v FROM u WHERE t.a = 1',
    'DELETE FROM t USING u WHERE t.a = 1',
    'DELETE FROM t WHERE CURRENT OF c',
    'WITH x AS (SELECT 1) UPDATE t SET v = 1 WHERE a = 1',
    'INSERT INTO t SELECT * FROM u',
    'INSERT INTO t VALUES ((SELECT 1))',
    'INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING',
    'INSERT INTO t DEFAULT VALUES',
    'INSERT INTO t OVERRIDING SYSTEM VALUE VALUES (1)',
    'SELECT 1',
    'MERGE INTO t USING u ON t.a = u.a WHEN MATCHED THEN DELETE',
  ]) {
    assert.equal(keyed(sql), undefined, sql);
  }
});

const keyedRead = (sql: string) => classify(sql).statements[0]?.keyedRead;

test('keyed reads: a SELECT of one table with column = value terms names the table and the columns', () => {
  assert.deepEqual(keyedRead('SELECT abalance FROM pgbench_accounts WHERE aid = 5'), { table: '"pgbench_accounts"', eq: ['aid'], calls: false });
  assert.deepEqual(keyedRead('SELECT * FROM s.t x WHERE x.a = 1 AND 2 = b AND c > 3 ORDER BY c LIMIT 1'), { table: '"s"."t"', eq: ['a', 'b'], calls: false });
  // Function calls (never over a shared read connection): in the select list or in the WHERE.
  assert.deepEqual(keyedRead('SELECT count(*), lower(s) FROM t WHERE id = $1 GROUP BY 2'), { table: '"t"', eq: ['id'], calls: true });
  assert.deepEqual(keyedRead('SELECT v, pg_sleep(1) FROM t WHERE id = 1'), { table: '"t"', eq: ['id'], calls: true });
  assert.deepEqual(keyedRead('SELECT v FROM t WHERE id = 1 AND length(s) > 0'), { table: '"t"', eq: ['id'], calls: true });
  // A user function makes it no read at all here (the catalog decides later, docs/sql-classification.md).
  assert.equal(keyedRead('SELECT v FROM t WHERE id = 1 AND slow(v)'), undefined);
  assert.deepEqual(keyedRead('SELECT v::text, v + 1 FROM t WHERE id = 1'), { table: '"t"', eq: ['id'], calls: false });
  // the classification cache gives the same answer for another text of the same shape
  assert.deepEqual(keyedRead('SELECT v FROM t WHERE id = 7'), keyedRead('SELECT v FROM t WHERE id = 8'));
});

test('not keyed reads: joins, subqueries, CTEs, set operations, locking, ONLY, no equality on a column', () => {
  for (const sql of [
    'SELECT 1',
    'SELECT v FROM t',
    'SELECT v FROM t WHERE a > 1',
    'SELECT v FROM t WHERE a = 1 OR b = 2',
    'SELECT v FROM t WHERE a = b',
    'SELECT v FROM t, u WHERE t.a = 1',
    'SELECT v FROM t JOIN u USING (a) WHERE a = 1',
    'SELECT v FROM t WHERE a = (SELECT max(a) FROM u)',
    'SELECT v FROM t WHERE a = 1 AND b IN (SELECT b FROM u)',
    'SELECT (SELECT 1 FROM u) FROM t WHERE a = 1',
    'WITH x AS (SELECT 1) SELECT v FROM t WHERE a = 1',
    'SELECT v FROM t WHERE a = 1 UNION SELECT v FROM t WHERE a = 2',
    'SELECT v FROM ONLY t WHERE a = 1',
    'SELECT v FROM (SELECT * FROM t) s WHERE a = 1',
    'SELECT v FROM generate_series(1, 3) v WHERE v = 1',
  ]) {
    assert.equal(keyedRead(sql), undefined, sql);
  }
  // writes (FOR UPDATE, SELECT INTO, nextval) are not reads at all
  for (const sql of ['SELECT v FROM t WHERE a = 1 FOR UPDATE', 'SELECT v INTO x FROM t WHERE a = 1', "SELECT nextval('s') FROM t WHERE a = 1"]) {
    assert.equal(keyedRead(sql), undefined, sql);
  }
});

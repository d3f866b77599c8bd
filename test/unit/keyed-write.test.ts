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

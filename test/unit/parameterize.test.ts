// Keyed writes and reads as prepared statements on the nodes (src/sql/parameterize.ts):
// which numbers become parameters, with which types and values, and how an
// error position in the sent text maps back to the client's text.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { initParser } from '../../src/sql/parser.js';
import { literalType, parameterize } from '../../src/sql/parameterize.js';
import { decodeBind, decodeParse } from '../../src/protocol/frontend.js';

before(async () => {
  await initParser();
});

const T = () => ({ transaction: new Date('2026-11-22T10:00:00.123Z'), statement: new Date('2026-11-22T10:00:01Z'), clock: new Date('2026-11-22T10:00:02Z') });

function sent(sql: string): { sql: string; types: number[]; values: string[]; name: string; describe: boolean } | null {
  const f = parameterize(sql, T);
  if (!f) return null;
  const p = decodeParse(f.stmt.parse.subarray(5));
  const b = decodeBind(f.bind.subarray(5));
  assert.equal(b.statement, f.stmt.name);
  assert.equal(p.sql, f.stmt.sql);
  return { sql: p.sql, types: p.paramTypes, values: b.params.map((v) => v!.toString()), name: f.stmt.name, describe: f.describe };
}

test('literal types follow PostgreSQL: int4, then int8, then numeric; decimals are numeric', () => {
  assert.equal(literalType('0'), 23);
  assert.equal(literalType('2147483647'), 23);
  assert.equal(literalType('-2147483648'), 23);
  assert.equal(literalType('2147483648'), 20);
  assert.equal(literalType('-2147483649'), 20);
  assert.equal(literalType('9223372036854775807'), 20);
  assert.equal(literalType('-9223372036854775808'), 20);
  assert.equal(literalType('9223372036854775808'), 1700);
  assert.equal(literalType('007'), 23);
  for (const d of ['1.5', '1e5', '1E-3', '.5', '5.', '-0.25']) assert.equal(literalType(d), 1700, d);
  for (const bad of ['1x', '', '-', '1e', '0x1F']) assert.equal(literalType(bad), null, bad);
});

test("pgbench's statements: every number a typed parameter, the minus sign folded into the value", () => {
  const a = sent('UPDATE pgbench_accounts SET abalance = abalance + -4711 WHERE aid = 123456;')!;
  assert.equal(a.sql, 'UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;');
  assert.deepEqual(a.values, ['-4711', '123456']);
  assert.deepEqual(a.types, [23, 23]);
  assert.equal(a.describe, false);
  // another text of the same shape: the same statement, its own values
  const b = sent('UPDATE pgbench_accounts SET abalance = abalance + 5 WHERE aid = 9;')!;
  assert.equal(b.name, a.name);
  assert.deepEqual(b.values, ['5', '9']);
  // a value needing int8 is another statement (the literal would be int8 too)
  const c = sent('UPDATE pgbench_accounts SET abalance = abalance + 5 WHERE aid = 99999999999;')!;
  assert.notEqual(c.name, a.name);
  assert.deepEqual(c.types, [23, 20]);
  // time functions become parameters too, cast as in the extended protocol
  const h = sent('INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 1, 77, - 12, CURRENT_TIMESTAMP)')!;
  assert.equal(h.sql, 'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, ($5::timestamptz))');
  assert.deepEqual(h.values, ['3', '1', '77', '-12', '2026-11-22 10:00:00.123000+00']);
  assert.deepEqual(h.types, [23, 23, 23, 23, 0]);
});

test('binary minus stays, decimals and RETURNING', () => {
  const s = sent('UPDATE t SET a = b - 3, c = 2 - -1.50e2 WHERE id = 4 RETURNING a, c')!;
  assert.equal(s.sql, 'UPDATE t SET a = b - $1, c = $2 - $3 WHERE id = $4 RETURNING a, c');
  assert.deepEqual(s.values, ['3', '2', '-1.50e2', '4']);
  assert.deepEqual(s.types, [23, 23, 1700, 23]);
  assert.equal(s.describe, true);
});

test('not parameterized: numbers a parameter cannot replace, $n references, no numbers', () => {
  for (const sql of [
    "UPDATE t SET a = 1.5::numeric(10,2) WHERE id = 1", // a type modifier
    "UPDATE t SET a = CAST(1 AS varchar(3)) WHERE id = 1",
    'UPDATE t SET a = $1 WHERE id = 2', // a parameter reference: an error in a simple query, it must stay one
    "UPDATE t SET a = 'x' WHERE id = 'y'", // nothing to do
    'SELECT a FROM t GROUP BY 1', // positional references
    'SELECT a FROM t ORDER BY 1',
    'UPDATE t SET a = - /* c */ 5 WHERE id = 1', // a comment inside a folded constant
    'UPDATE t SET a = - - 5 WHERE id = 1', // folded twice
  ]) {
    assert.equal(parameterize(sql, T), null, sql);
  }
});

test('reads: a SELECT is described (its rows come with their RowDescription); without a clock, time functions leave it as sent', () => {
  const f = parameterize('SELECT abalance, -1 AS m FROM pgbench_accounts WHERE aid = 4711', null)!;
  assert.equal(f.stmt.sql, 'SELECT abalance, $1 AS m FROM pgbench_accounts WHERE aid = $2');
  assert.equal(f.describe, true);
  assert.equal(decodeBind(f.bind.subarray(5)).params.map((v) => v!.toString()).join(','), '-1,4711');
  // a read keeps the node's own clock: no prepared form without the coordinator's values
  assert.equal(parameterize('SELECT v FROM t WHERE id = 1 AND ts < now()', null), null);
  assert.notEqual(parameterize('SELECT v FROM t WHERE id = 1 AND ts < now()', T), null);
});

test('an error position in the sent text points at the same place in the client text', () => {
  const client = 'UPDATE t SET v = 123456789 WHERE nocol = 1';
  const f = parameterize(client, T)!;
  assert.equal(f.stmt.sql, 'UPDATE t SET v = $1 WHERE nocol = $2');
  const pos = (s: string, part: string) => s.indexOf(part) + 1;
  assert.equal(f.position(pos(f.stmt.sql, 'nocol')), pos(client, 'nocol'));
  assert.equal(f.position(pos(f.stmt.sql, 'v =')), pos(client, 'v ='));
  assert.equal(f.position(pos(f.stmt.sql, '$1')), pos(client, '123456789'));
  assert.equal(f.position(pos(f.stmt.sql, '$2') + 1), client.lastIndexOf('1') + 1); // inside a parameter: its constant's start
  // characters, not bytes: a multibyte name before the number
  const mb = "UPDATE t SET \"é\" = -42 WHERE nocol = 7";
  const g = parameterize(mb, T)!;
  assert.equal(g.position(pos(g.stmt.sql, 'nocol')), pos(mb, 'nocol'));
  assert.equal(g.position(pos(g.stmt.sql, '$1')), pos(mb, '-42'));
});

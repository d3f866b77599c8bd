// Tests the deterministic time rewriting (rewrite.ts): exact outputs, that
// the output parses, byte offsets with non-ASCII text, strings/comments left
// alone, several statements, extended-protocol parameters, PREPARE/EXECUTE.

import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { initParser, parseCount, parseSql } from '../../src/sql/parser.js';
import { classify, clearClassifyCache } from '../../src/sql/classify.js';
import { formatTimestamptz, rewriteExecute, rewriteExtended, rewriteSimple, rewriteSimpleMapped, type TimeValues } from '../../src/sql/rewrite.js';

before(async () => {
  await initParser();
});

const T: TimeValues = {
  transaction: new Date('2026-11-22T06:30:00.123Z'),
  statement: new Date('2026-11-22T06:30:01.000Z'),
  clock: new Date('2026-11-22T06:30:02.5Z'),
};
const TX = "'2026-11-22 06:30:00.123000+00'::timestamptz";
const ST = "'2026-11-22 06:30:01.000000+00'::timestamptz";
const CK = "'2026-11-22 06:30:02.500000+00'::timestamptz";

function simple(sql: string): string {
  const out = rewriteSimple(sql, T);
  assert.notEqual(out, null, `expected a rewrite of ${sql}`);
  assert.doesNotThrow(() => parseSql(out!), `rewritten SQL must parse: ${out}`);
  return out!;
}

describe('formatTimestamptz', () => {
  it('formats ISO with microseconds and +00', () => {
    assert.equal(formatTimestamptz(new Date('2026-01-02T03:04:05.006Z')), '2026-01-02 03:04:05.006000+00');
    assert.equal(formatTimestamptz(new Date('2026-01-02T03:04:05.006Z'), 789), '2026-01-02 03:04:05.006789+00');
    assert.equal(formatTimestamptz(new Date('0099-12-31T23:59:59Z')), '0099-12-31 23:59:59.000000+00');
    assert.equal(formatTimestamptz(new Date(Date.UTC(0, 0, 1) - 0)).endsWith(' BC'), false);
    const bc = new Date('2000-01-01T00:00:00Z');
    bc.setUTCFullYear(-43);
    assert.equal(formatTimestamptz(bc), '0044-01-01 00:00:00.000000+00 BC');
    assert.throws(() => formatTimestamptz(new Date(NaN)), /invalid Date/);
    assert.throws(() => formatTimestamptz(new Date(), 1000), /micros/);
  });
});

describe('rewriteSimple', () => {
  it('rewrites pgbench\'s INSERT', () => {
    assert.equal(
      simple('INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)'),
      `INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, (${TX}))`,
    );
  });

  it('returns null when there is nothing to rewrite', () => {
    assert.equal(rewriteSimple('UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2', T), null);
    assert.equal(rewriteSimple("SELECT 'now()', \"now\" FROM t -- now()", T), null);
    assert.equal(rewriteSimple('SELEC now()', T), null);
    assert.equal(rewriteSimple('', T), null);
  });

  it('replaces each construct with PostgreSQL semantics', () => {
    const cases: Array<[string, string]> = [
      ['now()', `(${TX})`],
      ['pg_catalog.now()', `(${TX})`],
      ['NOW ( )', `(${TX})`],
      ['transaction_timestamp()', `(${TX})`],
      ['statement_timestamp()', `(${ST})`],
      ['clock_timestamp()', `(${CK})`],
      ['timeofday()', `to_char(${CK}, 'Dy Mon DD HH24:MI:SS.US YYYY TZ')`],
      ['CURRENT_TIMESTAMP', `(${TX})`],
      ['CURRENT_TIMESTAMP(3)', `(${TX})::timestamptz(3)`],
      ['current_timestamp ( 0 )', `(${TX})::timestamptz(0)`],
      ['CURRENT_DATE', `(${TX})::date`],
      ['CURRENT_TIME', `(${TX})::timetz`],
      ['CURRENT_TIME(2)', `(${TX})::timetz(2)`],
      ['LOCALTIME', `(${TX})::time`],
      ['LOCALTIME(1)', `(${TX})::time(1)`],
      ['LOCALTIMESTAMP', `(${TX})::timestamp`],
      ['LOCALTIMESTAMP(6)', `(${TX})::timestamp(6)`],
    ];
    for (const [expr, out] of cases) {
      assert.equal(simple(`UPDATE t SET v = ${expr}`), `UPDATE t SET v = ${out}`, expr);
    }
  });

  it('rewrites the time literals under casts, keeping the cast', () => {
    const cases: Array<[string, string]> = [
      ["'now'::timestamptz", `(${TX})::timestamptz`],
      ["'now'::timestamp(2)", `((${TX})::timestamp)::timestamp(2)`],
      ["'NOW'::date", `((${TX})::date)::date`],
      ["'now'::time", `((${TX})::time)::time`],
      ["'now'::timetz", `((${TX})::timetz)::timetz`],
      ["'today'::date", `(((${TX})::date))::date`],
      ["'tomorrow'::timestamptz", `(((${TX})::date + 1)::timestamptz)::timestamptz`],
      ["'yesterday'::timestamp", `(((${TX})::date - 1)::timestamp)::timestamp`],
      ["CAST('now' AS timestamp with time zone)", `CAST((${TX}) AS timestamp with time zone)`],
      ["timestamp 'now'", `((${TX})::timestamp::timestamp )`],
      ["timestamptz 'today'", `(((${TX})::date)::timestamptz::timestamptz )`],
      ["date 'tomorrow'", `(((${TX})::date + 1)::date )`],
      ["time with time zone 'now'", `((${TX})::timetz::time with time zone )`],
      ["E'now'::date", `((${TX})::date)::date`],
    ];
    for (const [expr, out] of cases) {
      assert.equal(simple(`UPDATE t SET v = ${expr}`), `UPDATE t SET v = ${out}`, expr);
    }
  });

  it('leaves invalid time input for PostgreSQL to reject, and flags untyped literals', () => {
    assert.equal(rewriteSimple("SELECT 'today'::time", T), null);
    const s = classify("UPDATE t SET ts = 'now' WHERE a = 'tomorrow'").statements[0]!;
    assert.equal(s.untypedTimeLiteral, true);
    assert.equal(rewriteSimple("UPDATE t SET ts = 'now'", T), null);
    assert.equal(classify("SELECT 'now'::text::timestamptz").statements[0]!.untypedTimeLiteral, true);
    assert.equal(classify("SELECT 'now'::timestamptz").statements[0]!.untypedTimeLiteral, undefined);
  });

  it('keeps the column names of SELECT and RETURNING targets', () => {
    assert.equal(simple('SELECT now()'), `SELECT (${TX}) AS "now"`);
    assert.equal(simple('SELECT now() FROM t'), `SELECT (${TX}) AS "now" FROM t`);
    assert.equal(simple('SELECT (now())::date, CURRENT_DATE, x'), `SELECT ((${TX}))::date AS "now", (${TX})::date AS "current_date", x`);
    assert.equal(simple('SELECT now() AS n, now() m'), `SELECT (${TX}) AS n, (${TX}) m`);
    assert.equal(simple('SELECT timeofday()'), `SELECT to_char(${CK}, 'Dy Mon DD HH24:MI:SS.US YYYY TZ') AS "timeofday"`);
    assert.equal(simple('SELECT now() + interval \'1 day\''), `SELECT (${TX}) + interval '1 day'`);
    assert.equal(simple("SELECT 'now'::date"), `SELECT ((${TX})::date)::date`);
    assert.equal(
      simple('INSERT INTO t VALUES (1) RETURNING a, localtimestamp(2)'),
      `INSERT INTO t VALUES (1) RETURNING a, (${TX})::timestamp(2) AS "localtimestamp"`,
    );
    assert.equal(simple('SELECT * FROM (SELECT now()) s'), `SELECT * FROM (SELECT (${TX}) AS "now") s`);
    assert.equal(simple('SELECT now()::text FOR UPDATE'), `SELECT (${TX})::text AS "now" FOR UPDATE`);
    assert.equal(simple('SELECT now() UNION SELECT now()'), `SELECT (${TX}) AS "now" UNION SELECT (${TX}) AS "now"`);
    assert.equal(
      simple("SELECT CURRENT_TIMESTAMP AT TIME ZONE 'UTC' FROM t"),
      `SELECT (${TX}) AT TIME ZONE 'UTC' AS "timezone" FROM t`,
    );
  });

  it('does not touch strings, comments or quoted identifiers, and handles non-ASCII text', () => {
    const sql = "SELECT 'now()', \"now\", 'é' AS \"ñ\", now() -- now() ü\n, /* now() 🎉 */ CURRENT_DATE FROM \"日本\" WHERE x = $$now()$$";
    assert.equal(
      simple(sql),
      `SELECT 'now()', "now", 'é' AS "ñ", (${TX}) AS "now" -- now() ü\n, /* now() 🎉 */ (${TX})::date AS "current_date" FROM "日本" WHERE x = $$now()$$`,
    );
  });

  it('rewrites several statements in one string', () => {
    assert.equal(
      simple("BEGIN; INSERT INTO t VALUES ('ü', now()); UPDATE t SET b = clock_timestamp(); SELECT 1; COMMIT"),
      `BEGIN; INSERT INTO t VALUES ('ü', (${TX})); UPDATE t SET b = (${CK}); SELECT 1; COMMIT`,
    );
  });

  it('rewrites where the value is used now, not in stored definitions', () => {
    assert.equal(rewriteSimple('CREATE TABLE t (a timestamptz DEFAULT now())', T), null);
    assert.equal(rewriteSimple('CREATE VIEW v AS SELECT now()', T), null);
    assert.equal(rewriteSimple('CREATE MATERIALIZED VIEW mv AS SELECT now()', T), null);
    assert.equal(rewriteSimple("CREATE FUNCTION f() RETURNS timestamptz LANGUAGE sql RETURN now()", T), null);
    assert.equal(rewriteSimple('ALTER TABLE t ALTER COLUMN a SET DEFAULT now()', T), null);
    assert.equal(rewriteSimple('EXPLAIN SELECT now()', T), null);
    assert.equal(simple('CREATE TABLE t2 AS SELECT now() AS n'), `CREATE TABLE t2 AS SELECT (${TX}) AS n`);
    assert.equal(simple('EXPLAIN ANALYZE INSERT INTO t VALUES (now())'), `EXPLAIN ANALYZE INSERT INTO t VALUES ((${TX}))`);
    assert.equal(simple('CALL p(now())'), `CALL p((${TX}))`);
    assert.equal(simple('EXECUTE q(CURRENT_DATE)'), `EXECUTE q((${TX})::date)`);
    assert.equal(simple('WITH x AS (INSERT INTO t VALUES (now()) RETURNING *) SELECT * FROM x'), `WITH x AS (INSERT INTO t VALUES ((${TX})) RETURNING *) SELECT * FROM x`);
  });

  it('computes the result from cached spans: no parse on repeat', () => {
    clearClassifyCache();
    const sql = 'INSERT INTO h (mtime) VALUES (CURRENT_TIMESTAMP) /* span cache */';
    const before = parseCount();
    const a = rewriteSimple(sql, T);
    const later: TimeValues = { transaction: new Date('2027-01-01T00:00:00Z'), statement: T.statement, clock: T.clock };
    const b = rewriteSimple(sql, later);
    classify(sql);
    rewriteExtended(sql);
    assert.equal(parseCount(), before + 1);
    assert.notEqual(a, b);
    assert.match(b!, /'2027-01-01 00:00:00\.000000\+00'::timestamptz/);
  });
});

describe('rewriteSimpleMapped: error positions back in the client\'s text', () => {
  /** The 1-based position of `word` in `text`, in characters (as PostgreSQL reports it). */
  const at = (text: string, word: string, from = 0): number => [...text.slice(0, text.indexOf(word, from))].length + 1;

  it('moves a position after, before and inside the replaced constructs', () => {
    const sql = 'INSERT INTO t (a, b, c) VALUES (now(), CURRENT_TIMESTAMP, nosuch)';
    const rw = rewriteSimpleMapped(sql, T)!;
    assert.equal(rw.sql, simple(sql));
    assert.equal(rw.position(at(rw.sql, 'nosuch')), at(sql, 'nosuch'), 'after both');
    assert.equal(rw.position(at(rw.sql, 'VALUES')), at(sql, 'VALUES'), 'before any');
    assert.equal(rw.position(at(rw.sql, '06:30:00')), at(sql, 'now()'), 'inside the first: at its start');
    assert.equal(rw.position([...rw.sql.slice(0, rw.sql.lastIndexOf('::timestamptz'))].length + 3), at(sql, 'CURRENT_TIMESTAMP'), 'inside the second');
    assert.equal(rw.position(rw.sql.length + 1), sql.length + 1, 'the end (an unexpected end of input)');
  });

  it('counts characters as PostgreSQL does: multibyte and astral characters are one each', () => {
    const sql = "INSERT INTO t VALUES ('é😀', now(), 'ü', nosuch)";
    const rw = rewriteSimpleMapped(sql, T)!;
    assert.equal(rw.position(at(rw.sql, 'nosuch')), at(sql, 'nosuch'));
    assert.equal(rw.position(at(rw.sql, "'ü'")), at(sql, "'ü'"));
    assert.equal(rw.position(at(rw.sql, "'é")), at(sql, "'é"));
  });

  it('maps over several statements, and returns null when nothing is rewritten', () => {
    const sql = 'UPDATE t SET at = now() WHERE id = 1; INSERT INTO u VALUES (now(), x)';
    const rw = rewriteSimpleMapped(sql, T)!;
    assert.equal(rw.position(at(rw.sql, 'x)')), at(sql, 'x)'));
    assert.equal(rw.position(at(rw.sql, 'WHERE')), at(sql, 'WHERE'));
    assert.equal(rewriteSimpleMapped('UPDATE t SET v = 1', T), null);
  });
});

describe('rewriteExtended', () => {
  it('adds one parameter per kind after the highest $n', () => {
    const r = rewriteExtended('INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)');
    assert.deepEqual(
      { sql: r?.sql, added: r?.added, originalParamCount: r?.originalParamCount },
      {
        sql: 'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, ($5::timestamptz))',
        added: ['transaction'],
        originalParamCount: 4,
      },
    );
    // An error position after the added parameter, back in the text as written.
    assert.equal(r!.position(r!.sql.indexOf(', ($5') + 1), 'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)'.indexOf(', CURRENT') + 1);
    assert.equal(r!.position(r!.sql.indexOf('($5') + 2), 'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)'.indexOf('CURRENT') + 1);
    const r2 = rewriteExtended("UPDATE t SET a = now(), b = clock_timestamp(), c = 'today'::date, d = statement_timestamp() WHERE id = $2");
    assert.equal(
      r2?.sql,
      'UPDATE t SET a = ($3::timestamptz), b = ($4::timestamptz), c = ((($3::timestamptz)::date))::date, d = ($5::timestamptz) WHERE id = $2',
    );
    assert.deepEqual(r2?.added, ['transaction', 'clock', 'statement']);
    assert.equal(r2?.originalParamCount, 2);
    assert.doesNotThrow(() => parseSql(r2!.sql));
  });

  it('respects a larger declared parameter count, caches by text, and returns null for nothing', () => {
    const sql = 'SELECT now(), $1::int';
    assert.equal(rewriteExtended(sql, 3)?.sql, 'SELECT ($4::timestamptz) AS "now", $1::int');
    assert.equal(rewriteExtended(sql), rewriteExtended(sql));
    assert.equal(rewriteExtended(sql)?.sql, 'SELECT ($2::timestamptz) AS "now", $1::int');
    assert.equal(rewriteExtended('SELECT abalance FROM pgbench_accounts WHERE aid = $1'), null);
  });
});

describe('SQL-level PREPARE / EXECUTE', () => {
  it('turns time constructs in a PREPARE body into parameters and reports them', () => {
    const sql = 'PREPARE ins (int) AS INSERT INTO t VALUES ($1, now(), clock_timestamp(), CURRENT_DATE)';
    const s = classify(sql).statements[0]!;
    assert.deepEqual(s.timeParams, ['transaction', 'clock']);
    assert.equal(
      simple(sql),
      'PREPARE ins (int) AS INSERT INTO t VALUES ($1, ($2::timestamptz), ($3::timestamptz), ($2::timestamptz)::date)',
    );
    assert.equal(
      rewriteExecute('EXECUTE ins(7)', s.timeParams!, T),
      `EXECUTE ins(7, ${TX}, ${CK})`,
    );
    assert.equal(rewriteExecute('EXECUTE ins', ['statement'], T), `EXECUTE ins (${ST})`);
    assert.equal(rewriteExecute('EXECUTE ins(1)', [], T), 'EXECUTE ins(1)');
    assert.throws(() => rewriteExecute('SELECT 1', ['clock'], T), /EXECUTE/);
  });

  it('appends the values to an EXECUTE in the same string', () => {
    assert.equal(
      simple('PREPARE p AS SELECT now() AS n; EXECUTE p; EXECUTE other'),
      `PREPARE p AS SELECT ($1::timestamptz) AS n; EXECUTE p (${TX}); EXECUTE other`,
    );
  });
});

// Tests that classify() gives each kind of statement the right kind, tag,
// names and flags, using real SQL (pgbench's scripts included).

import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { initParser, parseCount } from '../../src/sql/parser.js';
import {
  classify,
  classifyCacheStats,
  clearClassifyCache,
  setClassifyCacheSize,
  setReadOnlyFunctions,
  setWriteFunctions,
  type StatementInfo,
} from '../../src/sql/classify.js';

before(async () => {
  await initParser();
});

function one(sql: string): StatementInfo {
  const c = classify(sql);
  assert.equal(c.statements.length, 1, `expected one statement in ${sql}`);
  return c.statements[0]!;
}

function kindTag(sql: string): [string, string] {
  const s = one(sql);
  return [s.kind, s.tag];
}

describe('pgbench scripts', () => {
  it('classifies the TPC-B-like transaction', () => {
    const upd = one('UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2');
    assert.equal(upd.kind, 'write');
    assert.equal(upd.tag, 'UPDATE');
    assert.deepEqual(upd.relations, ['pgbench_accounts']);
    assert.equal(upd.needsRewrite, undefined);

    const sel = one('SELECT abalance FROM pgbench_accounts WHERE aid = $1');
    assert.equal(sel.kind, 'read');
    assert.equal(sel.tag, 'SELECT');

    const ins = classify('INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)');
    assert.equal(ins.statements[0]!.kind, 'write');
    assert.equal(ins.statements[0]!.tag, 'INSERT');
    assert.equal(ins.write, true);
    assert.equal(ins.needsRewrite, true);

    assert.deepEqual(kindTag('BEGIN'), ['begin', 'BEGIN']);
    assert.deepEqual(kindTag('END'), ['commit', 'COMMIT']);
    assert.equal(classify('BEGIN').write, false);
    assert.equal(classify('SELECT abalance FROM pgbench_accounts WHERE aid = $1').write, false);
  });
});

describe('kinds and tags', () => {
  const cases: Array<[string, string, string]> = [
    ['SELECT 1', 'read', 'SELECT'],
    ['VALUES (1), (2)', 'read', 'SELECT'],
    ['TABLE t', 'read', 'SELECT'],
    ['SHOW TimeZone', 'read', 'SHOW'],
    ['EXPLAIN SELECT * FROM t', 'read', 'EXPLAIN'],
    ['EXPLAIN DELETE FROM t', 'read', 'EXPLAIN'],
    ['EXPLAIN ANALYZE SELECT * FROM t', 'read', 'EXPLAIN'],
    ['EXPLAIN ANALYZE DELETE FROM t', 'write', 'EXPLAIN'],
    ['EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1', 'write', 'EXPLAIN'],
    ['EXPLAIN (ANALYZE false) DELETE FROM t', 'read', 'EXPLAIN'],
    ['EXPLAIN ANALYZE SELECT nextval(\'s\')', 'write', 'EXPLAIN'],
    ['INSERT INTO t VALUES (1)', 'write', 'INSERT'],
    ['DELETE FROM t', 'write', 'DELETE'],
    ['MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE', 'write', 'MERGE'],
    ['CREATE TABLE t (a int)', 'write', 'CREATE TABLE'],
    ['CREATE TABLE t2 AS SELECT 1', 'write', 'SELECT'],
    ['SELECT 1 INTO t3', 'write', 'SELECT'],
    ['CREATE MATERIALIZED VIEW mv AS SELECT 1', 'write', 'SELECT'],
    ['ALTER TABLE t ADD COLUMN b int', 'write', 'ALTER TABLE'],
    ['ALTER TABLE t RENAME COLUMN a TO b', 'write', 'ALTER TABLE'],
    ['ALTER INDEX i RENAME TO j', 'write', 'ALTER INDEX'],
    ['DROP TABLE a.b, c', 'write', 'DROP TABLE'],
    ['TRUNCATE t', 'write', 'TRUNCATE TABLE'],
    ['LOCK TABLE t IN EXCLUSIVE MODE', 'write', 'LOCK TABLE'],
    ['GRANT SELECT ON t TO r', 'write', 'GRANT'],
    ['GRANT r1 TO r2', 'write', 'GRANT ROLE'],
    ['REVOKE r1 FROM r2', 'write', 'REVOKE ROLE'],
    ['DO $$ BEGIN NULL; END $$', 'write', 'DO'],
    ['CALL proc(1)', 'write', 'CALL'],
    ['CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$', 'write', 'CREATE FUNCTION'],
    ['CREATE PROCEDURE p() LANGUAGE sql AS $$ SELECT 1 $$', 'write', 'CREATE PROCEDURE'],
    ['ANALYZE t', 'write', 'ANALYZE'],
    ['REFRESH MATERIALIZED VIEW mv', 'write', 'REFRESH MATERIALIZED VIEW'],
    ['REINDEX TABLE t', 'write', 'REINDEX'],
    ['CLUSTER t USING i', 'write', 'CLUSTER'],
    ['COMMENT ON TABLE t IS \'x\'', 'write', 'COMMENT'],
    ['BEGIN', 'begin', 'BEGIN'],
    ['START TRANSACTION', 'begin', 'START TRANSACTION'],
    ['COMMIT', 'commit', 'COMMIT'],
    ['END', 'commit', 'COMMIT'],
    ['ROLLBACK', 'rollback', 'ROLLBACK'],
    ['ABORT', 'rollback', 'ROLLBACK'],
    ['SAVEPOINT s1', 'savepoint', 'SAVEPOINT'],
    ['RELEASE SAVEPOINT s1', 'release', 'RELEASE'],
    ['RELEASE s1', 'release', 'RELEASE'],
    ['ROLLBACK TO SAVEPOINT s1', 'rollback_to', 'ROLLBACK'],
    ['ROLLBACK TO s1', 'rollback_to', 'ROLLBACK'],
    ["PREPARE TRANSACTION 'g1'", 'prepare_transaction', 'PREPARE TRANSACTION'],
    ["COMMIT PREPARED 'g1'", 'commit_prepared', 'COMMIT PREPARED'],
    ["ROLLBACK PREPARED 'g1'", 'rollback_prepared', 'ROLLBACK PREPARED'],
    ['SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', 'set_transaction', 'SET'],
    ['SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY', 'set_transaction', 'SET'],
    ['SET transaction_read_only = on', 'set_transaction', 'SET'],
    ['SET search_path = a, b', 'session', 'SET'],
    ['SET LOCAL work_mem = \'1MB\'', 'session', 'SET'],
    ['SET TIME ZONE \'UTC\'', 'session', 'SET'],
    ['RESET ALL', 'session', 'RESET'],
    ['RESET search_path', 'session', 'RESET'],
    ['DISCARD ALL', 'session', 'DISCARD ALL'],
    ['SET CONSTRAINTS ALL DEFERRED', 'session', 'SET CONSTRAINTS'],
    ['LISTEN ch', 'listen', 'LISTEN'],
    ['UNLISTEN ch', 'unlisten', 'UNLISTEN'],
    ['UNLISTEN *', 'unlisten', 'UNLISTEN'],
    ["NOTIFY ch, 'payload'", 'notify', 'NOTIFY'],
    ['COPY t FROM STDIN', 'copy_from', 'COPY'],
    ['COPY t (a, b) FROM STDIN WITH (FORMAT csv)', 'copy_from', 'COPY'],
    ['COPY t TO STDOUT', 'copy_to', 'COPY'],
    ['COPY (SELECT * FROM t) TO STDOUT', 'copy_to', 'COPY'],
    ["COPY t TO '/tmp/x'", 'write', 'COPY'],
    ["COPY t FROM '/tmp/x'", 'write', 'COPY'],
    ["COPY t FROM PROGRAM 'cat x'", 'write', 'COPY'],
    ['CREATE DATABASE d', 'create_database', 'CREATE DATABASE'],
    ['DROP DATABASE d', 'drop_database', 'DROP DATABASE'],
    ['ALTER DATABASE d SET work_mem = 1', 'alter_database', 'ALTER DATABASE'],
    ['ALTER DATABASE d RENAME TO e', 'alter_database', 'ALTER DATABASE'],
    ['ALTER DATABASE d OWNER TO r', 'alter_database', 'ALTER DATABASE'],
    ['VACUUM', 'non_transactional', 'VACUUM'],
    ['VACUUM (ANALYZE) t', 'non_transactional', 'VACUUM'],
    ['CREATE INDEX CONCURRENTLY i ON t (a)', 'non_transactional', 'CREATE INDEX'],
    ['CREATE INDEX i ON t (a)', 'write', 'CREATE INDEX'],
    ['DROP INDEX CONCURRENTLY i', 'non_transactional', 'DROP INDEX'],
    ['REINDEX INDEX CONCURRENTLY i', 'non_transactional', 'REINDEX'],
    ['REINDEX DATABASE d', 'non_transactional', 'REINDEX'],
    ["CREATE TABLESPACE ts LOCATION '/x'", 'non_transactional', 'CREATE TABLESPACE'],
    ['DROP TABLESPACE ts', 'non_transactional', 'DROP TABLESPACE'],
    ["ALTER SYSTEM SET work_mem = '1MB'", 'non_transactional', 'ALTER SYSTEM'],
    ['CLUSTER', 'non_transactional', 'CLUSTER'],
    ['ALTER TABLE p DETACH PARTITION c CONCURRENTLY', 'non_transactional', 'ALTER TABLE'],
    ['PREPARE p (int) AS SELECT $1', 'prepare', 'PREPARE'],
    ['EXECUTE p(1)', 'execute', 'EXECUTE'],
    ['DEALLOCATE p', 'deallocate', 'DEALLOCATE'],
    ['DEALLOCATE ALL', 'deallocate', 'DEALLOCATE ALL'],
    ['DECLARE c CURSOR FOR SELECT * FROM t', 'declare_cursor', 'DECLARE CURSOR'],
    ['FETCH 10 FROM c', 'fetch', 'FETCH'],
    ['MOVE NEXT IN c', 'fetch', 'MOVE'],
    ['CLOSE c', 'close_cursor', 'CLOSE CURSOR'],
    ['CLOSE ALL', 'close_cursor', 'CLOSE CURSOR ALL'],
    ['CHECKPOINT', 'checkpoint', 'CHECKPOINT'],
    ["LOAD 'auto_explain'", 'load', 'LOAD'],
    ["CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p", 'other_utility', 'CREATE SUBSCRIPTION'],
  ];
  for (const [sql, kind, tag] of cases) {
    it(`${sql} -> ${kind} / ${tag}`, () => {
      assert.deepEqual(kindTag(sql), [kind, tag]);
    });
  }
});

describe('details', () => {
  it('parses BEGIN and SET TRANSACTION options', () => {
    assert.deepEqual(one('BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE').txn, {
      isolation: 'serializable',
      readOnly: true,
      deferrable: true,
    });
    assert.deepEqual(one('BEGIN READ WRITE, NOT DEFERRABLE').txn, { readOnly: false, deferrable: false });
    assert.deepEqual(one('START TRANSACTION ISOLATION LEVEL REPEATABLE READ').txn, { isolation: 'repeatable read' });
    assert.deepEqual(one('BEGIN').txn, {});
    assert.deepEqual(one('SET TRANSACTION ISOLATION LEVEL READ COMMITTED').txn, { isolation: 'read committed' });
    assert.deepEqual(one("SET transaction_isolation = 'read uncommitted'").txn, { isolation: 'read uncommitted' });
    assert.deepEqual(one('SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY').txn, { readOnly: true });
    assert.equal(one('SET LOCAL search_path = a').setLocal, true);
    assert.equal(one('COMMIT AND CHAIN').chain, true);
  });

  it('names savepoints, cursors, prepared statements, channels and GIDs', () => {
    assert.equal(one('SAVEPOINT "My Point"').name, 'My Point');
    assert.equal(one('ROLLBACK TO SAVEPOINT sp').name, 'sp');
    assert.equal(one("PREPARE TRANSACTION 'pgq_1_42'").name, 'pgq_1_42');
    assert.equal(one('DECLARE cur CURSOR WITH HOLD FOR SELECT 1').name, 'cur');
    assert.equal(one('DECLARE cur CURSOR WITH HOLD FOR SELECT 1').holdCursor, true);
    assert.equal(one('FETCH ALL IN cur').name, 'cur');
    assert.equal(one('CLOSE cur').name, 'cur');
    assert.equal(one('CLOSE ALL').name, undefined);
    assert.equal(one('EXECUTE stmt1(1, 2)').name, 'stmt1');
    assert.equal(one('DEALLOCATE PREPARE stmt1').name, 'stmt1');
    assert.equal(one('DEALLOCATE ALL').name, undefined);
    assert.equal(one('LISTEN "Chan"').name, 'Chan');
    assert.equal(one("NOTIFY chan, 'x'").name, 'chan');
    assert.equal(one('UNLISTEN *').name, undefined);
    assert.equal(one('CREATE DATABASE shop').name, 'shop');
    assert.equal(one('SHOW pgquorum.nodes').name, 'pgquorum.nodes');
    assert.equal(one('SET search_path TO a').name, 'search_path');
    assert.equal(one('RESET ALL').name, undefined);
  });

  it('gives the inner statement of PREPARE, DECLARE, EXPLAIN and COPY (query)', () => {
    const p = one('PREPARE q (int, text) AS UPDATE t SET b = $2 WHERE a = $1');
    assert.equal(p.inner?.kind, 'write');
    assert.equal(p.inner?.tag, 'UPDATE');
    assert.equal(p.inner?.text, 'UPDATE t SET b = $2 WHERE a = $1');
    assert.deepEqual(p.relations, ['t']);
    assert.equal(one('PREPARE r AS SELECT * FROM t').inner?.kind, 'read');
    const d = one('DECLARE c CURSOR FOR SELECT * FROM t FOR UPDATE');
    assert.equal(d.inner?.kind, 'write');
    assert.equal(d.locksRows, true);
    assert.equal(classify('DECLARE c CURSOR FOR SELECT * FROM t FOR UPDATE').write, true);
    assert.equal(classify('DECLARE c CURSOR FOR SELECT * FROM t').write, false);
    assert.equal(one('EXPLAIN (ANALYZE) DELETE FROM t').inner?.text, 'DELETE FROM t');
    const c = one('COPY (DELETE FROM t RETURNING *) TO STDOUT');
    assert.equal(c.kind, 'copy_to');
    assert.equal(c.inner?.kind, 'write');
    assert.equal(c.inner?.text, 'DELETE FROM t RETURNING *');
    assert.equal(classify('COPY (DELETE FROM t RETURNING *) TO STDOUT').write, true);
  });

  it('flags DISCARD targets', () => {
    assert.equal(one('DISCARD ALL').discard, 'all');
    assert.equal(one('DISCARD TEMP').discard, 'temp');
    assert.equal(one('DISCARD TEMPORARY').discard, 'temp');
    assert.equal(one('DISCARD PLANS').discard, 'plans');
    assert.equal(one('DISCARD SEQUENCES').discard, 'sequences');
  });
});

describe('reads that lock rows or modify data', () => {
  it('SELECT ... FOR UPDATE / SHARE is a write that locks rows', () => {
    for (const sql of [
      'SELECT * FROM t WHERE a = 1 FOR UPDATE',
      'SELECT * FROM t FOR SHARE',
      'SELECT * FROM t FOR NO KEY UPDATE SKIP LOCKED',
      'SELECT * FROM t FOR KEY SHARE NOWAIT',
      'SELECT * FROM (SELECT * FROM t FOR UPDATE) s',
    ]) {
      const s = one(sql);
      assert.equal(s.kind, 'write', sql);
      assert.equal(s.locksRows, true, sql);
      assert.equal(s.tag, 'SELECT');
    }
    assert.equal(one('SELECT * FROM t').locksRows, undefined);
  });

  it('a CTE with a data-modifying statement makes a SELECT a write', () => {
    const s = one('WITH x AS (DELETE FROM t WHERE a < 0 RETURNING *) SELECT count(*) FROM x');
    assert.equal(s.kind, 'write');
    assert.equal(s.tag, 'SELECT');
    assert.deepEqual(s.relations, ['t']);
    assert.equal(one('WITH x AS (INSERT INTO t VALUES (1) RETURNING a) SELECT * FROM x').kind, 'write');
    assert.equal(one('WITH x AS (UPDATE t SET a = 2 RETURNING a) SELECT * FROM x').kind, 'write');
    assert.equal(one('WITH x AS (SELECT * FROM t) SELECT * FROM x').kind, 'read');
    assert.equal(one("SELECT 1 UNION SELECT nextval('s')").kind, 'write');
    assert.deepEqual(one('SELECT a FROM t1 UNION ALL (WITH c AS (SELECT 1) SELECT * FROM c, t2)').relations, ['t1', 't2']);
  });

  it('SELECT INTO is a write', () => {
    assert.equal(one('SELECT * INTO newtab FROM t').kind, 'write');
  });
});

describe('functions', () => {
  it('set_config alone is a session statement', () => {
    const s = one("SELECT set_config('app.user', 'alice', false)");
    assert.equal(s.kind, 'session');
    assert.deepEqual(s.functions, ['set_config']);
    assert.equal(one("SELECT set_config('a.b', x, true) FROM t").kind, 'session');
    assert.equal(one("SELECT set_config('a.b', '1', false), nextval('s')").kind, 'write');
    assert.equal(one("SELECT setseed(0.5)").kind, 'session');
  });

  it('pg_notify is a notify with its channel', () => {
    const s = one("SELECT pg_notify('jobs', 'x')");
    assert.equal(s.kind, 'notify');
    assert.equal(s.name, 'jobs');
    assert.equal(classify("SELECT pg_notify('jobs', 'x')").write, true);
  });

  it('advisory locks and other data-changing builtins are writes', () => {
    for (const fn of [
      'pg_advisory_lock(1)', 'pg_advisory_lock_shared(1)', 'pg_advisory_unlock(1)', 'pg_advisory_unlock_all()',
      'pg_advisory_xact_lock(1, 2)', 'pg_advisory_xact_lock_shared(1)', 'pg_try_advisory_lock(1)',
      'pg_try_advisory_xact_lock(1)', "nextval('s')", "setval('s', 1)", 'lo_create(0)', "lo_import('/x')",
      'lo_unlink(1)', 'txid_current()', 'pg_current_xact_id()', "dblink_exec('c', 'x')",
      'pg_terminate_backend(1)', 'pg_cancel_backend(1)', 'pg_reload_conf()', 'pg_switch_wal()',
      "pg_create_physical_replication_slot('s')", "pg_drop_replication_slot('s')",
      "pg_logical_emit_message(true, 'p', 'm')", 'pg_stat_reset()', "pg_stat_reset_shared('bgwriter')",
      "pg_catalog.nextval('s')",
    ]) {
      assert.equal(one(`SELECT ${fn}`).kind, 'write', fn);
    }
  });

  it('builtins that only read keep a SELECT a read', () => {
    const s = one(
      "SELECT count(*), sum(a), lower(b), now(), random(), pg_sleep(0), version(), current_setting('x'), " +
        "jsonb_build_object('a', 1), array_agg(a), date_trunc('day', now()), extract(year FROM now()), " +
        "coalesce(a, 1), greatest(1, 2), generate_series(1, 3), pg_catalog.upper('x'), substring('abc' FROM 2) FROM t",
    );
    assert.equal(s.kind, 'read');
    assert.ok(s.functions.includes('extract'));
    assert.ok(s.functions.includes('pg_catalog.upper'));
  });

  it('unknown functions are writes unless declared read-only; configured write functions are writes', () => {
    assert.equal(one('SELECT my_func(1)').kind, 'write');
    assert.equal(one('SELECT app.my_func(1)').kind, 'write');
    assert.deepEqual(one('SELECT app.my_func(1)').functions, ['app.my_func']);
    try {
      setReadOnlyFunctions(['my_func', 'app.other']);
      assert.equal(one('SELECT my_func(1)').kind, 'read');
      assert.equal(one('SELECT app.other(1)').kind, 'read');
      assert.equal(one('SELECT other(1)').kind, 'read'); // unqualified call matches 'app.other'
      assert.equal(one('SELECT app.my_func(1)').kind, 'read'); // qualified call matches bare 'my_func'
      assert.equal(one("SELECT nextval('s')").kind, 'write'); // builtin writes cannot be declared read-only
      setWriteFunctions(['lower']);
      assert.equal(one("SELECT lower('X')").kind, 'write');
      setWriteFunctions(['my_func']);
      assert.equal(one('SELECT my_func(1)').kind, 'write'); // write wins over read-only
    } finally {
      setReadOnlyFunctions([]);
      setWriteFunctions([]);
    }
    assert.equal(one("SELECT lower('X')").kind, 'read');
    assert.equal(one('SELECT my_func(1)').kind, 'write');
  });

  it('lists nondeterministic builtins of a write', () => {
    assert.deepEqual(one('INSERT INTO t SELECT random(), gen_random_uuid()').nondeterministic, ['random', 'gen_random_uuid']);
    assert.equal(one('SELECT random()').nondeterministic, undefined);
  });

  it('CALL names the procedure', () => {
    assert.deepEqual(one('CALL app.do_it(1)').functions, ['app.do_it']);
  });
});

describe('relations and temporary objects', () => {
  it('lists relations as written, without CTE names', () => {
    assert.deepEqual(one('SELECT * FROM "MyTable" m JOIN sch."Other" o ON true, Plain p').relations, ['MyTable', 'sch.Other', 'plain']);
    assert.deepEqual(one('WITH w AS (SELECT 1) SELECT * FROM w, t').relations, ['t']);
    assert.deepEqual(one('WITH RECURSIVE w(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM w) SELECT * FROM w').relations, []);
    assert.deepEqual(one('SELECT * FROM (WITH w AS (SELECT 1) SELECT * FROM w) s, w').relations, ['w']);
    assert.deepEqual(one('WITH t AS (SELECT * FROM t) SELECT * FROM t').relations, ['t']); // the CTE body reads table t
    assert.deepEqual(one('WITH a AS (SELECT 1), b AS (SELECT * FROM a) SELECT * FROM b').relations, []);
    assert.deepEqual(one('WITH t AS (SELECT 1) INSERT INTO t SELECT * FROM t').relations, ['t']);
    assert.deepEqual(one('INSERT INTO a SELECT * FROM b WHERE x IN (SELECT x FROM c)').relations, ['a', 'b', 'c']);
    assert.deepEqual(one('DROP TABLE s.x, y').relations, ['s.x', 'y']);
    assert.deepEqual(one('TRUNCATE a, b').relations, ['a', 'b']);
    assert.deepEqual(one('COPY tmp FROM STDIN').relations, ['tmp']);
  });

  it('reports the created temporary name', () => {
    assert.equal(one('CREATE TEMP TABLE tt (a int)').createsTemp, 'tt');
    assert.equal(one('CREATE TEMPORARY TABLE tt (a int) ON COMMIT DROP').createsTemp, 'tt');
    assert.equal(one('CREATE TABLE pg_temp.tt2 (a int)').createsTemp, 'tt2');
    assert.equal(one('CREATE TEMP VIEW tv AS SELECT 1').createsTemp, 'tv');
    assert.equal(one('CREATE TEMP SEQUENCE ts').createsTemp, 'ts');
    assert.equal(one('CREATE TEMP TABLE t3 AS SELECT 1').createsTemp, 't3');
    assert.equal(one('SELECT 1 AS a INTO TEMP t4').createsTemp, 't4');
    assert.equal(one('CREATE TABLE perm (a int)').createsTemp, undefined);
    assert.equal(one('CREATE TEMP TABLE tt (a int)').kind, 'write');
  });
});

describe('multi-statement strings, empty strings, syntax errors, unicode', () => {
  it('splits statements and slices their text', () => {
    const c = classify('BEGIN; UPDATE t SET a = 1;  SELECT * FROM t ; COMMIT;');
    assert.deepEqual(
      c.statements.map((s) => [s.kind, s.text]),
      [
        ['begin', 'BEGIN'],
        ['write', 'UPDATE t SET a = 1'],
        ['read', 'SELECT * FROM t'],
        ['commit', 'COMMIT'],
      ],
    );
    assert.equal(c.write, true);
    assert.equal(classify('BEGIN; SELECT 1; COMMIT').write, false);
    assert.equal(classify('SELECT 1;;SELECT 2').statements.length, 2);
  });

  it('an empty or comment-only string has no statements', () => {
    for (const sql of ['', '   ', '-- only a comment', '/* c */ ;']) {
      const c = classify(sql);
      assert.deepEqual(c.statements, [], JSON.stringify(sql));
      assert.equal(c.write, false);
      assert.equal(c.needsRewrite, false);
    }
  });

  it('a syntax error is not thrown: one write statement flagged syntaxError', () => {
    const c = classify('SELEC 1; SELECT 2');
    assert.equal(c.statements.length, 1);
    const s = c.statements[0]!;
    assert.equal(s.kind, 'write');
    assert.equal(s.tag, '');
    assert.equal(s.syntaxError, true);
    assert.match(s.error ?? '', /syntax error/);
    assert.equal(c.write, true);
    assert.equal(classify("SELECT 'unterminated").statements[0]!.syntaxError, true);
  });

  it('a statement nested too deeply to analyse is a write flagged tooComplex, not an exception', () => {
    const sql = `SELECT ${Array.from({ length: 6000 }, () => '1').join(' + ')}`;
    const s = one(sql);
    assert.equal(s.kind, 'write');
    assert.equal(s.tooComplex, true);
    assert.equal(classify(sql).write, true);
  });

  it('handles non-ASCII text with byte offsets', () => {
    const sql = "SELECT 'héllo wörld 🎉' AS \"名前\" FROM \"Täble\"; INSERT INTO t VALUES ('日本語'); SELECT 'ñ'";
    const c = classify(sql);
    assert.deepEqual(
      c.statements.map((s) => s.text),
      ["SELECT 'héllo wörld 🎉' AS \"名前\" FROM \"Täble\"", "INSERT INTO t VALUES ('日本語')", "SELECT 'ñ'"],
    );
    assert.deepEqual(c.statements[0]!.relations, ['Täble']);
  });
});

describe('parser initialisation', () => {
  it('classify() throws before initParser() has finished', () => {
    const url = new URL('../../src/sql/classify.js', import.meta.url).href;
    const code = `import(${JSON.stringify(url)}).then((m) => { try { m.classify('SELECT 1'); console.log('no error'); } catch (e) { console.log(e.code); } })`;
    const out = execFileSync(process.execPath, ['-e', code], { encoding: 'utf8' });
    assert.equal(out.trim(), 'ERR_SQL_PARSER_NOT_READY');
  });
});

describe('cache', () => {
  it('returns the same object for the same text without parsing again', () => {
    clearClassifyCache();
    const sql = 'SELECT abalance FROM pgbench_accounts WHERE aid = $1 /* cache test */';
    const before = parseCount();
    const a = classify(sql);
    assert.equal(parseCount(), before + 1);
    const b = classify(sql);
    assert.equal(b, a);
    assert.equal(parseCount(), before + 1);
    assert.ok(Object.isFrozen(a) && Object.isFrozen(a.statements[0]));
    const stats = classifyCacheStats();
    assert.equal(stats.hits, 1);
    assert.equal(stats.capacity, 10_000);
  });

  it('caches syntax errors too, and evicts the least recently used text', () => {
    clearClassifyCache();
    const before = parseCount();
    classify('SELEC 1');
    classify('SELEC 1');
    assert.equal(parseCount(), before + 1);
    try {
      setClassifyCacheSize(2);
      // texts without numbers (texts that differ only in numbers share an analysis: see below)
      classify('SELECT a');
      classify('SELECT b');
      classify('SELECT a'); // refresh
      classify('SELECT c'); // evicts SELECT b
      const n = parseCount();
      classify('SELECT a');
      assert.equal(parseCount(), n);
      classify('SELECT b');
      assert.equal(parseCount(), n + 1);
    } finally {
      setClassifyCacheSize(10_000);
    }
  });

  it('does not cache very long texts', () => {
    const sql = `INSERT INTO t VALUES ${Array.from({ length: 12000 }, (_, i) => `(${i})`).join(', ')}`;
    assert.ok(sql.length > 64 * 1024);
    const before = parseCount();
    assert.equal(classify(sql).statements[0]!.kind, 'write');
    classify(sql);
    assert.equal(parseCount(), before + 2);
  });
});

it('reads differing only in numbers share one analysis, each with its own text', async () => {
  const { shapeKey, classifyCacheStats } = await import('../../src/sql/classify.js');
  assert.equal(shapeKey('SELECT abalance FROM pgbench_accounts WHERE aid = 42;'), 'SELECT abalance FROM pgbench_accounts WHERE aid = \u0000;');
  assert.equal(shapeKey("SELECT 'a1' /* 7 */"), null, 'digits in strings and comments are not numbers');
  const before = classifyCacheStats().misses;
  const a = classify('SELECT abalance FROM pgbench_accounts WHERE aid = 4711;');
  const b = classify('  SELECT abalance FROM pgbench_accounts WHERE aid = 12;');
  assert.notEqual(a, b);
  assert.equal(b.statements[0]!.kind, 'read');
  assert.equal(b.statements[0]!.text, 'SELECT abalance FROM pgbench_accounts WHERE aid = 12');
  assert.deepEqual(b.statements[0]!.relations, a.statements[0]!.relations);
  const c = classify('  SELECT abalance FROM pgbench_accounts WHERE aid = 123456789;');
  assert.equal(c.statements[0]!.text, 'SELECT abalance FROM pgbench_accounts WHERE aid = 123456789');
  assert.ok(classifyCacheStats().misses - before >= 1);
  // a write with the same shape gets its own text
  const w1 = classify('UPDATE t SET v = 1 WHERE id = 1');
  const w2 = classify('UPDATE t SET v = 2 WHERE id = 1');
  assert.equal(w2.statements[0]!.text, 'UPDATE t SET v = 2 WHERE id = 1');
  assert.equal(w1.write && w2.write, true);
  // a read drawing random values
  const r = classify('SELECT random() * 5 FROM t LIMIT 3');
  const r2 = classify('SELECT random() * 6 FROM t LIMIT 3');
  assert.equal(r2.statements[0]!.text, 'SELECT random() * 6 FROM t LIMIT 3');
  assert.equal(r.statements[0]!.random, r2.statements[0]!.random);
  // the statement's text found twice (here in a comment): not shared
  const k1 = classify('/* SELECT 1 */ SELECT 1');
  const k2 = classify('/* SELECT 1 */ SELECT 2');
  assert.equal(k1.statements[0]!.text.endsWith('SELECT 1'), true);
  assert.equal(k2.statements[0]!.text, '/* SELECT 1 */ SELECT 2');
});

it('a statement analysed through its shape equals its own analysis (offsets moved, texts its own)', async () => {
  const { analyze } = await import('../../src/sql/classify.js');
  const templates = [
    'UPDATE pgbench_accounts SET abalance = abalance + {n} WHERE aid = {n};',
    'SELECT abalance FROM pgbench_accounts WHERE aid = {n};',
    'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ({n}, {n}, {n}, {n}, CURRENT_TIMESTAMP);',
    '  /* lead */ UPDATE t SET ts = CURRENT_TIMESTAMP, v = {n} WHERE id = {n} ; ',
    'INSERT INTO t (a, b, c) VALUES ({n}, DEFAULT, now()), ({n}, {n}, DEFAULT)',
    'INSERT INTO t VALUES ({n}, DEFAULT)',
    'INSERT INTO t (id, u) VALUES ({n}, gen_random_uuid())',
    'INSERT INTO t SELECT {n}, now()',
    'INSERT INTO t DEFAULT VALUES',
    "UPDATE t SET name = 'é{n}ü', at = now() + interval '{n} days' WHERE id = {n} AND x = {n}.5",
    'UPDATE t SET v = {n}, ts = CURRENT_TIME(3) WHERE id = {n}',
    'DELETE FROM t WHERE id IN ({n}, {n}) RETURNING *',
    'SELECT * FROM t ORDER BY 1 LIMIT {n}',
    'SELECT now(), {n} FROM t WHERE id = {n}',
    "UPDATE t SET v = nextval('s') + {n} WHERE id = {n}",
    'UPDATE t SET v = random() * {n} WHERE id = {n}',
  ];
  const fill = (t: string, seed: number): string => {
    let k = 0;
    return t.replace(/\{n\}/g, () => String(((seed + 1) * 7919 * ++k) % (seed % 2 ? 9 : 1_000_003)));
  };
  let shared = 0;
  for (const t of templates) {
    for (const [x, y] of [[1, 2], [2, 3], [4, 1]] as const) {
      clearClassifyCache();
      analyze(fill(t, x));
      const before = parseCount();
      const viaShape = analyze(fill(t, y));
      if (parseCount() === before) shared++;
      clearClassifyCache();
      const own = analyze(fill(t, y));
      const view = (a: typeof own) => ({ cls: a.cls, edits: a.edits, pieces: a.pieces, maxParam: a.maxParam });
      assert.deepEqual(view(viaShape), view(own), `${fill(t, y)} (shape of ${fill(t, x)})`);
    }
  }
  assert.ok(shared >= 30, `most of these share their shape (${shared})`);
  // numbers that change what is known are not shared: CURRENT_TIME(3), ORDER BY 1
  clearClassifyCache();
  analyze('UPDATE t SET ts = CURRENT_TIME(3) WHERE id = 1');
  const before = parseCount();
  analyze('UPDATE t SET ts = CURRENT_TIME(3) WHERE id = 2');
  assert.equal(parseCount(), before + 1);
  analyze('SELECT * FROM t ORDER BY 1 LIMIT 5');
  analyze('SELECT * FROM t ORDER BY 2 LIMIT 5');
  assert.equal(parseCount(), before + 3);
  // EXPLAIN (ANALYZE 0) is a read, EXPLAIN (ANALYZE 1) of a DELETE a write
  assert.equal(classify('EXPLAIN (ANALYZE 0) DELETE FROM t WHERE id = 1').statements[0]!.kind, 'read');
  assert.equal(classify('EXPLAIN (ANALYZE 1) DELETE FROM t WHERE id = 1').statements[0]!.kind, 'write');
});

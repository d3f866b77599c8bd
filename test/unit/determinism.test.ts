// The determinism planner without nodes: what the classifier finds (random,
// sequences, per-server values, order checks, INSERT shapes), how defaults
// are written in, and which rule refuses what. The catalog is a fake here;
// test/integration/determinism.test.ts runs the same against real nodes.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { classify, initParser } from '../../src/sql/classify.js';
import { rewriteSimple } from '../../src/sql/rewrite.js';
import { fillDefaults, planStatement, type PlanEnv } from '../../src/determinism/plan.js';
import type { ColumnInfo, TableInfo } from '../../src/determinism/catalog.js';
import type { PgqError } from '../../src/errors.js';

before(async () => {
  await initParser();
});

const col = (name: string, def: string | null, o: Partial<ColumnInfo> = {}): ColumnInfo => ({
  name,
  default: def,
  identity: '',
  generated: '',
  fill: /now|random|uuid|current_/.test(def ?? ''),
  sequences: /nextval\('([^']+)'/.exec(def ?? '')?.slice(1, 2) ?? [],
  random: /random|uuid/.test(def ?? ''),
  constant: def === null || /^\d+$/.test(def),
  userFunctions: false,
  ...o,
});

const TABLES: Record<string, TableInfo> = {
  '"t"': {
    name: 't',
    key: ['id'],
    columns: [col('id', "nextval('t_id_seq'::regclass)"), col('v', null), col('at', 'now()'), col('u', 'gen_random_uuid()'), col('n', '7')],
    selfContained: false,
    noUserCode: true,
  },
  '"plain"': { name: 'plain', key: ['k'], columns: [col('k', null), col('x', null)], selfContained: true, noUserCode: true },
  '"nokey"': { name: 'nokey', key: null, columns: [col('a', null), col('b', null)], selfContained: true, noUserCode: true },
};

const env = (o: Partial<PlanEnv> = {}): PlanEnv => ({
  table: async (rel) => TABLES[rel] ?? null,
  functionVolatile: async (name) => name !== 'stable_fn',
  functionBodies: 'refuse',
  warn: () => {},
  ...o,
});

const plan = (sql: string, e = env()) => planStatement(classify(sql).statements[0]!, sql, e);

async function refusedBy(sql: string, rule: string, e = env()): Promise<void> {
  await assert.rejects(plan(sql, e), (err: PgqError) => {
    assert.equal(err.sqlstate, '0A000');
    assert.match(err.message, new RegExp(`rule "${rule}"`), sql);
    return true;
  });
}

describe('classification for determinism', () => {
  it('finds random, UUIDs, sequences and per-server values', () => {
    const s = classify("INSERT INTO t (v) VALUES (random()::text), (gen_random_uuid()::text), (nextval('s2')::text), (txid_current()::text)").statements[0]!;
    assert.equal(s.random, true);
    assert.deepEqual(s.sequences, ['s2']);
    assert.deepEqual(s.unsafe, ['txid_current()']);
    assert.equal(s.dataWrite, true);
    assert.deepEqual(classify("SELECT nextval($1)").statements[0]!.sequences, ['*']);
    assert.deepEqual(classify("UPDATE t SET v = 'x' WHERE ctid = '(0,1)'").statements[0]!.unsafe, ['ctid']);
    assert.equal(classify('SELECT tableoid::regclass, v FROM t').statements[0]!.unsafe, undefined);
  });

  it('gen_random_uuid() becomes a seeded version-4 UUID expression', () => {
    const out = rewriteSimple("INSERT INTO t (u) VALUES (gen_random_uuid())", { transaction: new Date(), statement: new Date(), clock: new Date() });
    assert.ok(out);
    assert.doesNotMatch(out, /gen_random_uuid/);
    assert.match(out, /pg_catalog\.random\(\)/);
  });

  it('in UPDATE/DELETE/MERGE a draw is evaluated once (not again when a locked row is re-checked)', () => {
    const t = { transaction: new Date(), statement: new Date(), clock: new Date() };
    assert.equal(
      rewriteSimple("UPDATE t SET r = random(), s = nextval('s1') WHERE id = 1", t),
      "UPDATE t SET r = (SELECT random()), s = (SELECT nextval('s1')) WHERE id = 1",
    );
    assert.equal(rewriteSimple("INSERT INTO t VALUES (random(), nextval('s1'))", t), null, 'INSERT: seeded and serialized, not rewritten');
  });

  it('LIMIT order checks: total orders need none', () => {
    const oc = (sql: string) => classify(sql).statements[0]!.orderChecks;
    assert.equal(oc('DELETE FROM t WHERE id IN (SELECT id FROM t ORDER BY id LIMIT 3)'), undefined);
    assert.equal(oc('DELETE FROM t WHERE id IN (SELECT id FROM generate_series(1, 9) id LIMIT 3)'), undefined);
    assert.deepEqual(oc('DELETE FROM t WHERE id IN (SELECT id FROM t ORDER BY v LIMIT 3)'), [
      { relation: '"t"', sortColumns: ['v'], what: 'LIMIT' },
    ]);
    assert.equal(oc("INSERT INTO plain SELECT k, x FROM plain ORDER BY k, x LIMIT 1"), undefined);
  });

  it('INSERT shapes: column list, VALUES rows, DEFAULT items, SELECT span, DEFAULT VALUES', () => {
    const s = classify("INSERT INTO t AS x (id, v) VALUES (1, 'a'), (DEFAULT, 'b') RETURNING *").statements[0]!;
    assert.equal(s.insert?.source, 'values');
    assert.deepEqual(s.insert?.columns, ['id', 'v']);
    assert.equal(s.insert?.rows?.length, 2);
    assert.equal(s.insert?.rows?.[1]?.defaults[0]?.index, 0);
    const sel = classify('INSERT INTO t (v) SELECT x FROM plain ORDER BY k ON CONFLICT DO NOTHING').statements[0]!;
    assert.equal(sel.insert?.source, 'select');
    assert.equal(sel.insert?.selectWidth, 1);
    assert.equal(classify('INSERT INTO t DEFAULT VALUES').statements[0]!.insert?.source, 'default');
  });
});

describe('filling defaults', () => {
  const t = TABLES['"t"']!;
  const fill = t.columns.filter((c) => c.fill);
  const filled = (sql: string, given: string[]) => fillDefaults(sql, classify(sql).statements[0]!.insert!, given, fill);

  it('VALUES with a column list, several rows, DEFAULT items', () => {
    assert.equal(
      filled("INSERT INTO t (v) VALUES ('a'), ('b')", ['v']),
      'INSERT INTO t (v, "at", "u") VALUES (\'a\', (now()), (gen_random_uuid())), (\'b\', (now()), (gen_random_uuid()))',
    );
    assert.equal(
      filled("INSERT INTO t (v, at) VALUES ('a', DEFAULT)", ['v', 'at']),
      'INSERT INTO t (v, at, "u") VALUES (\'a\', (now()), (gen_random_uuid()))',
    );
  });

  it('no column list, DEFAULT VALUES, INSERT ... SELECT', () => {
    assert.equal(filled("INSERT INTO t VALUES (1, 'a')", ['id', 'v']), 'INSERT INTO t ("id", "v", "at", "u") VALUES (1, \'a\', (now()), (gen_random_uuid()))');
    assert.equal(filled('INSERT INTO t DEFAULT VALUES', []), 'INSERT INTO t ("at", "u") VALUES ((now()), (gen_random_uuid()))');
    assert.equal(
      filled('INSERT INTO t (v) SELECT x FROM plain ORDER BY k RETURNING id', ['v']),
      'INSERT INTO t (v, "at", "u") SELECT pgq_s.*, (now()), (gen_random_uuid()) FROM (SELECT x FROM plain ORDER BY k) AS pgq_s RETURNING id',
    );
  });
});

describe('planning', () => {
  it('INSERT into a serial table with clock/uuid defaults: lock, seed, filled text', async () => {
    const p = await plan("INSERT INTO t (v) VALUES ('a')");
    assert.deepEqual(p.sequences, ['t_id_seq']);
    assert.equal(p.seed, true);
    assert.match(p.text!, /\(now\(\)\)/);
    const q = await plan('INSERT INTO t (id, v, at, u) VALUES (1, 2, 3, 4)');
    assert.equal(q.text, null);
    assert.deepEqual(q.sequences, [], 'no default used: nothing to serialize');
  });

  it('refusals name their rule', async () => {
    await refusedBy('INSERT INTO plain VALUES (txid_current(), 1)', 'per-server-value');
    await refusedBy('INSERT INTO t (v) SELECT x FROM plain', 'insert-select-order');
    await refusedBy('INSERT INTO t (v) SELECT x FROM nokey ORDER BY a', 'insert-select-order');
    await refusedBy('DELETE FROM plain WHERE k IN (SELECT a FROM nokey ORDER BY b LIMIT 1)', 'limit-without-total-order');
    await refusedBy('UPDATE t SET at = DEFAULT WHERE id = 1', 'volatile-default');
    await refusedBy("SELECT nextval('s' || 1)", 'computed-sequence-name');
    await refusedBy("CREATE FUNCTION f() RETURNS float8 LANGUAGE sql AS 'SELECT random()'", 'function-body');
    await refusedBy('CREATE FUNCTION f() RETURNS date LANGUAGE sql BEGIN ATOMIC SELECT CURRENT_DATE; END', 'function-body');
  });

  it('orders proven total by a key of the only source table', async () => {
    const p = await plan('INSERT INTO t (v) SELECT x FROM plain ORDER BY k');
    assert.equal(p.text !== null, true);
    const u = await plan('UPDATE plain SET x = random() WHERE k = 1');
    assert.equal(u.singleRow, true, 'UPDATE drawing random values: one row only, checked on the main node');
  });

  it('function bodies: warn mode runs them with a warning; user functions by volatility', async () => {
    const warnings: string[] = [];
    const p = await plan("CREATE FUNCTION f() RETURNS timestamptz LANGUAGE sql AS 'SELECT now()'", env({ functionBodies: 'warn', warn: (m) => warnings.push(m) }));
    assert.equal(p.read, false);
    assert.equal(warnings.length, 1);
    assert.equal((await plan('SELECT stable_fn()')).read, true);
    assert.equal((await plan('SELECT other_fn()')).read, false);
    assert.equal((await plan('SELECT txid_current()')).mainOnly, true);
  });
});

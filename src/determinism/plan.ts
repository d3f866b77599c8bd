// The determinism planner (DESIGN.md "Determinism", invariant 5): for one
// write statement, decides how every node is made to compute the same rows,
// or refuses the statement with an error that names the rule. The strategies
// (docs/determinism.md has the full table):
//   time        now(), CURRENT_*, ... become literals (src/sql/rewrite.ts);
//   defaults    columns an INSERT leaves to a default that reads a clock or
//               the random generator are named with their default
//               expression, which the time/random strategies then cover;
//   random      random() and the UUID generators (rewritten to random())
//               draw from a generator the coordinator seeds on every node
//               right before the statement;
//   sequences   statements that draw from a sequence are serialized per
//               sequence with an advisory lock on the main node, held until
//               every node has run the statement, so every node hands out
//               the same values in the same order;
//   order       values drawn per row need the same row order everywhere:
//               INSERT ... SELECT and LIMIT need a total ORDER BY, and an
//               UPDATE/DELETE/MERGE drawing values may touch one row only;
//   refused     per-server facts (txid_current(), pg_backend_pid(), ctid,
//               ...) in a statement that writes.

import { PgqError, SqlState } from '../errors.js';
import type { InsertShape, StatementInfo } from '../sql/types.js';
import type { ColumnInfo, TableInfo } from './catalog.js';

export interface DetPlan {
  /** the statement's text with defaults made explicit, or null when unchanged */
  text: string | null;
  /** seed the random generator on every node first */
  seed: boolean;
  /** sequences to serialize on (regclass text as written) */
  sequences: string[];
  /** the statement draws values in row order: the main node must report at most one row */
  singleRow: boolean;
  /** a SELECT that only reads per-server facts: answered by the main node alone */
  mainOnly: boolean;
  /** a write only because of user functions, none of which is volatile: a read */
  read: boolean;
}

export interface PlanEnv {
  table(rel: string): Promise<TableInfo | null>;
  functionVolatile(name: string): Promise<boolean>;
  functionBodies: 'refuse' | 'warn' | 'allow';
  /** NOTICE-style warnings for the client */
  warn(message: string): void;
  /** extended protocol: INSERT defaults were filled in the Parse already (src/txn/batch.ts) */
  filledAtParse?: boolean;
}

/** A plan that changes nothing (to be filled in). */
export function emptyPlan(): DetPlan {
  return { text: null, seed: false, sequences: [], singleRow: false, mainOnly: false, read: false };
}

/** The shared plan of statements that need no planning. */
export const NO_PLAN: DetPlan = Object.freeze(emptyPlan());

/** Whether a statement needs the planner at all (the cheap test on the hot path). */
export function needsPlan(s: StatementInfo): boolean {
  return (
    s.insert !== undefined || s.kind === 'copy_from' || s.random === true || s.sequences !== undefined ||
    s.unsafe !== undefined || s.orderChecks !== undefined || s.readUnlessVolatile === true ||
    s.bodyCalls !== undefined || s.setDefault === true || (s.tag === 'MERGE')
  );
}

/** A statement pgquorum refuses because it cannot make the nodes agree; `rule` is documented in docs/determinism.md. */
export function refuse(rule: string, message: string, hint: string): PgqError {
  return new PgqError('ERR_NONDETERMINISTIC', `pgquorum cannot replicate this statement safely: ${message} (rule "${rule}")`, {
    sqlstate: SqlState.FEATURE_NOT_SUPPORTED,
    hint,
    context: { rule },
  });
}

const quoteIdent = (s: string): string => `"${s.replace(/"/g, '""')}"`;

function add(list: string[], items: readonly string[]): void {
  for (const i of items) if (!list.includes(i)) list.push(i);
}

/** Plans one statement. `text` is the analysed text its InsertShape offsets refer to (null: do not rewrite). */
export async function planStatement(s: StatementInfo, text: string | null, env: PlanEnv): Promise<DetPlan> {
  if (s.bodyCalls && env.functionBodies !== 'allow') {
    const what = `${s.tag === 'DO' ? 'the DO block' : 'the function body'} calls ${s.bodyCalls.join(', ')}`;
    if (env.functionBodies === 'refuse') {
      throw refuse(
        'function-body',
        `${what}, which gives each node a different value when it runs there`,
        'Pass such values in as arguments (pgquorum fixes them in the calling statement), or set determinism.function_bodies to "warn" or "allow" if the calls never reach stored data.',
      );
    }
    env.warn(`pgquorum: ${what}; each node evaluates these itself, so stored results may differ between nodes`);
  }
  const plan = emptyPlan();
  plan.seed = s.random === true;
  const writes = s.dataWrite === true;

  if (s.readUnlessVolatile && !writes && !s.sequences && !s.unsafe) {
    let volatile = false;
    for (const f of s.unknownFunctions ?? []) {
      if (await env.functionVolatile(f)) {
        volatile = true;
        break;
      }
    }
    if (!volatile) {
      plan.read = true;
      return plan;
    }
  }

  if (s.unsafe) {
    if (!writes && !s.sequences && !s.random && !s.insert) {
      plan.mainOnly = true;
      return plan;
    }
    throw refuse(
      'per-server-value',
      `${s.unsafe.join(', ')} ${s.unsafe.length > 1 ? 'have' : 'has'} a different value on every node`,
      'Read such values in a separate SELECT (answered by the main node) and write them as literals, or use a key column instead of ctid.',
    );
  }
  if (s.sequences?.includes('*')) {
    throw refuse(
      'computed-sequence-name',
      'nextval()/setval() with a sequence name computed at run time cannot be serialized',
      "Name the sequence with a constant, e.g. nextval('my_seq').",
    );
  }
  add(plan.sequences, s.sequences ?? []);

  const target = s.target ? await env.table(s.target) : null;
  if (target) {
    if (s.insert && s.tag === 'INSERT') planInsert(s.insert, target, text, plan, env.filledAtParse === true);
    else if (s.kind === 'copy_from') planCopy(s, target, plan);
    else if (s.setDefault || s.tag === 'MERGE') {
      // UPDATE ... SET c = DEFAULT / MERGE ... INSERT: a default may be drawn
      add(plan.sequences, target.columns.flatMap((c) => c.sequences));
      if (target.columns.some((c) => c.fill)) {
        throw refuse(
          'volatile-default',
          `${s.tag} may use the default of a column of ${target.name} that reads the clock or the random generator`,
          'Give that column an explicit value (now(), random() and gen_random_uuid() in the statement itself are made deterministic).',
        );
      }
    }
  }

  for (const check of s.orderChecks ?? []) {
    if (await provenTotal(check.relation, check.sortColumns, env)) continue;
    throw refuse(
      'limit-without-total-order',
      'LIMIT/OFFSET without an ORDER BY that fixes the row order picks different rows on different nodes',
      'Add an ORDER BY over every selected column or over a primary key of the table.',
    );
  }

  if ((plan.seed || plan.sequences.length > 0) && writes) {
    if (s.tag === 'UPDATE' || s.tag === 'DELETE' || s.tag === 'MERGE') plan.singleRow = true;
    else if (s.insert?.source === 'select' && s.insert.orderCheck) {
      const c = s.insert.orderCheck;
      if (!(await provenTotal(c.relation, c.sortColumns, env))) {
        throw refuse(
          'insert-select-order',
          'INSERT ... SELECT draws sequence or random values per row, and without a total ORDER BY the rows come in a different order on each node',
          'Add an ORDER BY over every selected column or over a primary key of the source table.',
        );
      }
    }
  }
  return plan;
}

async function provenTotal(relation: string | undefined, sortColumns: readonly string[], env: PlanEnv): Promise<boolean> {
  if (relation === undefined) return false;
  const t = await env.table(relation);
  return t !== null && t.key !== null && t.key.every((k) => sortColumns.includes(k));
}

function planCopy(s: StatementInfo, t: TableInfo, plan: DetPlan): void {
  const given = s.copyColumns ?? t.columns.filter((c) => c.generated === '').map((c) => c.name);
  const omitted = t.columns.filter((c) => !given.includes(c.name));
  add(plan.sequences, omitted.flatMap((c) => c.sequences));
  const fill = omitted.filter((c) => c.fill);
  if (fill.length > 0) {
    throw refuse(
      'copy-volatile-default',
      `COPY leaves column ${fill.map((c) => c.name).join(', ')} of ${t.name} to a default that reads the clock or the random generator`,
      'Include the column in the COPY data, or load through INSERT (whose defaults pgquorum makes deterministic).',
    );
  }
}

/** INSERT: serialize on the sequences of defaulted columns; name the clock/random defaults explicitly. */
export function planInsert(shape: InsertShape, t: TableInfo, text: string | null, plan: DetPlan, filledAtParse = false): void {
  const cols = t.columns;
  let given: string[] | null;
  if (shape.columns) given = shape.columns;
  else if (shape.source === 'values') given = cols.slice(0, shape.rows?.[0]?.items ?? 0).map((c) => c.name);
  else if (shape.source === 'default') given = [];
  else given = shape.selectWidth !== undefined ? cols.slice(0, shape.selectWidth).map((c) => c.name) : null;
  const byName = new Map(cols.map((c) => [c.name, c] as const));
  // columns whose default may be used: not given, or given as DEFAULT somewhere
  const defaulted = new Set<ColumnInfo>();
  if (given === null) {
    for (const c of cols) if (c.default !== null || c.identity !== '') defaulted.add(c);
  } else {
    for (const c of cols) if (!given.includes(c.name)) defaulted.add(c);
    for (const r of shape.rows ?? []) for (const d of r.defaults) {
      const c = byName.get(given[d.index] ?? '');
      if (c) defaulted.add(c);
    }
  }
  for (const c of defaulted) {
    add(plan.sequences, c.sequences);
    if (c.random) plan.seed = true;
  }
  const fill = [...defaulted].filter((c) => c.fill && c.default !== null);
  if (fill.length === 0 || (filledAtParse && given !== null)) return;
  if (given === null || text === null) {
    throw refuse(
      'volatile-default',
      `the INSERT may leave column ${fill.map((c) => c.name).join(', ')} of ${t.name} to a default that reads the clock or the random generator, and pgquorum cannot tell which columns the source fills`,
      'Name the target columns of the INSERT (and send it as its own statement).',
    );
  }
  plan.text = fillDefaults(text, shape, given, fill);
}

/** The INSERT text with `fill` columns given their default expressions explicitly. */
export function fillDefaults(text: string, shape: InsertShape, given: readonly string[], fill: readonly ColumnInfo[]): string {
  const b = Buffer.from(text, 'utf8');
  const edits: Array<{ at: number; end: number; text: string }> = [];
  const expr = (c: ColumnInfo): string => `(${c.default})`;
  const missing = fill.filter((c) => !given.includes(c.name));
  const colText = missing.map((c) => quoteIdent(c.name)).join(', ');
  const exprText = missing.map(expr).join(', ');
  if (missing.length > 0) {
    if (shape.columns) edits.push({ at: shape.colsAt, end: shape.colsAt, text: `, ${colText}` });
    else {
      const all = [...given.map(quoteIdent), colText].filter((x) => x !== '').join(', ');
      edits.push({ at: shape.colsAt, end: shape.colsAt, text: `(${all}) ` });
    }
  }
  const fillNames = new Set(fill.map((c) => c.name));
  if (shape.source === 'values') {
    for (const r of shape.rows ?? []) {
      for (const d of r.defaults) {
        const name = given[d.index];
        if (name !== undefined && fillNames.has(name)) edits.push({ at: d.start, end: d.end, text: expr(fill.find((c) => c.name === name)!) });
      }
      if (missing.length > 0) edits.push({ at: r.end, end: r.end, text: `, ${exprText}` });
    }
  } else if (shape.source === 'default' && shape.defaultValues) {
    edits.push({ at: shape.defaultValues.start, end: shape.defaultValues.end, text: `VALUES (${exprText})` });
  } else if (shape.select && missing.length > 0) {
    const inner = b.subarray(shape.select.start, shape.select.end).toString('utf8');
    edits.push({ at: shape.select.start, end: shape.select.end, text: `SELECT pgq_s.*, ${exprText} FROM (${inner}) AS pgq_s` });
  }
  edits.sort((x, y) => y.at - x.at || y.end - x.end);
  let out = b;
  for (const e of edits) out = Buffer.concat([out.subarray(0, e.at), Buffer.from(e.text, 'utf8'), out.subarray(e.end)]);
  return out.toString('utf8');
}

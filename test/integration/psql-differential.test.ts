// Differential tests (DESIGN.md "Tests in tiers", point 5): every psql script
// in test/differential/*.sql runs twice with `psql -X -a -v ON_ERROR_STOP=0`,
// once through a coordinator over 3 nodes and once straight against a 4th,
// plain PostgreSQL node, each time in a fresh database of its own. The two
// outputs (stdout and stderr, in the order psql wrote them) must be the same;
// a failure prints a unified diff. Afterwards the 3 coordinator nodes must
// hold identical data, schema and sequence values in that database (and the
// same as the plain node), with no prepared transaction left anywhere.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { ensurePostgres } from '../../src/devcluster/index.js';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';

/** The repository root: the nearest directory above this file holding package.json (works from a build dir too). */
function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'test', 'differential'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  // Compiled elsewhere (e.g. --outDir /tmp/...): fall back to the working directory.
  const cwd = process.cwd();
  if (fs.existsSync(path.join(cwd, 'test', 'differential'))) return cwd;
  throw new Error('cannot find the repository root (a directory with package.json and test/differential)');
}

const SCRIPT_DIR = path.join(repoRoot(), 'test', 'differential');
const SCRIPTS = fs.readdirSync(SCRIPT_DIR).filter((f) => f.endsWith('.sql')).sort();
const COORD_NODES = 3;
const REF = COORD_NODES; // index of the plain PostgreSQL node
const PSQL_TIMEOUT_MS = 120_000;

let cluster: TestCluster;
let outDir: string;
let failures = 0;

before(async () => {
  cluster = await startTestCluster({ nodes: COORD_NODES + 1 });
  outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgquorum-diff-out-'));
});

after(async () => {
  await cluster?.stop();
  if (outDir && failures === 0 && process.env.PGQUORUM_KEEP_TEST_DIRS !== '1') fs.rmSync(outDir, { recursive: true, force: true });
});

/**
 * Run one script with psql (asynchronously: the coordinator lives in this
 * process). stdout and stderr share one file so their order is psql's own.
 */
async function runPsql(script: string, db: string, env: NodeJS.ProcessEnv, outFile: string): Promise<string> {
  const fd = fs.openSync(outFile, 'w');
  try {
    const psql = path.join(ensurePostgres(), 'psql');
    const args = ['-X', '-a', '-v', 'ON_ERROR_STOP=0', '-d', db, '-f', script];
    const child = spawn(psql, args, { cwd: SCRIPT_DIR, env, stdio: ['ignore', fd, fd] });
    const timer = setTimeout(() => child.kill('SIGKILL'), PSQL_TIMEOUT_MS);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (c, sig) => resolve(sig ? -1 : c));
    }).finally(() => clearTimeout(timer));
    const out = fs.readFileSync(outFile, 'utf8');
    // psql -f with ON_ERROR_STOP=0 exits 0 even after SQL errors; anything else is a crash, a timeout or a lost connection.
    return code === 0 ? out : `${out}\n[psql exited with ${code === -1 ? 'a signal (timeout?)' : `code ${code}`}]\n`;
  } finally {
    fs.closeSync(fd);
  }
}

/** Only what must differ between the two sides: port numbers in connection messages. */
function normalise(s: string): string {
  return s.replace(/\bport \d+/g, 'port N').replace(/(127\.0\.0\.1|localhost):\d+/g, '$1:N');
}

function unifiedDiff(a: string, b: string, name: string): string {
  const fa = path.join(outDir, `${name}.coordinator.norm`);
  const fb = path.join(outDir, `${name}.postgres.norm`);
  fs.writeFileSync(fa, a);
  fs.writeFileSync(fb, b);
  const r = spawnSync('diff', ['-u', '--label', `${name} via pgquorum`, '--label', `${name} on plain PostgreSQL`, fa, fb], { encoding: 'utf8' });
  if (r.error) return `(diff unavailable: ${r.error.message})\n--- via pgquorum\n${a}\n--- on plain PostgreSQL\n${b}`;
  const lines = r.stdout.split('\n');
  return lines.length > 400 ? `${lines.slice(0, 400).join('\n')}\n... (${lines.length - 400} more lines in ${outDir})` : r.stdout;
}

function nodeEnv(i: number): NodeJS.ProcessEnv {
  const n = cluster.nodes[i]!;
  return {
    ...process.env,
    PGHOST: n.host,
    PGPORT: String(n.port),
    PGUSER: 'postgres',
    PGPASSWORD: cluster.password,
    PGDATABASE: 'postgres',
    PGCONNECT_TIMEOUT: '10',
  };
}

async function withNodeDb<T>(i: number, db: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ ...cluster.nodeClientConfig(i), database: db });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * tableChecksums for any database and every user schema: an md5 of the rows
 * of each table and materialized view, the state of each sequence, and a
 * fingerprint of the schema (columns, constraints, indexes, views, functions,
 * triggers, types).
 */
async function dbFingerprint(i: number, db: string): Promise<Record<string, string>> {
  return withNodeDb(i, db, async (c) => {
    const userNs = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'";
    const rels = await c.query<{ t: string; kind: string }>(
      `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS t, c.relkind::text AS kind
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'm', 'S') AND ${userNs} ORDER BY 1`,
    );
    const out: Record<string, string> = {};
    for (const { t, kind } of rels.rows) {
      if (kind === 'S') {
        const r = await c.query<{ v: string }>(`SELECT last_value || ',' || is_called AS v FROM ${t}`);
        out[`seq ${t}`] = r.rows[0]!.v;
      } else {
        const r = await c.query<{ h: string | null; n: string }>(
          `SELECT md5(string_agg(x::text, E'\\n' ORDER BY x::text)) AS h, count(*) AS n FROM ${t} x`,
        );
        out[`rows ${t}`] = `${r.rows[0]!.n}:${r.rows[0]!.h ?? ''}`;
      }
    }
    const schema = await c.query<{ k: string; v: string }>(
      `SELECT 'columns' AS k, string_agg(format('%s.%s.%s %s %s %s %s', table_schema, table_name, column_name, data_type,
                is_nullable, column_default, generation_expression), E'\\n' ORDER BY table_schema, table_name, ordinal_position) AS v
         FROM information_schema.columns WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
       UNION ALL
       SELECT 'constraints', string_agg(d, E'\\n' ORDER BY d) FROM (SELECT format('%s.%s.%s %s', n.nspname, con.conrelid::regclass,
                con.conname, pg_get_constraintdef(con.oid)) AS d
         FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace WHERE ${userNs}) x
       UNION ALL
       SELECT 'indexes', string_agg(indexdef, E'\\n' ORDER BY indexdef) FROM pg_indexes
        WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
       UNION ALL
       SELECT 'views', string_agg(format('%s.%s %s', schemaname, viewname, definition), E'\\n' ORDER BY schemaname, viewname)
         FROM pg_views WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
       UNION ALL
       SELECT 'functions', md5(string_agg(d, E'\\n' ORDER BY d)) FROM (SELECT pg_get_functiondef(p.oid) AS d
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE ${userNs} AND p.prokind <> 'a') x
       UNION ALL
       SELECT 'triggers', string_agg(d, E'\\n' ORDER BY d) FROM (SELECT pg_get_triggerdef(t.oid) AS d FROM pg_trigger t WHERE NOT t.tgisinternal) x
       UNION ALL
       SELECT 'types', string_agg(format('%s.%s %s', n.nspname, t.typname, t.typtype), E'\\n' ORDER BY n.nspname, t.typname)
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE ${userNs} AND t.typtype IN ('e', 'd')`,
    );
    for (const { k, v } of schema.rows) out[`schema ${k}`] = v ?? '';
    return out;
  });
}

async function preparedXacts(): Promise<string[]> {
  const all: string[] = [];
  for (let i = 0; i <= REF; i++) {
    const rows = await cluster.queryNode<{ gid: string; database: string }>(i, 'SELECT gid, database FROM pg_prepared_xacts ORDER BY gid');
    for (const r of rows) all.push(`${cluster.nodes[i]!.id}: ${r.gid} (${r.database})`);
  }
  return all;
}

for (const script of SCRIPTS) {
  const name = script.replace(/\.sql$/, '');
  const db = `diff_${name.replace(/[^a-z0-9]+/gi, '_').toLowerCase()}`;

  test(`psql differential: ${script}`, { timeout: 4 * PSQL_TIMEOUT_MS }, async () => {
    // A coordinator of its own (node states live in its memory), so a node
    // ejected by one script does not spoil the next one.
    const coord = await startTestCoordinator(cluster, (c) => {
      c.nodes = c.nodes.slice(0, COORD_NODES);
      c.state.dir = path.join(cluster.dir, `state-${name}`);
    });
    try {
      await runScript(coord, script, name, db);
    } finally {
      await coord.stop();
    }
  });
}

/** Keys whose values differ between two fingerprints; multi-line values as the lines only one side has. */
function fingerprintDiff(a: Record<string, string>, b: Record<string, string>): string[] {
  const show = (x: string | undefined, y: string | undefined): string => {
    if (x === undefined || y === undefined || (!x.includes('\n') && !y.includes('\n'))) return `    ${x ?? '(missing)'}\n    ${y ?? '(missing)'}`;
    const xs = x.split('\n');
    const ys = y.split('\n');
    return [...xs.filter((l) => !ys.includes(l)).map((l) => `    - ${l}`), ...ys.filter((l) => !xs.includes(l)).map((l) => `    + ${l}`)].join('\n');
  };
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.filter((k) => a[k] !== b[k]).map((k) => `  ${k}:\n${show(a[k], b[k])}`);
}

async function runScript(coord: TestCoordinator, script: string, name: string, db: string): Promise<void> {
  // A fresh database on both sides: through the coordinator (to all its nodes), and on the plain node.
  const admin = await coord.client();
  try {
    await admin.query(`CREATE DATABASE ${db}`);
  } finally {
    await admin.end();
  }
  for (let i = 0; i < COORD_NODES; i++) {
    const rows = await cluster.queryNode(i, 'SELECT 1 FROM pg_database WHERE datname = $1', [db]);
    assert.equal(rows.length, 1, `CREATE DATABASE ${db} through the coordinator reached node ${cluster.nodes[i]!.id}`);
  }
  await cluster.queryNode(REF, `CREATE DATABASE ${db}`);

  const problems: string[] = [];
  const a = normalise(await runPsql(script, db, coord.env(), path.join(outDir, `${name}.coordinator.out`)));
  const b = normalise(await runPsql(script, db, nodeEnv(REF), path.join(outDir, `${name}.postgres.out`)));
  if (a !== b) problems.push(`psql output differs between pgquorum (-) and plain PostgreSQL (+):\n${unifiedDiff(a, b, name)}`);

  const states = coord.coordinator.ctx.cluster.nodes.map((n) => `${n.id}:${n.state}`);
  if (states.some((st) => !st.endsWith(':up'))) problems.push(`nodes no longer up after the script: ${states.join(', ')}`);

  // The coordinator's nodes agree with each other, and with the plain node.
  const ids = cluster.nodes.map((n) => n.id);
  const prints = await Promise.all([0, 1, 2, REF].map((i) => dbFingerprint(i, db)));
  for (let i = 1; i < COORD_NODES; i++) {
    const d = fingerprintDiff(prints[0]!, prints[i]!);
    if (d.length) problems.push(`node ${ids[i]} differs from ${ids[0]} in ${db} (${ids[0]} first):\n${d.join('\n')}`);
  }
  const dRef = fingerprintDiff(prints[0]!, prints[REF]!);
  if (dRef.length) problems.push(`${ids[0]} differs from the plain node ${ids[REF]} in ${db} (${ids[0]} first):\n${dRef.join('\n')}`);

  // No prepared transaction left behind (allow a moment for asynchronous cleanup).
  let left = await preparedXacts();
  for (let t = 0; left.length > 0 && t < 20; t++) {
    await new Promise((r) => setTimeout(r, 250));
    left = await preparedXacts();
  }
  if (left.length) problems.push(`prepared transactions left on the nodes:\n  ${left.join('\n  ')}`);

  if (problems.length) failures++;
  assert.ok(problems.length === 0, `${script} (outputs in ${outDir}):\n\n${problems.join('\n\n')}`);
}

// Bank test (invariants 1, 3, 4, 6): 16 sessions move money between 50
// accounts through an in-process coordinator over 3 nodes, each transfer
// also writing a ledger row; a third of the way in, a replica node is
// SIGKILLed (postmaster and every backend). Afterwards, on every node still
// `up`: the total balance is unchanged, every acknowledged transfer is in the
// ledger, every account's balance matches its ledger history (so no transfer
// is half applied), the `up` nodes are identical, no prepared transaction is
// left, and the killed node is `down`.
// PGQUORUM_BANK_SECONDS shortens (or lengthens) the 30 s run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { startTestCoordinator, tableChecksums, type TestCoordinator } from '../helpers/coordinator.js';
import { killTree, livePostmaster } from '../../src/devcluster/index.js';

const ACCOUNTS = 50;
const INITIAL = 1000;
const SESSIONS = 16;
/** A request still unanswered after this long counts as a hang (invariant 6). */
const QUERY_TIMEOUT_MS = 20_000;
const SECONDS = Number(process.env.PGQUORUM_BANK_SECONDS ?? 30) || 30;

let cluster: TestCluster;
let coord: TestCoordinator;

before(async () => {
  cluster = await startTestCluster({ nodes: 3 });
  coord = await startTestCoordinator(cluster);
  const c = await coord.client();
  await c.query('CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL)');
  await c.query('CREATE TABLE ledger (transfer_id text PRIMARY KEY, a int NOT NULL, b int NOT NULL, amount int NOT NULL)');
  await c.query(`INSERT INTO accounts SELECT g, ${INITIAL} FROM generate_series(1, ${ACCOUNTS}) g`);
  await c.end();
});
after(async () => {
  await coord?.stop();
  await cluster?.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** SIGKILL a node's postmaster and all its children. */
function killNodeHard(i: number): number[] {
  const pid = livePostmaster(cluster.nodes[i]!.dataDir);
  assert.ok(pid, `node ${i + 1} runs`);
  return killTree(pid);
}

interface Outcome {
  acked: string[];
  /** 40001/40P01: rolled back, retried with a new id. */
  retried: string[];
  /** Failed before COMMIT was sent: never committed. */
  failedEarly: string[];
  /** Failed at COMMIT with another error (or the connection died there): outcome unknown. */
  unknown: string[];
  /** Requests that got no answer within QUERY_TIMEOUT_MS. */
  hung: number;
  /** Errors other than 40001/40P01, by SQLSTATE and message. */
  errors: Map<string, number>;
}

interface Conn {
  c: pg.Client;
  dead: boolean;
}

async function connect(): Promise<Conn> {
  const conn: Conn = { c: await coord.client({ query_timeout: QUERY_TIMEOUT_MS }), dead: false };
  conn.c.on('error', () => (conn.dead = true));
  conn.c.on('end', () => (conn.dead = true));
  return conn;
}

interface NodeRow {
  id: string;
  state: string;
  role: string;
  reason: string;
}

/** SHOW pgquorum.nodes, by node id. */
async function nodeStates(): Promise<Map<string, NodeRow>> {
  const admin = await coord.client();
  try {
    return new Map(((await admin.query('SHOW pgquorum.nodes')).rows as NodeRow[]).map((r) => [r.id, r]));
  } finally {
    await admin.end();
  }
}

function note(out: Outcome, what: string): void {
  out.errors.set(what, (out.errors.get(what) ?? 0) + 1);
}

async function worker(w: number, deadline: number, out: Outcome): Promise<void> {
  let conn: Conn | null = null;
  for (let i = 0; Date.now() < deadline; i++) {
    const id = `w${w}-${i}`;
    const a = 1 + Math.floor(Math.random() * ACCOUNTS);
    let b = 1 + Math.floor(Math.random() * (ACCOUNTS - 1));
    if (b >= a) b++;
    const amt = 1 + Math.floor(Math.random() * 100);
    let atCommit = false;
    try {
      conn ??= await connect();
      const c = conn.c;
      await c.query('BEGIN');
      await c.query('UPDATE accounts SET balance = balance - $1 WHERE id = $2', [amt, a]);
      await c.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [amt, b]);
      await c.query('INSERT INTO ledger (transfer_id, a, b, amount) VALUES ($1, $2, $3, $4)', [id, a, b, amt]);
      atCommit = true;
      const r = await c.query('COMMIT');
      if (r.command === 'COMMIT') out.acked.push(id);
      else {
        note(out, `COMMIT answered ${r.command}`);
        out.failedEarly.push(id);
      }
    } catch (e) {
      const err = e as { code?: string; message?: string; detail?: string };
      if (err.code === '40001' || err.code === '40P01') out.retried.push(id);
      else {
        const timedOut = err.code === undefined && /timeout/i.test(err.message ?? '');
        if (timedOut) out.hung++;
        note(out, `${err.code ?? '-'} ${err.message ?? String(e)}${err.detail ? ` (${err.detail.replace(/\d{4,}/g, 'N').slice(0, 160)})` : ''}`);
        (atCommit ? out.unknown : out.failedEarly).push(id);
        if (timedOut && conn) conn.dead = true;
      }
      if (conn && !conn.dead) {
        // A server error inside the block: end the transaction (no-op after a failed COMMIT).
        await conn.c.query('ROLLBACK').catch(() => (conn!.dead = true));
      }
      if (conn?.dead) {
        void conn.c.end().catch(() => {});
        conn = null;
        await sleep(50);
      }
    }
  }
  if (conn) await conn.c.end().catch(() => {});
}

test(`bank: ${SESSIONS} sessions, ${ACCOUNTS} accounts, ${SECONDS} s of transfers, a replica SIGKILLed; money and ledger are consistent`, { timeout: (SECONDS + 120) * 1000 }, async () => {
  const out: Outcome = { acked: [], retried: [], failedEarly: [], unknown: [], hung: 0, errors: new Map() };
  const start = Date.now();
  const deadline = start + SECONDS * 1000;
  const work = Promise.all(Array.from({ length: SESSIONS }, (_, w) => worker(w, deadline, out)));
  await sleep((SECONDS * 1000) / 3);
  // nodes[1] or nodes[2], never the main node: an `up` replica if there is one.
  const before = await nodeStates();
  const replicas = [1, 2].filter((i) => before.get(cluster.nodes[i]!.id)?.state === 'up' && before.get(cluster.nodes[i]!.id)?.role === 'replica');
  const victim = replicas.length > 0 ? replicas[Math.floor(Math.random() * replicas.length)]! : 1 + Math.floor(Math.random() * 2);
  if (replicas.length < 2) console.log(`# before the kill: ${[...before.values()].map((r) => `${r.id}=${r.state}/${r.role}`).join(' ')}`);
  const ackedBeforeKill = out.acked.length;
  const killed = killNodeHard(victim);
  console.log(`# killed ${cluster.nodes[victim]!.id} (postmaster and ${killed.length - 1} children) at ${Date.now() - start} ms; ${ackedBeforeKill} transfers acknowledged before`);
  await work;
  console.log(
    `# acknowledged ${out.acked.length}, retried (40001/40P01) ${out.retried.length}, unknown outcome ${out.unknown.length}, ` +
      `failed before COMMIT ${out.failedEarly.length}, hung > ${QUERY_TIMEOUT_MS / 1000} s ${out.hung}; run took ${Date.now() - start} ms`,
  );
  for (const [what, n] of [...out.errors].slice(0, 15)) console.log(`#   ${n} x ${what}`);

  // Node states as the coordinator sees them.
  const states = await nodeStates();
  for (const [id, st] of states) console.log(`# ${id}: ${st.state} (${st.reason})`);
  const up = cluster.nodes.flatMap((n, i) => (states.get(n.id)?.state === 'up' ? [i] : []));
  assert.ok(up.length > 0, 'no node is up');

  // No prepared transaction left on the up nodes (the resolver runs every 2 s).
  let left = '';
  for (const until = Date.now() + 10_000; ; await sleep(200)) {
    left = up.map((i) => cluster.psqlNode(i, 'SELECT count(*) FROM pg_prepared_xacts')).join(',');
    if (/^0(,0)*$/.test(left) || Date.now() > until) break;
  }
  assert.match(left, /^0(,0)*$/, 'prepared transactions left on the up nodes');

  const total = String(ACCOUNTS * INITIAL);
  for (const i of up) {
    const id = cluster.nodes[i]!.id;
    assert.equal(cluster.psqlNode(i, 'SELECT sum(balance) FROM accounts'), total, `${id}: total balance changed`);
    const ledger = new Set(cluster.psqlNode(i, 'SELECT transfer_id FROM ledger').split('\n').filter(Boolean));
    const missing = out.acked.filter((t) => !ledger.has(t));
    assert.deepEqual(missing.slice(0, 20), [], `${id}: ${missing.length} acknowledged transfers missing from the ledger`);
    const ghosts = [...out.retried, ...out.failedEarly].filter((t) => ledger.has(t));
    assert.deepEqual(ghosts.slice(0, 20), [], `${id}: ${ghosts.length} transfers that failed before COMMIT or with 40001/40P01 are in the ledger`);
    const foundUnknown = out.unknown.filter((t) => ledger.has(t)).length;
    console.log(`# ${id}: ${ledger.size} ledger rows; ${foundUnknown} of ${out.unknown.length} unknown-outcome transfers committed`);
    // Each account's balance is exactly its ledger history: no transfer is half applied.
    const bad = cluster.psqlNode(
      i,
      `SELECT a.id, a.balance, ${INITIAL} - coalesce(o.s, 0) + coalesce(n.s, 0)
         FROM accounts a
         LEFT JOIN (SELECT a AS id, sum(amount) AS s FROM ledger GROUP BY a) o USING (id)
         LEFT JOIN (SELECT b AS id, sum(amount) AS s FROM ledger GROUP BY b) n USING (id)
        WHERE a.balance <> ${INITIAL} - coalesce(o.s, 0) + coalesce(n.s, 0)
        ORDER BY a.id`,
    );
    assert.equal(bad, '', `${id}: balances that do not match the ledger (id|balance|expected)`);
  }
  const sums = await Promise.all(up.map((i) => tableChecksums(cluster, i)));
  for (let k = 1; k < sums.length; k++) {
    assert.deepEqual(sums[k], sums[0], `${cluster.nodes[up[k]!]!.id} differs from ${cluster.nodes[up[0]!]!.id}`);
  }

  // The killed node is down; the loss of a replica ejects nobody else and stalls no session.
  assert.equal(states.get(cluster.nodes[victim]!.id)?.state, 'down', 'the killed node is down');
  assert.deepEqual(up, [0, 1, 2].filter((i) => i !== victim), 'the two surviving nodes are up (states above)');
  assert.ok(out.acked.length > ackedBeforeKill, 'transfers were acknowledged after the kill');
  assert.equal(out.hung, 0, `requests that got no answer within ${QUERY_TIMEOUT_MS / 1000} s`);
});

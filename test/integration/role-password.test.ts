// CREATE/ALTER ROLE ... PASSWORD through the coordinator stores the same
// verifier on every node (the coordinator computes it; PostgreSQL would salt
// it differently on each node), and the password logs in directly on every
// node (the harness's nodes use scram-sha-256 for host connections). Also
// md5 mode, verifiers and NULL passed through, multi-statement strings,
// transactions, and the refusal of the extended protocol.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import pg from 'pg';
import { useClusterWithCoordinator } from '../helpers/coordinator.js';
import { formatScramVerifier, makeScramVerifier, parseScramVerifier, ScramServer } from '../../src/frontend/auth/scram.js';
import { ScramClient } from '../../src/backend/auth.js';

const fx = useClusterWithCoordinator({ nodes: 3 });
const ROLES = ['pgq_r1', 'pgq_r2', 'pgq_Ü', 'pgq_m'];

async function stored(role: string): Promise<(string | null)[]> {
  const out: (string | null)[] = [];
  for (const i of [0, 1, 2]) {
    const rows = await fx.cluster.queryNode<{ p: string | null }>(i, 'SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1', [role]);
    assert.equal(rows.length, 1, `role ${role} exists on node ${i + 1}`);
    out.push(rows[0]!.p);
  }
  return out;
}

/** The verifier every node stores for `role` (asserting they are identical). */
async function sameEverywhere(role: string): Promise<string | null> {
  const [a, b, c] = await stored(role);
  assert.equal(b, a, `node 2 stores what node 1 stores for ${role}`);
  assert.equal(c, a, `node 3 stores what node 1 stores for ${role}`);
  return a!;
}

/** Log in directly to node i as `user`; resolves to the error code or 'ok'. */
async function loginNode(i: number, user: string, password: string): Promise<string> {
  const c = new pg.Client({ ...fx.cluster.nodeClientConfig(i), user, password });
  c.on('error', () => {});
  try {
    await c.connect();
    const r = await c.query('SELECT current_user AS u');
    assert.equal(r.rows[0].u, user);
    return 'ok';
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  } finally {
    await c.end().catch(() => {});
  }
}

async function loginEverywhere(user: string, password: string): Promise<string[]> {
  return Promise.all([0, 1, 2].map((i) => loginNode(i, user, password)));
}

/** The project's SCRAM server accepts `password` against `verifier`. */
function scramAccepts(verifier: string, password: string): boolean {
  const server = new ScramServer(parseScramVerifier(verifier), { user: 'x' });
  const client = new ScramClient('x', password);
  try {
    client.serverFinal(server.clientFinal(client.serverFirst(server.clientFirst('SCRAM-SHA-256', client.clientFirst()))));
    return true;
  } catch {
    return false;
  }
}

const md5 = (s: string): string => 'md5' + createHash('md5').update(s, 'utf8').digest('hex');

test('CREATE ROLE and ALTER ROLE with a plain password: one SCRAM verifier on every node', async () => {
  const c = await fx.coord.client();
  await c.query("CREATE ROLE pgq_r1 LOGIN PASSWORD 'p1'");
  const v1 = (await sameEverywhere('pgq_r1'))!;
  assert.match(v1, /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]{24}\$/);
  assert.ok(scramAccepts(v1, 'p1'));
  assert.deepEqual(await loginEverywhere('pgq_r1', 'p1'), ['ok', 'ok', 'ok']);

  await c.query("ALTER ROLE pgq_r1 PASSWORD 'p2'");
  const v2 = (await sameEverywhere('pgq_r1'))!;
  assert.notEqual(v2, v1);
  assert.deepEqual(await loginEverywhere('pgq_r1', 'p2'), ['ok', 'ok', 'ok']);
  assert.deepEqual(await loginEverywhere('pgq_r1', 'p1'), ['28P01', '28P01', '28P01']);

  // ENCRYPTED PASSWORD, CREATE USER, a non-ASCII role name and password (SASLprep on both sides).
  await c.query('CREATE USER "pgq_Ü" WITH ENCRYPTED PASSWORD \'pässwörd\' VALID UNTIL \'infinity\'');
  const v3 = (await sameEverywhere('pgq_Ü'))!;
  assert.ok(scramAccepts(v3, 'pässwörd'));
  assert.deepEqual(await loginEverywhere('pgq_Ü', 'pässwörd'), ['ok', 'ok', 'ok']);

  // E'' strings are decoded as PostgreSQL decodes them.
  await c.query("ALTER USER pgq_r1 WITH PASSWORD E'it\\'s\\x41'");
  await sameEverywhere('pgq_r1');
  assert.deepEqual(await loginEverywhere('pgq_r1', "it'sA"), ['ok', 'ok', 'ok']);

  const nodes = await c.query('SHOW pgquorum.nodes');
  assert.deepEqual(nodes.rows.map((r) => r.state), ['up', 'up', 'up']);
});

test('inside a transaction block and in a multi-statement string', async () => {
  const c = await fx.coord.client();
  await c.query('BEGIN');
  await c.query('CREATE TABLE pgq_pw_marker (x int)'); // the transaction wrote before the role statement
  await c.query("ALTER ROLE pgq_r1 PASSWORD 'in-txn'");
  await c.query('COMMIT');
  await sameEverywhere('pgq_r1');
  assert.deepEqual(await loginEverywhere('pgq_r1', 'in-txn'), ['ok', 'ok', 'ok']);

  await c.query("CREATE ROLE pgq_r2 LOGIN PASSWORD 'a'; ALTER ROLE pgq_r2 PASSWORD $pw$b'c$pw$; DROP TABLE pgq_pw_marker");
  await sameEverywhere('pgq_r2');
  assert.deepEqual(await loginEverywhere('pgq_r2', "b'c"), ['ok', 'ok', 'ok']);

  // A SET in the same string would come after the coordinator read the settings: refused, nothing ran.
  await assert.rejects(c.query("SET password_encryption = 'md5'; ALTER ROLE pgq_r2 PASSWORD 'x'"), (e: { code?: string }) => e.code === '0A000');
  assert.deepEqual(await loginEverywhere('pgq_r2', "b'c"), ['ok', 'ok', 'ok']);
  assert.equal((await c.query('SHOW password_encryption')).rows[0].password_encryption, 'scram-sha-256');
});

test("SET password_encryption = 'md5': md5(password || rolename) on every node", async () => {
  const c = await fx.coord.client();
  await c.query("SET password_encryption = 'md5'");
  await c.query("CREATE ROLE pgq_m LOGIN PASSWORD 'm1'");
  assert.equal(await sameEverywhere('pgq_m'), md5('m1pgq_m'));
  await c.query("ALTER ROLE pgq_r1 PASSWORD 'p4'");
  assert.equal(await sameEverywhere('pgq_r1'), md5('p4pgq_r1'));
  await c.query('RESET password_encryption');
  await c.query("ALTER ROLE pgq_m PASSWORD 'm2'");
  const v = (await sameEverywhere('pgq_m'))!;
  assert.ok(scramAccepts(v, 'm2'));
  assert.deepEqual(await loginEverywhere('pgq_m', 'm2'), ['ok', 'ok', 'ok']);
});

test('verifiers and NULL are stored as sent', async () => {
  const c = await fx.coord.client();
  const scram = formatScramVerifier(makeScramVerifier('given'));
  await c.query(`ALTER ROLE pgq_r1 PASSWORD '${scram}'`);
  assert.equal(await sameEverywhere('pgq_r1'), scram);
  assert.deepEqual(await loginEverywhere('pgq_r1', 'given'), ['ok', 'ok', 'ok']);
  await c.query(`ALTER ROLE pgq_r1 ENCRYPTED PASSWORD '${md5('xpgq_r1')}'`);
  assert.equal(await sameEverywhere('pgq_r1'), md5('xpgq_r1'));
  await c.query('ALTER ROLE pgq_r1 PASSWORD NULL');
  assert.equal(await sameEverywhere('pgq_r1'), null);
});

test('the extended protocol is refused with 0A000 and the session goes on', async () => {
  const c = await fx.coord.client();
  await assert.rejects(
    c.query({ name: 'pw', text: "ALTER ROLE pgq_r2 PASSWORD 'ext'" }),
    (e: { code?: string; message?: string; hint?: string }) =>
      e.code === '0A000' && /extended query protocol/.test(e.message ?? '') && /simple query/.test(e.hint ?? '') && !/ext'/.test(e.message ?? ''),
  );
  // In a transaction the refusal aborts it, like any error.
  await c.query('BEGIN');
  await assert.rejects(c.query({ text: "ALTER ROLE pgq_r2 PASSWORD 'ext'", values: [] as unknown[], queryMode: 'extended' } as pg.QueryConfig));
  await assert.rejects(c.query('SELECT 1'), (e: { code?: string }) => e.code === '25P02');
  await c.query('ROLLBACK');
  assert.equal((await c.query({ name: 'one', text: 'SELECT 1 AS x' })).rows[0].x, 1);
  assert.deepEqual(await loginEverywhere('pgq_r2', "b'c"), ['ok', 'ok', 'ok']);
  // A verifier through the extended protocol is fine.
  const scram = formatScramVerifier(makeScramVerifier('ext2'));
  await c.query({ name: 'pw2', text: `ALTER ROLE pgq_r2 PASSWORD '${scram}'` });
  assert.equal(await sameEverywhere('pgq_r2'), scram);
});

test('the roles are dropped again (roles are cluster-wide)', async () => {
  const c = await fx.coord.client();
  for (const r of ROLES) await c.query(`DROP ROLE IF EXISTS "${r}"`);
  for (const i of [0, 1, 2]) {
    const rows = await fx.cluster.queryNode(i, "SELECT rolname FROM pg_roles WHERE rolname LIKE 'pgq\\_%'");
    assert.deepEqual(rows, []);
  }
});

// Bad input from one client must not hurt any other session (DESIGN.md
// invariant 6). Every case runs while another session of the same
// coordinator does 200 INSERTs in transactions; afterwards that workload's
// table must hold all 200 rows, identically on the 3 nodes, and every node
// must still be `up`. Assertions are on SQLSTATEs, never on message text.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type pg from 'pg';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { startTestCoordinator, tableChecksums, type TestCoordinator } from '../helpers/coordinator.js';
import type { Config } from '../../src/config/types.js';
import { ensurePostgres } from '../../src/devcluster/index.js';
import { RawClient, cstr, errorFields, int16, int32, msg, query, startupPacket, untyped, type Msg } from '../helpers/raw-client.js';

const execFileP = promisify(execFile);
const MiB = 1024 * 1024;
const SSL_REQUEST = untyped(int32(80877103));
const GSSENC_REQUEST = untyped(int32(80877104));
const cancelRequest = (pid: number, secret: number): Buffer => untyped(int32(80877102), int32(pid), int32(secret));

let cluster: TestCluster;
/** The shared coordinator: coordinator.max_message_size = 1 MiB. */
let coord: TestCoordinator;
const extra: TestCoordinator[] = [];

before(async () => {
  cluster = await startTestCluster({ nodes: 3 });
  coord = await coordWith((c) => {
    c.coordinator.max_message_size = MiB;
  });
});
after(async () => {
  for (const c of extra) await c.stop().catch(() => {});
  await cluster?.stop();
});

/** A coordinator of its own over the shared nodes (own state dir); stopped in after(). */
async function coordWith(edit: (c: Config) => void = () => {}): Promise<TestCoordinator> {
  const c = await startTestCoordinator(cluster, (cfg) => {
    cfg.state.dir = path.join(cluster.dir, `state-${extra.length}`);
    edit(cfg);
  });
  extra.push(c);
  return c;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
}

const codeIs = (code: string) => (e: unknown) => {
  assert.equal((e as { code?: string }).code, code, `expected SQLSTATE ${code}, got ${String(e)}`);
  return true;
};

function nodeStates(t: TestCoordinator): string[] {
  return t.coordinator.ctx.cluster.nodes.map((n) => `${n.id}:${n.state}`);
}

function assertAllUp(t: TestCoordinator, when: string): void {
  assert.deepEqual(nodeStates(t), ['n1:up', 'n2:up', 'n3:up'], `every node stays up ${when}`);
}

let wlSeq = 0;

/**
 * Run `bad` while another session of `target` does 200 INSERTs (100
 * transactions of 2); `bad` starts once the workload is under way. Then the
 * workload must have succeeded, its table must be identical on every node,
 * no transaction may be left prepared and every node must still be up.
 */
async function underLoad(target: TestCoordinator, bad: (wl: pg.Client) => Promise<void>): Promise<void> {
  const table = `wl${++wlSeq}`;
  const wl = await target.client();
  await wl.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text NOT NULL)`);
  let going!: () => void;
  const started = new Promise<void>((r) => (going = r));
  const work = (async () => {
    for (let i = 0; i < 100; i++) {
      await wl.query('BEGIN');
      await wl.query(`INSERT INTO ${table} (id, v) VALUES ($1, $2)`, [2 * i, `a${i}`]);
      await wl.query(`INSERT INTO ${table} (id, v) VALUES (${2 * i + 1}, 'b${i}')`);
      await wl.query('COMMIT');
      if (i === 3) going();
    }
  })();
  work.catch(() => going());
  await started;
  const [b, w] = await Promise.allSettled([bad(wl), work]);
  if (w.status === 'rejected') assert.fail(`the other session's workload failed: ${String(w.reason)}`);
  if (b.status === 'rejected') throw b.reason;
  assert.equal((await wl.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n, 200);
  for (const i of [0, 1, 2]) {
    assert.equal(cluster.psqlNode(i, `SELECT count(*) FROM ${table}`), '200', `200 rows on node ${i}`);
    assert.equal(cluster.psqlNode(i, 'SELECT count(*) FROM pg_prepared_xacts'), '0', `no prepared transaction left on node ${i}`);
  }
  const sums = await Promise.all([0, 1, 2].map(async (i) => (await tableChecksums(cluster, i))[`public.${table}`]));
  assert.equal(sums[1], sums[0]);
  assert.equal(sums[2], sums[0]);
  assertAllUp(target, 'after the bad input');
}

/** Send `bytes` on a new connection: the server must close it, after an ErrorResponse with one of `codes` if it sends one. */
async function expectRefused(port: number, bytes: Buffer, codes: string[], errorRequired = false): Promise<void> {
  const r = await RawClient.connect(port);
  await r.write(bytes);
  let code: string | null = null;
  try {
    code = await r.errorCode(5000);
  } catch (e) {
    if (errorRequired) throw e;
  }
  if (code !== null) assert.ok(codes.includes(code), `SQLSTATE ${code} for ${bytes.subarray(0, 16).toString('hex')}, expected ${codes.join(' or ')}`);
  assert.ok(await r.closesWithin(5000), 'the server closes the connection');
  r.destroy();
}

/** Login with the raw client to `t` as postgres. */
async function rawLogin(t: TestCoordinator): Promise<{ r: RawClient; pid: number; secret: number }> {
  const r = await RawClient.connect(t.port);
  const key = await r.login('postgres', cluster.password);
  return { r, ...key };
}

/** A simple query on a raw client: its messages up to ReadyForQuery. */
async function rawQuery(r: RawClient, sql: string): Promise<Msg[]> {
  await r.write(query(sql));
  return r.until('Z');
}

function dataRowText(m: Msg): string {
  const len = m.payload.readInt32BE(2);
  return m.payload.toString('utf8', 6, 6 + len);
}

async function assertServes(r: RawClient): Promise<void> {
  const ms = await rawQuery(r, 'SELECT 41 + 1');
  const row = ms.find((m) => m.type === 'D');
  assert.ok(row, `a row comes back (got ${ms.map((m) => m.type).join('')})`);
  assert.equal(dataRowText(row), '42');
}

const sessionGone = (t: TestCoordinator, pid: number) => waitUntil(() => !t.coordinator.ctx.sessions.has(pid));

test('malformed and truncated startup packets are refused', async () => {
  await underLoad(coord, async () => {
    const p = coord.port;
    await expectRefused(p, Buffer.concat([int32(3), Buffer.from('abcd')]), ['08P01']); // length below 8
    await expectRefused(p, Buffer.concat([int32(-5), Buffer.alloc(12)]), ['08P01']); // negative length
    await expectRefused(p, Buffer.concat([int32(1_000_000), Buffer.alloc(64)]), ['08P01', '54000']); // over 10000 bytes
    // parameters not terminated / a name without a value / no user
    const noTerm = untyped(int32(196608), cstr('user'), Buffer.from('postgres'));
    await expectRefused(p, noTerm, ['08P01'], true);
    await expectRefused(p, untyped(int32(196608), cstr('user'), Buffer.from([0])), ['08P01'], true);
    await expectRefused(p, startupPacket({ database: 'postgres' }), ['28000'], true);
    // truncated: a length of 200 but only 20 bytes, then the client goes away (half-close, then reset)
    for (const how of ['end', 'destroy'] as const) {
      const r = await RawClient.connect(p);
      await r.write(Buffer.concat([int32(200), int32(196608), cstr('user'), cstr('post')]));
      await sleep(100);
      if (how === 'end') r.socket.end();
      else r.destroy();
      assert.ok(await r.closesWithin(5000));
    }
  });
});

test('garbage bytes before the startup packet are refused', async () => {
  await underLoad(coord, async () => {
    const p = coord.port;
    await expectRefused(p, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), ['08P01', '54000']);
    await expectRefused(p, Buffer.from('160301020001000200030300', 'hex'), ['08P01', '54000']); // TLS ClientHello
    await expectRefused(p, Buffer.alloc(64, 0xff), ['08P01']);
    await expectRefused(p, Buffer.alloc(64, 0), ['08P01']);
    // A well-framed packet with a nonsense code, then a real startup packet.
    await expectRefused(p, Buffer.concat([int32(8), int32(0x12345678), startupPacket({ user: 'postgres' })]), ['0A000', '08P01'], true);
  });
});

test('an unsupported protocol version gets 0A000', async () => {
  await underLoad(coord, async () => {
    for (const v of [0x00020000, 0x00010000, 0x00040000]) {
      await expectRefused(coord.port, startupPacket({ user: 'postgres', database: 'postgres' }, v), ['0A000'], true);
    }
  });
});

test("SSLRequest and GSSENCRequest are answered 'N' and the connection proceeds", async () => {
  await underLoad(coord, async () => {
    for (const pre of [[SSL_REQUEST], [GSSENC_REQUEST], [GSSENC_REQUEST, SSL_REQUEST]]) {
      const r = await RawClient.connect(coord.port);
      for (const req of pre) {
        await r.write(req);
        assert.equal(await r.readByte(), 'N');
      }
      await r.login('postgres', cluster.password);
      await assertServes(r);
      await r.write(msg('X'));
      assert.ok(await r.closesWithin(5000));
    }
    // psql sends SSLRequest itself with sslmode=prefer (async: the coordinator runs in this process).
    const psql = path.join(ensurePostgres(), 'psql');
    const env = coord.env({ PGSSLMODE: 'prefer', PGGSSENCMODE: 'prefer' });
    const { stdout } = await execFileP(psql, ['-X', '-A', '-t', '-c', 'SELECT 40 + 2'], { env, encoding: 'utf8' });
    assert.equal(stdout.trim(), '42');
  });
});

test('an unknown message type after login gets 08P01 and closes only that session', async () => {
  await underLoad(coord, async () => {
    for (const type of ['z', '\u0000', 'p', 'K']) {
      const { r, pid } = await rawLogin(coord);
      await assertServes(r);
      await r.write(msg(type, cstr('whatever')));
      assert.equal(await r.errorCode(), '08P01', `message type ${JSON.stringify(type)}`);
      assert.ok(await r.closesWithin(5000));
      assert.ok(await sessionGone(coord, pid), 'the session is gone from the coordinator');
    }
  });
});

test('a message longer than max_message_size gets 54000 and a close, without waiting for its body', async () => {
  await underLoad(coord, async () => {
    const { r, pid } = await rawLogin(coord);
    const t0 = Date.now();
    // Only the header and 16 bytes of a declared 2 MiB Query are sent.
    await r.write(Buffer.concat([Buffer.from('Q'), int32(2 * MiB), Buffer.from('SELECT 1 -- xxxx')]));
    assert.equal(await r.errorCode(3000), '54000');
    assert.ok(await r.closesWithin(3000), 'closed after the error');
    assert.ok(Date.now() - t0 < 3000);
    assert.ok(await sessionGone(coord, pid));
    // CopyData over the limit too.
    const b = await rawLogin(coord);
    await b.r.write(Buffer.concat([Buffer.from('d'), int32(MiB + 100)]));
    assert.equal(await b.r.errorCode(3000), '54000');
    assert.ok(await b.r.closesWithin(3000));
  });
});

test('messages under max_message_size but over the 10000-byte startup limit are served', async () => {
  await underLoad(coord, async () => {
    const { r } = await rawLogin(coord);
    const pad = 'x'.repeat(100_000);
    const ms = await rawQuery(r, `SELECT length('${pad}')`);
    const err = ms.find((m) => m.type === 'E');
    assert.equal(err, undefined, `a 100 kB Query under the 1 MiB limit is refused: ${err ? JSON.stringify(errorFields(err.payload)) : ''}`);
    assert.equal(dataRowText(ms.find((m) => m.type === 'D')!), '100000');
    await assertServes(r);
    r.destroy();
  });
});

test('a client that disconnects mid-message or mid-statement affects no one', async () => {
  const t = await coordWith();
  await underLoad(t, async () => {
    const base = t.coordinator.ctx.sessions.size;
    const cut = async (bytes: Buffer, wait = 100): Promise<void> => {
      const { r, pid } = await rawLogin(t);
      await r.write(bytes);
      await sleep(wait);
      r.destroy();
      assert.ok(await sessionGone(t, pid), 'the session ends when its client is gone');
      assertAllUp(t, `after a client vanished after sending ${bytes.subarray(0, 12).toString('hex')}…`);
    };
    await cut(Buffer.concat([Buffer.from('Q'), int32(1000), Buffer.from('INSERT INT')])); // inside a Query
    await cut(Buffer.from('Q')); // inside a header
    await cut(Buffer.concat([msg('P', cstr(''), cstr('SELECT $1::int'), int16(0)), Buffer.from('B'), int32(50)])); // Parse, half a Bind
    await cut(query('SELECT pg_sleep(1)'), 200); // while a read runs on a node
    await cut(query('BEGIN; CREATE TEMP TABLE tt (a int); INSERT INTO tt SELECT pg_sleep(1)::text::int'), 200);
    assert.ok(await waitUntil(() => t.coordinator.ctx.sessions.size <= base));
  });
});

test('a client that disconnects mid-COPY FROM STDIN leaves no rows and no locks', async () => {
  const t = await coordWith();
  const admin = await t.client();
  await admin.query('CREATE TABLE cp (id int, v text)');
  await underLoad(t, async () => {
    const rows = Buffer.concat(Array.from({ length: 50 }, (_, i) => msg('d', Buffer.from(`${i}\trow ${i}\n`))));
    for (const prefix of ['', 'BEGIN; INSERT INTO cp VALUES (-1, $$in txn$$); ']) {
      const { r, pid } = await rawLogin(t);
      if (prefix) {
        await r.write(query(prefix.trim()));
        const ms = await r.until('Z');
        assert.equal(ms.find((m) => m.type === 'E'), undefined);
      }
      await r.write(query('COPY cp FROM STDIN'));
      await r.until('G');
      await r.write(rows);
      await sleep(200);
      r.destroy();
      assert.ok(await sessionGone(t, pid));
      assertAllUp(t, `after a client vanished mid-COPY${prefix ? ' in a transaction' : ''}`);
    }
    for (const i of [0, 1, 2]) {
      assert.equal(cluster.psqlNode(i, 'SELECT count(*) FROM cp'), '0', `no partial COPY rows on node ${i}`);
      const noLocks = await waitUntil(() => cluster.psqlNode(i, "SELECT count(*) FROM pg_locks WHERE relation = 'cp'::regclass") === '0');
      assert.ok(noLocks, `no lock on cp left on node ${i}`);
    }
    const c = await t.client();
    await c.query('SET lock_timeout = 5000');
    await c.query('TRUNCATE cp');
    await c.query("INSERT INTO cp VALUES (1, 'after')");
    await c.end();
    for (const i of [0, 1, 2]) assert.equal(cluster.psqlNode(i, 'SELECT count(*) FROM cp'), '1', `node ${i}`);
  });
});

test('wrong passwords and unknown users get 28P01 (SCRAM and md5)', async () => {
  await underLoad(coord, async () => {
    await assert.rejects(coord.client({ password: 'wrong' }), codeIs('28P01'));
    await assert.rejects(coord.client({ user: 'nobody', password: 'x' }), codeIs('28P01'));
    const raw = await RawClient.connect(coord.port);
    await assert.rejects(raw.login('postgres', 'wrong'), codeIs('28P01'));
    assert.ok(await raw.closesWithin(5000));
  });
  const md5 = await coordWith((c) => {
    c.hba = c.hba.map((r) => ({ ...r, method: 'md5' }));
  });
  await underLoad(md5, async () => {
    await assert.rejects(md5.client({ password: 'wrong' }), codeIs('28P01'));
    await assert.rejects(md5.client({ user: 'nobody', password: 'x' }), codeIs('28P01'));
    const raw = await RawClient.connect(md5.port);
    await assert.rejects(raw.login('postgres', 'wrong'), codeIs('28P01'));
    assert.ok(await raw.closesWithin(5000));
    const ok = await md5.client();
    assert.equal((await ok.query('SELECT 1 AS x')).rows[0].x, 1);
    await ok.end();
  });
});

test('too many connections: the 4th client gets 53300 with max_client_connections = 3', async () => {
  const t = await coordWith((c) => {
    c.coordinator.max_client_connections = 3;
  });
  await underLoad(t, async () => {
    const a = await t.client();
    const b = await t.client();
    await assert.rejects(t.client(), codeIs('53300'));
    const raw = await RawClient.connect(t.port);
    await assert.rejects(raw.login('postgres', cluster.password), codeIs('53300'));
    assert.ok(await raw.closesWithin(5000));
    await a.end();
    assert.ok(await waitUntil(() => t.coordinator.ctx.sessions.size < 3));
    const c = await t.client();
    assert.equal((await c.query('SELECT 1 AS x')).rows[0].x, 1);
    await Promise.all([b.end(), c.end()]);
  });
});

test('a CancelRequest with a wrong secret or pid cancels nothing', async () => {
  await underLoad(coord, async (wl) => {
    const key = wl as unknown as { processID: number; secretKey: number };
    const sendCancel = async (pid: number, secret: number): Promise<void> => {
      const r = await RawClient.connect(coord.port);
      await r.write(cancelRequest(pid, secret));
      assert.ok(await r.closesWithin(5000), 'the cancel connection is closed');
    };
    const victim = await coord.client();
    const vkey = victim as unknown as { processID: number; secretKey: number };
    const sleeping = victim.query('SELECT pg_sleep(1.5) AS s');
    await sleep(300);
    await sendCancel(vkey.processID, (vkey.secretKey ^ 1) | 0);
    await sendCancel(vkey.processID ^ 0x40000000, vkey.secretKey);
    for (let i = 0; i < 10; i++) {
      await sendCancel(key.processID, (key.secretKey + 1 + i) | 0);
      await sleep(20);
    }
    await sendCancel(0, 0);
    await expectRefused(coord.port, untyped(int32(80877102), int32(1)), ['08P01']); // truncated CancelRequest
    await sleeping; // not canceled
    await victim.end();
  });
});

test('clients that send nothing (or stop mid-startup) are closed after authentication_timeout', async () => {
  const t = await coordWith((c) => {
    c.coordinator.authentication_timeout = 1;
  });
  await underLoad(t, async () => {
    const silent = await RawClient.connect(t.port);
    const half = await RawClient.connect(t.port);
    await half.write(Buffer.concat([int32(100), int32(196608)]));
    const mute = await RawClient.connect(t.port); // answers nothing to the SCRAM challenge
    await mute.write(startupPacket({ user: 'postgres', database: 'postgres' }));
    const t0 = Date.now();
    for (const r of [silent, half, mute]) {
      assert.ok(await r.closesWithin(5000), 'closed after the timeout');
      r.destroy();
    }
    assert.ok(Date.now() - t0 >= 500, 'not closed long before the timeout');
    const c = await t.client();
    await c.end();
  });
});

test('a Bind with a huge number of parameters gives a result or a clean error', async (t) => {
  await underLoad(coord, async () => {
    const { r } = await rawLogin(coord);
    const bind = (n: number, value: Buffer | null): Buffer => {
      const parts: Buffer[] = [cstr(''), cstr(''), int16(0), Buffer.from([(n >> 8) & 0xff, n & 0xff])]; // count is unsigned
      for (let i = 0; i < n; i++) parts.push(value ? Buffer.concat([int32(value.length), value]) : int32(-1));
      parts.push(int16(0));
      return msg('B', ...parts);
    };
    const run = async (sql: string, n: number, value: Buffer | null): Promise<Msg[]> => {
      await r.write(Buffer.concat([msg('P', cstr(''), cstr(sql), int16(0)), bind(n, value), msg('E', cstr(''), int32(0)), msg('S')]));
      const ms = await r.until('Z', 60_000);
      const err = ms.find((m) => m.type === 'E');
      if (err) assert.notEqual(errorFields(err.payload)['V'], 'FATAL', `not fatal: ${JSON.stringify(errorFields(err.payload))}`);
      return ms;
    };
    // 65535 NULLs for a statement with one parameter: the node refuses it (08P01), the session goes on.
    let ms = await run('SELECT $1::int AS a', 65535, null);
    assert.ok(ms.some((m) => m.type === 'E'));
    await assertServes(r);
    // 65535 parameters in a write that also calls now() (which the coordinator may turn into one more parameter).
    await rawQuery(r, 'CREATE TABLE bigp (at timestamptz, n int)');
    const sql = `INSERT INTO bigp SELECT now(), cardinality(ARRAY[${Array.from({ length: 65535 }, (_, i) => `$${i + 1}::int`).join(',')}])`;
    ms = await run(sql, 65535, Buffer.from('7'));
    const inserted = ms.some((m) => m.type === 'C');
    const e = ms.find((m) => m.type === 'E');
    t.diagnostic(`65535 parameters + now(): ${inserted ? 'inserted' : `error ${JSON.stringify(e && errorFields(e.payload)['C'])}`}`);
    await assertServes(r);
    const want = inserted ? '1|65535' : '0|';
    for (const i of [0, 1, 2]) assert.equal(cluster.psqlNode(i, 'SELECT count(*), max(n) FROM bigp'), want, `node ${i}`);
    const sums = await Promise.all([0, 1, 2].map(async (i) => (await tableChecksums(cluster, i))['public.bigp']));
    assert.equal(sums[1], sums[0]);
    assert.equal(sums[2], sums[0]);
    r.destroy();
  });
});

test('a syntax error gets 42601 for that client only and its session continues', async () => {
  await underLoad(coord, async () => {
    const c = await coord.client();
    await assert.rejects(c.query('SELEC 1'), codeIs('42601'));
    assert.equal((await c.query('SELECT 2 AS x')).rows[0].x, 2);
    await c.query('CREATE TABLE syn (a int)');
    await c.query('BEGIN');
    await c.query('INSERT INTO syn VALUES (1)');
    await assert.rejects(c.query('INSERT INTO syn VALUES (2'), codeIs('42601'));
    await assert.rejects(c.query('SELECT 1'), codeIs('25P02'));
    await c.query('ROLLBACK');
    await assert.rejects(c.query({ text: 'SELECT FROM WHERE $1', values: [1] }), codeIs('42601'));
    await c.query('INSERT INTO syn VALUES (3)');
    for (const i of [0, 1, 2]) assert.equal(cluster.psqlNode(i, 'SELECT string_agg(a::text, \',\') FROM syn'), '3');
    // Raw extended protocol: a Parse with a syntax error, then Sync.
    const { r } = await rawLogin(coord);
    await r.write(Buffer.concat([msg('P', cstr(''), cstr('SELEKT'), int16(0)), msg('S')]));
    const ms = await r.until('Z');
    assert.equal(errorFields(ms.find((m) => m.type === 'E')!.payload)['C'], '42601');
    await assertServes(r);
    r.destroy();
    await c.end();
  });
});

test('after all of it every coordinator still serves new sessions', async () => {
  for (const t of extra) {
    const c = await t.client();
    assert.equal((await c.query('SELECT 1 AS x')).rows[0].x, 1);
    await c.end();
    const { r } = await rawLogin(t);
    await assertServes(r);
    r.destroy();
  }
  const c = await coord.client();
  await c.query('CREATE TABLE final_check (a int)');
  await c.query('INSERT INTO final_check VALUES (1)');
  for (const i of [0, 1, 2]) assert.equal(cluster.psqlNode(i, 'SELECT count(*) FROM final_check'), '1');
  assertAllUp(coord, 'at the end');
  await c.end();
});

// Interop of the auth code with a real PostgreSQL 15 started for this test:
// our SCRAM verifiers equal the ones PostgreSQL stores (SASLprep edge cases
// included), ScramServer accepts ScramClient with a PostgreSQL-made verifier,
// and ScramClient / md5Response log in to PostgreSQL over a raw TCP socket
// (startup and authentication messages framed by hand below).

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PgqError } from '../../src/errors.js';
import { ScramClient, chooseSaslMechanism, md5Response } from '../../src/backend/auth.js';
import { md5PasswordHash } from '../../src/frontend/auth/md5.js';
import { ScramServer, formatScramVerifier, makeScramVerifier, parseScramVerifier, type ScramVerifier } from '../../src/frontend/auth/scram.js';

const PG_BIN = '/usr/lib/postgresql/15/bin';
const SUPERUSER_PASSWORD = 'super-secret';

// Roles created with password_encryption = scram-sha-256; the passwords probe
// every SASLprep rule PostgreSQL applies.
const SCRAM_USERS: Array<[string, string]> = [
  ['u_ascii', 'correct horse battery staple'],
  ['u_ascii_ctrl', 'ab\u0007c'], // pure ASCII: used untouched, control character and all
  ['u_quote', `it's "quoted" \\ back`],
  ['u_nbsp', 'pass\u00a0word\u00ad!'], // non-ASCII space -> ' ', soft hyphen removed
  ['u_nfkc', '\u2168\ufb01 e\u0301'], // NFKC: 'IXfi é'
  ['u_zwsp', '\u00e9\u200b'], // U+200B is in both mapping tables: becomes a space
  ['u_prohibited', 'xa\u0340y'], // prohibited before normalisation: raw password used
  ['u_unassigned', 'a\u0308\u{1f600}'], // unassigned in Unicode 3.2: raw password used
  ['u_rtl', '\u05d0\u05d1\u05d2'], // right-to-left only: fine
  ['u_rtl_mixed', '\u05d0\ufb01\u05d1'], // RandAL mixed with L: raw password used
];
const MD5_USER: [string, string] = ['m_user', 'md5 p\u00e4ssword'];

// ---------------------------------------------------------------------------
// A tiny PostgreSQL wire client: just enough framing for startup + auth + Query.

class PgServerError extends Error {
  constructor(
    readonly sqlstate: string,
    message: string,
  ) {
    super(`${sqlstate}: ${message}`);
  }
}

const cstr = (s: string): Buffer => Buffer.from(s + '\0', 'utf8');
const int32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

class Wire {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  private closed: Error | null = null;

  private constructor(private readonly sock: net.Socket) {
    const poke = (): void => {
      const w = this.wake;
      this.wake = null;
      w?.();
    };
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      poke();
    });
    sock.on('error', (e) => {
      this.closed = e;
      poke();
    });
    sock.on('close', () => {
      this.closed ??= new Error('connection closed by server');
      poke();
    });
  }

  static connect(port: number): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: '127.0.0.1', port }, () => resolve(new Wire(sock)));
      sock.once('error', reject);
    });
  }

  send(type: string, ...parts: Buffer[]): void {
    const body = Buffer.concat(parts);
    this.sock.write(Buffer.concat([Buffer.from(type, 'latin1'), int32(body.length + 4), body]));
  }

  startup(params: Record<string, string>): void {
    const body = Buffer.concat([int32(196608), ...Object.entries(params).flatMap(([k, v]) => [cstr(k), cstr(v)]), Buffer.from([0])]);
    this.sock.write(Buffer.concat([int32(body.length + 4), body]));
  }

  async next(): Promise<{ type: string; body: Buffer }> {
    for (;;) {
      if (this.buf.length >= 5) {
        const len = this.buf.readInt32BE(1);
        if (this.buf.length >= len + 1) {
          const msg = { type: String.fromCharCode(this.buf[0]!), body: this.buf.subarray(5, len + 1) };
          this.buf = this.buf.subarray(len + 1);
          if (msg.type === 'E') throw parseError(msg.body);
          return msg;
        }
      }
      if (this.closed) throw this.closed;
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  close(): void {
    if (!this.closed) this.send('X');
    this.sock.end();
  }
}

function parseError(body: Buffer): PgServerError {
  const fields: Record<string, string> = {};
  for (let i = 0; i < body.length && body[i] !== 0; ) {
    const end = body.indexOf(0, i + 1);
    fields[String.fromCharCode(body[i]!)] = body.toString('utf8', i + 1, end);
    i = end + 1;
  }
  return new PgServerError(fields.C ?? '?????', fields.M ?? '(no message)');
}

/** Logs in; returns the connection and how the server made us authenticate. */
async function login(port: number, user: string, password: string): Promise<{ wire: Wire; method: string }> {
  const wire = await Wire.connect(port);
  let scram: ScramClient | null = null;
  let method = 'trust';
  try {
    wire.startup({ user, database: 'postgres', client_encoding: 'UTF8' });
    for (;;) {
      const { type, body } = await wire.next();
      if (type === 'Z') break;
      if (type !== 'R') continue; // ParameterStatus, BackendKeyData, notices
      const code = body.readInt32BE(0);
      if (code === 0) {
        assert.ok(scram === null || scram.succeeded, 'AuthenticationOk before the server signature was checked');
      } else if (code === 5) {
        method = 'md5';
        wire.send('p', cstr(md5Response(user, password, body.subarray(4, 8))));
      } else if (code === 10) {
        method = 'scram';
        const offered = body.subarray(4).toString('utf8').split('\0').filter(Boolean);
        const mechanism = chooseSaslMechanism(offered);
        scram = new ScramClient(user, password);
        const first = scram.clientFirst();
        wire.send('p', cstr(mechanism), int32(first.length), first);
      } else if (code === 11) {
        wire.send('p', scram!.serverFirst(body.subarray(4)));
      } else if (code === 12) {
        scram!.serverFinal(body.subarray(4));
      } else {
        throw new Error(`unexpected authentication request ${code}`);
      }
    }
    return { wire, method };
  } catch (err) {
    wire.close();
    throw err;
  }
}

/** Runs a simple Query; returns the rows as text. */
async function query(wire: Wire, sql: string): Promise<Array<Array<string | null>>> {
  wire.send('Q', cstr(sql));
  const rows: Array<Array<string | null>> = [];
  let failure: unknown = null;
  for (;;) {
    let msg;
    try {
      msg = await wire.next();
    } catch (err) {
      if (!(err instanceof PgServerError)) throw err;
      failure = err; // wait for ReadyForQuery
      continue;
    }
    if (msg.type === 'Z') break;
    if (msg.type !== 'D') continue;
    const row: Array<string | null> = [];
    let off = 2;
    for (let i = 0; i < msg.body.readInt16BE(0); i++) {
      const len = msg.body.readInt32BE(off);
      off += 4;
      row.push(len < 0 ? null : msg.body.toString('utf8', off, off + len));
      off += Math.max(len, 0);
    }
    rows.push(row);
  }
  if (failure) throw failure;
  return rows;
}

const literal = (s: string): string => `'${s.replace(/'/g, "''")}'`;

// ---------------------------------------------------------------------------
// Starting and stopping PostgreSQL.

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** As root, run PostgreSQL as the postgres system user (it refuses root). */
function pgIdentity(): { uid: number; gid: number } | null | 'missing' {
  if (process.getuid?.() !== 0) return null;
  try {
    const id = (flag: string): number => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    return 'missing';
  }
}

function run(cmd: string, args: string[], opts: { cwd: string; ident: { uid: number; gid: number } | null }): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(PG_BIN, cmd), args, {
      cwd: opts.cwd,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(opts.ident ?? {}),
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}:\n${out}`))));
  });
}

async function startPostgres(t: TestContext): Promise<number | null> {
  if (!existsSync(join(PG_BIN, 'postgres'))) {
    t.skip(`no PostgreSQL 15 binaries in ${PG_BIN}`);
    return null;
  }
  const ident = pgIdentity();
  if (ident === 'missing') {
    t.skip('running as root and there is no postgres system user');
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), 'pgq-auth-'));
  let pg: ChildProcess | null = null;
  // One hook, so PostgreSQL is stopped (by its PID) before its files go.
  t.after(async () => {
    if (pg && pg.exitCode === null && pg.signalCode === null) {
      const exited = new Promise((resolve) => pg!.once('exit', resolve));
      process.kill(pg.pid!, 'SIGINT'); // fast shutdown
      const timer = setTimeout(() => pg!.exitCode === null && process.kill(pg!.pid!, 'SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const data = join(dir, 'data');
  const pwfile = join(dir, 'pwfile');
  writeFileSync(pwfile, SUPERUSER_PASSWORD + '\n', { mode: 0o600 });
  if (ident) {
    chownSync(dir, ident.uid, ident.gid);
    chownSync(pwfile, ident.uid, ident.gid);
  }
  await run(
    'initdb',
    ['-D', data, '-U', 'postgres', '--pwfile', pwfile, '--auth-host=md5', '--auth-local=reject', '-E', 'UTF8', '--no-locale', '--no-sync'],
    { cwd: dir, ident },
  );

  const port = await freePort();
  const server = spawn(
    join(PG_BIN, 'postgres'),
    ['-D', data, '-p', String(port)].concat(
      [
        'listen_addresses=127.0.0.1',
        `unix_socket_directories=${dir}`,
        // initdb --auth-host=md5 also set password_encryption=md5; new roles get SCRAM.
        'password_encryption=scram-sha-256',
        'fsync=off',
        'max_connections=20',
      ].flatMap((setting) => ['-c', setting]),
    ),
    { cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' }, stdio: ['ignore', 'pipe', 'pipe'], ...(ident ?? {}) },
  );
  pg = server;
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`PostgreSQL did not start:\n${log}`)), 30_000);
    const onData = (d: Buffer): void => {
      log += d.toString();
      if (log.includes('ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    };
    server.stdout!.on('data', onData);
    server.stderr!.on('data', onData);
    server.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`PostgreSQL exited with ${code}:\n${log}`));
    });
  });
  return port;
}

// ---------------------------------------------------------------------------

/** Our server and client, in memory, with a given verifier. */
function inMemoryLogin(verifier: ScramVerifier, user: string, password: string): void {
  const server = new ScramServer(verifier, { user });
  const client = new ScramClient(user, password);
  client.serverFinal(server.clientFinal(client.serverFirst(server.clientFirst('SCRAM-SHA-256', client.clientFirst()))));
}

test('interop with a real PostgreSQL 15', { timeout: 120_000 }, async (t) => {
  const port = await startPostgres(t);
  if (port === null) return;

  const admin = await login(port, 'postgres', SUPERUSER_PASSWORD);
  t.after(() => admin.wire.close());
  // initdb with --auth-host=md5 stored the superuser's password as md5.
  assert.equal(admin.method, 'md5');
  for (const [user, password] of SCRAM_USERS) {
    await query(admin.wire, `CREATE ROLE ${user} LOGIN PASSWORD ${literal(password)}`);
  }
  await query(admin.wire, `SET password_encryption = 'md5'; CREATE ROLE ${MD5_USER[0]} LOGIN PASSWORD ${literal(MD5_USER[1])}`);
  const stored = new Map(
    (await query(admin.wire, 'SELECT rolname, rolpassword FROM pg_authid WHERE rolpassword IS NOT NULL')).map(
      ([name, pw]) => [name!, pw!] as const,
    ),
  );

  for (const [user, password] of SCRAM_USERS) {
    await t.test(`SCRAM verifier and login: ${user}`, async () => {
      const secret = stored.get(user);
      assert.ok(secret, `no pg_authid entry for ${user}`);
      const verifier = parseScramVerifier(secret);
      assert.ok(verifier, `pg_authid entry for ${user} does not parse: ${secret.slice(0, 20)}...`);
      assert.equal(verifier.iterations, 4096);
      assert.equal(verifier.salt.length, 16);

      // Same password + PostgreSQL's salt = the very same verifier.
      const ours = makeScramVerifier(password, verifier.salt, verifier.iterations);
      assert.equal(formatScramVerifier(ours), secret);

      // PostgreSQL's verifier works with our server and client...
      inMemoryLogin(verifier, user, password);
      assert.throws(
        () => inMemoryLogin(verifier, user, password + 'x'),
        (e: unknown) => e instanceof PgqError && e.code === 'ERR_AUTH_FAILED' && e.sqlstate === '28P01',
      );

      // ...and our client logs in to PostgreSQL itself.
      const { wire, method } = await login(port, user, password);
      assert.equal(method, 'scram');
      assert.deepEqual(await query(wire, 'SELECT current_user'), [[user]]);
      wire.close();
    });
  }

  await t.test('md5 stored hash and md5 login', async () => {
    assert.equal(stored.get('postgres'), md5PasswordHash('postgres', SUPERUSER_PASSWORD));
    const [user, password] = MD5_USER;
    assert.equal(stored.get(user), md5PasswordHash(user, password));
    const { wire, method } = await login(port, user, password);
    assert.equal(method, 'md5');
    assert.deepEqual(await query(wire, 'SELECT current_user'), [[user]]);
    wire.close();
    await assert.rejects(login(port, user, password + 'x'), (e: unknown) => e instanceof PgServerError && e.sqlstate === '28P01');
  });

  await t.test('PostgreSQL rejects a wrong SCRAM password with 28P01', async () => {
    await assert.rejects(login(port, 'u_ascii', 'not it'), (e: unknown) => e instanceof PgServerError && e.sqlstate === '28P01');
    await assert.rejects(login(port, 'no_such_user', 'x'), (e: unknown) => e instanceof PgServerError && e.sqlstate === '28P01');
  });
});

// The fault-injecting relay of test/helpers/relay.ts in front of one real
// PostgreSQL node, driven with node-postgres: pass, delay, blackhole (a
// partition that keeps sockets open), cut (FIN), reset (RST) and close();
// plus byte order under delay and resumption after a blackhole on one
// connection, against a local echo server. Only lower bounds on time are
// asserted (the machine is shared); upper limits are hang guards.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import pg from 'pg';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { startRelay, type Relay } from '../helpers/relay.js';

let cluster: TestCluster | undefined;
const relays: Relay[] = [];
const clients: pg.Client[] = [];
const sockets: net.Socket[] = [];
const servers: net.Server[] = [];

before(async () => {
  cluster = await startTestCluster({ nodes: 1 });
});

after(async () => {
  await Promise.allSettled(relays.map((r) => r.close()));
  await Promise.allSettled(clients.map(dropClient));
  for (const s of sockets) s.destroy();
  await Promise.allSettled(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  await cluster?.stop();
});

const TIMEOUT = Symbol('timeout');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The promise's value, or TIMEOUT if it has not settled within `ms` (a rejection rethrows). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMEOUT> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<typeof TIMEOUT>((r) => (timer = setTimeout(() => r(TIMEOUT), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** End a client however stuck it is: a polite end() for a moment, then destroy its socket. */
async function dropClient(c: pg.Client): Promise<void> {
  await within(c.end().catch(() => {}), 1_000);
  (c as unknown as { connection?: { stream?: net.Socket } }).connection?.stream?.destroy();
}

async function newRelay(target?: { host: string; port: number }): Promise<Relay> {
  const node = cluster!.nodes[0]!;
  const relay = await startRelay(target ?? { host: node.host, port: node.port });
  relays.push(relay);
  return relay;
}

interface Watched {
  client: pg.Client;
  errors: Error[];
  /** Resolves when the client's connection ended (pg's 'end' event). */
  ended: Promise<void>;
  isEnded(): boolean;
}

/** A node-postgres client through the relay (not yet connected), with its errors and end recorded. */
function relayClient(relay: Relay, appName: string): Watched {
  const client = new pg.Client({ ...cluster!.nodeClientConfig(0), host: relay.host, port: relay.port, application_name: appName });
  clients.push(client);
  const errors: Error[] = [];
  client.on('error', (e) => errors.push(e));
  let done = false;
  const ended = new Promise<void>((r) =>
    client.once('end', () => {
      done = true;
      r();
    }),
  );
  return { client, errors, ended, isEnded: () => done };
}

async function connected(relay: Relay, appName: string): Promise<Watched> {
  const w = relayClient(relay, appName);
  await w.client.connect();
  return w;
}

/** Backends on the node (seen directly, not through the relay) with this application_name. */
async function backends(appName: string): Promise<number> {
  const rows = await cluster!.queryNode<{ n: number }>(0, 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [appName]);
  return rows[0]!.n;
}

test('pass: queries go through and connections() follows the open clients', async () => {
  const relay = await newRelay();
  const node = cluster!.nodes[0]!;
  assert.equal(relay.host, '127.0.0.1');
  assert.ok(relay.port > 0 && relay.port !== node.port);
  assert.deepEqual(relay.target, { host: node.host, port: node.port });
  assert.equal(relay.mode, 'pass');
  assert.equal(relay.connections(), 0);

  const a = await connected(relay, 'relay-pass');
  const b = await connected(relay, 'relay-pass');
  assert.equal((await a.client.query('SELECT 1 AS one')).rows[0].one, 1);
  assert.deepEqual((await b.client.query('SELECT $1::text AS t', ['x'.repeat(200_000)])).rows[0].t.length, 200_000);
  assert.equal(relay.connections(), 2);
  assert.equal(await backends('relay-pass'), 2);

  await a.client.end();
  await b.client.end();
  await waitFor('connections() to drop to 0', () => relay.connections() === 0);
  await waitFor('the backends to exit', async () => (await backends('relay-pass')) === 0);
  assert.deepEqual([...a.errors, ...b.errors], []);
});

test('delay: a query takes at least delayMs; pass again afterwards', async () => {
  const relay = await newRelay();
  const c = await connected(relay, 'relay-delay');
  relay.set({ delayMs: 300 });
  assert.deepEqual(relay.mode, { delayMs: 300 });
  let t0 = Date.now();
  assert.equal((await c.client.query('SELECT 1 AS one')).rows[0].one, 1);
  let elapsed = Date.now() - t0;
  assert.ok(elapsed >= 300, `query through a 300 ms delay took ${elapsed} ms`);

  // A new connection under delay logs in (slowly) and works.
  relay.set({ delayMs: 50 });
  t0 = Date.now();
  const d = await connected(relay, 'relay-delay');
  assert.equal((await d.client.query('SELECT 2 AS two')).rows[0].two, 2);
  elapsed = Date.now() - t0;
  assert.ok(elapsed >= 50, `login + query through a 50 ms delay took ${elapsed} ms`);

  relay.set('pass');
  assert.equal((await c.client.query('SELECT 3 AS three')).rows[0].three, 3);
  assert.deepEqual([...c.errors, ...d.errors], []);
  assert.throws(() => relay.set({ delayMs: -1 }), RangeError);
});

test('blackhole: open connections hang but stay open, new ones hang in login; pass lets new clients work', async () => {
  const relay = await newRelay();
  const old = await connected(relay, 'relay-blackhole');
  relay.set('blackhole');
  assert.equal(relay.mode, 'blackhole');

  const q = old.client.query('SELECT 1');
  q.catch(() => {}); // rejected when the client is dropped in after()
  assert.equal(await within(q, 500), TIMEOUT, 'no answer through the blackhole');
  assert.equal(old.isEnded(), false, 'the open connection is not ended');
  assert.deepEqual(old.errors, []);
  assert.equal(relay.connections(), 1);
  assert.equal(await backends('relay-blackhole'), 1, 'the backend is still connected');

  const fresh = relayClient(relay, 'relay-blackhole-new');
  const login = fresh.client.connect();
  login.catch(() => {});
  assert.equal(await within(login, 500), TIMEOUT, 'login does not complete through the blackhole');
  assert.equal(fresh.isEnded(), false);
  assert.equal(relay.connections(), 2);
  assert.equal(await backends('relay-blackhole-new'), 0);

  relay.set('pass');
  const later = await connected(relay, 'relay-blackhole-after');
  assert.equal((await later.client.query('SELECT 1 AS one')).rows[0].one, 1);
  assert.equal(relay.connections(), 3);
  assert.equal(old.isEnded(), false, 'the old connection is still open');
});

test('cut: open connections are ended on both sides, new ones fail while in cut', async () => {
  const relay = await newRelay();
  const c = await connected(relay, 'relay-cut');
  assert.equal(await backends('relay-cut'), 1);
  relay.set('cut');
  assert.notEqual(await within(c.ended, 10_000), TIMEOUT, 'the client saw its connection end');
  await waitFor('the backend to exit', async () => (await backends('relay-cut')) === 0);
  await assert.rejects(c.client.query('SELECT 1'));

  const fresh = relayClient(relay, 'relay-cut-new');
  await assert.rejects(fresh.client.connect());
  await waitFor('connections() to drop to 0', () => relay.connections() === 0);

  relay.set('pass');
  const again = await connected(relay, 'relay-cut-after');
  assert.equal((await again.client.query('SELECT 1 AS one')).rows[0].one, 1);
});

test('reset: open connections get ECONNRESET, the backend goes away, new ones fail', async () => {
  const relay = await newRelay();
  const c = await connected(relay, 'relay-reset');
  assert.equal(await backends('relay-reset'), 1);
  relay.set('reset');
  assert.notEqual(await within(c.ended, 10_000), TIMEOUT, 'the client saw its connection end');
  assert.ok(
    c.errors.some((e) => (e as NodeJS.ErrnoException).code === 'ECONNRESET'),
    `expected ECONNRESET, got ${c.errors.map((e) => `${(e as NodeJS.ErrnoException).code}: ${e.message}`).join('; ') || 'no error'}`,
  );
  await waitFor('the backend to exit', async () => (await backends('relay-reset')) === 0);

  const fresh = relayClient(relay, 'relay-reset-new');
  await assert.rejects(fresh.client.connect());
  await waitFor('connections() to drop to 0', () => relay.connections() === 0);
});

test('close(): resolves, destroys every connection and stops listening', async () => {
  const relay = await newRelay();
  const a = await connected(relay, 'relay-close');
  const b = await connected(relay, 'relay-close');
  relay.set('blackhole');
  const hung = relayClient(relay, 'relay-close-hung');
  hung.client.connect().catch(() => {});
  await waitFor('the hung connection to be accepted', () => relay.connections() === 3);

  await relay.close();
  assert.equal(relay.connections(), 0);
  await relay.close(); // idempotent
  for (const w of [a, b, hung]) assert.notEqual(await within(w.ended, 10_000), TIMEOUT, 'every client saw its connection end');
  await assert.rejects(
    new Promise<void>((resolve, reject) => {
      const s = net.connect(relay.port, relay.host, () => {
        s.destroy();
        resolve();
      });
      s.on('error', reject);
    }),
  );
  await waitFor('the backends to exit', async () => (await backends('relay-close')) === 0);
});

test('bytes: delay keeps order per direction (also across a switch to pass); blackhole drops, pass resumes the same connection', async () => {
  const echo = net.createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  servers.push(echo);
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  const relay = await newRelay({ host: '127.0.0.1', port: (echo.address() as net.AddressInfo).port });

  const sock = net.connect(relay.port, relay.host);
  sockets.push(sock);
  sock.on('error', () => {});
  let got = '';
  sock.on('data', (d: Buffer) => (got += d.toString()));
  let ended = false;
  sock.on('end', () => (ended = true));
  await new Promise<void>((r) => sock.once('connect', () => r()));

  sock.write('ping');
  await waitFor('the echo', () => got === 'ping');

  relay.set({ delayMs: 200 });
  const t0 = Date.now();
  sock.write('a');
  await sleep(5);
  sock.write('b');
  await sleep(5);
  relay.set('pass');
  sock.write('c');
  await waitFor('the delayed echo', () => got.length >= 7);
  assert.equal(got, 'pingabc');
  assert.ok(Date.now() - t0 >= 200);

  relay.set('blackhole');
  sock.write('lost');
  await sleep(300);
  assert.equal(got, 'pingabc', 'nothing comes back through the blackhole');
  assert.equal(ended, false);
  relay.set('pass');
  sock.write('back');
  await waitFor('the echo after the blackhole', () => got.length >= 11);
  assert.equal(got, 'pingabcback');

  sock.end();
  await waitFor('the echo server to end the connection', () => ended);
  await waitFor('connections() to drop to 0', () => relay.connections() === 0);
});

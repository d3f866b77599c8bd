// Shared connections for keyed reads (docs/routing.md "Shared connections
// for keyed reads", src/backend/shared-reads.ts), on 3 real nodes: keyed
// autocommit reads of sessions with the same login go, pipelined, over one
// connection per node; every session still gets its own row; a session
// whose connections may hold other session state (SET, even inside a
// transaction block) or another login never reads through another's
// connection; a shared connection that dies loses nobody's read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { sendCancel, startTestCoordinator, useClusterWithCoordinator } from '../helpers/coordinator.js';
import { showNodes, waitFor } from '../helpers/ha.js';
import type { SharedReads } from '../../src/backend/shared-reads.js';

const ALICE = { name: 'sr_alice', password: 'sr-alice-pw' };

const fx = useClusterWithCoordinator({
  nodes: 3,
  edit: (c) => {
    c.users.push(ALICE);
  },
  setup: async () => {
    const c = await fx.coord.client();
    await c.query('CREATE TABLE sr (id int PRIMARY KEY, v int NOT NULL)');
    await c.query('INSERT INTO sr SELECT g, g * 10 FROM generate_series(1, 40) g ORDER BY g');
    await c.query('CREATE SCHEMA s2');
    await c.query('CREATE TABLE s2.sr (id int PRIMARY KEY, v int NOT NULL)');
    await c.query('INSERT INTO s2.sr SELECT g, -g FROM generate_series(1, 40) g ORDER BY g');
    await c.query('CREATE TABLE sr_secret (id int PRIMARY KEY, v int NOT NULL)');
    await c.query('INSERT INTO sr_secret VALUES (1, 111)');
    await c.query(`CREATE ROLE ${ALICE.name} LOGIN PASSWORD '${ALICE.password}'`);
    await c.query(`GRANT SELECT ON sr TO ${ALICE.name}`);
    await c.end();
  },
});

function shared(): SharedReads {
  const s = fx.coord.coordinator.ctx.sharedReads;
  assert.ok(s, 'the coordinator has shared read connections');
  return s;
}

/** Each client runs `n` keyed reads of random ids and checks every answer. */
async function readLoop(c: pg.Client, n: number, expect: (id: number) => number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const id = 1 + Math.floor(Math.random() * 40);
    const r = await c.query(`SELECT v FROM sr WHERE id = ${id}`);
    assert.deepEqual(r.rows, [{ v: expect(id) }], `read of id ${id}`);
  }
}

test('16 sessions read by key, pipelined over one shared connection per node; every answer is the reader\'s own row', async () => {
  const s = shared();
  const before = { ...s.stats };
  const clients = await Promise.all(Array.from({ length: 16 }, () => fx.coord.client({ application_name: 'sr-many' })));
  await Promise.all(clients.map((c) => readLoop(c, 60, (id) => id * 10)));
  const reads = s.stats.reads - before.reads;
  assert.ok(reads >= 16 * 60 * 0.8, `most reads went over shared connections: ${reads} of ${16 * 60}`);
  assert.ok(s.stats.maxInFlight >= 2, `reads were pipelined (at most ${s.stats.maxInFlight} in flight at once)`);
  const pids = s.backendPids();
  for (const [node, list] of pids) assert.ok(list.length <= 1, `one shared connection to ${node} per login: ${list.join(', ')}`);
  // On the nodes: the shared backends are the coordinator's, and ran the prepared form.
  for (const [node, list] of pids) {
    const i = Number(node.slice(1)) - 1;
    for (const pid of list) {
      assert.equal(fx.cluster.psqlNode(i, `SELECT query FROM pg_stat_activity WHERE pid = ${pid}`), 'SELECT v FROM sr WHERE id = $1');
    }
  }
  await Promise.all(clients.map((c) => c.end()));
});

test('prepared keyed reads (extended protocol) share too: each session\'s statement name may mean another text, and every answer is the reader\'s own', async () => {
  const s = shared();
  const before = s.stats.reads;
  const clients = await Promise.all(Array.from({ length: 12 }, () => fx.coord.client({ application_name: 'sr-ext' })));
  // The same statement name, two texts: sessions must not get each other's statement on the shared connection.
  const text = (i: number): string => (i % 2 === 0 ? 'SELECT v FROM sr WHERE id = $1' : 'SELECT v + 1 AS v FROM sr WHERE id = $1');
  await Promise.all(
    clients.map(async (c, i) => {
      for (let k = 0; k < 50; k++) {
        const id = 1 + Math.floor(Math.random() * 40);
        const r = await c.query({ name: 'rd', text: text(i), values: [id] });
        assert.deepEqual(r.rows, [{ v: id * 10 + (i % 2) }], `session ${i}, read of id ${id}`);
      }
    }),
  );
  const reads = s.stats.reads - before;
  assert.ok(reads >= 12 * 49 * 0.8, `most prepared reads went over shared connections: ${reads} of ${12 * 50}`);
  const seen = new Set<string>();
  for (const [node, list] of s.backendPids()) {
    const i = Number(node.slice(1)) - 1;
    for (const pid of list) seen.add(fx.cluster.psqlNode(i, `SELECT query FROM pg_stat_activity WHERE pid = ${pid}`));
  }
  for (const q of seen) assert.ok(q === text(0) || q === text(1) || q === 'SELECT v FROM sr WHERE id = $1', `a shared backend ran ${q}`);
  // Binary results, and a named portal-less Bind with the row not there.
  const c = clients[0]!;
  const binary = { name: 'rd', text: text(0), values: [7], binary: true }; // node-postgres asks for binary results (not in its types)
  const bin = await c.query(binary);
  assert.equal(bin.rows[0].v, 70);
  assert.deepEqual((await c.query({ name: 'rd', text: text(0), values: [4000] })).rows, []);
  await Promise.all(clients.map((x) => x.end()));
});

test('prepared keyed reads over shared connections: errors are what a plain node says, and the session goes on', async () => {
  const s = shared();
  const c = await fx.coord.client({ application_name: 'sr-ext-err' });
  const q = 'SELECT v FROM sr WHERE id = $1';
  // Until a read went over a shared connection (they are opened on first need, one per node).
  const start = s.stats.reads;
  for (let i = 0; i < 30 && s.stats.reads - start < 3; i++) {
    assert.deepEqual((await c.query({ name: 'e1', text: q, values: [(i % 40) + 1] })).rows, [{ v: ((i % 40) + 1) * 10 }]);
  }
  assert.ok(s.stats.reads - start >= 3, 'the named statement\'s reads share');
  // An error in the Bind names the client's statement, as a node would (not the coordinator's).
  await assert.rejects(c.query({ name: 'e1', text: q, values: [1, 2] }), (e: { code?: string; message?: string }) => {
    assert.equal(e.code, '08P01');
    assert.equal(e.message, 'bind message supplies 2 parameters, but prepared statement "e1" requires 1');
    return true;
  });
  await assert.rejects(c.query({ name: 'e1', text: q, values: ['abc'] }), (e: { code?: string; message?: string }) => {
    assert.equal(e.code, '22P02');
    assert.equal(e.message, 'invalid input syntax for type integer: "abc"');
    return true;
  });
  // A run-time error (after BindComplete) comes from the shared connection as it is.
  const dz = 'SELECT v / (v - v) AS x FROM sr WHERE id = $1';
  await assert.rejects(c.query({ name: 'e2', text: dz, values: [3] }), (e: { code?: string }) => e.code === '22012');
  const mid = s.stats.reads;
  await assert.rejects(c.query({ name: 'e2', text: dz, values: [3] }), (e: { code?: string }) => e.code === '22012');
  assert.ok(s.stats.reads > mid, 'the failing read went over a shared connection');
  assert.deepEqual((await c.query({ name: 'e1', text: q, values: [6] })).rows, [{ v: 60 }]);
  assert.deepEqual((await c.query('SELECT count(*)::int AS n FROM sr')).rows, [{ n: 40 }]);
  assert.deepEqual((await showNodes(c)).map((r) => r.state), ['up', 'up', 'up']);
  await c.end();
});

test('a session that changed its session state (SET, also inside a transaction block) reads on its own connections', async () => {
  const s = shared();
  const plainSession = await fx.coord.client({ application_name: 'sr-state' });
  const setOutside = await fx.coord.client({ application_name: 'sr-state' });
  const setInside = await fx.coord.client({ application_name: 'sr-state' });
  await readLoop(plainSession, 20, (id) => id * 10); // the login's shared connections exist
  await setOutside.query('SET search_path = s2, public');
  await setInside.query('BEGIN');
  await setInside.query('SET search_path = s2, public');
  await setInside.query('COMMIT');
  const before = s.stats.reads;
  // Through a shared connection (search_path as the login set it) these would read public.sr.
  await Promise.all([readLoop(setOutside, 30, (id) => -id), readLoop(setInside, 30, (id) => -id)]);
  assert.equal(s.stats.reads, before, 'none of their reads went over a shared connection');
  await readLoop(plainSession, 20, (id) => id * 10);
  assert.ok(s.stats.reads > before, 'the untouched session still shares');
  await Promise.all([plainSession.end(), setOutside.end(), setInside.end()]);
});

test('a write whose trigger may change session settings ends sharing for that session; a write to a plain table does not', async () => {
  const s = shared();
  const setup = await fx.coord.client();
  await setup.query('CREATE TABLE sr_trig (id int PRIMARY KEY)');
  await setup.query(`CREATE FUNCTION sr_trig_path() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM set_config('search_path', 's2, public', false); RETURN NEW; END $$`);
  await setup.query('CREATE TRIGGER sr_trig_path BEFORE INSERT ON sr_trig FOR EACH ROW EXECUTE FUNCTION sr_trig_path()');
  await setup.end();
  const writer = await fx.coord.client({ application_name: 'sr-trig' });
  const plainWriter = await fx.coord.client({ application_name: 'sr-trig' });
  await readLoop(writer, 10, (id) => id * 10); // both share before they write
  await readLoop(plainWriter, 10, (id) => id * 10);
  await writer.query('INSERT INTO sr_trig VALUES (1)'); // the trigger sets search_path on the session's own connections
  assert.equal((await writer.query('SHOW search_path')).rows[0].search_path, 's2, public');
  await plainWriter.query('UPDATE sr SET v = v WHERE id = 1');
  await plainWriter.query('INSERT INTO sr_secret VALUES (2, 222)');
  let before = s.stats.reads;
  // Through a shared connection (search_path as the login set it) these would read public.sr.
  await readLoop(writer, 30, (id) => -id);
  assert.equal(s.stats.reads, before, 'none of its reads went over a shared connection');
  before = s.stats.reads;
  await readLoop(plainWriter, 30, (id) => id * 10);
  assert.ok(s.stats.reads > before, 'the session that wrote to tables without triggers still shares');
  await Promise.all([writer.end(), plainWriter.end()]);
});

test('sessions of another login never read through the postgres sessions\' shared connections', async () => {
  const s = shared();
  const admin = await fx.coord.client({ application_name: 'sr-login' });
  const alice = await fx.coord.client({ application_name: 'sr-login', user: ALICE.name, password: ALICE.password });
  const r = await admin.query('SELECT v FROM sr_secret WHERE id = 1');
  assert.deepEqual(r.rows, [{ v: 111 }]);
  await readLoop(admin, 10, (id) => id * 10);
  for (let i = 0; i < 10; i++) {
    await assert.rejects(alice.query('SELECT v FROM sr_secret WHERE id = 1'), (e: { code?: string }) => e.code === '42501', 'alice may not read sr_secret');
    assert.deepEqual((await admin.query('SELECT v FROM sr_secret WHERE id = 1')).rows, [{ v: 111 }]);
  }
  await readLoop(alice, 20, (id) => id * 10); // alice's own reads work, over her own shared connections
  const users = new Set<string>();
  for (const [node, pids] of s.backendPids()) {
    const i = Number(node.slice(1)) - 1;
    for (const pid of pids) users.add(fx.cluster.psqlNode(i, `SELECT usename FROM pg_stat_activity WHERE pid = ${pid}`));
  }
  assert.ok(users.has(ALICE.name), `alice has shared connections of her own (users: ${[...users].join(', ')})`);
  await Promise.all([admin.end(), alice.end()]);
});

test('a shared connection killed on its node under load: no read is lost or answered wrongly, and a new one is opened', async () => {
  const s = shared();
  const clients = await Promise.all(Array.from({ length: 8 }, () => fx.coord.client({ application_name: 'sr-kill' })));
  await Promise.all(clients.map((c) => readLoop(c, 5, (id) => id * 10)));
  const opened = s.stats.opened;
  const victims = await waitFor(() => {
    const all = [...s.backendPids()].filter(([, pids]) => pids.length > 0);
    return all.length > 0 ? all : null;
  }, 10_000, 'a shared connection');
  let stop = false;
  const loops = clients.map(async (c) => {
    let n = 0;
    while (!stop) {
      await readLoop(c, 1, (id) => id * 10);
      n++;
    }
    return n;
  });
  await new Promise((r) => setTimeout(r, 200));
  for (const [node, pids] of victims) {
    const i = Number(node.slice(1)) - 1;
    for (const pid of pids) assert.equal(fx.cluster.psqlNode(i, `SELECT pg_terminate_backend(${pid})`), 't');
  }
  await new Promise((r) => setTimeout(r, 500));
  stop = true;
  const counts = await Promise.all(loops);
  assert.ok(counts.every((n) => n > 0), `every client kept reading: ${counts.join(', ')}`);
  await waitFor(() => s.stats.opened > opened || null, 10_000, 'a new shared connection');
  // The nodes stayed in service: losing a shared connection is not evidence against a node.
  assert.deepEqual((await showNodes(clients[0]!)).map((r) => r.state), ['up', 'up', 'up']);
  await Promise.all(clients.map((c) => c.end()));
});

/** Backends on all nodes that wait for a lock while running the shared form of `SELECT v FROM sr WHERE id = ...`. */
function lockWaiters(): number {
  let n = 0;
  for (let i = 0; i < 3; i++) {
    n += Number(fx.cluster.psqlNode(i, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query = 'SELECT v FROM sr WHERE id = $1'"));
  }
  return n;
}

test('a client cancels its read waiting on a shared connection: 57014 for it, the connection is closed and its backend cancelled; a read that calls a function never shares', async () => {
  const s = shared();
  const locker = await fx.coord.client({ application_name: 'sr-locker' });
  const b = await fx.coord.client({ application_name: 'sr-cancel' });
  await readLoop(b, 5, (id) => id * 10);
  // A function in the read may take its time: such a read is not pipelined behind others'.
  const before = s.stats.reads;
  assert.deepEqual((await b.query("SELECT v, lower('X') AS x FROM sr WHERE id = 3")).rows, [{ v: 30, x: 'x' }]);
  assert.deepEqual((await b.query('SELECT v, pg_sleep(0.05)::text AS z FROM sr WHERE id = 4')).rows, [{ v: 40, z: '' }]);
  assert.equal(s.stats.reads, before, 'reads that call a function went over the session\'s own connections');

  await locker.query('BEGIN');
  await locker.query('LOCK TABLE sr IN ACCESS EXCLUSIVE MODE');
  const reads = s.stats.reads;
  const waiting = b.query('SELECT v FROM sr WHERE id = 2').then(
    () => 'answered',
    (e: { code?: string; message?: string }) => e,
  );
  await waitFor(() => s.stats.reads > reads || null, 5000, 'the read sent over a shared connection');
  await waitFor(() => lockWaiters() === 1 || null, 10_000, 'the shared backend waiting for the lock');
  await sendCancel(fx.coord.port, b);
  const outcome = await Promise.race([waiting, new Promise((r) => setTimeout(() => r('still waiting after 10 s'), 10_000))]);
  assert.equal((outcome as { code?: string }).code, '57014', `the read was cancelled: ${JSON.stringify(outcome)}`);
  assert.equal((outcome as { message?: string }).message, 'canceling statement due to user request');
  // Its backend stopped waiting while the lock is still held: it was cancelled, not left to wait for the lock.
  await waitFor(() => lockWaiters() === 0 || null, 10_000, 'no shared backend waiting for the lock any more');
  await locker.query('ROLLBACK');

  // The session goes on; shared reads work again, over a new connection.
  assert.deepEqual((await b.query('SELECT v FROM sr WHERE id = 3')).rows, [{ v: 30 }]);
  const again = s.stats.reads;
  await waitFor(async () => {
    await readLoop(b, 1, (id) => id * 10);
    return s.stats.reads > again || null;
  }, 10_000, 'reads over a shared connection again (a new one opened)');
  assert.deepEqual((await showNodes(b)).map((r) => r.state), ['up', 'up', 'up']);
  await Promise.all([b.end(), locker.end()]);
});

test('reads.shared_connections = 0: every session reads on its own connections', async () => {
  const coord = await startTestCoordinator(fx.cluster, (c) => {
    c.reads.shared_connections = 0;
  });
  try {
    const clients = await Promise.all(Array.from({ length: 4 }, () => coord.client({ application_name: 'sr-off' })));
    await Promise.all(clients.map((c) => readLoop(c, 20, (id) => id * 10)));
    const s = coord.coordinator.ctx.sharedReads!;
    assert.equal(s.stats.reads, 0);
    assert.equal(s.connections, 0);
  } finally {
    await coord.stop();
  }
});

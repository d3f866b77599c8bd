// NodeConnection's relays against a scripted fake node (protocol edge cases
// a real server does not produce on demand): answers of pipelined relays
// (shared read connections, src/backend/shared-reads.ts) arriving in one
// chunk or cut anywhere, bytes that follow an answer, and a connection lost
// with relays queued.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import pino from 'pino';
import { ClusterNode } from '../../src/cluster/cluster.js';
import { NodeConnection } from '../../src/backend/node-connection.js';
import { EventEmitter } from 'node:events';
import { HOL_CLOSE_MS, SharedReads } from '../../src/backend/shared-reads.js';
import type { Cluster } from '../../src/cluster/cluster.js';
import type { Frame } from '../../src/protocol/reader.js';

function msg(type: string, body: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(5);
  h.write(type, 0, 'latin1');
  h.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([h, body]);
}
const int32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const cstr = (s: string): Buffer => Buffer.from(`${s}\0`, 'utf8');
const READY = msg('Z', Buffer.from('I'));
/** One row answer: RowDescription, DataRow with `v`, CommandComplete, ReadyForQuery. */
function answer(v: string): Buffer {
  const rowDesc = msg('T', Buffer.concat([Buffer.from([0, 1]), cstr('v'), int32(0), Buffer.from([0, 0]), int32(25), Buffer.from([0xff, 0xff]), int32(-1), Buffer.from([0, 0])]));
  const dataRow = msg('D', Buffer.concat([Buffer.from([0, 1]), int32(Buffer.byteLength(v)), Buffer.from(v)]));
  return Buffer.concat([rowDesc, dataRow, msg('C', cstr('SELECT 1')), READY]);
}

/** A fake node: logs anyone in, then hands every later write it gets to `onQuery` with the socket. */
async function fakeNode(
  onQuery: (sock: net.Socket, data: Buffer) => void,
): Promise<{ port: number; close: () => Promise<void>; socks: net.Socket[]; firsts: Buffer[] }> {
  const socks: net.Socket[] = [];
  const firsts: Buffer[] = [];
  const server = net.createServer((sock) => {
    socks.push(sock);
    let started = false;
    sock.on('data', (d) => {
      if (!started) {
        started = true; // the startup packet (a test client sends it in one piece), or a CancelRequest
        firsts.push(Buffer.from(d));
        sock.write(Buffer.concat([msg('R', int32(0)), msg('K', Buffer.concat([int32(4242), int32(7)])), READY]));
        return;
      }
      onQuery(sock, d);
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    socks,
    firsts,
    close: () =>
      new Promise<void>((r) => {
        for (const s of socks) s.destroy();
        server.close(() => r());
      }),
  };
}

async function connectTo(port: number): Promise<NodeConnection> {
  const node = new ClusterNode({ id: 'n1', host: '127.0.0.1', port, weight: 1 }, 0);
  return NodeConnection.connect(node, { user: 'u', password: null, database: 'd', params: {}, connectTimeoutMs: 5000 }, pino({ level: 'silent' }));
}

interface Got {
  out: Buffer[];
  done: { status: string | null; lost: boolean; forwarded: boolean } | null;
}

function relayOn(c: NodeConnection, pipelined: boolean, tag: string, order: string[]): Got {
  const got: Got = { out: [], done: null };
  const ok = c.relay(
    msg('Q', cstr(tag)),
    (chunk) => got.out.push(Buffer.from(chunk)),
    (status, lost, forwarded) => {
      got.done = { status, lost: lost !== null, forwarded };
      order.push(tag);
    },
    0,
    pipelined,
  );
  assert.ok(ok, `relay ${tag} taken`);
  return got;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(cond(), what);
}

test('pipelined relays: three answers in one chunk, and the same answers cut at every byte, each reach their own relay in order', async () => {
  for (const cut of ['one chunk', 'byte by byte']) {
    let pending = 0;
    const node = await fakeNode((sock, d) => {
      pending += d.toString('latin1').split('Q').length - 1;
      if (pending < 3) return;
      const all = Buffer.concat([answer('a'), answer('bb'), answer('ccc')]);
      if (cut === 'one chunk') sock.write(all);
      else {
        void (async () => {
          for (let i = 0; i < all.length; i++) {
            sock.write(all.subarray(i, i + 1));
            if (i % 5 === 0) await new Promise((r) => setTimeout(r, 1)); // separate reads on the other side
          }
        })();
      }
    });
    const c = await connectTo(node.port);
    try {
      const order: string[] = [];
      const got = ['a', 'bb', 'ccc'].map((t) => relayOn(c, true, t, order));
      assert.equal(c.relaysInFlight, 3);
      await until(() => order.length === 3, `${cut}: all three answered`);
      assert.deepEqual(order, ['a', 'bb', 'ccc'], cut);
      got.forEach((g, i) => {
        assert.deepEqual(Buffer.concat(g.out), answer(['a', 'bb', 'ccc'][i]!), `${cut}: relay ${i} got exactly its answer`);
        assert.deepEqual(g.done, { status: 'I', lost: false, forwarded: true });
      });
      assert.equal(c.relaysInFlight, 0);
    } finally {
      c.close();
      await node.close();
    }
  }
});

test('bytes after an answer with no relay behind it are read once, as an async message', async () => {
  const notify = msg('A', Buffer.concat([int32(99), cstr('ch'), cstr('hi')]));
  const node = await fakeNode((sock) => sock.write(Buffer.concat([answer('x'), notify])));
  const c = await connectTo(node.port);
  try {
    const seen: Frame[] = [];
    c.onAsync = (f) => seen.push(f);
    for (const pipelined of [false, true]) {
      seen.length = 0;
      const order: string[] = [];
      const g = relayOn(c, pipelined, 'x', order);
      await until(() => order.length === 1 && seen.length > 0, 'answered and the notification seen');
      await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(Buffer.concat(g.out), answer('x'), `${pipelined ? 'pipelined' : 'relay'}: the answer, without what followed it`);
      assert.deepEqual(
        seen.map((f) => f.type),
        ['A'.charCodeAt(0)],
        `${pipelined ? 'pipelined' : 'relay'}: the notification once`,
      );
    }
  } finally {
    c.close();
    await node.close();
  }
});

test('a connection lost with relays queued: every one is told, and only the first may have passed anything on', async () => {
  const node = await fakeNode((sock, d) => {
    // the first answer's RowDescription and DataRow, not its end
    if (d.toString('latin1').includes('first')) sock.write(answer('partial').subarray(0, answer('partial').length - msg('C', cstr('SELECT 1')).length - READY.length));
  });
  const c = await connectTo(node.port);
  try {
    const order: string[] = [];
    const got = ['first', 'second', 'third'].map((t) => relayOn(c, true, t, order));
    await until(() => got[0]!.out.length > 0, 'part of the first answer passed on');
    for (const s of node.socks) s.destroy();
    await until(() => order.length === 3, 'all three told');
    assert.deepEqual(order, ['first', 'second', 'third']);
    assert.deepEqual(got[0]!.done, { status: null, lost: true, forwarded: true });
    assert.deepEqual(got[1]!.done, { status: null, lost: true, forwarded: false });
    assert.deepEqual(got[2]!.done, { status: null, lost: true, forwarded: false });
    assert.equal(c.relay(msg('Q', cstr('late')), () => undefined, () => undefined, 0, true), false, 'a closed connection takes no more');
  } finally {
    c.close();
    await node.close();
  }
});

test('a read whose answer stalls for HOL_CLOSE_MS with reads pipelined behind it: the shared connection is closed (they all run again elsewhere) and its backend cancelled; one still streaming is kept', async () => {
  const first = answer('slow').subarray(0, answer('slow').indexOf('D')); // its RowDescription, then nothing
  let started = false;
  const node = await fakeNode((sock, d) => {
    if (!started && d.includes('slow')) {
      started = true;
      setTimeout(() => sock.write(first), 300); // part of the answer arrives late, then it stalls
    }
  });
  const shared = new SharedReads(new EventEmitter() as unknown as Cluster, 1, pino({ level: 'silent' }));
  const cn = new ClusterNode({ id: 'n1', host: '127.0.0.1', port: node.port, weight: 1 }, 0);
  const login = { user: 'u', password: null, database: 'd', params: {}, connectTimeoutMs: 5000 };
  const cancel = Buffer.concat([int32(16), int32(80877102), int32(4242), int32(7)]); // the pid and key the node gave
  try {
    assert.equal(shared.conn(cn, login), null, 'none open yet: the first read uses its own connection');
    await until(() => shared.stats.opened === 1, 'a shared connection opened');
    const c = shared.conn(cn, login)!;
    assert.ok(c);
    const order: string[] = [];
    const slow = relayOn(c, true, 'slow', order);
    // Alone on the connection it is left to run: nobody waits behind it.
    shared.unblock(performance.now() + 10 * HOL_CLOSE_MS);
    assert.equal(c.closed, false);
    const behind = ['b1', 'b2'].map((t) => relayOn(shared.conn(cn, login)!, true, t, order));
    // Others behind it, but not yet HOL_CLOSE_MS old: kept.
    shared.unblock(performance.now());
    assert.equal(c.closed, false);
    // Part of its answer arrives: it counts from there (an answer still streaming in is not stalled).
    await until(() => slow.out.length > 0, 'part of the slow answer passed on');
    assert.ok(c.relayHeadAge(performance.now()) >= 290);
    // By its age it would be over HOL_CLOSE_MS here; by its last progress it is not.
    shared.unblock(performance.now() + HOL_CLOSE_MS - 200);
    assert.equal(c.closed, false, 'moved less than HOL_CLOSE_MS ago: kept');
    assert.equal(shared.stats.unblocked, 0);
    shared.unblock(performance.now() + HOL_CLOSE_MS + 1);
    assert.equal(c.closed, true, 'closed');
    assert.equal(shared.stats.unblocked, 1);
    await until(() => order.length === 3, 'every read on it told');
    assert.deepEqual(order, ['slow', 'b1', 'b2']);
    assert.deepEqual(slow.done, { status: null, lost: true, forwarded: true }, 'the stalled one: lost after part of its answer');
    for (const g of behind) assert.deepEqual(g.done, { status: null, lost: true, forwarded: false }, 'lost before any answer: run again the usual way');
    await until(() => node.firsts.some((b) => b.equals(cancel)), 'a CancelRequest for the shared backend');
    // The next read finds no closed connection in the pool: a new one is opened.
    assert.equal(shared.conn(cn, login), null);
    await until(() => shared.stats.opened === 2, 'a new shared connection');
  } finally {
    shared.close();
    await node.close();
  }
});

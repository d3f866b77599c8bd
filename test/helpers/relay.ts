// Test harness: a fault-injecting TCP relay on a free loopback port, to put
// between the coordinator (or any client) and one PostgreSQL node. Its mode
// can be switched at any moment: pass bytes through, delay them, drop them
// while keeping the sockets open (a network partition), close every
// connection gracefully (FIN) or reset it (RST). Socket errors never escape;
// close() it in an after() hook.
//
// Modes (set() applies to the connections already open and to new ones):
// - 'pass': bytes are forwarded both ways unchanged, with backpressure.
// - { delayMs }: every chunk, both ways, is delivered delayMs later, in order
//   per direction (also across a switch back to 'pass').
// - 'blackhole': nothing is forwarded any more and what arrives is discarded
//   (chunks still delayed are lost too); sockets stay open, and so does a FIN
//   or close of one side stay unseen by the other side until the relay
//   forwards again. New connections are accepted and never connected to the
//   target: their client hangs in login until it gives up, even after a
//   switch back (only connections made after it work).
// - 'cut': every connection is ended on both sides (FIN, then destroyed if
//   the peer has not closed within CUT_GRACE_MS); new ones are accepted and
//   ended at once.
// - 'reset': every connection is reset on both sides (RST); new ones are
//   reset at once.
// Connections cut or reset never forward again, whatever the next mode.
import * as net from 'node:net';

export type RelayMode = 'pass' | 'blackhole' | 'cut' | 'reset' | { delayMs: number };

export interface Relay {
  /** '127.0.0.1'. */
  readonly host: string;
  /** The relay's listening port (a free loopback port). */
  readonly port: number;
  readonly target: { host: string; port: number };
  /** Current mode (a view: assigning it is the same as set()). */
  mode: RelayMode;
  /** Switch mode at any moment during a test. */
  set(mode: RelayMode): void;
  /** Client connections currently open through the relay. */
  connections(): number;
  /** Stop listening and destroy all connections; resolves once they are closed. Idempotent. */
  close(): Promise<void>;
}

/** Above this many delayed bytes in one direction, stop reading its source. */
const QUEUE_HIGH_WATER = 1 << 20;
/** After a cut, a socket whose peer has not closed its side by then is destroyed. */
const CUT_GRACE_MS = 2_000;

interface Chunk {
  data: Buffer;
  /** Date.now() at which it may be written. */
  at: number;
}

/** One direction of a relayed connection. */
interface Flow {
  src: net.Socket;
  dst: net.Socket;
  queue: Chunk[];
  queuedBytes: number;
  /** `at` of the last queued chunk (later chunks never go before it). */
  lastAt: number;
  timer: NodeJS.Timeout | null;
  /** src sent a FIN or closed. */
  srcEnded: boolean;
  /** src closed with an error (propagated as a reset). */
  srcFailed: boolean;
  /** dst was ended/reset by the relay, or closed: nothing more goes to it. */
  dstDone: boolean;
  waitingDrain: boolean;
}

interface Conn {
  client: net.Socket;
  /** null: accepted in blackhole/cut/reset, never connected to the target. */
  upstream: net.Socket | null;
  /** client -> target. */
  up: Flow | null;
  /** target -> client. */
  down: Flow | null;
  /** Cut or reset: never forwards again. */
  dead: boolean;
  clientEnded: boolean;
}

function noop(): void {}

function resetSocket(s: net.Socket): void {
  try {
    s.resetAndDestroy();
  } catch {
    s.destroy();
  }
}

function normalize(mode: RelayMode): RelayMode {
  if (typeof mode === 'string') {
    if (mode === 'pass' || mode === 'blackhole' || mode === 'cut' || mode === 'reset') return mode;
  } else if (mode && typeof mode === 'object' && Number.isFinite(mode.delayMs) && mode.delayMs >= 0) {
    return Object.freeze({ delayMs: mode.delayMs });
  }
  throw new RangeError(`invalid relay mode ${JSON.stringify(mode)}`);
}

/** Start a relay on 127.0.0.1 (port chosen by the OS) in mode 'pass', forwarding to `target`. */
export async function startRelay(target: { host: string; port: number }): Promise<Relay> {
  const tgt = Object.freeze({ host: target.host, port: target.port });
  let mode: RelayMode = 'pass';
  let closing: Promise<void> | null = null;
  const conns = new Set<Conn>();
  const clients = new Set<net.Socket>();
  /** Every socket still open, client and upstream side. */
  const sockets = new Set<net.Socket>();
  let onAllClosed: (() => void) | null = null;

  const forwarding = (): boolean => mode === 'pass' || typeof mode === 'object';
  const delayMs = (): number => (typeof mode === 'object' ? mode.delayMs : 0);

  const track = (s: net.Socket, isClient: boolean): void => {
    sockets.add(s);
    if (isClient) clients.add(s);
    s.once('close', () => {
      sockets.delete(s);
      clients.delete(s);
      if (sockets.size === 0) onAllClosed?.();
    });
  };

  const newFlow = (src: net.Socket, dst: net.Socket): Flow => ({
    src,
    dst,
    queue: [],
    queuedBytes: 0,
    lastAt: 0,
    timer: null,
    srcEnded: false,
    srcFailed: false,
    dstDone: false,
    waitingDrain: false,
  });

  const dropQueue = (f: Flow): void => {
    if (f.timer) clearTimeout(f.timer);
    f.timer = null;
    f.queue = [];
    f.queuedBytes = 0;
    f.lastAt = 0;
  };

  /** Read src unless its dst pushes back or too much is queued (only while forwarding: otherwise read and discard). */
  const updateFlow = (conn: Conn, f: Flow): void => {
    const hold = forwarding() && !conn.dead && !f.dstDone && (f.waitingDrain || f.queuedBytes > QUEUE_HIGH_WATER);
    if (hold) f.src.pause();
    else f.src.resume();
  };

  const write = (conn: Conn, f: Flow, data: Buffer): void => {
    if (f.dstDone || f.dst.destroyed || f.dst.writableEnded) return;
    if (!f.dst.write(data) && !f.waitingDrain) {
      f.waitingDrain = true;
      f.dst.once('drain', () => {
        f.waitingDrain = false;
        updateFlow(conn, f);
      });
    }
  };

  /** Pass on src's FIN (or its error, as a reset) once everything before it was delivered. */
  const maybeEnd = (conn: Conn, f: Flow): void => {
    if (!f.srcEnded || f.queue.length > 0 || f.dstDone || conn.dead || !forwarding()) return;
    f.dstDone = true;
    if (f.srcFailed) resetSocket(f.dst);
    else f.dst.end();
  };

  const schedule = (conn: Conn, f: Flow): void => {
    if (f.timer || f.queue.length === 0) return;
    const wait = Math.max(0, f.queue[0]!.at - Date.now());
    f.timer = setTimeout(() => {
      f.timer = null;
      deliver(conn, f);
    }, wait);
  };

  const deliver = (conn: Conn, f: Flow): void => {
    if (conn.dead || !forwarding()) {
      dropQueue(f);
      updateFlow(conn, f);
      return;
    }
    const now = Date.now();
    while (f.queue.length > 0 && f.queue[0]!.at <= now) {
      const c = f.queue.shift()!;
      f.queuedBytes -= c.data.length;
      write(conn, f, c.data);
    }
    schedule(conn, f);
    maybeEnd(conn, f);
    updateFlow(conn, f);
  };

  const onData = (conn: Conn, f: Flow, data: Buffer): void => {
    if (conn.dead || !forwarding() || f.dstDone) return; // discarded
    const now = Date.now();
    const at = Math.max(now + delayMs(), f.lastAt);
    if (f.queue.length === 0 && at <= now) {
      write(conn, f, data);
    } else {
      f.queue.push({ data, at });
      f.queuedBytes += data.length;
      f.lastAt = at;
      schedule(conn, f);
    }
    updateFlow(conn, f);
  };

  const onSrcClosed = (conn: Conn, f: Flow, hadError: boolean): void => {
    f.srcEnded = true;
    f.srcFailed ||= hadError;
    maybeEnd(conn, f);
  };

  const onDstClosed = (conn: Conn, f: Flow): void => {
    f.dstDone = true;
    f.waitingDrain = false;
    dropQueue(f);
    updateFlow(conn, f);
  };

  const endGracefully = (s: net.Socket): void => {
    s.end();
    s.resume();
    setTimeout(() => s.destroy(), CUT_GRACE_MS).unref();
  };

  const cut = (conn: Conn): void => {
    conn.dead = true;
    for (const f of [conn.up, conn.down]) if (f) dropQueue(f);
    endGracefully(conn.client);
    if (conn.upstream) endGracefully(conn.upstream);
  };

  const reset = (conn: Conn): void => {
    conn.dead = true;
    for (const f of [conn.up, conn.down]) if (f) dropQueue(f);
    resetSocket(conn.client);
    if (conn.upstream) resetSocket(conn.upstream);
  };

  /** The relay forwards again: deliver the FINs/closes held during a blackhole. */
  const resume = (conn: Conn): void => {
    if (conn.dead) return;
    if (!conn.upstream) {
      if (conn.clientEnded) conn.client.end();
      return;
    }
    for (const f of [conn.up!, conn.down!]) {
      schedule(conn, f);
      maybeEnd(conn, f);
      updateFlow(conn, f);
    }
  };

  const connectUpstream = (conn: Conn): void => {
    const client = conn.client;
    const upstream = net.connect({ host: tgt.host, port: tgt.port, allowHalfOpen: true });
    upstream.on('error', noop);
    upstream.setNoDelay(true);
    track(upstream, false);
    conn.upstream = upstream;
    const up = (conn.up = newFlow(client, upstream));
    const down = (conn.down = newFlow(upstream, client));
    upstream.on('data', (data: Buffer) => onData(conn, down, data));
    upstream.on('end', () => onSrcClosed(conn, down, false));
    upstream.on('close', (hadError: boolean) => {
      onSrcClosed(conn, down, hadError);
      onDstClosed(conn, up);
      if (client.destroyed) conns.delete(conn);
    });
  };

  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    client.on('error', noop);
    if (closing) {
      client.destroy();
      return;
    }
    client.setNoDelay(true);
    track(client, true);
    const conn: Conn = { client, upstream: null, up: null, down: null, dead: false, clientEnded: false };
    conns.add(conn);
    client.on('data', (data: Buffer) => {
      if (conn.up) onData(conn, conn.up, data);
    });
    client.on('end', () => {
      conn.clientEnded = true;
      if (conn.up) onSrcClosed(conn, conn.up, false);
      else if (!conn.dead && forwarding()) client.end();
    });
    client.on('close', (hadError: boolean) => {
      if (conn.up) onSrcClosed(conn, conn.up, hadError);
      if (conn.down) onDstClosed(conn, conn.down);
      if (!conn.upstream || conn.upstream.destroyed) conns.delete(conn);
    });
    if (mode === 'cut') {
      conn.dead = true;
      endGracefully(client);
    } else if (mode === 'reset') {
      conn.dead = true;
      resetSocket(client);
    } else if (forwarding()) {
      connectUpstream(conn);
    }
    // blackhole: accepted, never connected; what the client sends is discarded.
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', noop);
  const port = (server.address() as net.AddressInfo).port;

  const set = (next: RelayMode): void => {
    mode = normalize(next);
    for (const conn of [...conns]) {
      if (mode === 'cut') cut(conn);
      else if (mode === 'reset') reset(conn);
      else if (mode === 'blackhole') {
        for (const f of [conn.up, conn.down]) {
          if (!f) continue;
          dropQueue(f); // in flight during a partition: lost
          updateFlow(conn, f); // keep reading, to discard
        }
      } else resume(conn);
    }
  };

  return {
    host: '127.0.0.1',
    port,
    target: tgt,
    get mode() {
      return mode;
    },
    set mode(m: RelayMode) {
      set(m);
    },
    set,
    connections: () => clients.size,
    close() {
      closing ??= (async () => {
        const serverClosed = new Promise<void>((r) => server.close(() => r()));
        for (const conn of conns) {
          conn.dead = true;
          for (const f of [conn.up, conn.down]) if (f) dropQueue(f);
        }
        const allClosed = new Promise<void>((r) => {
          onAllClosed = r;
          if (sockets.size === 0) r();
        });
        for (const s of sockets) s.destroy();
        await Promise.all([serverClosed, allClosed]);
        conns.clear();
      })();
      return closing;
    },
  };
}

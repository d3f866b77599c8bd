// Shared read connections (docs/routing.md "Shared connections for keyed
// reads"): a keyed autocommit read (a SELECT of one row by a unique key, run
// as the coordinator's own prepared statement) does not need the session's
// own connection, only one logged in the same way. Such reads of all the
// sessions with the same login go, pipelined, over `reads.shared_connections`
// connections per node: the node's backend answers a run of them per wake-up
// instead of one per session, and the coordinator reads their answers in
// fewer, larger chunks. On 2 cores this took pgbench's select-only from
// 23,000 to 30,000-33,000 tps (the note of issue 6).
//
// Only sessions whose connections hold nothing but what their login set may
// share (Router.readsShareable()); the key is the whole login (user,
// password, database, startup parameters), so no session reads with another
// identity or settings. A connection is passed over while its oldest read has
// run for HEAD_AGE_MS or MAX_IN_FLIGHT reads wait on it: the session then
// uses its own connection, so one slow read holds up few others. Those
// already pipelined behind a read whose answer has not moved for HOL_CLOSE_MS
// (one waiting for a lock) are freed: the connection is closed, so each of them runs
// again on its session's own connection, and its backend is cancelled.
import type { Logger } from 'pino';
import type { Cluster, ClusterNode, StateChange } from '../cluster/cluster.js';
import { NodeConnection, type NodeLogin } from './node-connection.js';

/** A shared connection busy on one read for this long takes no more (ms). */
export const HEAD_AGE_MS = 20;
/** ...nor when this many reads wait on it. */
export const MAX_IN_FLIGHT = 64;
/** A shared connection whose oldest read has gone this long without any of its answer while others wait behind it is closed (ms). */
export const HOL_CLOSE_MS = 1000;
/** Logins with shared connections at most (more distinct logins read on their own connections). */
export const MAX_LOGINS = 64;
/** A login's connections unused this long are closed (ms). */
export const IDLE_CLOSE_MS = 60_000;
/** After a failed connect, that node is not tried again for this login for this long (ms). */
const RETRY_MS = 1000;

interface NodePool {
  conns: NodeConnection[];
  opening: number;
  retryAt: number;
}

interface LoginPools {
  login: NodeLogin;
  nodes: Map<ClusterNode, NodePool>;
  lastUsed: number;
}

export interface SharedReadStats {
  /** Reads sent over a shared connection. */
  reads: number;
  /** Shared connections opened. */
  opened: number;
  /** Most reads ever in flight on one shared connection at once (pipelining at work when above 1). */
  maxInFlight: number;
  /** Connections closed because one read held up the reads behind it for HOL_CLOSE_MS (unblock()). */
  unblocked: number;
}

export class SharedReads {
  readonly perNode: number;
  readonly stats: SharedReadStats = { reads: 0, opened: 0, maxInFlight: 0, unblocked: 0 };
  private readonly log: Logger;
  private readonly logins = new Map<string, LoginPools>();
  private readonly sweep: NodeJS.Timeout;
  private readonly watch: NodeJS.Timeout;
  private readonly onChange: (c: StateChange) => void;
  private readonly cluster: Cluster;
  private closed = false;

  constructor(cluster: Cluster, perNode: number, log: Logger) {
    this.cluster = cluster;
    this.perNode = perNode;
    this.log = log;
    // A node that leaves `up` takes its shared connections with it.
    this.onChange = (c) => {
      if (c.to !== 'up') this.closeNode(c.node);
    };
    cluster.on('change', this.onChange);
    this.sweep = setInterval(() => this.closeIdle(Date.now() - IDLE_CLOSE_MS), IDLE_CLOSE_MS / 4);
    this.sweep.unref();
    this.watch = setInterval(() => this.unblock(performance.now()), HOL_CLOSE_MS / 4);
    this.watch.unref();
  }

  /**
   * Free the reads pipelined behind one whose answer has not moved for
   * HOL_CLOSE_MS by `now` (performance.now(); a large answer still streaming
   * in is left alone): close its connection (every read on it runs
   * again on its session's own connection, as after a loss; the slow one
   * too, where it waits alone) and cancel its backend, on which nothing of
   * anyone runs any more.
   */
  unblock(now: number): void {
    for (const lp of this.logins.values()) {
      for (const pool of lp.nodes.values()) {
        for (const c of pool.conns) {
          if (c.closed || c.relaysInFlight < 2 || c.relayStalledFor(now) < HOL_CLOSE_MS) continue;
          this.stats.unblocked++;
          this.log.warn(
            { node: c.node.id, waiting: c.relaysInFlight - 1, ms: Math.round(c.relayStalledFor(now)) },
            "a read on a shared connection held up the reads behind it: the connection is closed, they run again on their sessions' own connections",
          );
          c.abandon();
        }
      }
    }
  }

  /**
   * A shared connection to `node` for sessions logged in as `login`, or null:
   * sharing is off, none is open yet (one is being opened), or all are busy.
   */
  conn(node: ClusterNode, login: NodeLogin): NodeConnection | null {
    if (this.perNode === 0 || this.closed || node.state !== 'up') return null;
    const key = loginKey(login);
    let lp = this.logins.get(key);
    if (!lp) {
      if (this.logins.size >= MAX_LOGINS) return null;
      lp = { login, nodes: new Map(), lastUsed: 0 };
      this.logins.set(key, lp);
    }
    const now = Date.now();
    lp.lastUsed = now;
    let pool = lp.nodes.get(node);
    if (!pool) lp.nodes.set(node, (pool = { conns: [], opening: 0, retryAt: 0 }));
    // Closed by the coordinator (a cancelled read, Session.cancel()): close() does not call onClose, so it goes here.
    if (pool.conns.some((c) => c.closed)) pool.conns = pool.conns.filter((c) => !c.closed);
    if (pool.conns.length + pool.opening < this.perNode && now >= pool.retryAt) this.open(lp, node, pool);
    let best: NodeConnection | null = null;
    for (const c of pool.conns) if (!best || c.relaysInFlight < best.relaysInFlight) best = c;
    if (!best) return null;
    const inFlight = best.relaysInFlight;
    if (inFlight >= MAX_IN_FLIGHT || best.relayHeadAge(performance.now()) > HEAD_AGE_MS) return null;
    this.stats.reads++;
    if (inFlight + 1 > this.stats.maxInFlight) this.stats.maxInFlight = inFlight + 1;
    return best;
  }

  private open(lp: LoginPools, node: ClusterNode, pool: NodePool): void {
    pool.opening++;
    NodeConnection.connect(node, lp.login, this.log).then(
      (c) => {
        pool.opening--;
        if (this.closed || node.state !== 'up' || lp.nodes.get(node) !== pool) {
          c.close();
          return;
        }
        this.stats.opened++;
        c.shared = true;
        pool.conns.push(c);
        c.onClose = () => {
          const i = pool.conns.indexOf(c);
          if (i >= 0) pool.conns.splice(i, 1);
        };
      },
      (err: Error) => {
        pool.opening--;
        pool.retryAt = Date.now() + RETRY_MS;
        this.log.debug({ node: node.id, err: err.message }, 'could not open a shared read connection');
      },
    );
  }

  private closeNode(node: ClusterNode): void {
    for (const lp of this.logins.values()) {
      const pool = lp.nodes.get(node);
      if (!pool) continue;
      lp.nodes.delete(node);
      for (const c of pool.conns) c.close();
    }
  }

  /** Close the connections of logins not used since `before` (Date.now() ms). */
  closeIdle(before: number): void {
    for (const [key, lp] of this.logins) {
      if (lp.lastUsed >= before) continue;
      this.logins.delete(key);
      for (const pool of lp.nodes.values()) for (const c of pool.conns) c.close();
    }
  }

  /** The nodes' backend pids of the shared connections open now, by node id. */
  backendPids(): Map<string, number[]> {
    const out = new Map<string, number[]>();
    for (const lp of this.logins.values()) {
      for (const [node, p] of lp.nodes) for (const c of p.conns) out.set(node.id, [...(out.get(node.id) ?? []), c.pid]);
    }
    return out;
  }

  /** Connections open now. */
  get connections(): number {
    let n = 0;
    for (const lp of this.logins.values()) for (const p of lp.nodes.values()) n += p.conns.length;
    return n;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweep);
    clearInterval(this.watch);
    this.cluster.off('change', this.onChange);
    this.closeIdle(Infinity);
  }
}

/** A session's login never changes: its key is made once (conn() runs for every keyed read). */
const keys = new WeakMap<NodeLogin, string>();

/** Everything a node connection's login carries: sessions share only with an identical one. */
function loginKey(l: NodeLogin): string {
  const known = keys.get(l);
  if (known !== undefined) return known;
  const params = Object.keys(l.params)
    .sort()
    .map((k) => [k, l.params[k]]);
  const key = JSON.stringify([l.user, l.database, l.password, params]);
  keys.set(l, key);
  return key;
}

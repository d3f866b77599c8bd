// Health checks of the nodes (DESIGN.md "Nodes: health, takeover,
// recovery"). Every `health.period` seconds each configured node gets a
// check over a connection the checker keeps: `SELECT pg_is_in_recovery()`,
// which must answer within `health.query_timeout` (a new connection must
// log in within `health.connect_timeout`). A failed attempt is retried at
// once over a new connection, `health.retries` times; when every attempt
// failed an `up` node is ejected (`down`, with the reason). So a node that
// hangs with its connections open is ejected at most
//   period + query_timeout + retries x (connect_timeout + query_timeout)
// seconds after it stopped answering; ejection closes every session's
// connection to it, which ends whatever waited on it.
// A node that is `down` keeps being checked: when it answers again, was not
// detached by an administrator and has missed no write, it is put back
// (`health.auto_attach`, through NodeAdmin.attach).
// Lost connections and failed writes do not wait for a check: the sessions
// eject the node at once (src/txn/executor.ts nodeLost, the vote).
import type { Logger } from 'pino';
import type { PgqError } from '../errors.js';
import type { CoordinatorContext } from '../context.js';
import type { ClusterNode } from './cluster.js';
import { NodeConnection, type NodeLogin } from '../backend/node-connection.js';
import { encodeQuery } from '../protocol/frontend.js';
import { firstRowText } from '../protocol/backend.js';
import { nodeAddress } from '../config/node-address.js';

const CHECK = encodeQuery('SELECT pg_catalog.pg_is_in_recovery()');
const SYSTEM_ID = encodeQuery('SELECT system_identifier FROM pg_catalog.pg_control_system()');

export interface ProbeResult {
  /** null = the node answered and accepts writes. */
  error: string | null;
  /** The node's system identifier, when it could be read. */
  systemId: string | null;
  /** Set when the node answered but the check could not log in (not a failure, not a success). */
  inconclusive?: string;
}

export class HealthChecker {
  private readonly ctx: CoordinatorContext;
  private readonly log: Logger;
  private readonly conns = new Map<ClusterNode, NodeConnection>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private readonly running = new Set<Promise<void>>();

  constructor(ctx: CoordinatorContext) {
    this.ctx = ctx;
    this.log = ctx.log.child({ component: 'health' });
  }

  /** One independent loop per node, so that a node that hangs delays nobody else's checks. */
  start(): void {
    for (const node of this.ctx.cluster.nodes) this.schedule(node);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const c of this.conns.values()) c.close();
    this.conns.clear();
    await Promise.allSettled([...this.running]);
  }

  private schedule(node: ClusterNode): void {
    if (this.stopped || node.state === 'removed') return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      const p = this.check(node)
        .catch((e: unknown) => this.log.error({ node: node.id, err: (e as Error).message }, 'health check failed unexpectedly'))
        .finally(() => {
          this.running.delete(p);
          this.schedule(node);
        });
      this.running.add(p);
    }, this.ctx.config.health.period * 1000);
    t.unref();
    this.timers.add(t);
  }

  /** One check of one node, with its retries, and what follows from it. */
  async check(node: ClusterNode): Promise<void> {
    const h = this.ctx.config.health;
    let res: ProbeResult = { error: 'not checked', systemId: null };
    for (let attempt = 0; attempt <= h.retries && !this.stopped; attempt++) {
      res = await this.probe(node);
      if (res.error === null || node.state !== 'up') break; // nodes already out are not retried
    }
    if (this.stopped) return;
    node.lastCheckAt = new Date();
    node.lastCheckError = res.error ?? res.inconclusive ?? null;
    if (res.inconclusive) return;
    const cluster = this.ctx.cluster;
    if (res.error === null && res.systemId && node.systemId && res.systemId !== node.systemId && node.state === 'up') {
      cluster.setState(node, 'diverged', `a different PostgreSQL cluster answers at ${nodeAddress(node.host, node.port)} (system identifier ${res.systemId}, was ${node.systemId})`);
      return;
    }
    if (res.error !== null) {
      if (node.state === 'up') {
        const tries = h.retries + 1;
        cluster.setState(node, 'down', `health check failed ${tries} time${tries > 1 ? 's' : ''}: ${res.error}`);
      }
      return;
    }
    if (res.systemId && !node.systemId) cluster.noteSystemId(node, res.systemId);
    if (node.state === 'down' && h.auto_attach && !node.detached && !node.missedWrites) {
      try {
        const msg = await this.ctx.admin.attach(node.id, { auto: true });
        this.log.info({ node: node.id }, msg);
      } catch (e) {
        this.log.debug({ node: node.id, err: (e as Error).message }, 'node answers again but was not put back');
      }
    }
  }

  /**
   * Ask the node whether it is alive and writable, over the kept connection
   * (a new one when there is none). Never throws; never waits longer than
   * connect_timeout + query_timeout.
   */
  async probe(node: ClusterNode): Promise<ProbeResult> {
    const h = this.ctx.config.health;
    let c = this.conns.get(node);
    let systemId: string | null = null;
    if (!c || c.closed || c.busy) {
      if (c) c.close();
      this.conns.delete(node);
      try {
        c = await NodeConnection.connect(node, this.login(h.connect_timeout * 1000), this.log);
      } catch (e) {
        const err = e as PgqError;
        if (/^(28|3D)/.test(err.sqlstate ?? '')) {
          // The node answered and refused our login (password, missing database): a
          // configuration problem, not evidence that the node is gone. Logged, not acted on.
          this.log.warn({ node: node.id, sqlstate: err.sqlstate }, `health check cannot log in to node ${node.id}: ${err.message}`);
          return { error: null, systemId: null, inconclusive: err.message };
        }
        return { error: `cannot connect: ${err.message}`, systemId: null };
      }
      c.onClose = () => {
        if (this.conns.get(node) === c) this.conns.delete(node);
      };
      this.conns.set(node, c);
      // The system identifier tells whether the same PostgreSQL cluster still answers at this address.
      const sid = await timed(c.exchange(SYSTEM_ID, { buffer: true }), h.query_timeout * 1000);
      if (sid === null) {
        c.close();
        return { error: `no answer within ${h.query_timeout} s`, systemId: null };
      }
      if (!sid.lost && !sid.error) systemId = firstRowText(sid.frames)?.[0] ?? null;
    }
    const r = await timed(c.exchange(CHECK, { buffer: true }), h.query_timeout * 1000);
    if (r === null) {
      c.close(); // the pending exchange ends with it
      return { error: `no answer within ${h.query_timeout} s`, systemId };
    }
    if (r.lost) return { error: r.lost.message, systemId };
    if (r.error) return { error: `${r.error['C']} ${r.error['M']}`, systemId };
    if (firstRowText(r.frames)?.[0] === 't') return { error: 'the node is in recovery (a standby cannot take writes)', systemId };
    return { error: null, systemId: systemId ?? node.systemId };
  }

  /** Read a node's system identifier on a fresh connection (for attach). */
  async systemIdOf(node: ClusterNode): Promise<string | null> {
    const h = this.ctx.config.health;
    let c: NodeConnection;
    try {
      c = await NodeConnection.connect(node, this.login(h.connect_timeout * 1000), this.log);
    } catch {
      return null;
    }
    try {
      const r = await timed(c.exchange(SYSTEM_ID, { buffer: true }), h.query_timeout * 1000);
      return r && !r.lost && !r.error ? (firstRowText(r.frames)?.[0] ?? null) : null;
    } finally {
      c.close();
    }
  }

  private login(timeoutMs: number): NodeLogin {
    const user = this.ctx.config.users[0]!;
    return {
      user: user.name,
      password: user.password,
      database: 'postgres',
      params: { application_name: 'pgquorum-health' },
      connectTimeoutMs: timeoutMs,
    };
  }
}

/** The promise's value, or null when it takes longer than `ms`. */
export async function timed<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((r) => {
    timer = setTimeout(() => r(null), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

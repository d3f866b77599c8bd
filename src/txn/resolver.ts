// Finishes in-doubt transactions (DESIGN.md invariant 4) at start-up and
// then periodically: on every reachable node it lists the prepared
// transactions whose GID carries this coordinator's id and that are not in
// flight right now, and applies the one rule of presumed abort:
//   a commit decision is recorded for the GID -> COMMIT PREPARED
//   no decision is recorded                   -> ROLLBACK PREPARED
// The decision is only ever recorded (durably) before the first COMMIT
// PREPARED, so a prepared transaction without a record was never committed
// anywhere and rolling it back is safe; one with a record may be committed
// somewhere already, so it must be committed everywhere.
// Decisions whose GID no configured node holds any more are forgotten.
import type { Logger } from 'pino';
import type { CoordinatorContext } from '../context.js';
import type { ClusterNode } from '../cluster/cluster.js';
import { NodeConnection, type ExchangeResult, type NodeLogin } from '../backend/node-connection.js';
import { timed } from '../cluster/health.js';
import { BE } from '../protocol/constants.js';
import { decodeDataRow } from '../protocol/backend.js';
import { encodeQuery } from '../protocol/frontend.js';
import type { StateStore } from '../state/store.js';
import type { InflightTxn } from './commit.js';

const LIST = encodeQuery("SELECT gid, database FROM pg_catalog.pg_prepared_xacts WHERE gid LIKE 'pgq\\_%'");

export class Resolver {
  private readonly ctx: CoordinatorContext;
  private readonly store: StateStore;
  private readonly inflight: Map<string, InflightTxn>;
  private readonly prefix: string;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  /** Connections by node and database, kept between passes. */
  private readonly conns = new Map<string, NodeConnection>();

  constructor(ctx: CoordinatorContext, store: StateStore, inflight: Map<string, InflightTxn>) {
    this.ctx = ctx;
    this.store = store;
    this.inflight = inflight;
    this.prefix = `pgq_${ctx.config.coordinator.id}_`;
    this.log = ctx.log.child({ component: 'resolver' });
  }

  start(periodMs: number): void {
    this.timer = setInterval(() => void this.runOnce(), periodMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
    for (const c of this.conns.values()) c.close();
    this.conns.clear();
  }

  /** One pass over every configured node; concurrent calls share the pass. */
  runOnce(): Promise<void> {
    this.running ??= this.pass().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pass(): Promise<void> {
    const held = new Set<string>();
    let everyNodeSeen = true;
    for (const node of this.ctx.cluster.nodes) {
      if (node.state === 'removed') continue;
      try {
        for (const gid of await this.resolveNode(node)) held.add(gid);
      } catch (e) {
        everyNodeSeen = false;
        this.log.debug({ node: node.id, err: (e as Error).message }, 'node not reachable for in-doubt resolution');
      }
    }
    if (everyNodeSeen) {
      const done = this.store.commits().filter((g) => !held.has(g) && !this.inflight.has(g));
      if (done.length > 0) this.store.forgetCommits(done);
    }
  }

  /** Resolve this coordinator's prepared transactions on one node; returns the GIDs still held there. */
  private async resolveNode(node: ClusterNode): Promise<string[]> {
    const admin = await this.conn(node, 'postgres');
    const r = await this.timedExchange(admin, LIST);
    if (r.lost) throw r.lost;
    if (r.error) throw new Error(r.error['M']);
    const held: string[] = [];
    for (const raw of r.frames) {
      if (raw[0] !== BE.DataRow) continue;
      const [g, d] = decodeDataRow(raw.subarray(5));
      const gid = g!.toString();
      const db = d!.toString();
      if (!gid.startsWith(this.prefix) || this.inflight.has(gid)) {
        held.push(gid);
        continue;
      }
      const commit = this.store.hasCommit(gid);
      const c = await this.conn(node, db);
      const x = await this.timedExchange(c, encodeQuery(`${commit ? 'COMMIT' : 'ROLLBACK'} PREPARED '${gid}'`));
      if (x.lost) throw x.lost;
      if (x.error && x.error['C'] !== '42704') {
        // 42704: already finished by someone else meanwhile.
        this.log.warn({ node: node.id, gid, sqlstate: x.error['C'] }, `could not resolve ${gid}: ${x.error['M']}`);
        held.push(gid);
        continue;
      }
      this.log.info({ node: node.id, gid, db }, `in-doubt transaction ${gid} ${commit ? 'committed' : 'rolled back'}`);
    }
    return held;
  }

  /** A node that hangs must not stop the resolver: no answer within the health query timeout (at least 5 s) is a failure. */
  private async timedExchange(c: NodeConnection, msg: Buffer): Promise<ExchangeResult> {
    const ms = Math.max(5000, this.ctx.config.health.query_timeout * 1000);
    const r = await timed(c.exchange(msg, { buffer: true }), ms);
    if (r) return r;
    c.close();
    throw new Error(`node ${c.node.id} did not answer within ${ms} ms`);
  }

  private async conn(node: ClusterNode, database: string): Promise<NodeConnection> {
    const key = `${node.id}\u0000${database}`;
    const have = this.conns.get(key);
    if (have && !have.closed && !have.busy) return have;
    const user = this.ctx.config.users[0]!;
    const login: NodeLogin = {
      user: user.name,
      password: user.password,
      database,
      params: { application_name: 'pgquorum-resolver' },
      connectTimeoutMs: Math.min(this.ctx.config.backend.connect_timeout * 1000, 5000),
    };
    const c = await NodeConnection.connect(node, login, this.log);
    c.onClose = () => this.conns.delete(key);
    this.conns.set(key, c);
    return c;
  }
}

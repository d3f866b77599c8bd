// Taking a node out of service and putting it back (DESIGN.md "Nodes";
// `pgquorum node detach|attach`, PGQUORUM NODE ...; the health checker's
// automatic re-admission). Both happen with the write gate closed
// (src/txn/write-gate.ts), so no write is in flight at the moment of the
// change:
//   detach  the node leaves `up` having missed nothing; it stays out until
//           someone attaches it.
//   attach  only a node known to be identical to the others: `down` (not
//           diverged), no write started since it left (Cluster.missedWrites
//           is false: every write that starts while a node is out marks it
//           first, durably), the same PostgreSQL cluster as before (system
//           identifier), writable, and no in-doubt transaction of ours left
//           on it. Anything else needs recovery, and the refusal says so.
// Every change goes through the state store with an epoch bump and is
// logged with its reason (Cluster.setState).
import type { CoordinatorContext } from '../context.js';
import { PgqError, SqlState } from '../errors.js';
import type { ClusterNode } from './cluster.js';
import { timed, type HealthChecker } from './health.js';
import type { WriteGate } from '../txn/write-gate.js';
import { NodeConnection } from '../backend/node-connection.js';
import { encodeQuery } from '../protocol/frontend.js';
import { BE } from '../protocol/constants.js';
import { nodeAddress } from '../config/node-address.js';

/** How long attach/detach wait for the writes in flight to finish (new writes wait meanwhile). */
export const GATE_WAIT_MS = 10_000;

const IN_DOUBT = encodeQuery("SELECT gid FROM pg_catalog.pg_prepared_xacts WHERE gid LIKE 'pgq\\_%'");

export class NodeAdmin {
  private readonly ctx: CoordinatorContext;
  private readonly gate: WriteGate;
  private readonly health: () => HealthChecker;
  private readonly resolveInDoubt: () => Promise<void>;
  /** One attach/detach at a time. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(ctx: CoordinatorContext, gate: WriteGate, health: () => HealthChecker, resolveInDoubt: () => Promise<void>) {
    this.ctx = ctx;
    this.gate = gate;
    this.health = health;
    this.resolveInDoubt = resolveInDoubt;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private node(id: string): ClusterNode {
    const n = this.ctx.cluster.byId(id);
    if (!n) {
      throw new PgqError('ERR_NO_SUCH_NODE', `node "${id}" is not in the configuration`, {
        sqlstate: SqlState.UNDEFINED_OBJECT,
        hint: `Configured nodes: ${this.ctx.cluster.nodes.map((x) => x.id).join(', ')}.`,
      });
    }
    return n;
  }

  /** Take node `id` out of service cleanly; resolves with a message for the administrator. */
  detach(id: string): Promise<string> {
    return this.serial(async () => {
      const cluster = this.ctx.cluster;
      const node = this.node(id);
      if (node.state !== 'up') {
        if (node.state === 'down' && node.detached) return `node ${id} is already detached`;
        throw new PgqError('ERR_NODE_NOT_UP', `node ${id} is ${node.state} (${node.stateReason}), not up`, {
          sqlstate: SqlState.OBJECT_NOT_IN_PREREQUISITE_STATE,
        });
      }
      if (cluster.upNodes().length === 1) {
        throw new PgqError('ERR_LAST_NODE', `node ${id} is the last node up; detaching it would stop the cluster`, {
          sqlstate: SqlState.OBJECT_NOT_IN_PREREQUISITE_STATE,
        });
      }
      await this.closeGate('detach', id);
      try {
        node.detached = true;
        cluster.setState(node, 'down', 'detached by an administrator', { clean: true });
        await cluster.persisted();
      } finally {
        this.gate.open();
      }
      const up = cluster.upNodes().length;
      const tail =
        up >= cluster.quorum
          ? `writes go on with ${up} of ${cluster.configuredCount} nodes`
          : `writes are refused until ${cluster.quorum} nodes are up; reads go on`;
      return `node ${id} detached; it can be attached again as long as nothing is written meanwhile (${tail})`;
    });
  }

  /** Put node `id` back into service if it is known to be identical; otherwise refuse (it needs recovery). */
  attach(id: string, opts: { auto: boolean }): Promise<string> {
    return this.serial(async () => {
      const cluster = this.ctx.cluster;
      const node = this.node(id);
      if (node.state === 'up') return `node ${id} is already up`;
      if (node.state !== 'down' || node.missedWrites) {
        const why =
          node.state !== 'down'
            ? `it is ${node.state} (${node.stateReason})`
            : `writes were committed without it since it left at ${node.stateChangedAt.toISOString()} (${node.stateReason})`;
        throw new PgqError('ERR_NODE_NEEDS_RECOVERY', `node ${id} cannot be attached: ${why}; it needs recovery`, {
          sqlstate: SqlState.OBJECT_NOT_IN_PREREQUISITE_STATE,
          hint: 'Only a node that missed no write can be attached. Rebuild this node from another one (online recovery).',
        });
      }
      if (opts.auto && node.detached) throw new PgqError('ERR_NODE_DETACHED', `node ${id} was detached by an administrator`);
      // The node must answer, take writes, and be the same PostgreSQL cluster as before.
      const probe = await this.health().probe(node);
      if (probe.error !== null || probe.inconclusive) {
        throw new PgqError('ERR_NODE_UNREACHABLE', `node ${id} cannot be attached: ${probe.error ?? probe.inconclusive}`, {
          sqlstate: SqlState.CONNECTION_FAILURE,
        });
      }
      const sid = probe.systemId ?? (await this.health().systemIdOf(node));
      if (sid && node.systemId && sid !== node.systemId) {
        throw new PgqError('ERR_NODE_REPLACED', `node ${id} cannot be attached: a different PostgreSQL cluster answers at ${nodeAddress(node.host, node.port)} (system identifier ${sid}, was ${node.systemId}); it needs recovery`, {
          sqlstate: SqlState.OBJECT_NOT_IN_PREREQUISITE_STATE,
        });
      }
      if (sid) cluster.noteSystemId(node, sid);
      // In-doubt transactions of ours are finished first (the resolver); any left means it is not settled.
      let doubt = await this.inDoubt(node);
      if (doubt > 0) {
        await this.resolveInDoubt();
        doubt = await this.inDoubt(node);
      }
      if (doubt > 0) {
        throw new PgqError('ERR_NODE_IN_DOUBT', `node ${id} cannot be attached: it holds ${doubt} prepared transaction${doubt > 1 ? 's' : ''} of pgquorum not resolved yet`, {
          sqlstate: SqlState.OBJECT_NOT_IN_PREREQUISITE_STATE,
          hint: 'The resolver finishes them within seconds when the node is reachable; retry.',
        });
      }
      await this.closeGate('attach', id);
      try {
        if (node.state !== 'down' || node.missedWrites) {
          throw new PgqError('ERR_NODE_NEEDS_RECOVERY', `node ${id} cannot be attached: writes were committed without it; it needs recovery`, {
            sqlstate: SqlState.OBJECT_NOT_IN_PREREQUISITE_STATE,
          });
        }
        const reason = opts.auto
          ? `answers again and missed no write (was down: ${node.stateReason})`
          : 'attached by an administrator; it missed no write';
        cluster.setState(node, 'up', reason);
        await cluster.persisted();
      } finally {
        this.gate.open();
      }
      const main = cluster.main();
      return `node ${id} attached${main === node ? ' as the main node' : ''}; ${cluster.upNodes().length} of ${cluster.configuredCount} nodes are up`;
    });
  }

  private async closeGate(what: string, id: string): Promise<void> {
    if (await this.gate.close(GATE_WAIT_MS)) return;
    throw new PgqError('ERR_WRITES_IN_FLIGHT', `cannot ${what} node ${id}: transactions that write did not finish within ${GATE_WAIT_MS / 1000} s`, {
      sqlstate: SqlState.LOCK_NOT_AVAILABLE,
      hint: 'Retry; a transaction left open (idle in transaction) after a write keeps this from happening.',
    });
  }

  /** How many prepared transactions with pgquorum's GIDs the node holds (any coordinator's). */
  private async inDoubt(node: ClusterNode): Promise<number> {
    const user = this.ctx.config.users[0]!;
    const c = await NodeConnection.connect(
      node,
      { user: user.name, password: user.password, database: 'postgres', params: { application_name: 'pgquorum-admin' }, connectTimeoutMs: this.ctx.config.health.connect_timeout * 1000 },
      this.ctx.log,
    ).catch((e: unknown) => {
      throw new PgqError('ERR_NODE_UNREACHABLE', `node ${node.id} cannot be attached: ${(e as Error).message}`, { sqlstate: SqlState.CONNECTION_FAILURE });
    });
    try {
      const r = await timed(c.exchange(IN_DOUBT, { buffer: true }), this.ctx.config.health.query_timeout * 1000);
      if (!r || r.lost || r.error) {
        const why = !r ? `no answer within ${this.ctx.config.health.query_timeout} s` : (r.lost?.message ?? r.error?.['M']);
        throw new PgqError('ERR_NODE_UNREACHABLE', `node ${node.id} cannot be attached: ${why}`, { sqlstate: SqlState.CONNECTION_FAILURE });
      }
      return r.frames.filter((f) => f[0] === BE.DataRow).length;
    } finally {
      c.close();
    }
  }
}

// Cluster membership as one coordinator sees it: the configured nodes, their
// states, the epoch, the main node, and the read balancer's counters. Every
// state change goes through setState(), which refuses illegal moves, bumps the
// epoch, logs the reason and tells listeners (sessions drop their connections
// to nodes that are no longer `up`).
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { NodeConfig } from '../config/types.js';
import { PgqError, SqlState } from '../errors.js';
import { copyNodeRecord, type ClusterRecord, type StateStore } from '../state/store.js';

export type NodeState = 'up' | 'down' | 'diverged' | 'recovering' | 'removed';

/** Legal moves of the node state machine (DESIGN.md "Nodes"). */
const LEGAL: Record<NodeState, readonly NodeState[]> = {
  up: ['down', 'diverged', 'removed'],
  down: ['up', 'recovering', 'removed', 'diverged'],
  diverged: ['recovering', 'removed', 'down'],
  recovering: ['up', 'down', 'diverged', 'removed'],
  removed: [],
};

export class ClusterNode {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly rank: number;
  weight: number;
  state: NodeState = 'up';
  stateReason = 'configured';
  stateChangedAt = new Date();
  /** Statements this node served, by kind. */
  reads = 0;
  writes = 0;
  /** Reads in flight right now (the balancer's load signal). */
  inflight = 0;
  /** Sessions whose reads go to this node (reads.balance = session). */
  readSessions = 0;
  /** A write may have committed without this node since it left `up`: only recovery brings it back (kept in the state store). */
  missedWrites = false;
  /** Taken out by an administrator: never put back automatically (kept in the state store). */
  detached = false;
  /** PostgreSQL's system identifier of the node, once seen (kept in the state store). */
  systemId: string | null = null;
  /** Last health check: when, and its error (null = it answered). */
  lastCheckAt: Date | null = null;
  lastCheckError: string | null = null;

  constructor(cfg: NodeConfig, rank: number) {
    this.id = cfg.id;
    this.host = cfg.host;
    this.port = cfg.port;
    this.weight = cfg.weight;
    this.rank = rank;
  }
}

export interface StateChange {
  node: ClusterNode;
  from: NodeState;
  to: NodeState;
  reason: string;
  epoch: number;
}

export class Cluster extends EventEmitter {
  readonly nodes: ClusterNode[];
  epoch = 1;
  private readonly log: Logger;

  constructor(nodes: NodeConfig[], log: Logger) {
    super();
    this.setMaxListeners(0); // one listener per session
    this.nodes = nodes.map((n, i) => new ClusterNode(n, i));
    this.log = log;
  }

  get configuredCount(): number {
    return this.nodes.filter((n) => n.state !== 'removed').length;
  }

  private store: StateStore | null = null;
  private savedEpoch: number | null = null;
  private saving: Promise<void> = Promise.resolve();

  /**
   * Keep node states in `store` (invariant 1: a node is made not-`up` in the
   * state store before any client hears of a commit it missed). States saved
   * by an earlier run are taken over: a node that was ejected stays ejected
   * across restarts.
   */
  async attachStore(store: StateStore): Promise<void> {
    this.store = store;
    const rec = await store.readCluster();
    if (rec) {
      for (const r of rec.nodes) {
        const n = this.byId(r.id);
        if (!n) continue;
        n.state = r.state;
        n.stateReason = r.reason;
        n.stateChangedAt = new Date(r.changedAt);
        n.missedWrites = r.missedWrites ?? false;
        n.detached = r.detached ?? false;
        n.systemId = r.systemId ?? null;
      }
      this.epoch = Math.max(this.epoch, rec.epoch);
      this.savedEpoch = rec.epoch;
      for (const n of this.nodes) if (n.state !== 'up') this.log.warn({ node: n.id, state: n.state, reason: n.stateReason }, `node ${n.id} is ${n.state} (from the state store): ${n.stateReason}`);
    }
    this.saveLater();
    await this.persisted();
  }

  private record(): ClusterRecord {
    return {
      epoch: this.epoch,
      nodes: this.nodes.map((n) =>
        copyNodeRecord({
          id: n.id,
          state: n.state,
          reason: n.stateReason,
          changedAt: n.stateChangedAt.toISOString(),
          missedWrites: n.missedWrites,
          detached: n.detached,
          systemId: n.systemId ?? undefined,
        }),
      ),
    };
  }

  private saveLater(): void {
    const store = this.store;
    if (!store) return;
    this.saving = this.saving.then(async () => {
      const rec = this.record();
      if (this.savedEpoch !== null && rec.epoch <= this.savedEpoch) return;
      const ok = await store.writeCluster(this.savedEpoch, rec);
      if (!ok) throw new PgqError('ERR_STATE_CONFLICT', 'the cluster record in the state store was changed by someone else');
      this.savedEpoch = rec.epoch;
    });
    this.saving.catch((e) => this.log.error({ err: (e as Error).message }, 'could not save node states to the state store'));
  }

  /** Resolves when every state change so far is durable in the state store (rejects if saving failed). */
  persisted(): Promise<void> {
    return this.saving;
  }

  /** `write_quorum` from the config; null = a majority. */
  writeQuorum: number | null = null;

  /** Votes a write needs: write_quorum, or a majority of the configured nodes. */
  get quorum(): number {
    const majority = Math.floor(this.configuredCount / 2) + 1;
    return this.writeQuorum === null ? majority : Math.max(majority, Math.min(this.writeQuorum, this.configuredCount));
  }

  upNodes(): ClusterNode[] {
    return this.nodes.filter((n) => n.state === 'up');
  }

  /** The main node: the lowest-ranked `up` node. */
  main(): ClusterNode {
    for (const n of this.nodes) if (n.state === 'up') return n;
    throw new PgqError('ERR_NO_NODE', 'no node of the cluster is up', {
      sqlstate: SqlState.NO_NODE_AVAILABLE,
      hint: 'Check the nodes with SHOW pgquorum.nodes.',
    });
  }

  byId(id: string): ClusterNode | undefined {
    return this.nodes.find((n) => n.id === id);
  }

  /**
   * Called when a node leaves `up` other than by a clean detach; true = it
   * may have missed a write already (the coordinator's write gate decides;
   * without one, assume so).
   */
  onNodeLeft: (node: ClusterNode) => boolean = () => true;

  /**
   * Move a node to another state. Returns false (and changes nothing) when
   * the node already is in that state; throws on an illegal move.
   * `opts.clean` (an administrator's detach with the write gate closed) says
   * that no write can be in flight.
   */
  setState(node: ClusterNode, to: NodeState, reason: string, opts: { clean?: boolean } = {}): boolean {
    const from = node.state;
    if (from === to) return false;
    if (!LEGAL[from].includes(to)) {
      throw new PgqError('ERR_ILLEGAL_STATE_CHANGE', `node ${node.id}: illegal state change ${from} -> ${to}`, {
        context: { node: node.id },
      });
    }
    if (from === 'up') {
      // Outvoted nodes differ by definition; a node lost while writes were in flight may lack one.
      node.missedWrites = to !== 'down' || (!opts.clean && this.onNodeLeft(node));
    }
    if (to === 'up') {
      node.missedWrites = false;
      node.detached = false;
    }
    node.state = to;
    node.stateReason = reason;
    node.stateChangedAt = new Date();
    this.epoch++;
    this.log.warn({ node: node.id, from, to, reason, epoch: this.epoch }, `node ${node.id} is now ${to}: ${reason}`);
    const change: StateChange = { node, from, to, reason, epoch: this.epoch };
    this.saveLater();
    this.emit('change', change);
    return true;
  }

  /** These nodes missed a write: only recovery brings them back (durable after persisted()). */
  markMissed(nodes: readonly ClusterNode[]): void {
    const fresh = nodes.filter((n) => !n.missedWrites && n.state !== 'up');
    if (fresh.length === 0) return;
    for (const n of fresh) {
      n.missedWrites = true;
      this.log.info({ node: n.id }, `node ${n.id} missed a write: it needs recovery to come back`);
    }
    this.epoch++;
    this.saveLater();
  }

  /** Remember a node's system identifier (first seen). */
  noteSystemId(node: ClusterNode, id: string): void {
    if (node.systemId === id) return;
    node.systemId = id;
    this.epoch++;
    this.saveLater();
  }

  /**
   * Choose a node for a read: two candidates drawn by weight, the one with
   * fewer reads in flight per unit of weight wins ("power of two choices").
   * `among` restricts the choice (nodes the session is connected to).
   */
  pickReadNode(among: readonly ClusterNode[]): ClusterNode | null {
    return this.pick(among, (n) => n.inflight);
  }

  /**
   * Choose the node a session reads from (reads.balance = session): the one
   * that would serve the fewest sessions per unit of weight with this one
   * added (ties drawn at random).
   */
  pickSessionReadNode(among: readonly ClusterNode[]): ClusterNode | null {
    let best: ClusterNode | null = null;
    let bestLoad = Infinity;
    let ties = 0;
    for (const n of among) {
      if (n.state !== 'up' || n.weight <= 0) continue;
      const l = (n.readSessions + 1) / n.weight;
      if (l < bestLoad) {
        best = n;
        bestLoad = l;
        ties = 1;
      } else if (l === bestLoad && Math.random() * ++ties < 1) best = n;
    }
    return best;
  }

  private pick(among: readonly ClusterNode[], load: (n: ClusterNode) => number): ClusterNode | null {
    const cands = among.filter((n) => n.state === 'up' && n.weight > 0);
    if (cands.length === 0) return null;
    if (cands.length === 1) return cands[0]!;
    const a = weightedPick(cands);
    const b = weightedPick(cands);
    if (a === b) return a;
    const la = (load(a) + 1) / a.weight;
    const lb = (load(b) + 1) / b.weight;
    return la <= lb ? a : b;
  }
}

function weightedPick(nodes: readonly ClusterNode[]): ClusterNode {
  let total = 0;
  for (const n of nodes) total += n.weight;
  let r = Math.random() * total;
  for (const n of nodes) {
    r -= n.weight;
    if (r < 0) return n;
  }
  return nodes[nodes.length - 1]!;
}

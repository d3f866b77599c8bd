// The state store interface (DESIGN.md "State store", "GTM"): where a
// coordinator keeps what must survive it -- node states with the epoch, the
// gxid high-water mark, and the commit decisions of two-phase commit.
// Two implementations: FileStateStore (./file-store.ts, one coordinator, the
// default) and an etcd store (several coordinators) that must keep every
// promise written here; docs/state-store.md lists what it has to provide.
import type { NodeState } from '../cluster/cluster.js';

export interface NodeRecord {
  id: string;
  state: NodeState;
  reason: string;
  /** ISO 8601 time of the last state change. */
  changedAt: string;
  /**
   * Set once a write may have been committed without this node (it was not
   * `up` when a write started, or writes were in flight when it left):
   * it can only come back through recovery. Absent = false.
   */
  missedWrites?: boolean;
  /** Taken out by an administrator (`pgquorum node detach`): never put back automatically. Absent = false. */
  detached?: boolean;
  /** The node's PostgreSQL system identifier, as first seen: a node re-created under the same id is not the same node. */
  systemId?: string;
}

export interface ClusterRecord {
  /** Grows with every change of any node's state. */
  epoch: number;
  nodes: NodeRecord[];
}

/** A leased range of gxids: start .. end-1. */
export interface GxidRange {
  start: bigint;
  end: bigint;
}

export interface StateStore {
  readonly kind: 'file' | 'etcd';
  open(): Promise<void>;
  /** Flushes what is pending, releases the store (file store: the lock). */
  close(): Promise<void>;
  /**
   * Lease a fresh range of `size` gxids for coordinator `coordinatorId`. The
   * new high-water mark is durable BEFORE this resolves, so no id is ever
   * handed out twice, even after a crash at any point. Ranges of all
   * coordinators never overlap and grow monotonically.
   */
  leaseGxidRange(coordinatorId: string, size: number): Promise<GxidRange>;
  /**
   * Durably record the decision "commit" for a GID (presumed abort: no
   * record = roll back). Resolves only once it is on disk (fsync).
   * Concurrent calls are group-committed: many records, one fsync.
   * A GID is 1-200 printable ASCII characters without spaces.
   */
  recordCommit(gid: string): Promise<void>;
  /**
   * True when a commit decision for gid is recorded (synchronous: the file
   * store keeps the set in memory). A decision counts only once it is
   * durable: while recordCommit(gid) has not resolved this is false.
   */
  hasCommit(gid: string): boolean;
  /**
   * Forget decisions whose COMMIT PREPARED finished on every node (may be
   * lazy/batched; durability not required: a forgotten decision may come
   * back after a restart, and must then be harmless).
   */
  forgetCommits(gids: Iterable<string>): void;
  /** All GIDs with a recorded (durable, not forgotten) commit decision. */
  commits(): string[];
  /** Node states and the epoch; null when nothing was stored yet. */
  readCluster(): Promise<ClusterRecord | null>;
  /**
   * Compare-and-swap: write `next` only if the stored epoch equals
   * expectedEpoch (null = nothing stored yet); durable before it resolves
   * true. Resolves false (and writes nothing) when another writer got there
   * first: read again and retry. `next.epoch` must be greater than
   * expectedEpoch (an error otherwise).
   */
  writeCluster(expectedEpoch: number | null, next: ClusterRecord): Promise<boolean>;
  /**
   * Called after another writer changed the cluster record (the file store:
   * never, one coordinator). Returns a function that unsubscribes.
   */
  onClusterChange(cb: (rec: ClusterRecord) => void): () => void;
}

const NODE_STATES: readonly NodeState[] = ['up', 'down', 'diverged', 'recovering', 'removed'];

/** A GID the store accepts: what PostgreSQL takes as a GID, minus whitespace (the log is line-based). */
export const GID_PATTERN = /^[\x21-\x7e]{1,200}$/;

/**
 * Check that `v` (parsed JSON, or a caller's argument) is a well-formed
 * ClusterRecord; returns a description of the first problem, or null.
 */
export function clusterRecordProblem(v: unknown): string | null {
  if (typeof v !== 'object' || v === null) return 'not an object';
  const r = v as Record<string, unknown>;
  if (typeof r.epoch !== 'number' || !Number.isSafeInteger(r.epoch) || r.epoch < 0) return 'epoch must be a non-negative integer';
  if (!Array.isArray(r.nodes)) return 'nodes must be an array';
  const seen = new Set<string>();
  for (const [i, n] of (r.nodes as unknown[]).entries()) {
    if (typeof n !== 'object' || n === null) return `nodes[${i}] is not an object`;
    const o = n as Record<string, unknown>;
    if (typeof o.id !== 'string' || o.id === '') return `nodes[${i}].id must be a non-empty string`;
    if (seen.has(o.id)) return `nodes[${i}].id ${o.id} appears twice`;
    seen.add(o.id);
    if (!NODE_STATES.includes(o.state as NodeState)) return `nodes[${i}].state must be one of ${NODE_STATES.join(', ')}`;
    if (typeof o.reason !== 'string') return `nodes[${i}].reason must be a string`;
    if (typeof o.changedAt !== 'string' || Number.isNaN(Date.parse(o.changedAt))) return `nodes[${i}].changedAt must be an ISO time`;
    if (o.missedWrites !== undefined && typeof o.missedWrites !== 'boolean') return `nodes[${i}].missedWrites must be a boolean`;
    if (o.detached !== undefined && typeof o.detached !== 'boolean') return `nodes[${i}].detached must be a boolean`;
    if (o.systemId !== undefined && typeof o.systemId !== 'string') return `nodes[${i}].systemId must be a string`;
  }
  return null;
}

/** A deep copy holding only the known fields (callers never share the store's objects). */
export function copyClusterRecord(r: ClusterRecord): ClusterRecord {
  return { epoch: r.epoch, nodes: r.nodes.map(copyNodeRecord) };
}

/** One node record with only the known fields; optional ones only when set. */
export function copyNodeRecord(n: NodeRecord): NodeRecord {
  const out: NodeRecord = { id: n.id, state: n.state, reason: n.reason, changedAt: n.changedAt };
  if (n.missedWrites !== undefined) out.missedWrites = n.missedWrites;
  if (n.detached !== undefined) out.detached = n.detached;
  if (n.systemId !== undefined) out.systemId = n.systemId;
  return out;
}

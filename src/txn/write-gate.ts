// The write gate: every session that writes is "inside" from its first
// write until its transaction ends (autocommit: until the statement is
// done). Two things need it:
//   - knowing which nodes missed a write: a node that is not `up` while a
//     write commits misses it, and is marked (durably, before the commit)
//     as needing recovery; a write that was refused or rolled back marks
//     nobody;
//   - attaching or detaching a node must happen with no write in flight, so
//     that a node put back has every write and a node taken out has missed
//     none: the administrator's command closes the gate, waits until the
//     sessions inside have left (bounded), changes the node, opens it again.
// Sessions waiting at a closed gate wait at most for that bounded time.
import type { Cluster, ClusterNode } from '../cluster/cluster.js';

/** One session's write (a transaction, or an autocommit statement) inside the gate. */
export class Writer {
  /** Nodes this write goes without (out when it started, or lost since): marked before it commits. */
  readonly without = new Set<ClusterNode>();
  /** Set when the write commits on the nodes as it runs (no transaction block around it). */
  selfCommitting = false;
}

export class WriteGate {
  private readonly writers = new Set<Writer>();
  private readonly cluster: Cluster;
  private closed: Promise<void> | null = null;
  private reopen: (() => void) | null = null;
  private drained: (() => void)[] = [];

  constructor(cluster: Cluster) {
    this.cluster = cluster;
  }

  /** Sessions inside (writing) right now. */
  get active(): number {
    return this.writers.size;
  }

  /** Enter before the first write of a transaction or autocommit statement; leave() once it ended. */
  async enter(): Promise<Writer> {
    while (this.closed) await this.closed;
    const w = new Writer();
    for (const n of this.cluster.nodes) {
      if (n.state !== 'up' && n.state !== 'removed' && !n.missedWrites) w.without.add(n);
    }
    this.writers.add(w);
    return w;
  }

  leave(w: Writer): void {
    if (!this.writers.delete(w) || this.writers.size > 0) return;
    const waiters = this.drained;
    this.drained = [];
    for (const f of waiters) f();
  }

  /**
   * A node left `up` (not by a clean detach). Returns true when it must be
   * marked as having missed writes at once: a write that commits as it runs
   * is in flight. Otherwise every write in flight remembers it and marks it
   * if, and before, it commits (beforeCommit).
   */
  nodeLeft(node: ClusterNode): boolean {
    let now = false;
    for (const w of this.writers) {
      if (w.selfCommitting) now = true;
      else w.without.add(node);
    }
    return now;
  }

  /**
   * Before anything of `w` commits (the two-phase commit's decision, a plain
   * COMMIT, a statement that commits as it runs): the nodes it went
   * without are marked durably, so that they can never be put back as if
   * identical.
   */
  async beforeCommit(w: Writer | null): Promise<void> {
    if (!w || w.without.size === 0) return;
    const nodes = [...w.without].filter((n) => n.state !== 'up' && !n.missedWrites);
    w.without.clear();
    if (nodes.length === 0) return;
    this.cluster.markMissed(nodes);
    await this.cluster.persisted();
  }

  /** `w` is about to run a statement that commits on the nodes as it runs. */
  async selfCommitting(w: Writer | null): Promise<void> {
    if (!w) return;
    w.selfCommitting = true;
    await this.beforeCommit(w);
  }

  get isClosed(): boolean {
    return this.closed !== null;
  }

  /**
   * Close the gate and wait until no session is inside. Resolves true once
   * drained (the gate stays closed until open()), false after `timeoutMs`
   * (the gate is then open again).
   */
  async close(timeoutMs: number): Promise<boolean> {
    while (this.closed) await this.closed; // one administrator at a time
    this.closed = new Promise<void>((r) => (this.reopen = r));
    if (this.writers.size === 0) return true;
    const ok = await new Promise<boolean>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.drained = this.drained.filter((f) => f !== done);
        resolve(false);
      }, timeoutMs);
      this.drained.push(done);
    });
    if (!ok) this.open();
    return ok;
  }

  open(): void {
    const r = this.reopen;
    this.closed = null;
    this.reopen = null;
    r?.();
  }
}

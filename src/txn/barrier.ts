// The commit barrier: a readers/writer gate around every commit sequence
// (two-phase commit from the first PREPARE to the last COMMIT/ROLLBACK
// PREPARED, and the plain single-node COMMIT). `pgquorum verify` holds it for
// a moment (SET pgquorum.commit_barrier = on) so that a snapshot taken on
// every node at once sees the same set of committed transactions.
//
//   enter()/exit()  a commit; enter() returns undefined (no await, no
//                   allocation) while nobody holds or waits for the barrier,
//                   otherwise a promise that resolves once it is released.
//   hold()          waits until the commits in flight have finished, blocking
//                   new ones meanwhile (they queue, they do not fail); resolves
//                   with the hold (release() ends it). A hold ends by itself after
//                   maxHoldMs so that a dead holder can never stall the cluster.
// Holders are served one at a time, in order; commits queued behind a hold
// are let in before the next holder starts to drain.
import type { Logger } from 'pino';
import { PgqError } from '../errors.js';

/** A hold of the barrier, once granted. */
export interface BarrierHold {
  /** End the hold; returns how long it lasted (ms). Calling it again changes nothing. */
  release(): number;
  /** The hold ended by itself after maxHoldMs. */
  readonly autoReleased: boolean;
  /** How long the hold lasted (ms), once it ended. */
  readonly heldMs: number;
}

export interface BarrierOptions {
  /** A hold ends by itself after this long (default 5000 ms). */
  maxHoldMs?: number;
  log?: Logger;
}

class Holder implements BarrierHold {
  /** Drain timeout, then the max-hold timer. */
  timer: NodeJS.Timeout | null = null;
  /** When the hold was granted (0: still draining). */
  heldAt = 0;
  released = false;
  autoReleased = false;
  heldMs = 0;
  constructor(
    readonly barrier: CommitBarrier,
    readonly resolve: (h: BarrierHold) => void,
    readonly reject: (e: Error) => void,
    readonly drainMs: number,
  ) {}

  release(): number {
    return this.barrier.releaseHold(this);
  }
}

export const DEFAULT_MAX_HOLD_MS = 5000;

export class CommitBarrier {
  readonly maxHoldMs: number;
  private readonly log: Logger | undefined;
  /** Commits inside the gate. */
  private active = 0;
  /** The holder that drains or holds now. */
  private current: Holder | null = null;
  private readonly holders: Holder[] = [];
  private waiters: Array<() => void> = [];
  /** Holds that ended because they lasted maxHoldMs. */
  autoReleases = 0;

  constructor(opts: BarrierOptions = {}) {
    this.maxHoldMs = opts.maxHoldMs ?? DEFAULT_MAX_HOLD_MS;
    this.log = opts.log;
  }

  /** Commits inside the gate right now. */
  get inside(): number {
    return this.active;
  }

  /** Commits waiting at the gate right now. */
  get queued(): number {
    return this.waiters.length;
  }

  /** True while a holder holds the barrier or drains it. */
  get closed(): boolean {
    return this.current !== null;
  }

  /** Start of a commit sequence; await the result when it is not undefined. Pair with exit(). */
  enter(): Promise<void> | undefined {
    if (this.current === null) {
      this.active++;
      return undefined;
    }
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** End of a commit sequence (also when it failed). */
  exit(): void {
    this.active--;
    if (this.active === 0) {
      const h = this.current;
      if (h && h.heldAt === 0) this.granted(h);
    }
  }

  /** Run `fn` as a commit sequence. */
  async around<T>(fn: () => Promise<T>): Promise<T> {
    const wait = this.enter();
    if (wait) await wait;
    try {
      return await fn();
    } finally {
      this.exit();
    }
  }

  /**
   * Wait until no commit is in flight and keep new ones out; rejects when the
   * commits in flight did not finish within `drainMs` (the queued ones are let
   * through then).
   */
  hold(drainMs = 2000): Promise<BarrierHold> {
    return new Promise<BarrierHold>((resolve, reject) => {
      const h = new Holder(this, resolve, reject, drainMs);
      if (this.current === null) this.start(h);
      else this.holders.push(h);
    });
  }

  private start(h: Holder): void {
    this.current = h;
    if (this.active === 0) {
      this.granted(h);
      return;
    }
    h.timer = setTimeout(() => {
      if (this.current !== h || h.heldAt !== 0) return;
      h.released = true;
      this.next();
      h.reject(
        new PgqError('ERR_BARRIER_DRAIN', `commits in flight did not finish within ${h.drainMs} ms`, { sqlstate: '55P03' }),
      );
    }, h.drainMs);
  }

  private granted(h: Holder): void {
    if (h.timer) clearTimeout(h.timer);
    h.heldAt = performance.now();
    h.timer = setTimeout(() => {
      if (h.released) return;
      h.autoReleased = true;
      this.autoReleases++;
      this.log?.warn({ maxHoldMs: this.maxHoldMs }, `commit barrier held for ${this.maxHoldMs} ms: released automatically`);
      this.releaseHold(h);
    }, this.maxHoldMs);
    h.timer.unref?.();
    h.resolve(h);
  }

  /** @internal Holder.release(). */
  releaseHold(h: Holder): number {
    if (h.released) return h.heldMs;
    h.released = true;
    if (h.timer) clearTimeout(h.timer);
    h.heldMs = performance.now() - h.heldAt;
    this.log?.debug({ heldMs: Math.round(h.heldMs * 10) / 10, queued: this.waiters.length }, 'commit barrier released');
    if (this.current === h) this.next();
    return h.heldMs;
  }

  /** Let the queued commits in, then start the next holder (it drains them). */
  private next(): void {
    this.current = null;
    const ws = this.waiters;
    this.waiters = [];
    this.active += ws.length;
    for (const w of ws) w();
    const h = this.holders.shift();
    if (h) this.start(h);
  }
}

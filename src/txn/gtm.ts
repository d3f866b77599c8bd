// The global transaction id allocator (DESIGN.md "GTM"): hands out gxids from
// ranges leased from the state store (the G-GTM idea). The store makes each
// range's high-water mark durable before the lease resolves, so an id is
// never handed out twice, across crashes and across coordinators. Within one
// coordinator ids are handed out strictly increasing, which gives the commit
// order. GIDs (the names of prepared transactions) embed the coordinator id
// and the gxid: `pgq_<coordinatorId>_<gxid>`.
//
// Hot path: next() returns a plain bigint while the current range (or the
// prefetched one) has room -- no Promise, no microtask. Only when both are
// used up does it return a Promise that resolves once a lease arrives. When
// 80% of the current range is used, the next range is leased in the
// background, so with a sane range size callers practically never wait.
// `await alloc.next()` works in both cases; callers that care about the
// microtask can test `typeof v === 'bigint'`.
import { PgqError } from '../errors.js';
import type { GxidRange, StateStore } from '../state/store.js';

/** Coordinator ids usable in a GID: no '_' (it separates the parts). */
export const GID_COORDINATOR_PATTERN = /^[A-Za-z0-9-]{1,63}$/;
const GID_RE = /^pgq_([A-Za-z0-9-]{1,63})_(0|[1-9][0-9]{0,19})$/;

/** The GID of a transaction: `pgq_<coordinatorId>_<gxid>`. */
export function formatGid(coordinatorId: string, gxid: bigint): string {
  return `pgq_${coordinatorId}_${gxid}`;
}

/** Split a GID made by formatGid; null for any other name (not ours: leave it alone). */
export function parseGid(gid: string): { coordinatorId: string; gxid: bigint } | null {
  const m = GID_RE.exec(gid);
  if (m === null) return null;
  return { coordinatorId: m[1]!, gxid: BigInt(m[2]!) };
}

export interface GxidAllocatorStats {
  /** Leases asked of the store (demand and prefetch). */
  leases: number;
  /** next() calls that had to wait for a lease (returned a Promise). */
  waits: number;
  /** Ids handed out. */
  handedOut: number;
  /** Background leases that failed (retried on demand). */
  prefetchFailures: number;
}

interface Waiter {
  resolve: (id: bigint) => void;
  reject: (err: Error) => void;
}

/** After a failed prefetch, don't start another one for this long (a demand lease still may). */
const PREFETCH_RETRY_MS = 1000;

export class GxidAllocator {
  readonly coordinatorId: string;
  readonly rangeSize: number;
  readonly stats: GxidAllocatorStats = { leases: 0, waits: 0, handedOut: 0, prefetchFailures: 0 };
  private readonly store: StateStore;
  /** The range ids come from: next .. end-1 are still free. */
  private cur: { start: bigint; next: bigint; end: bigint } | null = null;
  /** A prefetched range, used when `cur` runs out. */
  private spare: GxidRange | null = null;
  /** The one lease in flight (leases are serialised). */
  private leasing: Promise<void> | null = null;
  private waiters: Waiter[] = [];
  /** End of the last range accepted: a new range must start at or above it. */
  private lastEnd = 0n;
  private prefetchBlockedUntil = 0;
  private lastLeaseError: Error | null = null;

  constructor(store: StateStore, coordinatorId: string, rangeSize = 1000) {
    if (!GID_COORDINATOR_PATTERN.test(coordinatorId)) {
      throw new PgqError('ERR_GTM_BAD_COORDINATOR_ID', `coordinator id ${JSON.stringify(coordinatorId)} cannot be part of a GID (letters, digits, '-'; no '_')`);
    }
    if (!Number.isSafeInteger(rangeSize) || rangeSize < 1) {
      throw new PgqError('ERR_GTM_BAD_RANGE_SIZE', `gxid range size must be a positive integer, got ${rangeSize}`);
    }
    this.store = store;
    this.coordinatorId = coordinatorId;
    this.rangeSize = rangeSize;
  }

  /**
   * The next gxid: a bigint at once when the leased range has room (the
   * usual case), else a Promise that resolves after the next lease. Ids are
   * handed out in increasing order, each exactly once.
   */
  next(): bigint | Promise<bigint> {
    const id = this.take();
    if (id !== null) return id;
    this.stats.waits++;
    return new Promise<bigint>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.lease(false);
    });
  }

  /** next(), always as a Promise. */
  nextAsync(): Promise<bigint> {
    const v = this.next();
    return typeof v === 'bigint' ? Promise.resolve(v) : v;
  }

  /** The next gxid if one is at hand, else null (and a lease is started). Never waits. */
  tryNext(): bigint | null {
    const id = this.take();
    if (id === null) this.lease(false);
    return id;
  }

  /** Lease a first range now (at start-up), so that the first next() does not wait. */
  async ready(): Promise<void> {
    while (!this.hasRoom()) {
      if (!this.leasing) this.lease(false);
      await this.leasing;
      if (!this.hasRoom() && this.lastLeaseError) throw this.lastLeaseError;
    }
  }

  /** The GID for gxid: `pgq_<coordinatorId>_<gxid>`. */
  gid(gxid: bigint): string {
    return formatGid(this.coordinatorId, gxid);
  }

  /** See the module function parseGid. */
  parseGid(gid: string): { coordinatorId: string; gxid: bigint } | null {
    return parseGid(gid);
  }

  /** Ids left in hand (current range plus the prefetched one). */
  get available(): bigint {
    const cur = this.cur === null ? 0n : this.cur.end - this.cur.next;
    const spare = this.spare === null ? 0n : this.spare.end - this.spare.start;
    return cur + spare;
  }

  private hasRoom(): boolean {
    return (this.cur !== null && this.cur.next < this.cur.end) || this.spare !== null;
  }

  /** Take an id from the ranges in hand, or null; starts a prefetch at 80% use. */
  private take(): bigint | null {
    let cur = this.cur;
    if (cur === null || cur.next >= cur.end) {
      if (this.spare === null) return null;
      cur = this.cur = { start: this.spare.start, next: this.spare.start, end: this.spare.end };
      this.spare = null;
    }
    const id = cur.next++;
    this.stats.handedOut++;
    if (this.spare === null && this.leasing === null && (cur.next - cur.start) * 5n >= (cur.end - cur.start) * 4n && Date.now() >= this.prefetchBlockedUntil) {
      this.lease(true);
    }
    return id;
  }

  /** Start a lease unless one is in flight (so leases never run concurrently). */
  private lease(prefetch: boolean): void {
    if (this.leasing) return;
    this.stats.leases++;
    this.leasing = this.store.leaseGxidRange(this.coordinatorId, this.rangeSize).then(
      (range) => {
        this.leasing = null;
        const err = this.accept(range);
        if (err) this.failed(err, prefetch);
        else this.lastLeaseError = null;
        this.serve();
      },
      (err: unknown) => {
        this.leasing = null;
        this.failed(err instanceof Error ? err : new Error(String(err)), prefetch);
      },
    );
  }

  /** Take a range from the store; refuse one that would reuse ids (a broken store). */
  private accept(r: GxidRange): PgqError | null {
    if (typeof r.start !== 'bigint' || typeof r.end !== 'bigint' || r.end <= r.start || r.start < this.lastEnd) {
      return new PgqError('ERR_GTM_RANGE_REUSED', `state store leased gxids ${r.start}..${r.end} after ${this.lastEnd}: ids would be reused`, {
        severity: 'FATAL',
      });
    }
    this.lastEnd = r.end;
    if (this.cur !== null && this.cur.next < this.cur.end) this.spare = r;
    else this.cur = { start: r.start, next: r.start, end: r.end };
    return null;
  }

  /** Hand ids to waiting callers in arrival order; lease again if some still wait. */
  private serve(): void {
    while (this.waiters.length > 0) {
      const id = this.take();
      if (id === null) break;
      this.waiters.shift()!.resolve(id);
    }
    if (this.waiters.length > 0) this.lease(false);
  }

  /** A lease failed: waiting callers get the error; a failed prefetch is retried later or on demand. */
  private failed(err: Error, prefetch: boolean): void {
    this.lastLeaseError = err;
    if (prefetch) {
      this.stats.prefetchFailures++;
      this.prefetchBlockedUntil = Date.now() + PREFETCH_RETRY_MS;
    }
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(err);
  }
}

// The embedded file state store: the default, for one coordinator. Keeps in
// one directory (created 0700): `cluster.json` (node states and the epoch)
// and `gxid.json` (the gxid high-water mark), both replaced atomically;
// `decisions.log`, the append-only, group-committed log of commit decisions
// (./decision-log.ts); and `lock`, the pid lock that keeps a second
// coordinator out. Formats and crash behaviour: docs/state-store.md.
import fs from 'node:fs/promises';
import path from 'node:path';
import { PgqError } from '../errors.js';
import { DecisionLog, type DecisionLogOptions, type DecisionLogStats } from './decision-log.js';
import { acquireLock, atomicWrite, readIfExists, releaseLock, removeTempFiles, syncDir } from './fsutil.js';
import { clusterRecordProblem, copyClusterRecord, type ClusterRecord, type GxidRange, type StateStore } from './store.js';

export const CLUSTER_FILE = 'cluster.json';
export const GXID_FILE = 'gxid.json';
export const DECISIONS_FILE = 'decisions.log';
export const LOCK_FILE = 'lock';

/** Largest range one lease may take. */
export const MAX_LEASE = 1_000_000_000;

export type FileStateStoreOptions = DecisionLogOptions;

export interface FileStateStoreStats {
  log: DecisionLogStats;
  /** Ranges leased (each one atomic write of gxid.json). */
  gxidLeases: number;
  /** Successful writeCluster calls. */
  clusterWrites: number;
}

interface LeaseInfo {
  start: bigint;
  end: bigint;
  at: string;
}

interface GxidState {
  /** High-water mark: the first gxid never leased. */
  next: bigint;
  /** The last range of each coordinator (informational). */
  leases: Record<string, LeaseInfo>;
}

export class FileStateStore implements StateStore {
  readonly kind = 'file' as const;
  readonly dir: string;
  /** Things open() repaired or found odd (temp files removed, a torn log line): the caller logs them. */
  readonly warnings: string[] = [];
  private readonly log: DecisionLog;
  /** state.fsync: false leaves out every sync (docs/state-store.md "state.fsync"). */
  private readonly fsync: boolean;
  private phase: 'new' | 'opening' | 'open' | 'closed' = 'new';
  private gxid: GxidState = { next: 1n, leases: {} };
  private cluster: ClusterRecord | null = null;
  private gxidChain: Promise<unknown> = Promise.resolve();
  private clusterChain: Promise<unknown> = Promise.resolve();
  private readonly counters = { gxidLeases: 0, clusterWrites: 0 };
  private readonly listeners = new Set<(rec: ClusterRecord) => void>();

  constructor(dir: string, opts: FileStateStoreOptions = {}) {
    this.dir = path.resolve(dir);
    this.fsync = opts.fsync ?? true;
    this.log = new DecisionLog(path.join(this.dir, DECISIONS_FILE), opts);
  }

  get stats(): FileStateStoreStats {
    return { log: { ...this.log.stats }, ...this.counters };
  }

  /** The gxid high-water mark: every id ever leased is below it. */
  highWater(): bigint {
    return this.gxid.next;
  }

  async open(): Promise<void> {
    if (this.phase !== 'new') throw new PgqError('ERR_STATE_REOPEN', `state store ${this.dir}: open() called twice`);
    this.phase = 'opening';
    const created = await mkdirPrivate(this.dir);
    if (!created) {
      const st = await fs.stat(this.dir);
      if (!st.isDirectory()) throw new PgqError('ERR_STATE_DIR', `state.dir ${this.dir} is not a directory`, { severity: 'FATAL' });
      if ((st.mode & 0o077) !== 0) this.warnings.push(`state directory ${this.dir} is accessible to other users (mode ${(st.mode & 0o777).toString(8)})`);
    }
    await acquireLock(this.dir);
    try {
      for (const name of await removeTempFiles(this.dir)) this.warnings.push(`removed temp file ${name} left by a crash`);
      const gxidText = await readIfExists(path.join(this.dir, GXID_FILE));
      if (gxidText !== null) this.gxid = parseGxid(gxidText, path.join(this.dir, GXID_FILE));
      const clusterText = await readIfExists(path.join(this.dir, CLUSTER_FILE));
      if (clusterText !== null) this.cluster = parseCluster(clusterText, path.join(this.dir, CLUSTER_FILE));
      await this.log.open();
      const ls = this.log.stats;
      if (ls.tornBytes > 0) this.warnings.push(`dropped a torn last line (${ls.tornBytes} bytes) from ${DECISIONS_FILE}`);
      if (ls.skippedLines > 0) this.warnings.push(`skipped ${ls.skippedLines} lines of a torn write in ${DECISIONS_FILE}`);
      if (gxidText === null && this.log.liveCount > 0) {
        // Decisions exist, so gxids were leased: without the high-water mark ids would be reused.
        throw new PgqError('ERR_STATE_CORRUPT', `state store: ${GXID_FILE} is missing from ${this.dir} but ${DECISIONS_FILE} holds decisions`, {
          severity: 'FATAL',
          hint: `Restore ${GXID_FILE} from a backup; reusing gxids would mix up transactions.`,
        });
      }
    } catch (err) {
      await this.log.close().catch(() => undefined);
      await releaseLock(this.dir).catch(() => undefined);
      this.phase = 'closed';
      throw err;
    }
    this.phase = 'open';
  }

  async close(): Promise<void> {
    if (this.phase !== 'open') {
      this.phase = 'closed';
      return;
    }
    this.phase = 'closed';
    await Promise.allSettled([this.gxidChain, this.clusterChain]);
    try {
      await this.log.close();
    } finally {
      await releaseLock(this.dir);
    }
  }

  leaseGxidRange(coordinatorId: string, size: number): Promise<GxidRange> {
    const bad = this.notOpen();
    if (bad) return Promise.reject(bad);
    if (!Number.isSafeInteger(size) || size < 1 || size > MAX_LEASE) {
      return Promise.reject(new PgqError('ERR_STATE_BAD_LEASE', `gxid lease size must be an integer 1..${MAX_LEASE}, got ${size}`));
    }
    if (typeof coordinatorId !== 'string' || coordinatorId === '') {
      return Promise.reject(new PgqError('ERR_STATE_BAD_LEASE', 'gxid lease needs a coordinator id'));
    }
    return this.serial('gxid', async () => {
      const start = this.gxid.next;
      const end = start + BigInt(size);
      const next: GxidState = {
        next: end,
        leases: { ...this.gxid.leases, [coordinatorId]: { start, end, at: new Date().toISOString() } },
      };
      // Durable before anyone sees the range (crash before the rename: the old mark stands, nothing was handed out).
      await atomicWrite(path.join(this.dir, GXID_FILE), formatGxid(next), undefined, this.fsync);
      this.gxid = next;
      this.counters.gxidLeases++;
      return { start, end };
    });
  }

  recordCommit(gid: string): Promise<void> {
    const bad = this.notOpen();
    if (bad) return Promise.reject(bad);
    return this.log.record(gid);
  }

  hasCommit(gid: string): boolean {
    return this.log.has(gid);
  }

  forgetCommits(gids: Iterable<string>): void {
    this.log.forget(gids);
  }

  commits(): string[] {
    return this.log.list();
  }

  async readCluster(): Promise<ClusterRecord | null> {
    const bad = this.notOpen();
    if (bad) throw bad;
    // Wait for writes already queued, so a read after a write sees it.
    await this.clusterChain.catch(() => undefined);
    return this.cluster === null ? null : copyClusterRecord(this.cluster);
  }

  writeCluster(expectedEpoch: number | null, next: ClusterRecord): Promise<boolean> {
    const bad = this.notOpen();
    if (bad) return Promise.reject(bad);
    const problem = clusterRecordProblem(next);
    if (problem !== null) return Promise.reject(new PgqError('ERR_STATE_BAD_RECORD', `cluster record: ${problem}`));
    if (expectedEpoch !== null && next.epoch <= expectedEpoch) {
      return Promise.reject(new PgqError('ERR_STATE_BAD_RECORD', `cluster record: epoch must grow (expected ${expectedEpoch}, new ${next.epoch})`));
    }
    const rec = copyClusterRecord(next);
    return this.serial('cluster', async () => {
      const current = this.cluster === null ? null : this.cluster.epoch;
      if (current !== expectedEpoch) return false;
      await atomicWrite(path.join(this.dir, CLUSTER_FILE), `${JSON.stringify({ version: 1, ...rec }, null, 2)}\n`, undefined, this.fsync);
      this.cluster = rec;
      this.counters.clusterWrites++;
      return true;
    });
  }

  /** One coordinator per file store: nobody else writes, so callbacks never fire. */
  onClusterChange(cb: (rec: ClusterRecord) => void): () => void {
    this.listeners.add(cb);
    return () => {
      this.listeners.delete(cb);
    };
  }

  private notOpen(): PgqError | null {
    if (this.phase === 'open') return null;
    return this.phase === 'closed'
      ? new PgqError('ERR_STATE_CLOSED', `state store ${this.dir} is closed`)
      : new PgqError('ERR_STATE_NOT_OPEN', `state store ${this.dir} is not open`);
  }

  /** Run fn after every earlier fn of the same queue (a failure does not block the queue). */
  private serial<T>(queue: 'gxid' | 'cluster', fn: () => Promise<T>): Promise<T> {
    const prev = queue === 'gxid' ? this.gxidChain : this.clusterChain;
    const run = prev.then(fn, fn);
    const settled = run.catch(() => undefined);
    if (queue === 'gxid') this.gxidChain = settled;
    else this.clusterChain = settled;
    return run;
  }
}

/** mkdir -p with mode 0700; true when the directory was created (the parents of new directories are then fsync'd). */
async function mkdirPrivate(dir: string): Promise<boolean> {
  const first = await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  if (first === undefined) return false;
  for (let d = dir; ; d = path.dirname(d)) {
    await syncDir(path.dirname(d));
    if (d === first || path.dirname(d) === d) break;
  }
  return true;
}

function corrupt(file: string, problem: string, cause?: unknown): PgqError {
  return new PgqError('ERR_STATE_CORRUPT', `state store: ${file}: ${problem}`, {
    severity: 'FATAL',
    cause,
    hint: 'The file is written atomically by pgquorum, so it was changed by something else. Restore it from a backup.',
  });
}

function parseJson(text: Buffer, file: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text.toString('utf8'));
  } catch (err) {
    throw corrupt(file, 'not valid JSON', err);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw corrupt(file, 'not a JSON object');
  const o = v as Record<string, unknown>;
  if (o.version !== 1) throw corrupt(file, `unknown version ${JSON.stringify(o.version)}`);
  return o;
}

const DECIMAL = /^(0|[1-9][0-9]*)$/;

function parseGxid(text: Buffer, file: string): GxidState {
  const o = parseJson(text, file);
  if (typeof o.next !== 'string' || !DECIMAL.test(o.next)) throw corrupt(file, 'next must be a decimal string');
  const leases: Record<string, LeaseInfo> = {};
  if (typeof o.leases === 'object' && o.leases !== null) {
    for (const [id, l] of Object.entries(o.leases as Record<string, Record<string, unknown>>)) {
      if (typeof l?.start !== 'string' || typeof l.end !== 'string' || !DECIMAL.test(l.start) || !DECIMAL.test(l.end)) {
        throw corrupt(file, `leases.${id} must hold decimal strings start and end`);
      }
      leases[id] = { start: BigInt(l.start), end: BigInt(l.end), at: String(l.at ?? '') };
    }
  }
  const next = BigInt(o.next);
  for (const [id, l] of Object.entries(leases)) if (l.end > next) throw corrupt(file, `leases.${id} ends above next`);
  return { next: next < 1n ? 1n : next, leases };
}

function formatGxid(g: GxidState): string {
  const leases: Record<string, { start: string; end: string; at: string }> = {};
  for (const [id, l] of Object.entries(g.leases)) leases[id] = { start: l.start.toString(), end: l.end.toString(), at: l.at };
  return `${JSON.stringify({ version: 1, next: g.next.toString(), leases }, null, 2)}\n`;
}

function parseCluster(text: Buffer, file: string): ClusterRecord {
  const o = parseJson(text, file);
  const problem = clusterRecordProblem(o);
  if (problem !== null) throw corrupt(file, problem);
  return copyClusterRecord(o as unknown as ClusterRecord);
}

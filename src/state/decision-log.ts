// The commit-decision log of the file state store: `decisions.log`, one line
// per event, `C <gid>` (decision "commit", durable before record() resolves)
// and `F <gid>` (forgotten, written lazily, never waited for). Writes are
// group-committed: every record() that arrives while a (synchronous, O_DSYNC)
// write runs joins the next batch, so N concurrent callers cost about two
// syncs, not N. With state.fsync = false the writes are not synced (and
// are done at once, on the calling thread).
// The file is preallocated (zero bytes past the last line, PREALLOC_BYTES at
// a time), as PostgreSQL does with its WAL segments: a synced write into
// blocks that already exist changes no file size, so it syncs only its data,
// not the file system's journal (docs/state-store.md). A clean close() cuts
// the zeros off again.
// The log is compacted (rewritten atomically with only the live decisions)
// when it holds more than `compactMinLines` lines and over half are dead.
import { constants as fsc } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PgqError } from '../errors.js';
import { atomicWrite, readIfExists, syncDir, writeAllAt, writeAllAtSync } from './fsutil.js';
import { GID_PATTERN } from './store.js';

export interface DecisionLogStats {
  /** Syncs of the log: O_DSYNC appends, and fsyncs of compactions. */
  fsyncs: number;
  /** record() calls that wrote a line. */
  records: number;
  /** Write batches (one O_DSYNC write each). */
  batches: number;
  compactions: number;
  /** Lines the log file holds now. */
  lines: number;
  /** Bytes of an unterminated last line dropped on open (a torn write). */
  tornBytes: number;
  /** Lines with NUL bytes skipped on open (residue of a torn multi-page write). */
  skippedLines: number;
}

export interface DecisionLogOptions {
  /** Compact only when the log holds more lines than this (default 10,000). */
  compactMinLines?: number;
  /** Write queued `F` lines once this many are queued, even without a commit to ride along (default 1024). */
  forgetFlushLines?: number;
  /**
   * false (state.fsync = false): appends are plain writes, done at once on
   * the calling thread (a page-cache copy); a record survives a crash of the
   * coordinator, not one of the operating system. Default true.
   */
  fsync?: boolean;
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

interface Batch {
  gids: string[];
  waiters: Waiter[];
}

const LINE = /^([CF]) (\S{1,200})$/;

/**
 * The log is written with O_DSYNC: each batch is one write() that returns
 * once the data is on disk, where write() + fdatasync() took two calls (two
 * trips through libuv's thread pool) per batch. Writes are positional (at
 * the end of the last line, inside the preallocated zeros), so no O_APPEND.
 */
const WRITE_FLAGS = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_DSYNC;
/** state.fsync = false: the same without O_DSYNC. */
const WRITE_FLAGS_NOSYNC = fsc.O_WRONLY | fsc.O_CREAT;

/**
 * Zero bytes kept ready past the last line. A write that does not fit
 * carries the next run of them (one sync, which also makes the new size
 * durable); a compaction writes them with the new file. 256 KiB hold about
 * 15,000 lines, more than a log holds between compactions by default.
 */
export const PREALLOC_BYTES = 256 * 1024;

/** `data` followed by the next PREALLOC_BYTES of zeros, in one buffer (one write). */
function withZeros(data: Buffer): Buffer {
  const out = Buffer.alloc(data.length + PREALLOC_BYTES);
  data.copy(out);
  return out;
}

export class DecisionLog {
  readonly file: string;
  readonly stats: DecisionLogStats = { fsyncs: 0, records: 0, batches: 0, compactions: 0, lines: 0, tornBytes: 0, skippedLines: 0 };
  private readonly compactMinLines: number;
  private readonly forgetFlushLines: number;
  private readonly sync: boolean;
  private fh: fs.FileHandle | null = null;
  /** Where the next line goes: the end of the last line. */
  private offset = 0;
  /** The file's size: bytes from `offset` up to here are preallocated zeros. */
  private allocated = 0;
  /** Durable, not forgotten decisions. */
  private readonly live = new Set<string>();
  private pending: Batch = { gids: [], waiters: [] };
  private forgetQueue: string[] = [];
  private running: Promise<void> | null = null;
  private failed: PgqError | null = null;
  private closed = false;

  constructor(file: string, opts: DecisionLogOptions = {}) {
    this.file = file;
    this.compactMinLines = opts.compactMinLines ?? 10_000;
    this.forgetFlushLines = opts.forgetFlushLines ?? 1024;
    this.sync = opts.fsync ?? true;
  }

  /** Replay the log into memory; drop a torn last line; open for appending. */
  async open(): Promise<void> {
    const data = await readIfExists(this.file);
    const created = data === null;
    let lines = 0;
    let size = data?.length ?? 0;
    let end = 0;
    if (data !== null && data.length > 0) {
      end = data.lastIndexOf(0x0a) + 1; // bytes up to and including the last '\n'
      let last = data.length; // past the last byte that is not a preallocated zero
      while (last > end && data[last - 1] === 0) last--;
      if (last > end) {
        // Torn last line: its record() never resolved. Cut it off (with the zeros after it) so the next write starts a fresh line.
        this.stats.tornBytes = last - end;
        const fh = await fs.open(this.file, 'r+');
        try {
          await fh.truncate(end);
          if (this.sync) await fh.sync();
        } finally {
          await fh.close();
        }
        size = end;
      }
      const text = data.subarray(0, end).toString('latin1');
      let lineNo = 0;
      for (const line of text.split('\n')) {
        lineNo++;
        if (line === '') continue;
        lines++;
        const m = LINE.exec(line);
        if (m === null) {
          if (line.includes('\0')) {
            // A multi-page batch torn by a power loss: pages that never reached the disk read as zeros.
            // Nothing of that batch was acknowledged, so its lines may be dropped.
            this.stats.skippedLines++;
            continue;
          }
          throw new PgqError('ERR_STATE_CORRUPT', `state store: ${this.file} line ${lineNo} is not a decision record`, {
            severity: 'FATAL',
            detail: `line: ${JSON.stringify(line.slice(0, 80))}`,
            hint: 'The file was changed by something other than pgquorum. Restore it from a backup; deleting it loses commit decisions.',
          });
        }
        if (m[1] === 'C') this.live.add(m[2]!);
        else this.live.delete(m[2]!);
      }
    }
    this.stats.lines = lines;
    this.fh = await fs.open(this.file, this.sync ? WRITE_FLAGS : WRITE_FLAGS_NOSYNC, 0o600);
    this.offset = end;
    this.allocated = size;
    if (created && this.sync) await syncDir(path.dirname(this.file));
  }

  /** Durably record "commit" for gid; resolves after the fsync that covers it. */
  record(gid: string): Promise<void> {
    if (this.closed) return Promise.reject(closedError());
    if (this.failed) return Promise.reject(this.failed);
    if (this.fh === null) return Promise.reject(new PgqError('ERR_STATE_NOT_OPEN', 'state store is not open'));
    if (!GID_PATTERN.test(gid)) {
      return Promise.reject(new PgqError('ERR_STATE_BAD_GID', `state store: invalid GID ${JSON.stringify(gid)}`));
    }
    if (this.live.has(gid)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.pending.gids.push(gid);
      this.pending.waiters.push({ resolve, reject });
      this.kick();
    });
  }

  has(gid: string): boolean {
    return this.live.has(gid);
  }

  list(): string[] {
    return [...this.live];
  }

  get liveCount(): number {
    return this.live.size;
  }

  /** Forget decisions (in memory now; `F` lines ride along with the next write). */
  forget(gids: Iterable<string>): void {
    for (const gid of gids) if (this.live.delete(gid)) this.forgetQueue.push(gid);
    if (this.forgetQueue.length >= this.forgetFlushLines) this.kick();
  }

  /** Write what is queued (including `F` lines, synced), cut off the preallocated zeros, then close the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.running) await this.running;
    const fh = this.fh;
    if (!fh) return;
    try {
      if (!this.failed && this.forgetQueue.length > 0) {
        await this.put(Buffer.from(this.forgetQueue.map((g) => `F ${g}\n`).join(''), 'latin1'));
        this.stats.lines += this.forgetQueue.length;
        this.forgetQueue = [];
        if (this.sync) this.stats.fsyncs++; // O_DSYNC: the write was the sync
      }
      if (!this.failed && this.allocated > this.offset) {
        // A closed log is its lines and nothing else (what readers of the file expect).
        await fh.truncate(this.offset);
        if (this.sync) await fh.sync();
        this.allocated = this.offset;
      }
    } finally {
      this.fh = null;
      await fh.close();
    }
  }

  /**
   * Write `data` at the end of the last line: into the preallocated zeros,
   * or, when it does not fit, with the next PREALLOC_BYTES of zeros after it
   * in the same write. Synced by O_DSYNC unless state.fsync is off (then a
   * page-cache copy on this thread, without the trip through libuv's pool).
   */
  private async put(data: Buffer): Promise<void> {
    const fh = this.fh!;
    const end = this.offset + data.length;
    const out = end > this.allocated ? withZeros(data) : data;
    if (this.sync) await writeAllAt(fh, out, this.offset);
    else writeAllAtSync(fh.fd, out, this.offset);
    this.allocated = Math.max(this.allocated, this.offset + out.length);
    this.offset = end;
  }

  /** Start the writer unless it runs; it picks up everything queued. */
  private kick(): void {
    if (this.running || this.fh === null) return;
    this.running = this.writer();
  }

  /**
   * The one writer. Each turn takes the whole pending batch: one O_DSYNC
   * write, then every caller of that batch is answered. Callers arriving
   * meanwhile form the next batch. Exits when nothing is queued.
   */
  private async writer(): Promise<void> {
    try {
      // Let callers of the same tick join the first batch.
      await Promise.resolve();
      await this.writeBatches();
    } finally {
      this.running = null;
      // Work that arrived between the last check and here starts a new writer.
      if (!this.failed && (this.pending.gids.length > 0 || this.forgetQueue.length >= this.forgetFlushLines)) this.kick();
    }
  }

  private async writeBatches(): Promise<void> {
    for (;;) {
      const batch = this.pending;
      const forgets = this.forgetQueue.length >= this.forgetFlushLines || batch.gids.length > 0 ? this.forgetQueue : [];
      if ((batch.gids.length === 0 && forgets.length === 0) || this.failed || this.fh === null) break;
      this.pending = { gids: [], waiters: [] };
      if (forgets.length > 0) this.forgetQueue = [];
      try {
        let text = '';
        for (const g of forgets) text += `F ${g}\n`;
        for (const g of batch.gids) text += `C ${g}\n`;
        // With O_DSYNC durable when put() returns (F lines alone are synced too; they are rare).
        await this.put(Buffer.from(text, 'latin1'));
        if (this.sync) this.stats.fsyncs++;
        this.stats.lines += forgets.length + batch.gids.length;
        this.stats.batches++;
      } catch (err) {
        this.fail(err, batch);
        break;
      }
      // Durable: visible to has()/list() only now.
      for (const g of batch.gids) this.live.add(g);
      this.stats.records += batch.gids.length;
      for (const w of batch.waiters) w.resolve();
      if (this.needsCompaction()) {
        try {
          await this.compact();
        } catch (err) {
          this.fail(err, null);
          break;
        }
      }
    }
  }

  private needsCompaction(): boolean {
    const lines = this.stats.lines;
    return lines > this.compactMinLines && lines - this.live.size > lines / 2;
  }

  /**
   * Rewrite the log with only the live decisions: temp file, fsync, rename
   * over, fsync the directory (fsutil.atomicWrite). A crash before the rename
   * leaves the old log (a superset of the live decisions) and a temp file
   * that open() removes; after the rename the new log holds every live one.
   * Runs inside the writer, so no append races with it.
   */
  private async compact(): Promise<void> {
    let text = '';
    for (const g of this.live) text += `C ${g}\n`;
    // The new file comes preallocated: its lines, then zeros.
    const lines = Buffer.from(text, 'latin1');
    const data = withZeros(lines);
    await atomicWrite(this.file, data, () => this.stats.fsyncs++, this.sync);
    // The old handle points at the replaced file: writes must go to the new one.
    const old = this.fh;
    this.fh = await fs.open(this.file, this.sync ? WRITE_FLAGS : WRITE_FLAGS_NOSYNC, 0o600);
    this.offset = lines.length;
    this.allocated = data.length;
    await old?.close();
    this.stats.lines = this.live.size;
    this.forgetQueue = []; // their C lines are gone already
    this.stats.compactions++;
  }

  /**
   * After a failed write or fsync the state of the file is unknown (a failed
   * fsync may have dropped the dirty pages): refuse all further records, so
   * the coordinator stops committing instead of trusting a log it cannot.
   */
  private fail(err: unknown, batch: Batch | null): void {
    this.failed = new PgqError('ERR_STATE_IO', `state store: writing ${this.file} failed: ${(err as Error).message}`, {
      severity: 'FATAL',
      cause: err,
      hint: 'Commit decisions can no longer be recorded; restart the coordinator once the disk is healthy.',
    });
    const waiters = [...(batch?.waiters ?? []), ...this.pending.waiters];
    this.pending = { gids: [], waiters: [] };
    for (const w of waiters) w.reject(this.failed);
  }
}

function closedError(): PgqError {
  return new PgqError('ERR_STATE_CLOSED', 'state store is closed');
}

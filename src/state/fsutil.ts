// File-system building blocks of the embedded state store: atomic replacement
// of a small file (temp file, fsync, rename, fsync of the directory), removal
// of temp files left by a crash, and the pid lock file that keeps a second
// coordinator off the same state directory.
import { writeSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PgqError } from '../errors.js';

/** Marker in the names of temp files; anything containing it is removed on open. */
export const TEMP_MARKER = '.tmp-';

let tempSeq = 0;

/** A temp file name next to `file`, unique within this process. */
export function tempNameFor(file: string): string {
  return `${file}${TEMP_MARKER}${process.pid}-${++tempSeq}`;
}

/** fsync a directory, so that a rename or a new file in it is durable. */
export async function syncDir(dir: string): Promise<void> {
  const dh = await fs.open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/** Write all of `data` at byte `position` of `fh` (loops over short writes). */
export async function writeAllAt(fh: fs.FileHandle, data: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await fh.write(data, off, data.length - off, position + off);
    if (bytesWritten <= 0) throw new Error('write made no progress');
    off += bytesWritten;
  }
}

/** writeAllAt() on the calling thread, for writes that only copy into the page cache. */
export function writeAllAtSync(fd: number, data: Buffer, position: number): void {
  let off = 0;
  while (off < data.length) {
    const n = writeSync(fd, data, off, data.length - off, position + off);
    if (n <= 0) throw new Error('write made no progress');
    off += n;
  }
}

/**
 * Replace `file` with `data` atomically and durably: after a crash at any
 * point the file holds either the old or the new contents, never a mix, and
 * once this resolves the new contents survive a crash.
 * Steps: write temp file -> fsync it -> rename over `file` -> fsync the directory.
 * With `sync` false the two fsyncs are left out: still atomic for readers and
 * across a crash of the process, not across one of the operating system.
 */
export async function atomicWrite(file: string, data: string | Buffer, onSync?: () => void, sync = true): Promise<void> {
  const tmp = tempNameFor(file);
  const fh = await fs.open(tmp, 'wx', 0o600);
  try {
    await writeAllAt(fh, typeof data === 'string' ? Buffer.from(data, 'utf8') : data, 0);
    if (sync) {
      await fh.sync();
      onSync?.();
    }
  } catch (err) {
    await fh.close().catch(() => undefined);
    await fs.unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.unlink(tmp).catch(() => undefined);
    throw err;
  }
  if (sync) {
    await syncDir(path.dirname(file));
    onSync?.();
  }
}

/** Remove temp files a crashed writer left in `dir` (call only while holding the lock). */
export async function removeTempFiles(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await fs.readdir(dir)) {
    if (!name.includes(TEMP_MARKER)) continue;
    await fs.rm(path.join(dir, name), { force: true });
    removed.push(name);
  }
  if (removed.length > 0) await syncDir(dir);
  return removed;
}

/** Read a file, or null when it does not exist. */
export async function readIfExists(file: string): Promise<Buffer | null> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Directories locked by this process (a lock file holding our own pid is stale unless listed here). */
const heldLocks = new Set<string>();

/** A lock file that is still empty this long after it was created belongs to a writer that died. */
const EMPTY_LOCK_GRACE_MS = 5000;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function lockedError(dir: string, holder: string): PgqError {
  return new PgqError('ERR_STATE_LOCKED', `state directory ${dir} is in use by another coordinator (${holder})`, {
    severity: 'FATAL',
    detail: 'The embedded file state store serves one coordinator; several coordinators need the etcd state store.',
    hint: `Stop the other coordinator, or give this one another state.dir. If no coordinator runs, remove ${path.join(dir, 'lock')}.`,
    context: { dir },
  });
}

/**
 * Take the lock file `<dir>/lock` (created with O_EXCL, holding our pid).
 * A lock whose pid is dead (or is our own pid but not held by this process,
 * as after a restart in a container where the pid repeats) is stale and is
 * taken over. Throws ERR_STATE_LOCKED while another live process holds it.
 */
export async function acquireLock(dir: string): Promise<string> {
  const file = path.join(dir, 'lock');
  const key = path.resolve(dir);
  if (heldLocks.has(key)) throw lockedError(dir, `this process, pid ${process.pid}`);
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fh = await fs.open(file, 'wx', 0o600);
      try {
        await fh.write(`${process.pid}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await syncDir(dir);
      heldLocks.add(key);
      return file;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    // Someone holds (or held) the lock: is it stale?
    let text: string;
    let mtimeMs: number;
    try {
      text = await fs.readFile(file, 'utf8');
      mtimeMs = (await fs.stat(file)).mtimeMs;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile
      throw err;
    }
    const pid = /^\s*(\d+)\s*$/.test(text) ? Number(text.trim()) : NaN;
    if (Number.isNaN(pid)) {
      // Empty or garbled: a writer between O_EXCL create and writing its pid, or one that died there.
      if (text.trim() === '' && Date.now() - mtimeMs < EMPTY_LOCK_GRACE_MS) throw lockedError(dir, 'lock being taken');
    } else if (pid !== process.pid && pidAlive(pid)) {
      throw lockedError(dir, `pid ${pid}`);
    }
    // Stale: remove and retry the O_EXCL create.
    await fs.rm(file, { force: true });
  }
  throw lockedError(dir, 'lock keeps changing hands');
}

/** Release a lock taken by acquireLock (only if the file still holds our pid). */
export async function releaseLock(dir: string): Promise<void> {
  const file = path.join(dir, 'lock');
  heldLocks.delete(path.resolve(dir));
  const text = await readIfExists(file);
  if (text !== null && text.toString('utf8').trim() === String(process.pid)) {
    await fs.rm(file, { force: true });
  }
}

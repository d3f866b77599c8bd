// Finds the PostgreSQL 15 binaries and decides which OS user runs them
// (PostgreSQL refuses root: then the `postgres` system user), with helpers
// for ownership, directory traversal and running the tools as that user.

import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PgqError } from '../errors.js';

export const PG_MAJOR = 15;
const DEFAULT_BINDIR = `/usr/lib/postgresql/${PG_MAJOR}/bin`;

export function devError(message: string, cause?: unknown): PgqError {
  return new PgqError('ERR_DEVCLUSTER', message, cause === undefined ? {} : { cause });
}

let cachedBin: { dir: string; version: string } | null = null;

/**
 * The directory holding PostgreSQL 15's `postgres`, `initdb`, `psql`, ...
 * ($PGQUORUM_PG_BINDIR, else /usr/lib/postgresql/15/bin). Throws a clear
 * error pointing at scripts/ensure-deps.sh when they are missing.
 */
export function ensurePostgres(): string {
  return pgInfo().dir;
}

/** Full server version, e.g. "15.20". */
export function postgresVersion(): string {
  return pgInfo().version;
}

function pgInfo(): { dir: string; version: string } {
  if (cachedBin) return cachedBin;
  const dir = process.env.PGQUORUM_PG_BINDIR || DEFAULT_BINDIR;
  const fix = 'run scripts/ensure-deps.sh (it installs postgresql-15), or set PGQUORUM_PG_BINDIR to its bin directory';
  for (const tool of ['postgres', 'initdb', 'psql']) {
    try {
      fs.accessSync(path.join(dir, tool), fs.constants.X_OK);
    } catch {
      throw devError(`PostgreSQL ${PG_MAJOR} not found: ${path.join(dir, tool)} is missing or not executable; ${fix}`);
    }
  }
  let out: string;
  try {
    out = execFileSync(path.join(dir, 'postgres'), ['--version'], { encoding: 'utf8' });
  } catch (err) {
    throw devError(`cannot run ${path.join(dir, 'postgres')} --version: ${(err as Error).message}; ${fix}`, err);
  }
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(out);
  if (!m || Number(m[1]) !== PG_MAJOR) {
    throw devError(`${dir}/postgres is not PostgreSQL ${PG_MAJOR} (it says ${JSON.stringify(out.trim())}); ${fix}`);
  }
  cachedBin = { dir, version: m[2] === undefined ? m[1]! : `${m[1]}.${m[2]}` };
  return cachedBin;
}

/** The OS user the PostgreSQL processes run as; null = the current user. */
export interface RunAs {
  uid: number;
  gid: number;
  name: string;
}

let cachedRunAs: RunAs | null | undefined;

/** When we are root: the `postgres` system user (PostgreSQL refuses root). */
export function runAsUser(): RunAs | null {
  if (cachedRunAs !== undefined) return cachedRunAs;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return (cachedRunAs = null);
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    if (!Number.isInteger(uid) || !Number.isInteger(gid) || uid === 0) throw new Error('bad uid');
    return (cachedRunAs = { uid, gid, name: 'postgres' });
  } catch {
    throw devError(
      "running as root, and PostgreSQL refuses to run as root, but there is no 'postgres' system user to run it as; " +
        'run scripts/ensure-deps.sh (installing postgresql-15 creates that user) or run pgquorum as a normal user',
    );
  }
}

/** spawn options that make a child run as `runAs` (nothing when null). */
export function asUserOptions(runAs: RunAs | null): { uid?: number; gid?: number } {
  return runAs ? { uid: runAs.uid, gid: runAs.gid } : {};
}

/** Environment for PostgreSQL processes: ours minus libpq/server variables. */
export function pgEnv(runAs: RunAs | null): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^PG/.test(k)) env[k] = v;
  }
  if (runAs) {
    env.HOME = '/tmp';
    env.USER = env.LOGNAME = runAs.name;
  }
  return env;
}

/** Run a PostgreSQL tool synchronously as `runAs`; throws with its output on failure. */
export function runTool(
  runAs: RunAs | null,
  file: string,
  args: string[],
  opts: { input?: string; cwd?: string; what: string },
): SpawnSyncReturns<string> {
  const r = spawnSync(file, args, {
    encoding: 'utf8',
    input: opts.input ?? '',
    cwd: opts.cwd ?? '/',
    env: pgEnv(runAs),
    ...asUserOptions(runAs),
  });
  if (r.error) throw devError(`${opts.what}: cannot run ${file}: ${r.error.message}`, r.error);
  if (r.status !== 0) {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
    throw devError(`${opts.what} failed (${path.basename(file)} exit ${r.status ?? r.signal}):\n${out}`);
  }
  return r;
}

/** chown -R (no-op when runAs is null). */
export function chownTree(p: string, runAs: RunAs | null): void {
  if (!runAs) return;
  const walk = (q: string): void => {
    fs.lchownSync(q, runAs.uid, runAs.gid);
    const st = fs.lstatSync(q);
    if (st.isDirectory()) for (const e of fs.readdirSync(q)) walk(path.join(q, e));
  };
  walk(p);
}

/**
 * Make sure `runAs` can reach `dir`: every existing ancestor must be
 * searchable (x) by that user. Missing o+x is added (only search, not
 * read) and reported through `log`; when that is impossible the error says
 * what to do.
 */
export function ensureTraversable(dir: string, runAs: RunAs | null, log: (msg: string) => void = () => {}): void {
  if (!runAs) return;
  const abs = path.resolve(dir);
  const ancestors: string[] = [];
  for (let p = path.dirname(abs); ; p = path.dirname(p)) {
    ancestors.unshift(p);
    if (p === path.dirname(p)) break;
  }
  for (const p of ancestors) {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      continue; // will be created by mkdir -p (mode 0755)
    }
    const bit = st.uid === runAs.uid ? 0o100 : st.gid === runAs.gid ? 0o010 : 0o001;
    if (st.mode & bit) continue;
    try {
      fs.chmodSync(p, (st.mode & 0o7777) | 0o001);
      log(`made ${p} searchable by others (chmod o+x) so the '${runAs.name}' user can reach ${abs}`);
    } catch (err) {
      throw devError(
        `PostgreSQL runs as the '${runAs.name}' user (we are root), which cannot enter ${p} on the way to ${abs}, ` +
          `and chmod o+x ${p} failed (${(err as Error).message}); choose a directory under /tmp or one whose parents are world-searchable`,
        err,
      );
    }
  }
}

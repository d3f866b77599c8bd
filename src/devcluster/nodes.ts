// Local PostgreSQL nodes for development and tests: create data directories
// from a cached initdb template, start them detached, wait until they accept
// connections, report their status and stop them by PID.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  asUserOptions,
  chownTree,
  devError,
  ensurePostgres,
  ensureTraversable,
  pgEnv,
  postgresVersion,
  runAsUser,
  runTool,
  type RunAs,
} from './postgres.js';

export interface DevNode {
  /** 'n1', 'n2', ... (node i lives in `${dir}/node${i}`). */
  id: string;
  host: string;
  port: number;
  /** The PostgreSQL data directory; also holds the unix socket and postgres.log. */
  dataDir: string;
  logFile: string;
}

/** What `${dir}/devcluster.json` records (mode 0600: it holds the password). */
export interface DevCluster {
  dir: string;
  pgVersion: string;
  /** Password of the `postgres` superuser on every node. */
  password: string;
  fsync: boolean;
  nodes: DevNode[];
}

export interface CreateNodesOptions {
  count: number;
  /** Node i (1-based) listens on basePort + i, unless `ports` is given. */
  basePort: number;
  dir: string;
  password: string;
  /** Explicit ports, one per node (overrides basePort). */
  ports?: number[];
  /** false = fsync off (tests); default true. */
  fsync?: boolean;
  /** Address the nodes listen on; default 127.0.0.1. */
  host?: string;
  /** Extra postgresql.conf settings for every node. */
  settings?: Record<string, string | number | boolean>;
  /** Progress messages (one line each). */
  log?: (msg: string) => void;
}

export interface NodeStatus extends DevNode {
  /** Postmaster PID when a postgres of this data dir runs, else null. */
  pid: number | null;
  running: boolean;
  /** Answers the startup of a connection (not starting up or shutting down). */
  accepting: boolean;
}

const META_FILE = 'devcluster.json';
const SUPERUSER = 'postgres';
/** Bump when the template's initdb arguments or contents change. */
const TEMPLATE_FORMAT = 1;

/** Read `${dir}/devcluster.json`. */
export function readCluster(dir: string): DevCluster {
  const file = path.join(path.resolve(dir), META_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw devError(`no dev cluster in ${path.resolve(dir)} (no ${META_FILE}); create one with: pgquorum dev up --dir ${dir}`);
  }
  try {
    return JSON.parse(text) as DevCluster;
  } catch (err) {
    throw devError(`${file} is damaged: ${(err as Error).message}`, err);
  }
}

export function hasCluster(dir: string): boolean {
  return fs.existsSync(path.join(path.resolve(dir), META_FILE));
}

/**
 * Create `count` data directories `${dir}/node${i}` (copies of a cached
 * initdb template), configure them and set the superuser password.
 * Does not start them. Refuses a dir that already holds a cluster.
 */
export function createNodes(opts: CreateNodesOptions): DevCluster {
  const log = opts.log ?? (() => {});
  const bin = ensurePostgres();
  const runAs = runAsUser();
  const dir = path.resolve(opts.dir);
  const host = opts.host ?? '127.0.0.1';
  if (!Number.isInteger(opts.count) || opts.count < 1) throw devError(`node count must be an integer of at least 1, got ${opts.count}`);
  if (/[\n\r\0]/.test(opts.password) || opts.password === '') throw devError('the password must be non-empty and on one line');
  if (hasCluster(dir)) throw devError(`${dir} already holds a dev cluster (${META_FILE}); stop it and remove the directory first`);
  const nodes: DevNode[] = [];
  for (let i = 1; i <= opts.count; i++) {
    const port = opts.ports?.[i - 1] ?? opts.basePort + i;
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw devError(`port of node ${i} must be from 1 to 65535, got ${port}`);
    const dataDir = path.join(dir, `node${i}`);
    if (fs.existsSync(dataDir)) throw devError(`${dataDir} already exists; remove it or choose another directory`);
    const sock = path.join(dataDir, `.s.PGSQL.${port}`);
    if (Buffer.byteLength(sock) > 107) throw devError(`${dir} is too long a path: the unix socket ${sock} would exceed 107 bytes; choose a shorter directory`);
    nodes.push({ id: `n${i}`, host, port, dataDir, logFile: path.join(dataDir, 'postgres.log') });
  }

  fs.mkdirSync(dir, { recursive: true });
  ensureTraversable(path.join(dir, 'node1'), runAs, log);
  const template = ensureTemplate(bin, runAs, log);
  for (const node of nodes) {
    fs.cpSync(template, node.dataDir, { recursive: true });
    fs.chmodSync(node.dataDir, 0o700);
    fs.writeFileSync(path.join(node.dataDir, 'pgquorum.conf'), nodeSettings(node, opts));
    chownTree(node.dataDir, runAs);
    // The template's password is random and unknown: set ours in single-user mode.
    const sql = `ALTER ROLE ${SUPERUSER} PASSWORD '${opts.password.replace(/'/g, "''")}';\n`;
    runTool(runAs, path.join(bin, 'postgres'), ['--single', '-D', node.dataDir, SUPERUSER], {
      input: sql,
      what: `setting the password of node ${node.id}`,
    });
    log(`created node ${node.id} in ${node.dataDir} (port ${node.port})`);
  }
  const cluster: DevCluster = { dir, pgVersion: postgresVersion(), password: opts.password, fsync: opts.fsync ?? true, nodes };
  writeMeta(cluster);
  return cluster;
}

function writeMeta(cluster: DevCluster): void {
  const file = path.join(cluster.dir, META_FILE);
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(cluster, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(tmp, file);
}

function confValue(v: string | number | boolean): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  return `'${v.replace(/'/g, "''")}'`;
}

function nodeSettings(node: DevNode, opts: CreateNodesOptions): string {
  const s: Record<string, string | number | boolean> = {
    listen_addresses: node.host,
    port: node.port,
    unix_socket_directories: node.dataDir,
    max_connections: 300,
    max_prepared_transactions: 300,
    wal_level: 'logical',
    max_wal_senders: 10,
    max_replication_slots: 10,
    shared_preload_libraries: 'pg_stat_statements',
    'pg_stat_statements.track': 'all',
    log_line_prefix: '%m [%p] %q%u@%d ',
    ...(opts.fsync === false ? { fsync: false } : {}),
    ...opts.settings,
  };
  const lines = Object.entries(s).map(([k, v]) => `${k} = ${confValue(v)}`);
  return `# Written by pgquorum devcluster for node ${node.id}; included from postgresql.conf.\n${lines.join('\n')}\n`;
}

/**
 * An initdb'd data directory shared by all nodes, made once per PostgreSQL
 * version, runner and settings in the OS temp dir and copied for each node.
 */
function ensureTemplate(bin: string, runAs: RunAs | null, log: (msg: string) => void): string {
  const version = postgresVersion();
  const initdbArgs = [`--username=${SUPERUSER}`, '--auth-host=scram-sha-256', '--auth-local=trust', '--encoding=UTF8', '--locale=C'];
  const uid = runAs ? runAs.uid : (process.getuid?.() ?? -1);
  const hash = createHash('sha256').update(JSON.stringify({ TEMPLATE_FORMAT, bin, version, uid, initdbArgs })).digest('hex').slice(0, 12);
  const template = path.join(os.tmpdir(), `pgquorum-template-${version}-${hash}`);
  if (fs.existsSync(path.join(template, 'global', 'pg_control'))) return template;

  log(`initdb of a template data directory (once): ${template}`);
  ensureTraversable(template, runAs, log);
  const work = fs.mkdtempSync(`${template}.tmp-`);
  try {
    const pwfile = path.join(work, 'pw');
    fs.writeFileSync(pwfile, randomBytes(24).toString('base64url') + '\n', { mode: 0o600 });
    chownTree(work, runAs);
    const data = path.join(work, 'data');
    runTool(runAs, path.join(bin, 'initdb'), ['-D', data, `--pwfile=${pwfile}`, ...initdbArgs], { what: 'initdb of the template' });
    fs.appendFileSync(path.join(data, 'postgresql.conf'), "\n# pgquorum devcluster: per-node settings\ninclude_if_exists = 'pgquorum.conf'\n");
    try {
      fs.renameSync(data, template);
    } catch (err) {
      // Another process made it meanwhile: use theirs.
      if (!fs.existsSync(path.join(template, 'global', 'pg_control'))) throw err;
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  return template;
}

/**
 * Start every node of the cluster in `dir` that is not running yet
 * (detached, in its own process group, output to its postgres.log), and
 * wait until all accept connections.
 */
export async function startNodes(dir: string, opts: { timeoutMs?: number; log?: (msg: string) => void } = {}): Promise<DevCluster> {
  const cluster = readCluster(dir);
  const bin = ensurePostgres();
  const runAs = runAsUser();
  const timeoutMs = opts.timeoutMs ?? 60_000;
  await Promise.all(
    cluster.nodes.map(async (node) => {
      let pid = livePostmaster(node.dataDir);
      let exited: string | null = null;
      if (pid === null) {
        const fd = fs.openSync(node.logFile, 'a', 0o600);
        if (runAs) fs.fchownSync(fd, runAs.uid, runAs.gid);
        const child = spawn(path.join(bin, 'postgres'), ['-D', node.dataDir], {
          detached: true,
          stdio: ['ignore', fd, fd],
          cwd: node.dataDir,
          env: pgEnv(runAs),
          ...asUserOptions(runAs),
        });
        fs.closeSync(fd);
        child.on('error', (err) => (exited = `could not start: ${err.message}`));
        child.on('exit', (code, sig) => (exited = `exited with ${sig ?? `code ${code}`}`));
        child.unref();
        pid = child.pid ?? null;
        opts.log?.(`started node ${node.id} (pid ${pid}, port ${node.port})`);
      }
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if ((await probe(node.host, node.port, 1000)) === 'ready') return;
        if (exited !== null || (pid !== null && isGone(pid))) {
          throw devError(`node ${node.id} (${node.dataDir}) ${exited ?? 'exited'} while starting; end of ${node.logFile}:\n${logTail(node.logFile)}`);
        }
        if (Date.now() > deadline) {
          throw devError(
            `node ${node.id} does not accept connections on ${node.host}:${node.port} after ${timeoutMs / 1000}s; end of ${node.logFile}:\n${logTail(node.logFile)}`,
          );
        }
        await sleep(100);
      }
    }),
  );
  return cluster;
}

/**
 * Stop every node of the cluster in `dir`: SIGINT (fast shutdown), wait,
 * then SIGKILL of it and its children after `timeoutMs`.
 */
export async function stopNodes(dir: string, opts: { timeoutMs?: number } = {}): Promise<void> {
  const cluster = readCluster(dir);
  const timeoutMs = opts.timeoutMs ?? 30_000;
  await Promise.all(
    cluster.nodes.map(async (node) => {
      const pid = livePostmaster(node.dataDir);
      if (pid === null) return;
      signal(pid, 'SIGINT');
      if (await waitGone(pid, timeoutMs)) return;
      killTree(pid);
      if (!(await waitGone(pid, 5000))) throw devError(`postgres of node ${node.id} (pid ${pid}) is still there after SIGKILL`);
    }),
  );
}

/**
 * Synchronous emergency stop for process 'exit' handlers: SIGQUIT
 * (immediate shutdown, which still frees shared memory), a short wait,
 * then SIGKILL of the postmaster and its children. Never throws.
 */
export function killNodesSync(dir: string, waitMs = 5000): void {
  let cluster: DevCluster;
  try {
    cluster = readCluster(dir);
  } catch {
    return;
  }
  const pids = cluster.nodes.map((n) => livePostmaster(n.dataDir)).filter((p): p is number => p !== null);
  for (const pid of pids) signal(pid, 'SIGQUIT');
  const deadline = Date.now() + waitMs;
  while (pids.some((p) => !isGone(p)) && Date.now() < deadline) sleepSync(20);
  for (const pid of pids) if (!isGone(pid)) killTree(pid);
}

/** Status of each node of the cluster in `dir`. */
export async function nodeStatus(dir: string): Promise<NodeStatus[]> {
  const cluster = readCluster(dir);
  return Promise.all(
    cluster.nodes.map(async (node) => {
      const pid = livePostmaster(node.dataDir);
      const accepting = pid !== null && (await probe(node.host, node.port, 1000)) === 'ready';
      return { ...node, pid, running: pid !== null, accepting };
    }),
  );
}

/**
 * One connection attempt: 'ready' when the server answers a startup packet
 * with an authentication request (or any error but "starting up"),
 * 'starting' while it starts or shuts down, 'down' when nothing answers.
 */
export function probe(host: string, port: number, timeoutMs = 1000): Promise<'ready' | 'starting' | 'down'> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (r: 'ready' | 'starting' | 'down'): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish('down'), timeoutMs);
    sock.on('connect', () => sock.write(startupPacket()));
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < 5) return;
      if (buf[0] !== 0x45 /* 'E' */) return finish('ready');
      const len = buf.readInt32BE(1);
      if (buf.length < 1 + len) return;
      let code = '';
      for (let i = 5; i < 1 + len && buf[i] !== 0; ) {
        const end = buf.indexOf(0, i + 1);
        if (end < 0) break;
        if (buf[i] === 0x43 /* 'C' */) code = buf.toString('utf8', i + 1, end);
        i = end + 1;
      }
      finish(code === '57P03' ? 'starting' : 'ready');
    });
    sock.on('error', () => finish('down'));
    sock.on('close', () => finish('down'));
  });
}

function startupPacket(): Buffer {
  const params = Buffer.from(`user\0${SUPERUSER}\0database\0postgres\0application_name\0pgquorum-probe\0\0`);
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + params.length, 0);
  head.writeInt32BE(196608, 4); // protocol 3.0
  return Buffer.concat([head, params]);
}

/** PID of the postmaster running on `dataDir`, or null (checks the PID is really it). */
export function livePostmaster(dataDir: string): number | null {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8');
  } catch {
    return null;
  }
  const pid = Number(text.split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || isGone(pid)) return null;
  // Guard against a stale file whose PID now belongs to someone else:
  // the postmaster's working directory is its data directory.
  try {
    if (fs.readlinkSync(`/proc/${pid}/cwd`) !== fs.realpathSync(dataDir)) return null;
  } catch {
    if (fs.existsSync('/proc/self')) return null; // Linux: unreadable means gone or not ours
  }
  return pid;
}

/** True when the process no longer exists (or is a zombie waiting to be reaped). */
function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return fs.existsSync('/proc/self'); // Linux: vanished meanwhile; elsewhere: trust kill(0)
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

/**
 * SIGKILL the postmaster and its children (PostgreSQL's children call
 * setsid(), so they are not in the postmaster's process group; find them
 * by parent PID instead).
 */
export function killTree(pid: number): number[] {
  return signalTree(pid, 'SIGKILL');
}

/** Send `sig` to the postmaster and its children (SIGSTOP/SIGCONT make a node hang and resume, in tests). */
export function signalTree(pid: number, sig: NodeJS.Signals): number[] {
  const children: number[] = [];
  try {
    for (const e of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      try {
        const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
        if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) children.push(Number(e));
      } catch {
        /* gone */
      }
    }
  } catch {
    /* not Linux: children notice the postmaster's death and exit */
  }
  signal(pid, sig);
  for (const c of children) signal(c, sig);
  return [pid, ...children];
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!isGone(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** The last `lines` lines of a log file (or a note that there is none). */
export function logTail(file: string, lines = 20): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const len = Math.min(size, 16384);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      return buf.toString('utf8').trimEnd().split('\n').slice(-lines).map((l) => `  | ${l}`).join('\n') || '  (empty)';
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '  (no log file)';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

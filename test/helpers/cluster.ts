// Test harness: real PostgreSQL 15 nodes on free loopback ports in a fresh
// temp dir (fsync off), a validated coordinator Config for them, direct
// access to each node (psql, node-postgres), and cleanup by PID even when
// the test process exits early.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import pg from 'pg';
import { validateConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import {
  createNodes,
  devConfigObject,
  ensurePostgres,
  generatePassword,
  killNodesSync,
  startNodes,
  stopNodes,
  type DevCluster,
} from '../../src/devcluster/index.js';

export interface TestNode {
  id: string;
  host: string;
  port: number;
  dataDir: string;
}

/** A node by 0-based index into `nodes`, or by id ('n1'). */
export type NodeRef = number | string;

export interface TestCluster {
  dir: string;
  nodes: TestNode[];
  /** Password of the `postgres` superuser on every node (also users[0] of config). */
  password: string;
  /** Coordinator config for these nodes: port 0 (the OS picks), state in `${dir}/state`. */
  config: Config;
  /** Stop the nodes (fast shutdown) and remove the dir. Idempotent. */
  stop(): Promise<void>;
  /**
   * Run SQL on a node directly with psql (tuples only, unaligned, '|'
   * separated, no command tags, ON_ERROR_STOP); returns stdout without
   * the final newline; throws with psql's stderr on failure.
   */
  psqlNode(i: NodeRef, sql: string): string;
  /** Run one query on a node directly with node-postgres; returns the rows. */
  queryNode<R = Record<string, unknown>>(i: NodeRef, sql: string, params?: unknown[]): Promise<R[]>;
  /** A connected node-postgres client to a node (the caller ends it). */
  connectNode(i: NodeRef): Promise<pg.Client>;
  /** Connection parameters of a node for node-postgres. */
  nodeClientConfig(i: NodeRef): pg.ClientConfig;
}

export interface TestClusterOptions {
  /** Number of nodes (default 3). */
  nodes?: number;
  /** Extra postgresql.conf settings for every node. */
  settings?: Record<string, string | number | boolean>;
  /** Coordinator log level in `config` (default $PGQUORUM_TEST_LOG_LEVEL or 'warn'). */
  logLevel?: Config['log']['level'];
  /** Keep the directory after stop() (also: PGQUORUM_KEEP_TEST_DIRS=1). */
  keep?: boolean;
}

const DIR_PREFIX = 'pgquorum-test-';
const OWNER_FILE = 'owner.pid';
const live = new Set<string>();
let hooksInstalled = false;

/** A TCP port that was free on `host` a moment ago (listen on port 0). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return freePorts(1, host).then((p) => p[0]!);
}

/**
 * `n` consecutive free ports below the kernel's ephemeral range (which starts
 * at 32768), so outgoing connections of other tests cannot take them between
 * the check and their use.
 */
export async function freeConsecutivePorts(n: number, host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20000 + Math.floor(Math.random() * (12000 - n));
    const servers: net.Server[] = [];
    let ok = true;
    for (let i = 0; i < n && ok; i++) {
      const srv = net.createServer();
      ok = await new Promise<boolean>((resolve) => {
        srv.once('error', () => resolve(false));
        srv.listen(base + i, host, () => resolve(true));
      });
      if (ok) servers.push(srv);
    }
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    if (ok) return base;
  }
  throw new Error(`no ${n} consecutive free ports found on ${host}`);
}

/**
 * `n` distinct free ports (all held open together while choosing, then
 * released), drawn below the kernel's ephemeral range so that outgoing
 * connections cannot take them before the nodes bind them.
 */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: net.Server[] = [];
  const ports: number[] = [];
  try {
    for (let attempt = 0; ports.length < n && attempt < 1000; attempt++) {
      const port = 20000 + Math.floor(Math.random() * 12000);
      if (ports.includes(port)) continue;
      const srv = net.createServer();
      const ok = await new Promise<boolean>((resolve) => {
        srv.once('error', () => resolve(false));
        srv.listen(port, host, () => resolve(true));
      });
      if (!ok) continue;
      servers.push(srv);
      ports.push(port);
    }
    if (ports.length < n) throw new Error(`could not find ${n} free ports on ${host}`);
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

/** Start `nodes` PostgreSQL nodes for a test. Call stop() in an after() hook. */
export async function startTestCluster(opts: TestClusterOptions = {}): Promise<TestCluster> {
  ensurePostgres();
  installHooks();
  sweepStale();
  const count = opts.nodes ?? 3;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), DIR_PREFIX));
  fs.writeFileSync(path.join(dir, OWNER_FILE), `${process.pid}\n`);
  live.add(dir);

  let cluster: DevCluster;
  try {
    let lastErr: unknown;
    for (let attempt = 1; ; attempt++) {
      // A port found free can be taken before postgres binds it: retry with new ports.
      const ports = await freePorts(count);
      try {
        if (attempt === 1) {
          cluster = createNodes({ count, basePort: 0, ports, dir, password: generatePassword(), fsync: false, settings: opts.settings });
        } else {
          cluster = rewritePorts(dir, ports);
        }
        await startNodes(dir, { timeoutMs: 60_000 });
        break;
      } catch (err) {
        lastErr = err;
        const busy = /Address already in use|could not bind/i.test(String((err as Error).message));
        if (!busy || attempt >= 3) throw lastErr;
        await stopNodes(dir).catch(() => {});
      }
    }
  } catch (err) {
    killNodesSync(dir);
    removeDir(dir);
    throw err;
  }
  const c = cluster!;
  const nodes: TestNode[] = c.nodes.map((n) => ({ id: n.id, host: n.host, port: n.port, dataDir: n.dataDir }));
  const logLevel = opts.logLevel ?? (process.env.PGQUORUM_TEST_LOG_LEVEL as Config['log']['level'] | undefined) ?? 'warn';
  const raw = devConfigObject(c, { port: 0 }, path.join(dir, 'state'));
  raw.log = { level: logLevel };
  const config = validateConfig(raw);
  const keep = opts.keep ?? process.env.PGQUORUM_KEEP_TEST_DIRS === '1';

  const node = (i: NodeRef): TestNode => {
    const n = typeof i === 'number' ? nodes[i] : nodes.find((x) => x.id === i);
    if (!n) throw new Error(`no node ${JSON.stringify(i)} (nodes are 0..${nodes.length - 1} or ${nodes.map((x) => x.id).join(', ')})`);
    return n;
  };
  const nodeClientConfig = (i: NodeRef): pg.ClientConfig => {
    const n = node(i);
    return { host: n.host, port: n.port, user: 'postgres', password: c.password, database: 'postgres', connectionTimeoutMillis: 10_000 };
  };
  const psql = path.join(ensurePostgres(), 'psql');
  let stopped: Promise<void> | null = null;

  return {
    dir,
    nodes,
    password: c.password,
    config,
    stop() {
      stopped ??= (async () => {
        try {
          await stopNodes(dir);
        } finally {
          live.delete(dir);
          if (!keep) removeDir(dir);
        }
      })();
      return stopped;
    },
    psqlNode(i, sql) {
      const n = node(i);
      const args = ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', n.host, '-p', String(n.port), '-U', 'postgres', '-d', 'postgres', '-f', '-'];
      try {
        const out = execFileSync(psql, args, {
          input: sql,
          encoding: 'utf8',
          stdio: ['pipe', 'pipe', 'pipe'],
          env: { ...process.env, PGPASSWORD: c.password, PGCONNECT_TIMEOUT: '10', PGAPPNAME: 'pgquorum-test' },
        });
        return out.replace(/\n$/, '');
      } catch (err) {
        const e = err as { stderr?: string; status?: number };
        throw new Error(`psql on node ${n.id} failed (exit ${e.status}): ${(e.stderr ?? '').trim()}\nSQL: ${sql}`);
      }
    },
    async queryNode<R>(i: NodeRef, sql: string, params?: unknown[]) {
      const client = new pg.Client(nodeClientConfig(i));
      await client.connect();
      try {
        const res = await client.query(sql, params);
        return res.rows as R[];
      } finally {
        await client.end();
      }
    },
    async connectNode(i) {
      const client = new pg.Client(nodeClientConfig(i));
      await client.connect();
      return client;
    },
    nodeClientConfig,
  };
}

/** Move not-yet-started nodes to other ports (after a port clash). */
function rewritePorts(dir: string, ports: number[]): DevCluster {
  const metaFile = path.join(dir, 'devcluster.json');
  const cluster = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as DevCluster;
  cluster.nodes.forEach((n, i) => {
    const conf = path.join(n.dataDir, 'pgquorum.conf');
    fs.writeFileSync(conf, fs.readFileSync(conf, 'utf8').replace(/^port = \d+$/m, `port = ${ports[i]}`));
    n.port = ports[i]!;
  });
  fs.writeFileSync(metaFile, JSON.stringify(cluster, null, 2) + '\n', { mode: 0o600 });
  return cluster;
}

function removeDir(dir: string): void {
  try {
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  } catch {
    /* best effort */
  }
}

/** On any exit of the test process, kill the nodes still running (synchronously) and remove their dirs. */
function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const cleanup = (): void => {
    for (const dir of live) {
      killNodesSync(dir);
      if (process.env.PGQUORUM_KEEP_TEST_DIRS !== '1') removeDir(dir);
    }
    live.clear();
  };
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      cleanup();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
}

/** Remove test clusters left behind by test processes that died (their owner PID is gone). */
function sweepStale(): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(os.tmpdir()).filter((e) => e.startsWith(DIR_PREFIX));
  } catch {
    return;
  }
  for (const e of entries) {
    const dir = path.join(os.tmpdir(), e);
    let owner: number;
    try {
      owner = Number(fs.readFileSync(path.join(dir, OWNER_FILE), 'utf8').trim());
    } catch {
      continue;
    }
    if (!Number.isInteger(owner) || owner <= 0 || owner === process.pid || processExists(owner)) continue;
    killNodesSync(dir);
    removeDir(dir);
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

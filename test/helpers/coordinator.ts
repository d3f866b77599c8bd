// Test harness for the coordinator: runs one in this process over a test
// cluster, and gives node-postgres clients and psql/pgbench environments
// that point at it.
import net from 'node:net';
import { once } from 'node:events';
import path from 'node:path';
import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import pg from 'pg';
import { startCoordinator, type Coordinator } from '../../src/main.js';
import type { Config } from '../../src/config/types.js';
import { startTestCluster, type TestCluster, type TestClusterOptions } from './cluster.js';

export interface TestCoordinator {
  coordinator: Coordinator;
  port: number;
  /** A connected node-postgres client to the coordinator (closed by stop()). */
  client(opts?: Partial<pg.ClientConfig>): Promise<pg.Client>;
  /** Environment for psql/pgbench child processes pointed at the coordinator. */
  env(extra?: Record<string, string>): NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

let coordinatorSeq = 0;

export async function startTestCoordinator(cluster: TestCluster, edit?: (c: Config) => void): Promise<TestCoordinator> {
  const config: Config = structuredClone(cluster.config);
  // Coordinators that run at the same time over the same nodes need their own
  // ids (GIDs carry them) and their own state directories.
  const n = ++coordinatorSeq;
  config.coordinator.id = `t${n}`;
  config.state.dir = path.join(cluster.dir, `state-t${n}`);
  edit?.(config);
  const coordinator = await startCoordinator(config);
  const clients: pg.Client[] = [];
  return {
    coordinator,
    port: coordinator.port,
    async client(opts = {}) {
      const c = new pg.Client({
        host: '127.0.0.1',
        port: coordinator.port,
        user: 'postgres',
        password: cluster.password,
        database: 'postgres',
        connectionTimeoutMillis: 10_000,
        ...opts,
      });
      c.on('error', () => {});
      await c.connect();
      clients.push(c);
      return c;
    },
    env(extra = {}) {
      return {
        ...process.env,
        PGHOST: '127.0.0.1',
        PGPORT: String(coordinator.port),
        PGUSER: 'postgres',
        PGPASSWORD: cluster.password,
        PGDATABASE: 'postgres',
        PGCONNECT_TIMEOUT: '10',
        ...extra,
      };
    },
    async stop() {
      await Promise.all(clients.map((c) => c.end().catch(() => {})));
      await coordinator.close();
    },
  };
}

/** md5 of every row of every table in schema public, ordered, per table. */
export async function tableChecksums(cluster: TestCluster, node: number): Promise<Record<string, string>> {
  const tables = await cluster.queryNode<{ t: string }>(
    node,
    "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
  );
  const out: Record<string, string> = {};
  for (const { t } of tables) {
    const rows = await cluster.queryNode<{ h: string | null; n: string }>(
      node,
      `SELECT md5(string_agg(x::text, E'\\n' ORDER BY x::text)) AS h, count(*) AS n FROM ${t} x`,
    );
    out[t] = `${rows[0]!.n}:${rows[0]!.h ?? ''}`;
  }
  return out;
}

/** The rows of every table are the same on each of `nodes` (indexes), and none holds a prepared transaction. */
export async function assertNodesIdentical(cluster: TestCluster, nodes: number[]): Promise<void> {
  const sums = await Promise.all(nodes.map((i) => tableChecksums(cluster, i)));
  for (let k = 1; k < nodes.length; k++) assert.deepEqual(sums[k], sums[0], `node ${nodes[k]! + 1} differs from node ${nodes[0]! + 1}`);
  for (const i of nodes) assert.equal(cluster.psqlNode(i, 'SELECT count(*) FROM pg_prepared_xacts'), '0', `prepared transactions left on node ${i + 1}`);
}

/** Per node: `after` minus `before` (counters read from each node). */
export function perNode(before: number[], after: number[]): number[] {
  return after.map((x, i) => x - before[i]!);
}

/** Every sequence of a node as 'schema.name=last_value', comma-separated, ordered. */
export async function sequenceStates(cluster: TestCluster, node: number): Promise<string> {
  const rows = await cluster.queryNode<{ s: string }>(
    node,
    "SELECT schemaname || '.' || sequencename || '=' || coalesce(last_value::text, 'null') AS s FROM pg_sequences ORDER BY 1",
  );
  return rows.map((r) => r.s).join(',');
}

/**
 * The usual fixture of a test file: a cluster of real nodes and an in-process
 * coordinator over it, started in before() and stopped in after(). Read
 * `.cluster` and `.coord` inside tests.
 */
export function useClusterWithCoordinator(
  opts: TestClusterOptions & { edit?: (c: Config) => void; setup?: () => Promise<void> } = {},
): { readonly cluster: TestCluster; readonly coord: TestCoordinator } {
  const f = {} as { cluster: TestCluster; coord: TestCoordinator };
  before(async () => {
    f.cluster = await startTestCluster(opts);
    f.coord = await startTestCoordinator(f.cluster, opts.edit);
    await opts.setup?.(); // root-level before() hooks of the test file do not wait for this one
  });
  after(async () => {
    await f.coord?.stop();
    await f.cluster?.stop();
  });
  return f;
}

/**
 * Send the coordinator at `port` a CancelRequest for `client`'s session, as
 * a driver does: with the BackendKeyData the client got, on a connection of
 * its own, which the server closes.
 */
export async function sendCancel(port: number, client: pg.Client): Promise<void> {
  const key = client as unknown as { processID: number; secretKey: number };
  const sock = net.connect(port, '127.0.0.1');
  await once(sock, 'connect');
  const b = Buffer.alloc(16);
  b.writeInt32BE(16, 0);
  b.writeInt32BE(80877102, 4);
  b.writeInt32BE(key.processID, 8);
  b.writeInt32BE(key.secretKey, 12);
  sock.end(b);
  await once(sock, 'close');
}

// Public surface of the local-cluster tooling used by the CLI (`pgquorum dev`)
// and the test harness, plus the coordinator config that fits a dev cluster.

import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DevCluster } from './nodes.js';

export { ensurePostgres, postgresVersion, runAsUser, PG_MAJOR, type RunAs } from './postgres.js';
export {
  createNodes,
  startNodes,
  stopNodes,
  nodeStatus,
  killNodesSync,
  killTree,
  signalTree,
  readCluster,
  hasCluster,
  livePostmaster,
  probe,
  logTail,
  type CreateNodesOptions,
  type DevCluster,
  type DevNode,
  type NodeStatus,
} from './nodes.js';

/** A password without quotes or shell-special characters. */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}

/**
 * The raw (unvalidated) coordinator config for a dev cluster: the nodes in
 * order, the `postgres` superuser with the nodes' password, state under
 * `stateDir`. Pass it to validateConfig, or write it with writeDevConfig.
 * `sockets`: the coordinator reaches each node over its Unix-domain socket
 * (in the node's data directory) instead of TCP.
 */
export function devConfigObject(
  cluster: DevCluster,
  coordinator: { port: number; host?: string; id?: string },
  stateDir: string,
  opts: { sockets?: boolean } = {},
): Record<string, unknown> {
  return {
    coordinator: { id: coordinator.id ?? 'c1', host: coordinator.host ?? '127.0.0.1', port: coordinator.port },
    nodes: cluster.nodes.map((n) => ({ id: n.id, host: opts.sockets ? n.dataDir : n.host, port: n.port })),
    users: [{ name: 'postgres', password: cluster.password }],
    state: { dir: stateDir },
    log: { level: 'info' },
  };
}

/** Write `obj` as JSON to `file` with mode 0600 (it holds passwords), atomically. */
export function writeConfigFile(file: string, obj: unknown): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(tmp, JSON.stringify(obj, null, 2) + '\n', { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
}

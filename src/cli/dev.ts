// The `pgquorum dev …` commands: a local cluster of PostgreSQL nodes (up,
// down, status) and the demo that adds a coordinator in the foreground.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig, validateConfig } from '../config/load.js';
import {
  createNodes,
  devConfigObject,
  generatePassword,
  hasCluster,
  nodeStatus,
  readCluster,
  startNodes,
  stopNodes,
  writeConfigFile,
  type DevCluster,
} from '../devcluster/index.js';
import { UsageError, type Parsed } from './args.js';
import { loadStartCoordinator, reloadConfig, runUntilSignal, say, type CoordinatorHandle } from './coordinator.js';

export const CONFIG_NAME = 'pgquorum.json';

interface UpResult {
  cluster: DevCluster;
  configFile: string;
}

/** Create (if absent) and start the nodes, write the config; shared by `dev up` and `dev`. */
async function up(p: Parsed, command: string): Promise<UpResult> {
  const count = p.values.nodes as number;
  const port = p.values.port as number;
  const dir = path.resolve(p.values.dir as string);
  if (port + count > 65535) throw new UsageError(`--port ${port} leaves no room for ${count} node ports (P+1..P+N must be at most 65535)`, command);

  let cluster: DevCluster;
  if (hasCluster(dir)) {
    cluster = readCluster(dir);
    const oldPort = cluster.nodes[0]!.port - 1;
    if (p.given.has('nodes') && cluster.nodes.length !== count) {
      throw new Error(`${dir} already holds ${plural(cluster.nodes.length, 'node')}, not ${count}; stop them (pgquorum dev down --dir ${p.values.dir}) and remove ${dir}, or use another --dir`);
    }
    if (p.given.has('port') && oldPort !== port) {
      throw new Error(`the nodes in ${dir} were created for --port ${oldPort}, not ${port}; use --port ${oldPort}, or remove ${dir}, or use another --dir`);
    }
    say(`using the existing dev cluster in ${dir} (${cluster.nodes.length} nodes)`);
  } else {
    cluster = createNodes({ count, basePort: port, dir, password: generatePassword(), fsync: p.values.fsync as boolean, log: say });
  }
  await startNodes(dir, { log: say });
  say(`${plural(cluster.nodes.length, 'node')} up, accepting connections on ${cluster.nodes.map((n) => `${n.host}:${n.port}`).join(', ')}`);

  const configFile = path.join(dir, CONFIG_NAME);
  if (fs.existsSync(configFile)) {
    say(`kept the existing ${configFile}`);
  } else {
    // The nodes are on this machine: their Unix-domain sockets cost less than loopback TCP (docs/config.md).
    const obj = devConfigObject(cluster, { port: cluster.nodes[0]!.port - 1 }, 'state', { sockets: true });
    // Nodes without fsync: the coordinator's decisions need not outlive an OS crash the nodes' data does not survive either.
    if (!cluster.fsync) (obj.state as Record<string, unknown>).fsync = false;
    validateConfig(obj, configFile); // never write a file the coordinator would refuse
    writeConfigFile(configFile, obj);
    say(`wrote ${configFile}`);
  }
  return { cluster, configFile };
}

/** `pgquorum dev up`: prints the config path on stdout. */
export async function cmdDevUp(p: Parsed): Promise<number> {
  const { configFile } = await up(p, 'dev up');
  process.stdout.write(`${configFile}\n`);
  return 0;
}

/** `pgquorum dev down` */
export async function cmdDevDown(p: Parsed): Promise<number> {
  const dir = path.resolve(p.values.dir as string);
  const cluster = readCluster(dir);
  await stopNodes(dir);
  say(`stopped ${plural(cluster.nodes.length, 'node')} in ${dir}`);
  return 0;
}

/** `pgquorum dev status`: one line per node on stdout. */
export async function cmdDevStatus(p: Parsed): Promise<number> {
  const dir = path.resolve(p.values.dir as string);
  const rows = await nodeStatus(dir);
  const out = ['node  address          pid      state'];
  for (const r of rows) {
    const state = r.accepting ? 'accepting connections' : r.running ? 'running, not accepting connections' : 'stopped';
    out.push(`${r.id.padEnd(5)} ${`${r.host}:${r.port}`.padEnd(16)} ${String(r.pid ?? '-').padEnd(8)} ${state}`);
  }
  process.stdout.write(out.join('\n') + '\n');
  return rows.every((r) => r.accepting) ? 0 : 3;
}

/** `pgquorum dev`: the demo. Nodes + coordinator until Ctrl-C, then everything stops. */
export async function cmdDev(p: Parsed): Promise<number> {
  const { cluster, configFile } = await up(p, 'dev');
  const stopAll = async (): Promise<void> => {
    await stopNodes(cluster.dir);
    say(`stopped the nodes in ${cluster.dir}`);
  };
  let handle: CoordinatorHandle;
  try {
    const config = loadConfig(configFile, process.env);
    const startCoordinator = await loadStartCoordinator();
    handle = await startCoordinator(config);
    const user = config.users[0]!;
    const host = config.coordinator.host === '0.0.0.0' ? '127.0.0.1' : config.coordinator.host;
    process.stdout.write(
      [
        '',
        `pgquorum is running: coordinator ${config.coordinator.id} on ${config.coordinator.host}:${handle.port}, ` +
          `${config.nodes.length} nodes on ports ${config.nodes.map((n) => n.port).join(', ')}.`,
        'Connect with:',
        '',
        `  PGPASSWORD='${user.password}' psql -h ${host} -p ${handle.port} -U ${user.name} postgres`,
        '',
        `Config: ${configFile}. Press Ctrl-C to stop the coordinator and the nodes.`,
        '',
      ].join('\n'),
    );
  } catch (err) {
    say(`could not start the coordinator; stopping the nodes`);
    await stopAll().catch((e: unknown) => say(`stopping the nodes failed: ${(e as Error).message}`));
    throw err;
  }
  const h = handle;
  return runUntilSignal({
    onStop: async () => {
      try {
        await h.close();
      } finally {
        await stopAll();
      }
    },
    onHup: () => reloadConfig(configFile, h),
    stopTimeoutMs: 60_000,
  });
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

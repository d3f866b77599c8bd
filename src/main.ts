// Wiring only: config -> parser, cluster view, listener; and an orderly stop.
import pino from 'pino';
import type { Config } from './config/types.js';
import { Cluster } from './cluster/cluster.js';
import { ClientListener } from './frontend/listener.js';
import { initParser } from './sql/parser.js';
import { PgqError, SqlState } from './errors.js';
import type { CoordinatorContext } from './context.js';
import { FileStateStore } from './state/file-store.js';
import { GxidAllocator } from './txn/gtm.js';
import { TwoPhaseCommit, type InflightTxn } from './txn/commit.js';
import { SharedReads } from './backend/shared-reads.js';
import { Resolver } from './txn/resolver.js';
import { CommitBarrier } from './txn/barrier.js';
import { CatalogCache } from './determinism/catalog.js';
import { setReadOnlyFunctions } from './sql/classify.js';
import { WriteGate } from './txn/write-gate.js';
import { HealthChecker } from './cluster/health.js';
import { NodeAdmin } from './cluster/admin.js';
import { nodeAddress } from './config/node-address.js';

/** How often the resolver looks for in-doubt transactions (it also runs once at start). */
const RESOLVE_INTERVAL_MS = 2000;

export interface Coordinator {
  port: number;
  ctx: CoordinatorContext;
  close(): Promise<void>;
}

export async function startCoordinator(config: Config, opts: { logDestination?: pino.DestinationStream } = {}): Promise<Coordinator> {
  const log = pino(
    { level: config.log.level, base: { coordinator: config.coordinator.id }, redact: ['password', '*.password'] },
    opts.logDestination,
  );
  await initParser();
  const cluster = new Cluster(config.nodes, log);
  cluster.writeQuorum = config.write_quorum;
  const store = new FileStateStore(config.state.dir, { fsync: config.state.fsync });
  await store.open();
  await cluster.attachStore(store);
  const gxids = new GxidAllocator(store, config.coordinator.id);
  const inflight = new Map<string, InflightTxn>();
  setReadOnlyFunctions(config.determinism.read_only_functions);
  const barrier = new CommitBarrier({ log });
  const commit = new TwoPhaseCommit({ cluster, store, gxids, log, inflight, barrier });
  const writes = new WriteGate(cluster);
  cluster.onNodeLeft = (node) => writes.nodeLeft(node);
  const sharedReads = new SharedReads(cluster, config.reads.prepare === 'keyed' ? config.reads.shared_connections : 0, log);
  const ctx = { config, cluster, log, sessions: new Map(), store, commit, inflight, barrier, catalog: new CatalogCache(), writes, sharedReads } as Omit<CoordinatorContext, 'admin' | 'health'> as CoordinatorContext;
  // In-doubt transactions left by an earlier run are finished before clients come in.
  const resolver = new Resolver(ctx, store, inflight);
  await resolver.runOnce();
  resolver.start(RESOLVE_INTERVAL_MS);
  ctx.health = new HealthChecker(ctx);
  ctx.admin = new NodeAdmin(ctx, writes, () => ctx.health, () => resolver.runOnce());
  ctx.health.start();
  const listener = new ClientListener(ctx);
  const port = await listener.listen(config.coordinator.port, config.coordinator.host);
  log.info({ port, nodes: config.nodes.map((n) => `${n.id}@${nodeAddress(n.host, n.port)}`) }, 'pgquorum coordinator listening');
  let closing: Promise<void> | null = null;
  return {
    port,
    ctx,
    close() {
      closing ??= (async () => {
        const done = listener.close();
        const bye = new PgqError('ERR_SHUTDOWN', 'terminating connection due to administrator command', {
          sqlstate: SqlState.ADMIN_SHUTDOWN,
          severity: 'FATAL',
        });
        for (const s of [...ctx.sessions.values()]) s.fatal(bye);
        sharedReads.close();
        await done;
        // Let commits in flight reach their end before the store closes (bounded).
        for (const deadline = Date.now() + 5000; inflight.size > 0 && Date.now() < deadline; ) {
          await new Promise((r) => setTimeout(r, 20));
        }
        await ctx.health.stop();
        await resolver.stop();
        await store.close();
        log.info('pgquorum coordinator stopped');
      })();
      return closing;
    },
  };
}

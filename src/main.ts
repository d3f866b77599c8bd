// Wiring only: config -> parser, cluster view, listener; and an orderly stop.
import pino from 'pino';
import type { Config } from './config/types.js';
import { Cluster } from './cluster/cluster.js';
import { ClientListener } from './frontend/listener.js';
import { initParser } from './sql/parser.js';
import { PgqError, SqlState } from './errors.js';
import type { CoordinatorContext } from './context.js';

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
  const ctx: CoordinatorContext = { config, cluster, log, sessions: new Map() };
  const listener = new ClientListener(ctx);
  const port = await listener.listen(config.coordinator.port, config.coordinator.host);
  log.info({ port, nodes: config.nodes.map((n) => `${n.id}@${n.host}:${n.port}`) }, 'pgquorum coordinator listening');
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
        await done;
        log.info('pgquorum coordinator stopped');
      })();
      return closing;
    },
  };
}

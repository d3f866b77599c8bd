// What every part of a running coordinator shares: config, cluster view,
// logger and the table of live sessions (for cancel and admin views).
import type { Logger } from 'pino';
import type { Config } from './config/types.js';
import type { Cluster } from './cluster/cluster.js';
import type { Session } from './frontend/session.js';

export interface CoordinatorContext {
  config: Config;
  cluster: Cluster;
  log: Logger;
  /** Live sessions by the pid handed to their client in BackendKeyData. */
  sessions: Map<number, Session>;
}

// What every part of a running coordinator shares: config, cluster view,
// logger and the table of live sessions (for cancel and admin views).
import type { Logger } from 'pino';
import type { Config } from './config/types.js';
import type { Cluster } from './cluster/cluster.js';
import type { Session } from './frontend/session.js';
import type { StateStore } from './state/store.js';
import type { InflightTxn, TwoPhaseCommit } from './txn/commit.js';

export interface CoordinatorContext {
  config: Config;
  cluster: Cluster;
  log: Logger;
  /** Live sessions by the pid handed to their client in BackendKeyData. */
  sessions: Map<number, Session>;
  store: StateStore;
  commit: TwoPhaseCommit;
  /** Transactions in two-phase commit right now, by GID. */
  inflight: Map<string, InflightTxn>;
}

// What every part of a running coordinator shares: config, cluster view,
// logger and the table of live sessions (for cancel and admin views).
import type { Logger } from 'pino';
import type { Config } from './config/types.js';
import type { Cluster } from './cluster/cluster.js';
import type { Session } from './frontend/session.js';
import type { StateStore } from './state/store.js';
import type { InflightTxn, TwoPhaseCommit } from './txn/commit.js';
import type { CommitBarrier } from './txn/barrier.js';
import type { CatalogCache } from './determinism/catalog.js';

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
  /** Gate around every commit; `pgquorum verify` holds it for a consistent cut (src/txn/barrier.ts). */
  barrier: CommitBarrier;
  /** Tables' defaults and keys, functions' volatility, read from the main node (src/determinism/catalog.ts). */
  catalog: CatalogCache;
}

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
import type { WriteGate } from './txn/write-gate.js';
import type { NodeAdmin } from './cluster/admin.js';
import type { HealthChecker } from './cluster/health.js';
import type { SharedReads } from './backend/shared-reads.js';

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
  /** Sessions that write pass it; attach/detach close it (src/txn/write-gate.ts). */
  writes: WriteGate;
  /** Node attach/detach (src/cluster/admin.ts). */
  admin: NodeAdmin;
  /** Node health checks (src/cluster/health.ts). */
  health: HealthChecker;
  /** Connections that sessions share for keyed autocommit reads (src/backend/shared-reads.ts); absent: no sharing. */
  sharedReads?: SharedReads;
}

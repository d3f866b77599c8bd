// Entry point of the state store: the interface and the store the
// configuration asks for (today always the embedded file store).
import type { Config } from '../config/types.js';
import { FileStateStore } from './file-store.js';
import type { StateStore } from './store.js';

export type { ClusterRecord, GxidRange, NodeRecord, StateStore } from './store.js';
export { FileStateStore } from './file-store.js';

/** The state store for `cfg` (not opened yet: call open()). */
export function createStateStore(cfg: Pick<Config, 'state'>): StateStore {
  return new FileStateStore(cfg.state.dir, { fsync: cfg.state.fsync });
}

// Runs a coordinator in the foreground for `pgquorum start` and `pgquorum dev`:
// loads src/main.ts lazily, waits for SIGINT/SIGTERM to close it, and
// handles SIGHUP (re-read + check the config; the reload hook).

import type { Config } from '../config/types.js';
import { loadConfig } from '../config/load.js';

export interface CoordinatorHandle {
  port: number;
  close(): Promise<void>;
  /** Optional hook: apply a re-read config without a restart (SIGHUP). */
  reload?(config: Config): void | Promise<void>;
}
export type StartCoordinator = (config: Config) => Promise<CoordinatorHandle>;

/** Print one line on stderr, prefixed so it stands out from the coordinator's logs. */
export function say(msg: string): void {
  process.stderr.write(`pgquorum: ${msg}\n`);
}

/**
 * `startCoordinator` from src/main.ts, imported only when needed so that
 * `dev up`/`dev down` do not load the coordinator (and its parser).
 */
export async function loadStartCoordinator(): Promise<StartCoordinator> {
  const spec = '../main.js';
  let mod: { startCoordinator?: unknown };
  try {
    mod = (await import(spec)) as { startCoordinator?: unknown };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_MODULE_NOT_FOUND' && /main\.js/.test(e.message) && !/imported from .*[/\\]main\.js/.test(e.message)) {
      throw new Error('the coordinator is not built: dist/src/main.js is missing (src/main.ts must export startCoordinator)');
    }
    throw err;
  }
  if (typeof mod.startCoordinator !== 'function') throw new Error('src/main.ts does not export a function startCoordinator(config)');
  return mod.startCoordinator as StartCoordinator;
}

/**
 * Wait for SIGINT or SIGTERM, then run `onStop` (bounded by `stopTimeoutMs`)
 * and resolve with the exit code: 0 on a clean stop, 1 when it failed or
 * timed out. A second SIGINT/SIGTERM exits at once with 1. SIGHUP calls onHup.
 */
export function runUntilSignal(opts: {
  onStop: () => Promise<void>;
  onHup?: () => void | Promise<void>;
  stopTimeoutMs?: number;
}): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (stopping) {
        say(`${sig} again: exiting without waiting`);
        process.exit(1);
      }
      stopping = true;
      say(`${sig}: shutting down`);
      const timer = setTimeout(() => {
        say(`shutdown took more than ${(opts.stopTimeoutMs ?? 30_000) / 1000}s; exiting`);
        finish(1);
      }, opts.stopTimeoutMs ?? 30_000);
      opts.onStop().then(
        () => {
          clearTimeout(timer);
          finish(0);
        },
        (err: unknown) => {
          clearTimeout(timer);
          say(`shutdown failed: ${err instanceof Error ? err.message : String(err)}`);
          finish(1);
        },
      );
    };
    const onHup = (): void => {
      if (!opts.onHup || stopping) return;
      Promise.resolve()
        .then(opts.onHup)
        .catch((err: unknown) => say(`SIGHUP: ${err instanceof Error ? err.message : String(err)}`));
    };
    const finish = (code: number): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('SIGHUP', onHup);
      resolve(code);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('SIGHUP', onHup);
  });
}

/**
 * SIGHUP: re-read and validate the config file. When the coordinator offers
 * `reload`, hand it the new config; otherwise say a restart is needed.
 * An invalid file is reported and the running config stays.
 */
export async function reloadConfig(file: string, handle: CoordinatorHandle): Promise<void> {
  let next: Config;
  try {
    next = loadConfig(file, process.env);
  } catch (err) {
    say(`SIGHUP: ${file} not reloaded, keeping the running config: ${(err as Error).message}`);
    return;
  }
  if (typeof handle.reload === 'function') {
    await handle.reload(next);
    say(`SIGHUP: reloaded ${next.path}`);
  } else {
    say(`SIGHUP: ${next.path} is valid, but only a restart applies config changes for now`);
  }
}

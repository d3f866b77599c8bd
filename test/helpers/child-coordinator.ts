// A coordinator in a child process (`pgquorum start`), for tests that kill it:
// SIGKILL at failpoints, restarts, crash loops.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Config } from '../../src/config/types.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** dist/src/cli/main.js, next to this compiled file's dist/test/helpers. */
const CLI = path.resolve(here, '../../src/cli/main.js');

export interface ChildCoordinator {
  proc: ChildProcess;
  port: number;
  /** Everything it wrote to stderr and stdout so far. */
  output(): string;
  /** Resolves with the exit signal or code. */
  exited: Promise<string>;
  kill(signal?: NodeJS.Signals): Promise<string>;
}

/** Write `config` to `file` (JSON) for `pgquorum start --config`. */
export function writeConfig(config: Config, file: string): void {
  const { path: _p, ...rest } = config as Config & { path?: string };
  void _p;
  fs.writeFileSync(file, JSON.stringify(rest, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2), { mode: 0o600 });
}

export async function startChildCoordinator(configFile: string, port: number, env: Record<string, string> = {}): Promise<ChildCoordinator> {
  const proc = spawn(process.execPath, [CLI, 'start', '--config', configFile], {
    env: { ...process.env, PGQUORUM_PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<string>((resolve) => proc.once('exit', (code, sig) => resolve(sig ?? String(code))));
  // Ready when it says it listens (or fails).
  const deadline = Date.now() + 30_000;
  while (!/listening/.test(out)) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`coordinator exited during start:\n${out}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`coordinator did not start within 30 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    proc,
    port,
    output: () => out,
    exited,
    async kill(signal = 'SIGKILL') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** A connected node-postgres client to a coordinator on `port` (errors after a crash are expected: swallowed). */
export async function clientOn(port: number, password: string): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres', connectionTimeoutMillis: 5000 });
  c.on('error', () => {});
  await c.connect();
  return c;
}

// Test harness for the pgquorum command line: runs the compiled CLI (or
// bin/pgquorum when the tests run from the repository's own dist/) in a
// child process, asynchronously: the coordinator under test usually runs in
// the test's own process, and a synchronous child would block it.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The compiled CLI next to these compiled helpers (dist/src/cli/main.js under `make test`). */
export const CLI = path.resolve(here, '../../src/cli/main.js');
export const REPO = path.resolve(here, '../../..');
/** bin/pgquorum when the tests run from the repository's own dist/ (make test); else null. */
export const BIN = path.basename(path.resolve(here, '../..')) === 'dist' && fs.existsSync(path.join(REPO, 'bin/pgquorum')) ? path.join(REPO, 'bin/pgquorum') : null;

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `cmd args` to its end and collect its output. */
export function runProcess(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The pgquorum CLI with `args` (through bin/pgquorum when `useBin` and it is there). */
export function runCli(args: string[], opts: { useBin?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  const [cmd, argv] = opts.useBin && BIN ? [BIN, args] : [process.execPath, [CLI, ...args]];
  return runProcess(cmd, argv, { cwd: REPO, env: opts.env });
}

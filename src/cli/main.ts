// Entry point of the `pgquorum` command line (bin/pgquorum runs the compiled
// dist/src/cli/main.js): picks the command, parses its flags, maps errors to
// exit codes (1 = failure, 2 = usage) and runs it.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../errors.js';
import { loadConfig } from '../config/load.js';
import { COMMAND_ARGS, COMMAND_FLAGS, HELP, USAGE, UsageError, parseFlags, type Parsed } from './args.js';
import { loadStartCoordinator, reloadConfig, runUntilSignal, say } from './coordinator.js';
import { cmdDev, cmdDevDown, cmdDevStatus, cmdDevUp } from './dev.js';
import { cmdVerify } from './verify.js';
import { cmdStatus } from './status.js';
import { cmdNode, cmdNodeAttach, cmdNodeDetach } from './node.js';

type Command = (p: Parsed) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  start: cmdStart,
  dev: cmdDev,
  'dev up': cmdDevUp,
  'dev down': cmdDevDown,
  'dev status': cmdDevStatus,
  verify: cmdVerify,
  status: cmdStatus,
  node: cmdNode,
  'node attach': cmdNodeAttach,
  'node detach': cmdNodeDetach,
};

/** Run the CLI with `argv` (without node and script); resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    const first = argv[0];
    if (first === undefined) {
      process.stderr.write(`${USAGE}\n`);
      return 2;
    }
    if (first === '--help' || first === '-h') {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    if (first === '--version' || first === '-V') {
      process.stdout.write(`pgquorum ${version()}\n`);
      return 0;
    }
    if (first === 'help') return help(argv.slice(1));
    // Longest command name first: "dev up" before "dev".
    const two = argv.length >= 2 ? `${first} ${argv[1]}` : '';
    const name = COMMANDS[two] ? two : COMMANDS[first] ? first : null;
    if (name === null) {
      throw new UsageError(first.startsWith('-') ? `unknown flag ${first}` : `unknown command ${JSON.stringify(first)}`);
    }
    if (name === 'dev' && argv[1] !== undefined && !argv[1].startsWith('-')) {
      throw new UsageError(`unknown command "dev ${argv[1]}" (dev commands: up, down, status)`, 'dev');
    }
    if (name === 'node' && argv[1] !== undefined && !argv[1].startsWith('-')) {
      throw new UsageError(`unknown command "node ${argv[1]}" (node commands: attach, detach)`, 'node');
    }
    const parsed = parseFlags(argv.slice(name.split(' ').length), COMMAND_FLAGS[name]!, name, COMMAND_ARGS[name] ?? 0);
    if (parsed.help) {
      process.stdout.write(`${HELP[name]}\n`);
      return 0;
    }
    return await COMMANDS[name]!(parsed);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`pgquorum: ${err.message}\n\n${err.command ? HELP[err.command] : USAGE}\n`);
      return 2;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`pgquorum: ${err.message}\n`);
      return 1;
    }
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`pgquorum: ${msg}\n`);
    if (process.env.PGQUORUM_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}

function help(args: string[]): number {
  if (args.length === 0) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const name = args.join(' ');
  const text = HELP[name];
  if (text === undefined) throw new UsageError(`no help for unknown command ${JSON.stringify(name)}`);
  process.stdout.write(`${text}\n`);
  return 0;
}

/** `pgquorum start --config FILE`: a coordinator in the foreground until SIGINT/SIGTERM. */
async function cmdStart(p: Parsed): Promise<number> {
  const file = p.values.config as string | undefined;
  if (file === undefined) throw new UsageError('--config FILE is required', 'start');
  const config = loadConfig(file, process.env);
  const startCoordinator = await loadStartCoordinator();
  const handle = await startCoordinator(config);
  say(
    `coordinator ${config.coordinator.id} listening on ${config.coordinator.host}:${handle.port} ` +
      `with ${config.nodes.length} node(s); config ${config.path} (pid ${process.pid})`,
  );
  return runUntilSignal({
    onStop: () => handle.close(),
    onHup: () => reloadConfig(file, handle),
  });
}

function version(): string {
  // dist/src/cli/main.js or src/cli/main.ts: package.json is three or two levels up.
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const up of ['../../..', '../..']) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(here, up, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'pgquorum' && pkg.version) return pkg.version;
    } catch {
      /* try the next */
    }
  }
  return 'unknown';
}

function isEntry(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return fs.realpathSync(script) === fs.realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) {
  const code = await main(process.argv.slice(2));
  process.exit(code);
}

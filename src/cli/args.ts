// Command-line parsing for `pgquorum`: the command table, flag parsing with
// strict unknown-flag errors, and the usage/help texts (see docs/cli.md).

export class UsageError extends Error {
  constructor(
    message: string,
    /** The command whose usage to print ('' = general usage). */
    readonly command = '',
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

export type FlagType = 'string' | 'int' | 'bool';
export interface FlagSpec {
  type: FlagType;
  default?: string | number | boolean;
  /** For int flags: inclusive range. */
  min?: number;
  max?: number;
}
export type FlagValues = Record<string, string | number | boolean | undefined>;

export interface Parsed {
  values: FlagValues;
  /** Flags the user gave explicitly (not defaults). */
  given: Set<string>;
  help: boolean;
  /** Positional arguments (only commands in COMMAND_ARGS take any). */
  args: string[];
}

/**
 * Parse `--name value`, `--name=value` and `--bool`; `-h`/`--help` set `help`.
 * Up to `maxArgs` arguments that are not flags (nor flag values) go to `args`.
 */
export function parseFlags(argv: string[], spec: Record<string, FlagSpec>, command: string, maxArgs = 0): Parsed {
  const values: FlagValues = {};
  const given = new Set<string>();
  const args: string[] = [];
  let help = false;
  for (const [name, s] of Object.entries(spec)) values[name] = s.default;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') {
      help = true;
      continue;
    }
    if (!arg.startsWith('-') && args.length < maxArgs) {
      args.push(arg);
      continue;
    }
    if (!arg.startsWith('--') || arg === '--') {
      throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`, command);
    }
    const eq = arg.indexOf('=');
    let name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    let inline: string | undefined = eq < 0 ? undefined : arg.slice(eq + 1);
    let s = spec[name];
    if (!s && name.startsWith('no-') && spec[name.slice(3)]?.type === 'bool' && inline === undefined) {
      name = name.slice(3);
      s = spec[name];
      inline = 'false';
    }
    if (!s) throw new UsageError(`unknown flag --${name}`, command);
    let raw: string;
    if (s.type === 'bool') {
      raw = inline ?? 'true';
      if (!['true', 'false', 'on', 'off', '1', '0'].includes(raw)) throw new UsageError(`--${name} takes no value (or true/false), got ${JSON.stringify(raw)}`, command);
      values[name] = ['true', 'on', '1'].includes(raw);
    } else {
      if (inline !== undefined) raw = inline;
      else {
        const next = argv[i + 1];
        if (next === undefined || next.startsWith('--')) throw new UsageError(`--${name} needs a value`, command);
        raw = next;
        i++;
      }
      if (s.type === 'int') {
        const n = Number(raw);
        const min = s.min ?? -Infinity;
        const max = s.max ?? Infinity;
        if (!/^\d+$/.test(raw) || n < min || n > max) {
          throw new UsageError(`--${name} must be an integer${Number.isFinite(min) ? ` from ${min} to ${max}` : ''}, got ${JSON.stringify(raw)}`, command);
        }
        values[name] = n;
      } else {
        if (raw === '') throw new UsageError(`--${name} must not be empty`, command);
        values[name] = raw;
      }
    }
    given.add(name);
  }
  return { values, given, help, args };
}

export const DEV_FLAGS: Record<string, FlagSpec> = {
  nodes: { type: 'int', default: 3, min: 1, max: 9 },
  port: { type: 'int', default: 6432, min: 1, max: 65500 },
  dir: { type: 'string', default: './.dev' },
  fsync: { type: 'bool', default: true },
};

const NODE_FLAGS: Record<string, FlagSpec> = {
  config: { type: 'string' },
  user: { type: 'string' },
  dbname: { type: 'string', default: 'postgres' },
};

export const COMMAND_FLAGS: Record<string, Record<string, FlagSpec>> = {
  start: { config: { type: 'string' } },
  dev: DEV_FLAGS,
  'dev up': DEV_FLAGS,
  'dev down': { dir: { type: 'string', default: './.dev' } },
  'dev status': { dir: { type: 'string', default: './.dev' } },
  verify: {
    config: { type: 'string' },
    user: { type: 'string' },
    dbname: { type: 'string' },
    table: { type: 'string' },
    'chunk-rows': { type: 'int', default: 10000, min: 1, max: 1000000 },
    host: { type: 'string' },
    port: { type: 'int', min: 1, max: 65535 },
    json: { type: 'bool', default: false },
  },
  status: {
    config: { type: 'string' },
    user: { type: 'string' },
    dbname: { type: 'string', default: 'postgres' },
    json: { type: 'bool', default: false },
  },
  node: {},
  'node attach': NODE_FLAGS,
  'node detach': NODE_FLAGS,
  help: {},
};

/** How many positional arguments a command takes (default none). */
export const COMMAND_ARGS: Record<string, number> = {
  'node attach': 1,
  'node detach': 1,
};

export const USAGE = `Usage: pgquorum <command> [flags]

Commands:
  start --config FILE     run a coordinator in the foreground
  dev                     demo: start a local 3-node cluster and a coordinator
  dev up                  create (if absent) and start local PostgreSQL nodes
  dev down                stop the local nodes
  dev status              show the local nodes
  verify --config FILE    compare the up nodes' tables and sequences (exit 0 same, 1 different, 2 could not check)
  status --config FILE    show the coordinator's nodes (SHOW pgquorum.nodes)
  node detach ID          take node ID out of service cleanly (--config FILE)
  node attach ID          put a cleanly detached node ID back in service (--config FILE)
  help [COMMAND]          show help for a command

Flags: --help (-h) on any command, --version.
Run 'pgquorum help COMMAND' for details. Documentation: docs/cli.md`;

const DEV_FLAG_HELP = `  --nodes N      number of nodes (default 3, at most 9)
  --port P       coordinator port; node i listens on P+i (default 6432)
  --dir D        where the nodes and pgquorum.json live (default ./.dev)
  --no-fsync     create the nodes with fsync off (faster, unsafe on power loss)`;

const COORDINATOR_FLAG_HELP = `  --config FILE     the coordinator's config (address from coordinator.host/port;
                    PGQUORUM_HOST/PGQUORUM_PORT override it)
  --user NAME       log in as NAME, a user of FILE's users (default: the first)
  --dbname DB       database to log in to (default postgres)`;

export const HELP: Record<string, string> = {
  start: `Usage: pgquorum start --config FILE

Runs a coordinator in the foreground with the configuration in FILE (JSON,
see docs/config.md). PGQUORUM_HOST, PGQUORUM_PORT and PGQUORUM_LOG_LEVEL
override the file. SIGTERM or SIGINT shut it down cleanly (exit 0); SIGHUP
re-reads and checks FILE (changes take effect on restart for now).
An invalid FILE is refused with the name of the bad key (exit 1).`,
  dev: `Usage: pgquorum dev [--nodes N] [--port P] [--dir D]

Demo: 'dev up' plus a coordinator in the foreground on port P. Prints a psql
command line to connect. Ctrl-C (or SIGTERM) stops the coordinator and the
nodes.

${DEV_FLAG_HELP}`,
  'dev up': `Usage: pgquorum dev up [--nodes N] [--port P] [--dir D] [--no-fsync]

Creates N local PostgreSQL 15 nodes in D (once; later runs reuse them) and
starts them on 127.0.0.1 ports P+1..P+N, writes the coordinator config
D/pgquorum.json (port P, the nodes, user postgres with a generated password;
mode 0600) unless it exists, prints its path and returns once every node
accepts connections. The nodes keep running after the command exits.

${DEV_FLAG_HELP}`,
  'dev down': `Usage: pgquorum dev down [--dir D]

Stops the local nodes in D (fast shutdown, SIGKILL after 30s). The data
stays; 'dev up --dir D' starts them again. Remove D to start afresh.

  --dir D        default ./.dev`,
  'dev status': `Usage: pgquorum dev status [--dir D]

Shows each local node in D: port, PID, whether it accepts connections.

  --dir D        default ./.dev`,
  verify: `Usage: pgquorum verify --config FILE [--table NAME] [--user NAME] [--dbname DB]
                       [--chunk-rows N] [--host H] [--port P] [--json]

Compares every table (rows in key order, checksummed in chunks) and every
sequence of database DB across all 'up' nodes, at one consistent cut: it
holds the coordinator's commit barrier while it opens a REPEATABLE READ
snapshot on every node (a few ms; the length is printed), then compares in
those snapshots while the cluster keeps working. Connects to the coordinator
of FILE and to each node directly, as a user of FILE's users.

  --table NAME      only this table (NAME or schema.NAME); skips sequences
  --user NAME       user from the config's users (default: the first)
  --dbname DB       database (default: the user name)
  --chunk-rows N    rows per checksum chunk (default 10000)
  --host H, --port P  the coordinator's address (default: from FILE)
  --json            the report as JSON on stdout

Exit: 0 identical, 1 different (table, nodes and first differing key are
named), 2 could not check (coordinator unreachable, fewer than 2 nodes up,
a node refused the connection, bad config).`,
  status: `Usage: pgquorum status --config FILE [--json] [--user NAME] [--dbname DB]

Connects to the coordinator of FILE and prints SHOW pgquorum.nodes: one row
per node (id, address, state, role, counters, ... whatever columns the
coordinator reports) as an aligned table, or with --json as a JSON array of
objects keyed by column name (values as text, null for NULL).

${COORDINATOR_FLAG_HELP}
  --json            JSON on stdout instead of the table

Exit: 0 printed, 1 the coordinator is unreachable or answered with an error
(message and SQLSTATE on stderr), 2 usage error.`,
  node: `Usage: pgquorum node detach ID --config FILE [--user NAME] [--dbname DB]
       pgquorum node attach ID --config FILE [--user NAME] [--dbname DB]

Node commands: detach, attach. See 'pgquorum help node detach'.`,
  'node detach': `Usage: pgquorum node detach ID --config FILE [--user NAME] [--dbname DB]

Takes node ID out of service cleanly: sends PGQUORUM NODE DETACH ID to the
coordinator of FILE and prints its answer. The coordinator stops using the
node; 'node attach ID' can put it back later as long as it misses no write.

${COORDINATOR_FLAG_HELP}

Exit: 0 done, 1 the coordinator refused (message, SQLSTATE and hint on
stderr) or is unreachable, 2 usage error.`,
  'node attach': `Usage: pgquorum node attach ID --config FILE [--user NAME] [--dbname DB]

Puts node ID back in service: sends PGQUORUM NODE ATTACH ID to the
coordinator of FILE and prints its answer. Only a node that was detached
cleanly (or lost while nothing was being written) and has missed no write
since can come back; otherwise the coordinator refuses and says the node
needs recovery.

${COORDINATOR_FLAG_HELP}

Exit: 0 done, 1 the coordinator refused (message, SQLSTATE and hint on
stderr) or is unreachable, 2 usage error.`,
  help: `Usage: pgquorum help [COMMAND]

Shows the general usage, or the help of COMMAND (e.g. 'pgquorum help dev up').`,
};

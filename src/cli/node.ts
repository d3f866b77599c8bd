// `pgquorum node detach ID` / `pgquorum node attach ID`: send
// PGQUORUM NODE DETACH|ATTACH ID to the coordinator of --config, which
// answers it itself. Prints the coordinator's notices (or `done: QUERY`) and
// exits 0; a refusal prints `pgquorum: MESSAGE (SQLSTATE X)` and its hint on
// stderr and exits 1.
import { UsageError, type Parsed } from './args.js';
import { noticeLines, withCoordinator } from './status.js';

/** Node ids the command accepts (sent unquoted in the query). */
const NODE_ID = /^[A-Za-z0-9_.-]+$/;

/** `pgquorum node` without a subcommand. */
export async function cmdNode(_p: Parsed): Promise<number> {
  throw new UsageError('node needs a subcommand: attach or detach', 'node');
}

export function cmdNodeAttach(p: Parsed): Promise<number> {
  return nodeCommand(p, 'attach');
}

export function cmdNodeDetach(p: Parsed): Promise<number> {
  return nodeCommand(p, 'detach');
}

async function nodeCommand(p: Parsed, verb: 'attach' | 'detach'): Promise<number> {
  const command = `node ${verb}`;
  const id = p.args[0];
  if (id === undefined) throw new UsageError('the node ID is required', command);
  if (!NODE_ID.test(id)) throw new UsageError(`invalid node ID ${JSON.stringify(id)} (letters, digits, '_', '.', '-')`, command);
  const sql = `PGQUORUM NODE ${verb.toUpperCase()} ${id}`;
  return withCoordinator(p, command, async (session) => {
    const a = await session.query(sql);
    const lines = a.notices.flatMap(noticeLines);
    if (lines.length === 0) lines.push(`done: ${sql}`);
    process.stdout.write(lines.map((l) => `${l}\n`).join(''));
    return 0;
  });
}

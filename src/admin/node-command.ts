// PGQUORUM NODE ATTACH|DETACH <id>: the coordinator's own statements for
// taking a node out of service and putting it back (src/cluster/admin.ts),
// sent by `pgquorum node attach|detach` (src/cli/node.ts) or by any client
// as a simple query. Only superusers (of the main node) may run them, and
// not inside a transaction block.
import { PgqError, SqlState } from '../errors.js';
import type { CoordinatorContext } from '../context.js';
import type { Session } from '../frontend/session.js';
import { encodeCommandComplete, encodeNoticeResponse, encodeReadyForQuery, firstRowText } from '../protocol/backend.js';
import { encodeQuery } from '../protocol/frontend.js';

export interface AdminCommand {
  verb: 'attach' | 'detach';
  node: string;
}

const PATTERN = /^\s*pgquorum\s+node\s+(attach|detach)\s+(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_.-]+))\s*;?\s*$/i;

/** The command in `sql`, or null when it is not one (ordinary SQL). Cheap: most queries fail at the first letter. */
export function parseAdminCommand(sql: string): AdminCommand | null {
  const first = /\S/.exec(sql);
  if (!first || (first[0] !== 'p' && first[0] !== 'P')) return null;
  const m = PATTERN.exec(sql);
  if (!m) {
    if (/^\s*pgquorum\b/i.test(sql)) {
      throw new PgqError('ERR_ADMIN_SYNTAX', 'syntax error in a pgquorum command', {
        sqlstate: SqlState.SYNTAX_ERROR,
        hint: 'The commands are PGQUORUM NODE ATTACH <id> and PGQUORUM NODE DETACH <id>.',
      });
    }
    return null;
  }
  return { verb: m[1]!.toLowerCase() as AdminCommand['verb'], node: m[2] ?? m[3] ?? m[4]! };
}

/** Run an admin command for session `s`: NOTICE with the outcome, CommandComplete, ReadyForQuery; or throw. */
export async function runAdminCommand(cmd: AdminCommand, ctx: CoordinatorContext, s: Session): Promise<void> {
  if (s.status !== 'I') {
    throw new PgqError('ERR_ADMIN_IN_TXN', `PGQUORUM NODE ${cmd.verb.toUpperCase()} cannot run inside a transaction block`, {
      sqlstate: SqlState.ACTIVE_SQL_TRANSACTION,
    });
  }
  await requireSuperuser(s, `PGQUORUM NODE ${cmd.verb.toUpperCase()}`);
  const msg = cmd.verb === 'detach' ? await ctx.admin.detach(cmd.node) : await ctx.admin.attach(cmd.node, { auto: false });
  s.log.info({ node: cmd.node, by: s.user }, msg);
  s.client.send(encodeNoticeResponse({ S: 'NOTICE', V: 'NOTICE', C: '00000', M: msg }));
  s.client.send(encodeCommandComplete(`PGQUORUM NODE ${cmd.verb.toUpperCase()}`));
  s.client.send(encodeReadyForQuery(s.status));
}

const IS_SUPER = encodeQuery('SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user');

/** Refuse (42501) unless the session's user is a superuser on a node the session is connected to. */
export async function requireSuperuser(s: Session, what: string): Promise<void> {
  const c = s.exec.liveConns()[0];
  let ok = false;
  if (c && !c.busy) {
    const r = await c.exchange(IS_SUPER, { buffer: true });
    ok = !r.lost && !r.error && firstRowText(r.frames)?.[0] === 't';
  }
  if (!ok) {
    throw new PgqError('ERR_ADMIN_PRIVILEGE', `permission denied: ${what} needs a superuser`, {
      sqlstate: SqlState.INSUFFICIENT_PRIVILEGE,
    });
  }
}

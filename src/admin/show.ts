// SHOW pgquorum.* answered by the coordinator itself, through any client:
// pgquorum.nodes (node states, roles, counters) and pgquorum.transactions
// (transactions in two-phase commit right now).
import type { CoordinatorContext } from '../context.js';
import {
  encodeCommandComplete,
  encodeDataRow,
  encodeRowDescription,
  type FieldDescription,
} from '../protocol/backend.js';

const TEXT_OID = 25;

function fields(names: string[]): FieldDescription[] {
  return names.map((name) => ({ name, tableOid: 0, columnAttr: 0, typeOid: TEXT_OID, typeSize: -1, typeModifier: -1, format: 0 }));
}

export interface ShowResult {
  columns: string[];
  rows: (string | null)[][];
}

/** The rows of `SHOW pgquorum.<what>`, or null when `name` is not one of ours. */
export function showCommand(name: string, ctx: CoordinatorContext): ShowResult | null {
  switch (name.toLowerCase()) {
    case 'pgquorum.nodes': {
      const main = ctx.cluster.upNodes()[0]; // role: main is the lowest-ranked `up` node
      return {
        columns: [
          'id', 'host', 'port', 'state', 'role', 'weight', 'reads', 'writes', 'state_changed_at', 'reason',
          'missed_writes', 'detached', 'last_check_at', 'last_check_error', 'read_sessions',
        ],
        rows: ctx.cluster.nodes.map((n) => [
          n.id,
          n.host,
          String(n.port),
          n.state,
          n === main ? 'main' : n.state === 'up' ? 'replica' : null,
          String(n.weight),
          String(n.reads),
          String(n.writes),
          n.stateChangedAt.toISOString(),
          n.stateReason,
          String(n.missedWrites),
          String(n.detached),
          n.lastCheckAt?.toISOString() ?? null,
          n.lastCheckError,
          String(n.readSessions),
        ]),
      };
    }
    case 'pgquorum.transactions':
      return {
        columns: ['gxid', 'gid', 'session', 'phase', 'started_at', 'nodes'],
        rows: [...ctx.inflight.values()].map((t) => [
          t.gxid.toString(),
          t.gid,
          String(t.session),
          t.phase,
          t.startedAt.toISOString(),
          t.nodes.join(','),
        ]),
      };
    default:
      return null;
  }
}

/** The wire messages for a ShowResult (without ReadyForQuery). */
export function encodeShow(r: ShowResult): Buffer[] {
  const out = [encodeRowDescription(fields(r.columns))];
  for (const row of r.rows) out.push(encodeDataRow(row));
  out.push(encodeCommandComplete(`SHOW`));
  return out;
}

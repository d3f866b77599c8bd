// The request for a keyed write (or keyed read) the client sent by the simple
// protocol, run on the nodes as a server-side prepared statement
// (src/sql/parameterize.ts, docs/routing.md "Keyed statements as prepared
// statements"). Each node
// connection gets the statement's Parse the first time it needs it; a
// connection keeps at most MAX_OWN_STATEMENTS of them (the least recently
// used is closed to make room). The answer the client sees is the simple
// protocol's: ParseComplete and BindComplete are skipped, a SELECT's or a
// RETURNING list's rows come with the RowDescription of a portal Describe,
// and an error's position is mapped back to the client's text.
import { UNKNOWN_STATEMENT, type ExchangeResult, type NodeConnection } from '../backend/node-connection.js';
import { decodeErrorFields, encodeErrorResponse } from '../protocol/backend.js';
import { BE } from '../protocol/constants.js';
import { SYNC, encodeClose, encodeDescribe, encodeExecute } from '../protocol/frontend.js';
import type { NodeStatement, ParamForm } from '../sql/parameterize.js';
import { PgqError, SqlState } from '../errors.js';
import type { Req } from './executor.js';

/** Names of the coordinator's own statements (src/sql/parameterize.ts names them pgquorum_<n>). */
export const OWN_STATEMENT_NAME = /^pgquorum_[0-9]+$/;

/**
 * PREPARE or DEALLOCATE by the client of a name of the coordinator's own:
 * refused (the nodes hold such a statement or not depending on where the
 * coordinator needed it, so running it would make them answer differently).
 */
export function ownNameError(kind: 'prepare' | 'deallocate', name: string): PgqError {
  const hint = 'Statements named pgquorum_<n> are the coordinator\'s own (docs/routing.md "Keyed statements as prepared statements"); use another name.';
  return kind === 'prepare'
    ? new PgqError('ERR_OWN_STATEMENT_NAME', `prepared statement "${name}" already exists`, { sqlstate: SqlState.DUPLICATE_PREPARED_STATEMENT, hint })
    : new PgqError('ERR_OWN_STATEMENT_NAME', `prepared statement "${name}" does not exist`, { sqlstate: SqlState.INVALID_SQL_STATEMENT_NAME, hint });
}

/** Statements of the coordinator's own a node connection keeps at most. */
export const MAX_OWN_STATEMENTS = 64;

const DESCRIBE_PORTAL = encodeDescribe({ kind: 'P', name: '' });
const EXECUTE = encodeExecute({ portal: '', maxRows: 0 });

/** An ErrorResponse frame with its position (if any) mapped from the sent text to the client's. */
function mapErrorFrame(raw: Buffer, position: (p: number) => number): Buffer {
  const e = decodeErrorFields(raw.subarray(5));
  if (e['P'] === undefined) return raw;
  return encodeErrorResponse({ ...e, P: String(position(Number(e['P']))) });
}

/**
 * A node's answer with its error position (if any) moved from the text the
 * node parsed to the client's: in the result's error and in its buffered
 * ErrorResponse (frames forwarded live were mapped by mapError).
 */
function mapResultPosition(r: ExchangeResult, position: (p: number) => number): void {
  const p = r.lost ? undefined : r.error?.['P'];
  if (p === undefined) return;
  r.error!['P'] = String(position(Number(p)));
  const i = r.frames.findIndex((f) => f[0] === BE.ErrorResponse);
  if (i >= 0) r.frames[i] = mapErrorFrame(r.frames[i]!, position);
}

/**
 * `req`, whose text the coordinator rewrote, with the error position of a
 * node's answer moved to the client's text by `position`: in a frame
 * forwarded live (mapError) and in the result (after).
 */
export function positionMapped(req: Req, position: (p: number) => number): Req {
  return positionMappedBy(req, () => position);
}

/**
 * positionMapped() for a request of several messages whose texts differ:
 * `mapOf(at)` is the map for an error answering message `at` (1-based; 0:
 * an injected message), or null to leave its position alone.
 */
export function positionMappedBy(req: Req, mapOf: (at: number) => ((p: number) => number) | null): Req {
  const prior = req.after;
  return {
    ...req,
    mapError(raw: Buffer, at: number) {
      const m = mapOf(at);
      return m ? mapErrorFrame(raw, m) : raw;
    },
    after(c: NodeConnection, r: ExchangeResult, forwarded: boolean) {
      prior?.(c, r, forwarded);
      const m = r.error ? mapOf(r.terminals) : null;
      if (m) mapResultPosition(r, m);
    },
  };
}

export function preparedReq(text: string, form: ParamForm): Req {
  const { stmt, bind } = form;
  const req = ownStatementReq(text, stmt, form.describe ? [bind, DESCRIBE_PORTAL, EXECUTE, SYNC] : [bind, EXECUTE, SYNC], null);
  const bookkeeping = req.after!;
  // Built field by field: a spread of `req` followed by an `after` of its own cost V8 a slow object copy on every keyed statement.
  return {
    text,
    forNode: req.forNode,
    mapError: (raw) => mapErrorFrame(raw, form.position),
    after(c: NodeConnection, r: ExchangeResult, forwarded: boolean) {
      bookkeeping(c, r, forwarded);
      mapResultPosition(r, form.position);
    },
  };
}

/**
 * A request that runs the coordinator's statement `stmt` by `msgs` (a Bind
 * naming it first): its Parse is injected where the connection lacks it,
 * and the Bind's BindComplete is swallowed with the injected replies, so
 * that an error in the Bind counts as a refusal. `lead`: the client's
 * BindComplete, when the Bind is the client's own renamed (a client's
 * prepared keyed read on a shared read connection, Router.sharedBatch()):
 * its Bind error (a wrong parameter count names the statement) then sends
 * the batch the usual way, to get the node's error for the client's name.
 */
export function ownStatementReq(text: string, stmt: NodeStatement, msgs: Buffer[], lead: Buffer | null): Req {
  const evicted = new Map<NodeConnection, string>();
  return {
    text,
    forNode(c: NodeConnection) {
      const inject = injectOwn(stmt, c, evicted);
      const bufs = inject.length === 0 ? msgs : [...inject, ...msgs];
      return lead ? { bufs, skip: inject.length + 1, lead } : { bufs, skip: inject.length + 1 };
    },
    after(c: NodeConnection, r: ExchangeResult) {
      ownAfter(stmt, c, r, evicted);
    },
  };
}

/**
 * What must go to `c` before a request that runs `stmt` there: nothing when
 * it has the statement (or, on a shared connection, its Parse was sent);
 * else its Parse, after a Close of a stale copy and, when `c` keeps
 * MAX_OWN_STATEMENTS, of the least recently used one (recorded in
 * `evicted`, known gone once the request ran).
 */
function injectOwn(stmt: NodeStatement, c: NodeConnection, evicted: Map<NodeConnection, string>): Buffer[] {
  const own = c.ownStatements;
  const has = c.prepared.get(stmt.name);
  own.delete(stmt.name);
  own.add(stmt.name); // the most recently used is last
  if (has === stmt.sql) return NONE;
  const inject: Buffer[] = [];
  if (has !== undefined) inject.push(encodeClose({ kind: 'S', name: stmt.name }));
  if (own.size > MAX_OWN_STATEMENTS) {
    const oldest = own.values().next().value as string;
    own.delete(oldest);
    inject.push(encodeClose({ kind: 'S', name: oldest }));
    c.prepared.set(oldest, UNKNOWN_STATEMENT); // until the Close is known to have run
    evicted.set(c, oldest);
  }
  inject.push(stmt.parse);
  // Pipelined: the requests sent behind this one need not Parse it again; if the Parse fails, their Binds
  // fail before BindComplete (refused, they run again the usual way) and ownAfter() forgets the statement.
  if (c.shared) c.prepared.set(stmt.name, stmt.sql);
  return inject;
}

const NONE: Buffer[] = [];

/** `c`'s copies of statements after a request made by injectOwn() ran. */
function ownAfter(stmt: NodeStatement, c: NodeConnection, r: ExchangeResult, evicted: Map<NodeConnection, string>): void {
  if (r.lost) return;
  const gone = evicted.get(c);
  if (!r.error) {
    c.prepared.set(stmt.name, stmt.sql);
    if (gone !== undefined) c.prepared.delete(gone);
    return;
  }
  c.prepared.set(stmt.name, UNKNOWN_STATEMENT);
  if (gone !== undefined) c.prepared.set(gone, UNKNOWN_STATEMENT);
}

/** A Bind message (`raw`, whole) with its statement name replaced by `name`. */
export function renameBind(raw: Buffer, name: string): Buffer {
  const portalEnd = raw.indexOf(0, 5);
  const stmtEnd = raw.indexOf(0, portalEnd + 1);
  const head = portalEnd + 1;
  const nameLen = Buffer.byteLength(name);
  const restLen = raw.length - stmtEnd;
  const out = Buffer.allocUnsafe(head + nameLen + restLen);
  raw.copy(out, 0, 0, head);
  out.writeInt32BE(out.length - 1, 1);
  out.write(name, head, 'utf8');
  raw.copy(out, head + nameLen, stmtEnd);
  return out;
}

// Plans one batch of the extended protocol (the messages up to a Sync or a
// Flush): what each Execute runs, where existing portals live, and how to
// render the batch for a given node. Prepared statements are created on a
// node lazily: before a batch that needs statement S goes to node N, the
// Parse of S is injected when N does not have it yet (and a stale S closed
// first); the replies to injected messages are swallowed. Statements that
// need deterministic time values are rewritten with extra parameters whose
// values the coordinator fills in at each Bind.
import type { Frame } from '../protocol/reader.js';
import { FE } from '../protocol/constants.js';
import { encodeBind, encodeClose, encodeParse, type Bind, type Close, type Describe, type Execute, type Parse } from '../protocol/frontend.js';
import { UNKNOWN_STATEMENT, type ExchangeResult, type NodeConnection } from '../backend/node-connection.js';
import { classify, type Classification, type StatementInfo } from '../sql/classify.js';
import { formatTimestamptz, rewriteExtended, type ParamRewrite } from '../sql/rewrite.js';
import type { Executor, Req } from './executor.js';
import type { NodeStatement } from '../sql/parameterize.js';
import { refuseExtendedRolePassword } from './role-password.js';
import { OWN_STATEMENT_NAME, ownNameError, positionMappedBy } from './prepared-write.js';

/** A Close of a statement name no one prepares (not pgquorum_<digits>): the node answers CloseComplete. */
const CLOSE_NOTHING = encodeClose({ kind: 'S', name: 'pgquorum_none' });

export interface BatchDecoders {
  parse(p: Buffer): Parse;
  bind(p: Buffer): Bind;
  describe(p: Buffer): Describe;
  execute(p: Buffer): Execute;
  close(p: Buffer): Close;
}

export interface StatementDef {
  name: string;
  sql: string;
  cls: Classification;
  info: StatementInfo | null;
  /** The Parse message as sent to nodes (rewritten when needed). */
  parseMsg: Buffer;
  sentSql: string;
  /** The parameter types of the client's Parse (0: the node infers it). */
  paramTypes: number[];
  rewrite: ParamRewrite | null;
  /**
   * An error position in `sentSql` moved to the client's `sql`, when the
   * two differ by replaced time functions only (null: the same text, or an
   * INSERT whose defaults were written out, whose positions stay in the sent text).
   */
  position: ((p: number) => number) | null;
  /** The coordinator's own statement of the same text and types, once a shared read made it (Router.fastBatchTarget). */
  own?: NodeStatement;
}

interface PortalDef {
  stmt: StatementDef | null;
  /** The node holding the portal, or 'all' when it was bound on every node. */
  where: NodeConnection | 'all';
}

type Op =
  | { k: 'parse'; name: string; def: StatementDef }
  | { k: 'bind'; portal: string; def: StatementDef | null }
  | { k: 'close'; what: 'S' | 'P'; name: string }
  | { k: 'other' };

export interface PlannedExec {
  info: StatementInfo | null;
  cls: Classification | null;
  sql: string;
}

export interface PlannedBatch {
  end: 'sync' | 'flush';
  req: Req;
  execs: PlannedExec[];
  /** Set when the batch uses a portal that exists on one node only. */
  pinnedTo: NodeConnection | null;
}

export class BatchPlanner {
  readonly statements = new Map<string, StatementDef>();
  readonly portals = new Map<string, PortalDef>();
  /** ParameterDescription replies to fix, in order: how many coordinator-added parameters to hide. */
  stripQueue: number[] = [];
  private readonly exec: Executor;
  /** Set by the Router: the Parse text of an INSERT with its clock/random defaults named, or null. */
  fill: ((sql: string, info: StatementInfo) => string | null) | null = null;

  constructor(exec: Executor) {
    this.exec = exec;
  }

  forgetAll(): void {
    this.statements.clear();
    this.portals.clear();
    for (const c of this.exec.liveConns()) c.prepared.clear();
  }

  private define(p: Parse, raw: Buffer): StatementDef {
    const cls = classify(p.sql);
    const info = cls.statements[0] ?? null;
    let parseMsg: Buffer = Buffer.from(raw);
    let sentSql = p.sql;
    let rewrite: ParamRewrite | null = null;
    // INSERT defaults that read a clock or the random generator, made explicit (src/determinism/plan.ts)
    const filled = info && cls.write && this.fill ? this.fill(p.sql, info) : null;
    const src = filled ?? p.sql;
    if (filled) {
      sentSql = filled;
      parseMsg = encodeParse({ name: p.name, sql: filled, paramTypes: p.paramTypes });
    }
    if (cls.write && (filled ? classify(filled).needsRewrite : cls.needsRewrite)) {
      rewrite = rewriteExtended(src);
      if (rewrite) {
        const types = p.paramTypes.slice();
        while (types.length < rewrite.originalParamCount) types.push(0);
        for (let i = 0; i < rewrite.added.length; i++) types.push(0); // the rewrite casts explicitly
        sentSql = rewrite.sql;
        parseMsg = encodeParse({ name: p.name, sql: rewrite.sql, paramTypes: types });
      }
    }
    const position = rewrite && !filled ? rewrite.position.bind(rewrite) : null;
    return { name: p.name, sql: p.sql, cls, info, parseMsg, sentSql, paramTypes: p.paramTypes, rewrite, position };
  }

  /** A Bind for a rewritten statement: the client's parameters plus the time values. */
  private bindWithTimes(b: Bind, rw: ParamRewrite): Buffer {
    const tv = this.exec.times();
    const added = rw.added.map((k) => Buffer.from(formatTimestamptz(tv[k])));
    let formats = b.paramFormats;
    if (formats.length === 1) formats = new Array<number>(b.params.length).fill(formats[0]!);
    if (formats.length > 0) formats = [...formats, ...added.map(() => 0)];
    return encodeBind({ ...b, params: [...b.params, ...added], paramFormats: formats });
  }

  plan(frames: Frame[], end: 'sync' | 'flush', dec: BatchDecoders): PlannedBatch {
    const out: Buffer[] = [];
    const ops: Op[] = [];
    const localStmts = new Map<string, StatementDef>();
    const localPortals = new Map<string, StatementDef | null>();
    const touched = new Set<string>(); // statement names whose copies on a node must match the session's
    const execs: PlannedExec[] = [];
    /** Per message (one terminal reply each, as `ops`): how to move an error position in it to the client's text. */
    const positions: (((p: number) => number) | null)[] = [];
    let pinnedTo: NodeConnection | null = null;
    this.stripQueue = [];
    const lookup = (name: string): StatementDef | null => {
      const l = localStmts.get(name);
      if (l) return l;
      const s = this.statements.get(name);
      if (s) touched.add(name);
      return s ?? null;
    };
    const portalOf = (name: string): StatementDef | null => {
      if (localPortals.has(name)) return localPortals.get(name)!;
      const pd = this.portals.get(name);
      if (pd && pd.where !== 'all') pinnedTo = pd.where;
      return pd?.stmt ?? null;
    };
    for (const f of frames) {
      switch (f.type) {
        case FE.Parse: {
          const p = dec.parse(f.payload);
          // The coordinator's own names (its prepared keyed statements on the same node connections): 42P05, as PREPARE gets.
          if (OWN_STATEMENT_NAME.test(p.name)) throw ownNameError('prepare', p.name);
          const def = this.define(p, f.raw);
          refuseExtendedRolePassword(def.info); // a plain-text role password needs the simple protocol
          if (p.name !== '') touched.add(p.name);
          localStmts.set(p.name, def);
          out.push(def.parseMsg);
          ops.push({ k: 'parse', name: p.name, def });
          positions.push(def.position);
          break;
        }
        case FE.Bind: {
          const b = dec.bind(f.payload);
          if (OWN_STATEMENT_NAME.test(b.statement)) throw ownNameError('deallocate', b.statement); // 26000: the client has none such
          const def = lookup(b.statement);
          localPortals.set(b.portal, def);
          out.push(def?.rewrite ? this.bindWithTimes(b, def.rewrite) : f.raw);
          ops.push({ k: 'bind', portal: b.portal, def });
          positions.push(def?.position ?? null);
          break;
        }
        case FE.Describe: {
          const d = dec.describe(f.payload);
          if (d.kind === 'S' && OWN_STATEMENT_NAME.test(d.name)) throw ownNameError('deallocate', d.name);
          const def = d.kind === 'S' ? lookup(d.name) : portalOf(d.name);
          if (d.kind === 'S') this.stripQueue.push(def?.rewrite?.added.length ?? 0);
          out.push(f.raw);
          ops.push({ k: 'other' });
          positions.push(def?.position ?? null);
          break;
        }
        case FE.Execute: {
          const e = dec.execute(f.payload);
          const def = portalOf(e.portal);
          execs.push({ info: def?.info ?? null, cls: def?.cls ?? null, sql: def?.sql ?? '' });
          out.push(f.raw);
          ops.push({ k: 'other' });
          positions.push(def?.position ?? null);
          break;
        }
        case FE.Close: {
          const c = dec.close(f.payload);
          if (c.kind === 'S' && OWN_STATEMENT_NAME.test(c.name)) {
            // The client cannot have made such a statement (its Parse is refused): closing it is a no-op, as for any
            // name PostgreSQL does not know. The node closes a name no one uses, and the coordinator's copy stays.
            out.push(CLOSE_NOTHING);
            ops.push({ k: 'other' });
            positions.push(null);
            break;
          }
          if (c.kind === 'P' && !localPortals.has(c.name)) portalOf(c.name);
          out.push(f.raw);
          ops.push({ k: 'close', what: c.kind, name: c.name });
          positions.push(null);
          break;
        }
        default:
          out.push(f.raw); // Sync or Flush
      }
    }
    // The session's statements as they were before this batch (what injected Parses must recreate).
    const before = [...touched].map((name) => [name, this.statements.get(name)] as const);
    const text = execs.map((e) => e.sql).join('; ') || '(extended protocol batch)';
    let applied = false;
    const req: Req = {
      text,
      expect: end === 'flush' ? ops.length : undefined,
      forNode: (c) => {
        const inject: Buffer[] = [];
        for (const [name, def] of before) {
          const has = c.prepared.get(name);
          if (def) {
            if (has === def.sentSql) continue;
            if (has !== undefined) inject.push(encodeClose({ kind: 'S', name }));
            inject.push(def.parseMsg);
          } else if (has !== undefined) {
            inject.push(encodeClose({ kind: 'S', name })); // stale copy of a statement the client closed
          }
        }
        return { bufs: inject.length === 0 ? out : [...inject, ...out], skip: inject.length };
      },
      after: (c: NodeConnection, r: ExchangeResult) => {
        if (r.lost) return;
        // This node's copies of prepared statements.
        if (r.error) {
          for (const [name] of before) c.prepared.set(name, UNKNOWN_STATEMENT);
          for (const op of ops) if (op.k === 'parse' || op.k === 'close') c.prepared.set(op.name, UNKNOWN_STATEMENT);
        } else {
          for (const [name, def] of before) {
            if (def) c.prepared.set(name, def.sentSql);
            else c.prepared.delete(name);
          }
          for (const op of ops) {
            if (op.k === 'parse') c.prepared.set(op.name, op.def.sentSql);
            else if (op.k === 'close' && op.what === 'S') c.prepared.delete(op.name);
          }
        }
        // The session's (the client's) view, from the first node that answered.
        if (applied) {
          for (const op of ops) {
            if (op.k === 'bind') {
              const pd = this.portals.get(op.portal);
              if (pd && pd.where !== c) pd.where = 'all';
            }
          }
          return;
        }
        applied = true;
        const ok = r.error ? r.terminals - 1 : ops.length;
        for (let i = 0; i < ops.length && i < ok; i++) {
          const op = ops[i]!;
          if (op.k === 'parse') this.statements.set(op.name, op.def);
          else if (op.k === 'bind') this.portals.set(op.portal, { stmt: op.def, where: c });
          else if (op.k === 'close') {
            if (op.what === 'S') this.statements.delete(op.name);
            else this.portals.delete(op.name);
          }
        }
      },
    };
    // Statements whose time functions became parameters: an error position goes back into the client's text.
    // A failed injected Parse (a node refusing a statement another node took) is not told apart in a
    // buffered answer, where it counts as the first message's error.
    const mapped = positions.some((m) => m !== null) ? positionMappedBy(req, (at) => (at > 0 ? (positions[at - 1] ?? null) : null)) : req;
    return { end, req: mapped, execs, pinnedTo };
  }

  /** After the batch ran: portals end with the transaction. */
  finish(end: 'sync' | 'flush', status: 'I' | 'T' | 'E'): void {
    if (end === 'sync' && status === 'I') this.portals.clear();
  }
}

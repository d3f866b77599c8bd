// Decides where each request of a session runs (docs/routing.md) and keeps
// the session-level facts that routing needs: SQL-level prepared statements,
// cursors and where they live, and the session's temporary relations (which
// exist on the main node only). The routes themselves are the Executor's.
import { PgqError, SqlState } from '../errors.js';
import type { CoordinatorContext } from '../context.js';
import type { Session } from '../frontend/session.js';
import type { NodeConnection } from '../backend/node-connection.js';
import type { Frame } from '../protocol/reader.js';
import { BE, FE } from '../protocol/constants.js';
import { BIND_COMPLETE, decodeDataRow, encodeCommandComplete, encodeReadyForQuery } from '../protocol/backend.js';
import { Cursor } from '../protocol/cursor.js';
import { encodeQuery } from '../protocol/frontend.js';
import { classify, type Classification, type StatementInfo } from '../sql/classify.js';
import { parseAdminCommand, runAdminCommand } from '../admin/node-command.js';
import { rewriteExecute, rewriteSimple, rewriteSimpleMapped } from '../sql/rewrite.js';
import type { TimeKind } from '../sql/timespans.js';
import type { BatchDecoders, PlannedBatch, StatementDef } from './batch.js';
import { encodeShow, showCommand } from '../admin/show.js';
import { isPgquorumSetting, pgquorumSetting } from '../admin/barrier-command.js';
import { describe, Executor, isTxnControl, Q_ABORT, type Req } from './executor.js';
import { emptyPlan, needsPlan, NO_PLAN, planInsert, planStatement, refuse, type DetPlan, type PlanEnv } from '../determinism/plan.js';
import { encodeNoticeResponse } from '../protocol/backend.js';
import { redactSql } from '../sql/redact.js';
import { randomBytes } from 'node:crypto';
import { isRolePasswordStatement, rolePasswordReq } from './role-password.js';
import { nodeStatement, parameterize, type ParamForm } from '../sql/parameterize.js';
import { OWN_STATEMENT_NAME, ownNameError, ownStatementReq, positionMapped, preparedReq, renameBind } from './prepared-write.js';

const Q_ROLLBACK = encodeQuery('ROLLBACK');
const Q_COMMIT = encodeQuery('COMMIT');
/** Transaction control the coordinator may answer itself (lazy BEGIN): no options, nothing a node could refuse. */
const PLAIN_BEGIN = /^\s*(begin(\s+(transaction|work))?|start\s+transaction)\s*;?\s*$/i;
const PLAIN_COMMIT = /^\s*(commit|end)(\s+(transaction|work))?\s*;?\s*$/i;
const PLAIN_ROLLBACK = /^\s*(rollback|abort)(\s+(transaction|work))?\s*;?\s*$/i;
/** The session's temporary relations, and whether an unqualified name resolves to each (search_path may put pg_temp later). */
const Q_TEMP_NAMES = encodeQuery(
  'SELECT relname, pg_catalog.to_regclass(pg_catalog.quote_ident(relname)) = oid FROM pg_catalog.pg_class WHERE relnamespace = pg_catalog.pg_my_temp_schema()',
);

/** Router.sharedBatch(): the catalog cache does not know the read's table. */
const UNKNOWN_TABLE = Symbol('unknown table');

/** Where a batch on the extended protocol's read fast path goes; `shared`: a shared read connection (Router.sharedBatch()). */
export interface FastBatch {
  conn: NodeConnection;
  req: Req;
  shared: boolean;
}

export class Router {
  readonly exec: Executor;
  /** SQL-level PREPAREd statements: name -> inner statement. */
  private readonly sqlPrepared = new Map<string, { inner: StatementInfo; timeParams: readonly TimeKind[] }>();
  /** SQL cursors: name -> the node holding it, or 'all' for a cursor whose query writes (declared on every node). */
  private readonly cursors = new Map<string, NodeConnection | 'all'>();
  /** Cursors on every node whose query draws sequence or random values: how each FETCH is made deterministic. */
  private readonly cursorPlans = new Map<string, DetPlan>();
  /** A temporary object may have appeared or vanished in this transaction: re-read the list at its end. */
  private tempDirty = false;
  /** The session set search_path: which relation an unqualified name means must be asked of the main node. */
  private customSearchPath = false;
  /** The session's own SET search_path (part of the catalog cache key), or null. */
  private customSearchPathText: string | null = null;
  /** This transaction ran DDL: catalog answers read inside it are not shared, and the cache is dropped at its end. */
  private txnDdl = false;
  /** setseed() the session called: the seeds of its writes are then derived from it (repeatable), else random. */
  private userSeed: { base: number; n: number } | null = null;
  /** Nothing this session ran may have changed its connections' session state (readsShareable()). */
  private pristine = true;
  /** Relations this session wrote whose triggers, rules and defaults the catalog has not been asked about yet (checkWrites()). */
  private unchecked: string[] | null = null;
  /** Temporary relations this session created (they live on the main node only). */
  readonly tempNames = new Set<string>();
  /** Those of them an unqualified name resolves to (all of them unless search_path puts pg_temp after a schema that has the name). */
  readonly tempUnqualified = new Set<string>();
  private readonly ctx: CoordinatorContext;
  private readonly s: Session;

  constructor(ctx: CoordinatorContext, s: Session, exec: Executor) {
    this.ctx = ctx;
    this.s = s;
    this.exec = exec;
    exec.planner.fill = (sql, info) => this.fillForParse(sql, info);
  }

  // ---- transaction control -------------------------------------------------

  async txnControl(kind: StatementInfo['kind'], text: string, req: Req): Promise<void> {
    const txn = this.exec.txn;
    if (kind === 'prepare_transaction' || kind === 'commit_prepared' || kind === 'rollback_prepared') {
      throw new PgqError('ERR_CLIENT_2PC', `${text.split(/\s+/, 2).join(' ').toUpperCase()} is not allowed through pgquorum`, {
        sqlstate: SqlState.FEATURE_NOT_SUPPORTED,
        hint: 'pgquorum runs two-phase commit itself; use ordinary COMMIT.',
      });
    }
    if (txn?.broken) return this.brokenTxn(kind);
    if (!txn) {
      if (kind === 'begin' && req.simple && this.s.status === 'I' && PLAIN_BEGIN.test(text)) {
        // Lazy BEGIN: answered here; the transaction's first statement takes it to its nodes.
        this.exec.beginLazily(text);
        this.answer(/^\s*start/i.test(text) ? 'START TRANSACTION' : 'BEGIN', 'T');
        return;
      }
      // BEGIN starts a transaction on one node; everything else outside a
      // transaction only draws PostgreSQL's warning or error, from one node.
      const c = this.exec.readConn();
      const r = await this.exec.read(c, req, true);
      if (r && kind === 'begin' && r.status === 'T') this.exec.beginFrom(r.node, text);
      return;
    }
    if (txn.joined.size === 0 && (kind === 'commit' || kind === 'rollback') && req.simple && this.s.status === 'T') {
      // Lazy BEGIN, then nothing reached a node: there is nothing to end anywhere.
      const commit = kind === 'commit' && PLAIN_COMMIT.test(text);
      if (commit || (kind === 'rollback' && PLAIN_ROLLBACK.test(text))) {
        this.exec.txn = null;
        this.answer(commit ? 'COMMIT' : 'ROLLBACK', 'I');
        return;
      }
    }
    // Two-phase commit runs the held writes in the same exchange as the PREPAREs (src/txn/commit.ts).
    const heldWith = kind === 'commit' && this.s.status === 'T' && txn.wrote ? this.exec.heldConns() : [];
    if (kind === 'rollback' || (kind === 'commit' && this.s.status === 'E')) this.exec.dropHeld(txn); // the other nodes never run them
    else if (heldWith.length === 0 && !(await this.exec.catchUp(kind === 'commit'))) return; // SAVEPOINT, ROLLBACK TO ...: the others run the held writes first
    const home = this.exec.txnHome(txn);
    const live = [...new Set([...txn.joined, ...heldWith])].filter((c) => !c.closed);
    const joined = live.length > 0 ? live : [home]; // a lazily begun transaction: its home takes the statement (with the BEGIN)
    if (kind === 'begin' || (this.s.status === 'E' && kind !== 'commit' && kind !== 'rollback' && kind !== 'rollback_to')) {
      await this.exec.read(home, req, false); // warning "already in a transaction", or 25P02
      return;
    }
    if (kind === 'commit' || kind === 'rollback') {
      if (kind === 'rollback' || this.s.status === 'E' || joined.length <= 1) {
        // Roll back everywhere; the home node answers the client's own words.
        const others = joined.filter((c) => c !== home);
        await Promise.all(others.map((c) => c.exchange(Q_ROLLBACK)));
        await this.exec.read(home, req, false);
      } else if (!txn.wrote) {
        // Nothing was written: a plain COMMIT on each node, the home node answers.
        const others = joined.filter((c) => c !== home);
        await Promise.all(others.map((c) => c.exchange(Q_COMMIT)));
        await this.exec.read(home, req, false);
      } else {
        const main = this.ctx.cluster.main();
        const plain = txn.plainOnMain ? (joined.find((c) => c.node === main) ?? null) : null;
        const c = await this.exec.commitNodes(joined, plain);
        this.exec.txn = null;
        this.s.status = 'I';
        if (!c.ok) {
          this.exec.sendError(c.error, true);
          return;
        }
        if (req.simple && PLAIN_COMMIT.test(text)) {
          this.answer('COMMIT', 'I');
          return;
        }
        // The client's own COMMIT messages (extended protocol, AND CHAIN) answered by a node
        // in a fresh empty transaction, so every reply is the one PostgreSQL gives.
        // The transaction is committed: a node lost while it answers these messages is replaced by
        // another (retry), never reported as a 40001 that would make the client run it twice.
        const r = await this.exec.read(this.exec.liveConns()[0] ?? home, req, true, true);
        if (r && r.status === 'T') this.exec.beginFrom(r.node);
        return;
      }
      if (this.s.status === 'I') this.exec.txn = null;
      return;
    }
    // SAVEPOINT, RELEASE, ROLLBACK TO, SET TRANSACTION: every joined node, and logged for late joiners.
    await this.exec.parallel(joined, req, home);
    txn.log.push(encodeQuery(text));
  }

  /** Transaction control answered by the coordinator itself: the command tag, then ReadyForQuery with the session's new status. */
  private answer(tag: string, status: 'I' | 'T'): void {
    this.s.status = status;
    this.s.client.send(encodeCommandComplete(tag));
    this.s.client.send(encodeReadyForQuery(status));
  }

  private brokenTxn(kind: StatementInfo['kind']): void {
    // A transaction doomed by a lost node: its 40001 comes first (a COMMIT gets it too: nothing was committed).
    const report = this.exec.txn?.report ?? null;
    if (this.exec.txn) this.exec.txn.report = null;
    if (kind === 'commit' || kind === 'rollback') {
      this.exec.txn = null;
      this.s.status = 'I';
      if (report && kind === 'commit') {
        this.exec.sendError(report, true);
        return;
      }
      this.answer('ROLLBACK', 'I');
      return;
    }
    this.s.status = 'E';
    this.exec.sendError(
      report ??
        new PgqError('ERR_TXN_ABORTED', 'current transaction is aborted, commands ignored until end of transaction block', {
          sqlstate: SqlState.IN_FAILED_SQL_TRANSACTION,
        }),
      true,
    );
  }

  /** A SQL cursor or a named portal of this session lives on `c`. */
  hasCursorOn(c: NodeConnection): boolean {
    for (const w of this.cursors.values()) if (w === c) return true;
    for (const p of this.exec.planner.portals.values()) if (p.where === c) return true;
    return false;
  }

  // ---- simple query ----------------------------------------------------------

  /**
   * The read fast path (Session.fastRead): the connection a Query goes to
   * when it is one plain read outside a transaction block, else null (the
   * usual path then runs it, and reports whatever is wrong with it); and
   * the Query's classification when it was made (the usual path reuses it).
   */
  fastReadTarget(sql: string): { conn: NodeConnection | null; cls?: Classification; form?: ParamForm | null; shareable?: boolean } {
    const exec = this.exec;
    const none = { conn: null };
    if (!this.fastPathOpen()) return none;
    let cls: Classification;
    try {
      if (parseAdminCommand(sql)) return none;
      cls = classify(sql);
    } catch {
      return none;
    }
    const s = cls.statements.length === 1 ? cls.statements[0]! : null;
    if (!s || s.kind !== 'read' || s.tag === 'SHOW' || this.touchesTemp(s)) return { conn: null, cls };
    let form: ParamForm | null = null;
    if (s.keyedRead) {
      const t = this.keyedReadTable(s);
      if (t === undefined) return { conn: null, cls }; // the usual way, which asks the catalog
      if (t) form = parameterize(sql, null);
    }
    try {
      // A read that calls no function may go over a shared connection (the session permitting): it is quick.
      return { conn: exec.readConn(), cls, form, shareable: form !== null && !s.keyedRead!.calls && this.readsShareable() };
    } catch {
      return { conn: null, cls };
    }
  }

  /** A fast path may take the next request: no transaction block, no COPY, nothing running. */
  private fastPathOpen(): boolean {
    const exec = this.exec;
    return !exec.txn && this.s.status === 'I' && !exec.copyIn && !exec.busy;
  }

  /**
   * The extended protocol's read fast path (Session.fastBatch): a batch
   * ending in Sync, outside a transaction block, with no Parse or Close,
   * that executes one read. Its node and request, or null: the usual way
   * plans it again (and reports whatever is wrong with it).
   */
  fastBatchTarget(frames: Frame[], dec: BatchDecoders): FastBatch | null {
    const exec = this.exec;
    if (!this.fastPathOpen()) return null;
    if (frames[0]!.type === FE.Bind && this.ctx.sharedReads && this.readsShareable()) {
      const shared = this.sharedBatch(frames, dec);
      if (shared === UNKNOWN_TABLE) return null; // the usual way, which asks the catalog (prefetch())
      if (shared) return shared;
    }
    for (const f of frames) if (f.type === FE.Parse || f.type === FE.Close) return null;
    let pb: PlannedBatch;
    try {
      pb = exec.planner.plan(frames, 'sync', dec);
    } catch {
      return null;
    }
    // a portal on one node, a Describe whose ParameterDescription the coordinator must fix: the usual way
    if (pb.pinnedTo || pb.execs.length !== 1 || exec.planner.stripQueue.some((n) => n > 0)) return null;
    const s = pb.execs[0]!.info;
    if (!s || s.kind !== 'read' || s.tag === 'SHOW' || this.touchesTemp(s)) return null;
    try {
      const conn = exec.readConn();
      return conn.relayable ? { conn, req: pb.req, shared: false } : null;
    } catch {
      return null;
    }
  }

  /**
   * A keyed read's batch (Bind, Describe of its portal or not, Execute,
   * Sync) on a shared read connection to its read node
   * (src/backend/shared-reads.ts), as the coordinator's own statement of
   * the client's text and parameter types (prepared-write.ts
   * ownStatementReq()). Such a batch needs no plan: its portal is its own and
   * its Describe is of that portal. null: the batch has another shape, or
   * no shared connection can take it; UNKNOWN_TABLE: the catalog cache does
   * not know the read's table.
   */
  private sharedBatch(frames: Frame[], dec: BatchDecoders): FastBatch | typeof UNKNOWN_TABLE | null {
    const n = frames.length;
    if (n !== 3 && n !== 4) return null;
    const ex = frames[n - 2]!;
    if (ex.type !== FE.Execute || (n === 4 && frames[1]!.type !== FE.Describe)) return null;
    let def: StatementDef | undefined;
    try {
      // The Bind's names only: its values go to the node as they are.
      const bind = new Cursor(frames[0]!.payload);
      const portal = bind.cstring();
      def = this.exec.planner.statements.get(bind.cstring());
      if (dec.execute(ex.payload).portal !== portal) return null;
      if (n === 4) {
        const d = dec.describe(frames[1]!.payload);
        if (d.kind !== 'P' || d.name !== portal) return null;
      }
    } catch {
      return null; // malformed: the usual way reports it
    }
    const s = def?.info;
    if (!def || !s?.keyedRead || s.keyedRead.calls || def.rewrite || s.kind !== 'read' || this.touchesTemp(s)) return null;
    const known = this.keyedReadTable(s);
    if (known === undefined) return UNKNOWN_TABLE;
    if (!known) return null;
    let c: NodeConnection | null;
    try {
      c = this.ctx.sharedReads!.conn(this.exec.readConn().node, this.s.login);
    } catch {
      return null;
    }
    if (!c) return null;
    const own = (def.own ??= nodeStatement(def.sentSql, def.paramTypes));
    const msgs = new Array<Buffer>(n);
    msgs[0] = renameBind(frames[0]!.raw, own.name);
    for (let i = 1; i < n; i++) msgs[i] = frames[i]!.raw;
    return { conn: c, req: ownStatementReq(def.sql, own, msgs, BIND_COMPLETE), shared: true };
  }

  /**
   * For a keyed read (src/sql/keyed-write.ts keyedRead): true when its `=`
   * columns cover a unique key of its table, false when not (or reads.prepare
   * is off), undefined when the catalog cache does not know the table.
   */
  private keyedReadTable(s: StatementInfo): boolean | undefined {
    const k = s.keyedRead;
    if (!k || this.ctx.config.reads?.prepare === 'off') return false;
    const t = this.ctx.catalog.peekTable(this.catalogScope(), k.table);
    if (t === undefined) return undefined;
    return t !== null && t.key !== null && t.key.every((c) => k.eq.includes(c));
  }

  /**
   * The prepared form of a keyed read sent as a Query (docs/routing.md
   * "Keyed statements as prepared statements"), or null. Outside a
   * transaction block a table the catalog cache does not know is looked up
   * on the main node first; inside one, only the cache is asked.
   */
  private async readForm(s: StatementInfo, text: string): Promise<ParamForm | null> {
    let known = this.keyedReadTable(s);
    if (known === undefined && !this.exec.txn && this.s.status === 'I') {
      const main = this.s.conns.get(this.ctx.cluster.main());
      if (!main || main.closed || main.busy) return null;
      await this.ctx.catalog.table(main, this.catalogScope(), s.keyedRead!.table, true);
      known = this.keyedReadTable(s);
    }
    return known ? parameterize(text, null) : null;
  }

  /**
   * One simple Query; `known`: its classification, when the caller already
   * made it; `unprepared`: it goes as sent (its prepared form was refused).
   */
  async simpleQuery(sql: string, frame: Frame, known?: Classification, unprepared = false): Promise<void> {
    this.exec.busy = true;
    try {
      await this.simpleQueryInner(sql, frame, known, unprepared);
    } finally {
      this.exec.busy = false;
      this.exec.flushAsync();
    }
  }

  private async simpleQueryInner(sql: string, frame: Frame, known: Classification | undefined, unprepared: boolean): Promise<void> {
    const admin = parseAdminCommand(sql);
    if (admin) return runAdminCommand(admin, this.ctx, this.s);
    await this.exec.settleLostTxn();
    const cls = known ?? classify(sql);
    const st = cls.statements;
    for (const s of st) this.noteStatement(s);
    if (st.length === 0) {
      this.s.sendEmptyQuery();
      return;
    }
    const raw = frame.raw; // a view: frames are never overwritten once read
    const plain: Req = { forNode: () => ({ bufs: [raw], skip: 0 }), text: sql, simple: true, unprepared };
    if (this.exec.txn?.broken) return this.brokenTxn(st.length === 1 ? st[0]!.kind : 'write');
    if (st.length === 1) return this.dispatch(st[0]!, cls, sql, plain, (filled) => this.rewritten(sql, cls, raw, filled));
    if (st.every((s) => s.kind === 'read' && !this.touchesTemp(s))) {
      await this.exec.read(this.exec.readConn(), plain, true);
      return;
    }
    if (st.some((s) => s.createsTemp || this.touchesTemp(s))) {
      await this.exec.mainOnly(plain, true);
      return;
    }
    const wrap = !this.exec.txn && !st.some((s) => isTxnControl(s.kind) || s.kind === 'non_transactional' || s.kind.endsWith('_database'));
    // determinism over the whole string: one seed, every sequence serialized; no rewriting of defaults
    const multi = emptyPlan();
    for (const s of st) {
      if (!needsPlan(s) || this.s.status === 'E') continue;
      const p = await planStatement(s, null, this.planEnv());
      if (p.text !== null || p.singleRow || (p.mainOnly && st.length > 1)) {
        throw refuse(
          'multi-statement',
          `"${redactSql(s.text).slice(0, 60)}" needs a rewrite or a row check that pgquorum only does for a statement sent on its own`,
          'Send that statement as its own query.',
        );
      }
      if (p.seed) multi.seed = true;
      for (const q of p.sequences) if (!multi.sequences.includes(q)) multi.sequences.push(q);
    }
    const req0 = st.some(isRolePasswordStatement) ? await rolePasswordReq(this.exec, sql, () => this.rewritten(sql, cls, raw)) : this.rewritten(sql, cls, raw);
    await this.exec.fanOut(this.withPlan(req0, multi), wrap);
    for (const s of st) this.afterWrite(s);
  }

  /** A write's Query with time values fixed by the coordinator; `filled`: the text with defaults made explicit. */
  private rewritten(sql: string, cls: Classification, raw: Buffer, filled?: string | null): Req {
    if (filled) {
      const text = rewriteSimple(filled, this.exec.times()) ?? filled;
      const msg = encodeQuery(text);
      return { forNode: () => ({ bufs: [msg], skip: 0 }), text: sql };
    }
    if (!cls.needsRewrite) return { forNode: () => ({ bufs: [raw], skip: 0 }), text: sql };
    const rw = rewriteSimpleMapped(sql, this.exec.times());
    if (rw === null) return { forNode: () => ({ bufs: [raw], skip: 0 }), text: sql };
    const msg = encodeQuery(rw.sql);
    return positionMapped({ forNode: () => ({ bufs: [msg], skip: 0 }), text: sql }, rw.position);
  }

  // ---- determinism (src/determinism/plan.ts) ------------------------------------

  private catalogScope(): string {
    return `${this.s.database}\0${this.customSearchPathText ?? ''}`;
  }

  private planEnv(): PlanEnv {
    const conn = this.exec.mainConn();
    const scope = this.catalogScope();
    const cacheable = !this.txnDdl;
    const mode = this.ctx.config.determinism?.function_bodies ?? 'refuse';
    return {
      table: (rel) => this.ctx.catalog.table(conn, scope, rel, cacheable),
      functionVolatile: (name) => this.ctx.catalog.functionVolatile(conn, scope, name, cacheable),
      functionBodies: mode,
      warn: (message) => this.s.client.send(encodeNoticeResponse({ S: 'WARNING', V: 'WARNING', C: '01000', M: message })),
    };
  }

  /** The determinism plan of one statement; `text` is what its offsets refer to (null: filled at Parse already). */
  async plan(s: StatementInfo, text: string | null): Promise<DetPlan> {
    if (!needsPlan(s)) return NO_PLAN;
    return planStatement(s, text, this.planEnv());
  }

  /** A seed for setseed(): random, or derived from the session's own setseed() so its runs repeat. */
  private nextSeed(): number {
    if (this.userSeed) {
      const n = ++this.userSeed.n;
      const x = Math.sin(this.userSeed.base * 1e4 + n) * 1e4;
      return Number(((x - Math.floor(x)) * 2 - 1).toFixed(15));
    }
    const v = randomBytes(6).readUIntBE(0, 6) / 2 ** 48;
    return Number((v * 2 - 1).toFixed(15));
  }

  /** The request with the plan's serialization, seeding and row rule attached. */
  private withPlan(req: Req, plan: DetPlan): Req {
    if (plan === NO_PLAN || (!plan.seed && plan.sequences.length === 0 && !plan.singleRow)) return req;
    const out: Req = { ...req };
    if (plan.sequences.length > 0) out.sequences = plan.sequences;
    if (plan.seed) out.seed = this.nextSeed();
    if (plan.singleRow) out.singleRow = true;
    return out;
  }

  /** After a statement ran: DDL drops the catalog cache (and marks the transaction). */
  private afterWrite(s: StatementInfo): void {
    if (s.dataWrite || s.tag === 'SELECT' || s.tag === 'LOCK TABLE' || s.tag === 'TRUNCATE TABLE' || s.tag === '') return;
    this.ctx.catalog.invalidate();
    if (this.exec.txn) this.txnDdl = true;
  }

  /** Called at the end of every transaction. */
  private txnEnded(): void {
    if (this.txnDdl) {
      this.ctx.catalog.invalidate();
      this.txnDdl = false;
    }
  }

  /** Extended protocol: the Parse text of an INSERT with clock/random defaults made explicit (from the cache warmed by prefetch()). */
  fillForParse(sql: string, info: StatementInfo): string | null {
    if (!info.insert || !info.target || info.insert.source === 'select' && info.insert.selectWidth === undefined && !info.insert.columns) return null;
    const t = this.ctx.catalog.peekTable(this.catalogScope(), info.target);
    if (!t) return null;
    const plan = emptyPlan();
    try {
      planInsert(info.insert, t, sql, plan);
    } catch {
      return null; // refused again, with its error, when it is executed
    }
    return plan.text;
  }

  /** Warm the catalog cache for the INSERT targets of a batch's Parse messages. */
  private async prefetch(frames: Frame[], dec: BatchDecoders): Promise<void> {
    if (this.s.status === 'E') return;
    for (const f of frames) {
      if (f.type === FE.Bind) {
        await this.prefetchKeyedRead(dec.bind(f.payload).statement);
        continue;
      }
      if (f.type !== 0x50 /* Parse */) continue;
      const p = dec.parse(f.payload);
      const info = classify(p.sql).statements[0];
      if (!info?.target || !info.insert) continue;
      if (this.ctx.catalog.peekTable(this.catalogScope(), info.target) !== undefined) continue;
      await this.planEnv().table(info.target);
    }
  }

  /**
   * A keyed read of a prepared statement, outside a transaction block, whose
   * table the catalog cache does not know (any more): its table is looked up
   * on the main node, so that the next run can go over a shared read
   * connection (fastBatchTarget()).
   */
  private async prefetchKeyedRead(name: string): Promise<void> {
    const info = this.exec.planner.statements.get(name)?.info;
    if (!info?.keyedRead || this.exec.txn || this.s.status !== 'I' || !this.ctx.sharedReads || !this.readsShareable()) return;
    if (this.keyedReadTable(info) !== undefined) return;
    await this.ctx.catalog.table(this.exec.mainConn(), this.catalogScope(), info.keyedRead.table, true);
  }

  /**
   * Keyed autocommit reads of this session may go over connections shared
   * with the sessions of the same login (src/backend/shared-reads.ts): it
   * has run nothing that may have changed the session state of its own
   * connections (noteStatement()), and has no temporary tables.
   */
  readsShareable(): boolean {
    return this.pristine && this.tempNames.size === 0 && (this.unchecked === null || this.checkWrites());
  }

  /** The session runs `s` (null: something not classified, e.g. a FunctionCall): see readsShareable(). */
  noteStatement(s: StatementInfo | null | undefined): void {
    if (!this.pristine) return;
    if (!(s && leavesSessionAlone(s))) {
      this.pristine = false;
      return;
    }
    // A trigger, rule, policy or default of a table it writes may run user code that changes session settings.
    for (const r of s.written ?? []) if (!this.unchecked?.includes(r)) (this.unchecked ??= []).push(r);
  }

  /**
   * Settle the relations of this session's writes that the catalog cache
   * now knows: one whose writes may run user code (TableInfo.noUserCode;
   * null: not a table) ends sharing for good. True when none is left
   * unknown; the unknown wait for the cache (while they do, no sharing).
   */
  private checkWrites(): boolean {
    const scope = this.catalogScope();
    const left = this.unchecked!.filter((r) => {
      const t = this.ctx.catalog.peekTable(scope, r);
      if (t === undefined) return true;
      if (t === null || !t.noUserCode) this.pristine = false;
      return false;
    });
    this.unchecked = left.length > 0 ? left : null;
    return this.pristine && this.unchecked === null;
  }

  touchesTemp(s: StatementInfo): boolean {
    if (this.tempNames.size === 0) return false;
    for (const r of s.relations) if (this.isTempName(r)) return true;
    return false;
  }

  /**
   * Route one statement (simple protocol) or one Execute (extended protocol).
   * `writeReq` builds the request with deterministic rewriting for writes.
   */
  async dispatch(s: StatementInfo, cls: Classification, text: string, req: Req, writeReq: (filled?: string | null) => Req): Promise<void> {
    if (this.exec.txn?.broken) return this.brokenTxn(s.kind);
    if (this.s.status === 'E' && this.exec.txn && !isTxnControl(s.kind)) {
      await this.exec.read(this.exec.readConn(), req, false); // PostgreSQL answers 25P02
      return;
    }
    switch (s.kind) {
      case 'read':
      case 'copy_to': {
        const show = req.simple && s.tag === 'SHOW' && s.name ? showCommand(s.name, this.ctx) : null;
        if (show) {
          for (const b of encodeShow(show)) this.s.client.send(b);
          this.s.client.send(encodeReadyForQuery(this.s.status));
          return;
        }
        if (this.touchesTemp(s)) {
          await this.exec.mainOnly(req, false);
          return;
        }
        const form = req.simple && !req.unprepared && s.keyedRead && this.s.status !== 'E' ? await this.readForm(s, text) : null;
        await this.exec.read(this.exec.readConn(), form ? preparedReq(text, form) : req, true);
        return;
      }
      case 'declare_cursor': {
        if (s.inner && s.inner.kind !== 'read') {
          // FOR UPDATE, nextval() ...: the cursor exists on every node and every FETCH runs everywhere,
          // serialized on the sequences it draws from and with the random generator seeded.
          const plan = needsPlan(s.inner) ? await this.plan(s.inner, null) : NO_PLAN;
          const w = await this.exec.fanOut(writeReq(), false);
          if (w && !w.error && s.name) {
            this.cursors.set(s.name, 'all');
            if (plan !== NO_PLAN) this.cursorPlans.set(s.name, plan);
          }
          return;
        }
        const c = !this.exec.txn && this.touchesTemp(s) ? this.exec.mainConn() : this.exec.readConn();
        const r = await this.exec.read(c, req, false);
        if (r && !r.error && s.name) this.cursors.set(s.name, c);
        return;
      }
      case 'fetch':
      case 'close_cursor': {
        const where = s.name ? this.cursors.get(s.name) : undefined;
        if (where === 'all') {
          const plan = s.kind === 'fetch' && s.name ? this.cursorPlans.get(s.name) : undefined;
          const w = await this.exec.fanOut(plan ? this.withPlan(req, { ...plan, singleRow: false }) : req, false);
          if (w && !w.error && s.kind === 'close_cursor' && s.name) this.cursors.delete(s.name);
          return;
        }
        const c = where ?? this.exec.txn?.home ?? this.exec.readConn();
        const r = await this.exec.read(c.closed ? this.exec.readConn() : c, req, false);
        if (r && !r.error && s.kind === 'close_cursor' && s.name) this.cursors.delete(s.name);
        return;
      }
      case 'write':
      case 'copy_from':
      case 'other_utility':
      case 'checkpoint':
        return this.write(s, writeReq, req.simple ? text : null, req);
      case 'session':
      case 'prepare':
      case 'deallocate':
      case 'load': {
        if ((s.kind === 'prepare' || s.kind === 'deallocate') && s.name && OWN_STATEMENT_NAME.test(s.name)) throw ownNameError(s.kind, s.name);
        if (isPgquorumSetting(s)) return pgquorumSetting(s, req.simple === true, this.ctx, this.s); // SET pgquorum.commit_barrier: the coordinator's own
        // PREPARE of a statement pgquorum would refuse: refused now, not at each EXECUTE
        if (s.kind === 'prepare' && s.inner && needsPlan(s.inner) && this.s.status !== 'E') await this.plan(s.inner, null);
        // PREPARE of a statement with time functions: they become extra parameters that each EXECUTE fills in.
        const r = await this.exec.session(s.kind === 'prepare' && s.timeParams?.length ? writeReq() : req);
        if (r && !r.error) await this.afterSessionStatement(s);
        return;
      }
      case 'execute': {
        const p = s.name ? this.sqlPrepared.get(s.name) : undefined;
        if (p && p.inner.kind === 'read' && !this.touchesTemp(p.inner)) {
          await this.exec.read(this.exec.readConn(), req, true);
          return;
        }
        let wreq = req;
        if (p && p.timeParams.length > 0) {
          const msg = encodeQuery(rewriteExecute(s.text, p.timeParams, this.exec.times()));
          wreq = { forNode: () => ({ bufs: [msg], skip: 0 }), text };
        }
        const plan = p && this.s.status !== 'E' ? await this.plan(p.inner, null) : NO_PLAN;
        await this.exec.fanOut(this.withPlan(wreq, plan), !this.exec.txn);
        return;
      }
      case 'listen':
      case 'unlisten':
      case 'notify':
        await this.exec.mainOnly(req, false);
        return;
      case 'create_database':
      case 'drop_database':
      case 'alter_database':
      case 'non_transactional':
        if (this.exec.txn) await this.exec.read(this.exec.readConn(), req, false); // PostgreSQL refuses it inside a block
        else await this.exec.fanOut(req, false);
        return;
      default:
        if (isTxnControl(s.kind)) {
          await this.txnControl(s.kind, s.text, req);
          if (s.kind === 'commit' || s.kind === 'rollback' || s.kind === 'rollback_to') await this.afterTxnControl();
          return;
        }
        return this.write(s, writeReq, req.simple ? text : null, req);
    }
  }

  isTempName(name: string): boolean {
    if (name.startsWith('pg_temp.')) return this.tempNames.has(name.slice(8));
    return this.tempUnqualified.has(name);
  }

  private async write(s: StatementInfo, writeReq: (filled?: string | null) => Req, text: string | null, plain: Req): Promise<void> {
    if (s.tag === 'LOCK TABLE' && !this.exec.txn) {
      await this.exec.read(this.exec.readConn(), writeReq(), true); // PostgreSQL: only in transaction blocks
      return;
    }
    if (s.createsTemp) {
      if (this.exec.txn || /\bON\s+COMMIT\s+DROP\b/i.test(s.text)) this.tempDirty = true;
      const r = await this.exec.mainOnly(writeReq(), true);
      if (r && !r.error) {
        this.tempNames.add(s.createsTemp);
        this.tempUnqualified.add(s.createsTemp);
        if (this.customSearchPath) await this.refreshTempNames();
      }
      return;
    }
    if (this.tempNames.size > 0) {
      const temp = s.relations.filter((r) => this.isTempName(r));
      const target = s.relations[0];
      const dml = s.tag === 'INSERT' || s.tag === 'UPDATE' || s.tag === 'DELETE' || s.tag === 'MERGE';
      const tempSeq = /\b(nextval|setval|currval)\b/i.test(s.text) && [...this.tempNames].some((n) => s.text.includes(`'${n}'`));
      const view = /^CREATE (MATERIALIZED )?VIEW/.test(s.tag);
      if ((temp.length > 0 && (temp.length === s.relations.length || (dml && target && this.isTempName(target)) || view)) || tempSeq) {
        // Session-local: the main node only. PostgreSQL makes a view over a temporary table temporary itself.
        if (view || /^DROP /.test(s.tag) || this.exec.txn) this.tempDirty = true;
        const r = await this.exec.mainOnly(writeReq(), true);
        if (r && !r.error && !this.exec.txn && this.tempDirty) await this.refreshTempNames();
        return;
      }
      if (temp.length > 0) {
        throw new PgqError(
          'ERR_TEMP_MIXED',
          `cannot replicate a statement that writes replicated tables from the temporary table "${temp[0]}"`,
          {
            sqlstate: SqlState.FEATURE_NOT_SUPPORTED,
            hint: 'Temporary tables exist on the main node only; copy the rows through the client or use a regular table.',
          },
        );
      }
    }
    const plan = needsPlan(s) && this.s.status !== 'E' ? await planStatement(s, text, { ...this.planEnv(), filledAtParse: text === null }) : NO_PLAN;
    if (plan.read) {
      // only user functions the catalog knows to be stable or immutable: an ordinary read
      await this.exec.read(this.exec.readConn(), plain, true);
      return;
    }
    if (plan.mainOnly) {
      // per-server facts read without writing (SELECT txid_current()): the main node answers
      await this.exec.mainOnly(plain, false, true);
      return;
    }
    // CREATE/ALTER ROLE ... PASSWORD 'plain': every node gets the verifier the coordinator computed (src/txn/role-password.ts).
    const writes = this.ctx.config.writes;
    const inTxn = this.exec.txn !== null && this.s.status === 'T';
    const hold = inTxn && writes?.replicate !== 'per_statement';
    const prepare = text !== null && plan.text === null && writes?.prepare !== 'off';
    const keyed = s.keyed && (hold || prepare) ? await this.keyedMode(s, plan) : null;
    // A keyed write sent as a Query runs on the nodes as a prepared statement (src/sql/parameterize.ts).
    const form = keyed && prepare && text !== null ? parameterize(text, () => this.exec.times()) : null;
    let req: Req;
    if (form && text !== null) req = preparedReq(text, form);
    else if (isRolePasswordStatement(s)) req = await rolePasswordReq(this.exec, s.text, writeReq);
    else req = writeReq(plan.text);
    await this.exec.fanOut(this.withPlan(req, plan), !this.exec.txn, hold ? keyed : null);
    this.afterWrite(s);
  }

  /**
   * Whether a write is keyed: its text (src/sql/keyed-write.ts) and its table
   * (self-contained, in the catalog) fix its effect by the rows it locks.
   * 'one': an UPDATE / DELETE by a unique key; 'any': INSERT ... VALUES.
   * Such a write in a transaction block may reach the other nodes at the
   * next statement that needs them instead of at once (docs/routing.md
   * "Writes held until COMMIT"; 'one' only when the main node touched
   * exactly one row), and its plan on the nodes is the obvious one, so it
   * may run there as a prepared statement.
   */
  private async keyedMode(s: StatementInfo, plan: DetPlan): Promise<'one' | 'any' | null> {
    const k = s.keyed;
    if (!k || !s.target || s.kind !== 'write' || this.s.status === 'E') return null;
    if (s.sequences?.length || s.random || s.unknownFunctions?.length || s.unsafe?.length || s.nondeterministic?.length) return null;
    if (plan !== NO_PLAN && (plan.seed || plan.sequences.length > 0 || plan.singleRow)) return null;
    const main = this.s.conns.get(this.ctx.cluster.main());
    if (!main || main.closed || main.busy) return null;
    const t = await this.ctx.catalog.table(main, this.catalogScope(), s.target, !this.txnDdl);
    if (!t || !t.selfContained) return null;
    if (k.eq === null) return 'any';
    return t.key !== null && t.key.every((c) => k.eq!.includes(c)) ? 'one' : null;
  }

  /** Re-read the session's temporary relations from the main node (after ROLLBACK, ON COMMIT DROP, ...). */
  private async refreshTempNames(): Promise<void> {
    this.tempDirty = false;
    const main = this.s.conns.get(this.ctx.cluster.main());
    if (!main || main.closed) return;
    const r = await main.exchange(Q_TEMP_NAMES, { buffer: true });
    if (r.lost || r.error) return;
    this.tempNames.clear();
    this.tempUnqualified.clear();
    for (const raw of r.frames) {
      if (raw[0] !== BE.DataRow) continue;
      const [name, visible] = decodeDataRow(raw.subarray(5));
      if (!name) continue;
      this.tempNames.add(name.toString());
      if (visible?.toString() === 't') this.tempUnqualified.add(name.toString());
    }
  }

  /**
   * The coordinator refused a statement inside a transaction: put the
   * transaction into the failed state on its nodes too, so that what follows
   * behaves as after any error (25P02 until ROLLBACK or ROLLBACK TO).
   */
  async abortTxnOnNodes(): Promise<void> {
    const txn = this.exec.txn;
    if (!txn || txn.broken) return;
    if (txn.joined.size === 0) {
      // Lazy BEGIN and nothing on a node yet: the home node gets the transaction, failed, so that it answers what follows as PostgreSQL would (25P02, ROLLBACK).
      const home = this.exec.txnHome(txn);
      if (home.closed) return;
      const r = await home.exchange([...txn.log, Q_ABORT], { skipReadies: txn.log.length });
      if (!r.lost) txn.joined.add(home);
      return;
    }
    await Promise.all([...txn.joined].filter((c) => !c.closed && c.txnStatus === 'T').map((c) => c.exchange(Q_ABORT)));
  }

  /** After COMMIT/ROLLBACK/ROLLBACK TO: temporary objects may have come or gone. */
  async afterTxnControl(): Promise<void> {
    if (!this.exec.txn) this.txnEnded();
    await this.exec.releaseSequences(); // sequence locks a failed statement left for the end of the transaction
    if (this.tempDirty && this.s.status !== 'E') await this.refreshTempNames();
  }

  private async afterSessionStatement(s: StatementInfo): Promise<void> {
    if (/search_path|^\s*RESET\s+ALL/i.test(s.text) || s.discard === 'all') {
      this.customSearchPathText = /search_path/i.test(s.text) && /^\s*SET\b/i.test(s.text) ? s.text : null;
      this.customSearchPath = /pg_temp/i.test(s.text) && /^\s*SET\b/i.test(s.text);
      if (this.tempNames.size > 0) await this.refreshTempNames();
    }
    if (s.name === 'setseed' || (s.functions.includes('setseed') && s.tag === 'SELECT')) {
      const m = /setseed\s*\(\s*'?\s*(-?[0-9.eE+-]+)/i.exec(s.text);
      this.userSeed = m ? { base: Number(m[1]), n: 0 } : null;
    }
    this.recordSessionState(s);
    if (s.kind === 'prepare' && s.name && s.inner) this.sqlPrepared.set(s.name, { inner: s.inner, timeParams: s.timeParams ?? [] });
    if (s.kind === 'deallocate') {
      // DEALLOCATE drops protocol-level statements too (the coordinator's own among them, src/txn/prepared-write.ts).
      if (s.name) this.sqlPrepared.delete(s.name);
      else this.sqlPrepared.clear();
      for (const c of this.exec.liveConns()) {
        if (s.name) c.prepared.delete(s.name);
        else c.prepared.clear();
      }
    }
    if (s.discard === 'all' || s.discard === 'temp') {
      this.tempNames.clear();
      this.tempUnqualified.clear();
    }
    if (s.discard === 'all') {
      this.sqlPrepared.clear();
      this.cursors.clear();
      this.exec.planner.forgetAll();
    }
  }

  /**
   * Session state a connection opened later (to a node put back into
   * service) must get: SET/RESET, PREPARE, DEALLOCATE, LOAD run outside a
   * transaction, replayed in order (src/frontend/session.ts connectMissing).
   */
  private recordSessionState(s: StatementInfo): void {
    if (this.exec.txn || this.s.status !== 'I') return; // SET inside a transaction block: not kept (documented)
    const log = this.s.sessionLog;
    if (s.discard === 'all' || /^\s*RESET\s+ALL\s*;?\s*$/i.test(s.text)) {
      log.length = 0;
      return;
    }
    if (/^\s*SET\s+LOCAL\b/i.test(s.text)) return;
    // A later SET/RESET of the same setting replaces the earlier one (the log stays small).
    const key = settingKey(s.text);
    if (key !== null) {
      for (let i = log.length - 1; i >= 0; i--) if (settingKey(log[i]!) === key) log.splice(i, 1);
    } else if (log.includes(s.text)) return;
    log.push(s.text);
  }

  // ---- extended protocol -------------------------------------------------------

  async batch(frames: Frame[], end: 'sync' | 'flush', dec: BatchDecoders): Promise<void> {
    this.exec.busy = true;
    try {
      await this.prefetch(frames, dec);
      const pb = this.exec.planner.plan(frames, end, dec);
      await this.runBatch(pb);
      this.exec.planner.finish(end, this.s.status);
    } finally {
      this.exec.busy = false;
      this.exec.flushAsync();
    }
  }

  private async runBatch(pb: PlannedBatch): Promise<void> {
    for (const e of pb.execs) this.noteStatement(e.info);
    if (pb.end === 'sync') await this.exec.settleLostTxn();
    if (this.exec.txn?.broken && pb.end === 'sync') {
      const only = pb.execs.length === 1 ? pb.execs[0]!.info : null;
      return this.brokenTxn(only ? only.kind : 'write');
    }
    const req = pb.req;
    // Execute on a portal that lives on one node: that node.
    const pinned = pb.pinnedTo;
    if (pinned && !pinned.closed) {
      await this.exec.read(pinned, req, false);
      return;
    }
    if (pb.execs.length === 0) {
      await this.exec.read(this.exec.readConn(), req, true);
      return;
    }
    if (pb.execs.length === 1) {
      const e = pb.execs[0]!;
      const info = e.info;
      if (info) {
        await this.dispatch(info, e.cls!, e.sql, req, () => req);
        return;
      }
      await this.exec.read(this.exec.readConn(), req, true); // unknown statement: the node reports it
      return;
    }
    // Several Executes in one batch.
    const infos = pb.execs.map((e) => e.info);
    if (infos.every((i) => i && i.kind === 'read' && !this.touchesTemp(i))) {
      await this.exec.read(this.exec.readConn(), req, true);
      return;
    }
    const wrap = !this.exec.txn && pb.end === 'sync' && !infos.some((i) => i && isTxnControl(i.kind));
    await this.exec.fanOut(req, wrap);
  }

}

const SHARE_SAFE_WRITES = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE']);

/**
 * Statements after which a connection's session state is still what the
 * login set: reads, transaction control, and INSERT/UPDATE/DELETE/MERGE
 * (not creating anything, calling neither set_config() nor a user function;
 * the user code their relations may run is checked against the catalog,
 * Router.checkWrites()). Everything else (SET,
 * PREPARE, LISTEN, DDL, DO, CALL, a SELECT with a writing function, ...)
 * may change it.
 */
function leavesSessionAlone(s: StatementInfo): boolean {
  if (s.kind === 'read') return true;
  if (isTxnControl(s.kind)) return s.kind !== 'prepare_transaction' && s.kind !== 'commit_prepared' && s.kind !== 'rollback_prepared';
  return (
    s.kind === 'write' &&
    s.dataWrite === true &&
    SHARE_SAFE_WRITES.has(s.tag) &&
    !s.createsTemp &&
    !s.functions.includes('set_config') &&
    (s.unknownFunctions?.length ?? 0) === 0 // a user function may call set_config()
  );
}

/** The setting a SET/RESET statement changes (lower case), or null for other statements. */
function settingKey(text: string): string | null {
  const m = /^\s*(?:SET|RESET)\s+(?:SESSION\s+(?!AUTHORIZATION|CHARACTERISTICS))?("[^"]+"|[\w.]+)/i.exec(text);
  if (!m) return null;
  const name = m[1]!.replace(/^"|"$/g, '').toLowerCase();
  return name === 'all' || name === 'session' ? null : name;
}

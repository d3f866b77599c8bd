// Decides where each request of a session runs (docs/routing.md) and keeps
// the session-level facts that routing needs: SQL-level prepared statements,
// cursors and where they live, and the session's temporary relations (which
// exist on the main node only). The routes themselves are the Executor's.
import { PgqError, SqlState } from '../errors.js';
import type { CoordinatorContext } from '../context.js';
import type { Session } from '../frontend/session.js';
import type { NodeConnection } from '../backend/node-connection.js';
import type { Frame } from '../protocol/reader.js';
import { BE } from '../protocol/constants.js';
import { decodeDataRow, encodeCommandComplete, encodeReadyForQuery } from '../protocol/backend.js';
import { encodeQuery } from '../protocol/frontend.js';
import { classify, type Classification, type StatementInfo } from '../sql/classify.js';
import { rewriteExecute, rewriteSimple } from '../sql/rewrite.js';
import type { TimeKind } from '../sql/timespans.js';
import { nowMicros, timeValues } from './times.js';
import type { BatchDecoders, PlannedBatch } from './batch.js';
import { encodeShow, showCommand } from '../admin/show.js';
import { describe, Executor, isTxnControl, Q_ABORT, type Req } from './executor.js';

const Q_ROLLBACK = encodeQuery('ROLLBACK');
const Q_COMMIT = encodeQuery('COMMIT');
/** The session's temporary relations, and whether an unqualified name resolves to each (search_path may put pg_temp later). */
const Q_TEMP_NAMES = encodeQuery(
  'SELECT relname, pg_catalog.to_regclass(pg_catalog.quote_ident(relname)) = oid FROM pg_catalog.pg_class WHERE relnamespace = pg_catalog.pg_my_temp_schema()',
);

export class Router {
  readonly exec: Executor;
  /** SQL-level PREPAREd statements: name -> inner statement. */
  private readonly sqlPrepared = new Map<string, { inner: StatementInfo; timeParams: readonly TimeKind[] }>();
  /** SQL cursors: name -> the node holding it, or 'all' for a cursor whose query writes (declared on every node). */
  private readonly cursors = new Map<string, NodeConnection | 'all'>();
  /** A temporary object may have appeared or vanished in this transaction: re-read the list at its end. */
  private tempDirty = false;
  /** The session set search_path: which relation an unqualified name means must be asked of the main node. */
  private customSearchPath = false;
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
      // BEGIN starts a transaction on one node; everything else outside a
      // transaction only draws PostgreSQL's warning or error, from one node.
      const c = this.exec.readConn();
      const r = await this.exec.read(c, req, true);
      if (r && kind === 'begin' && r.status === 'T') this.exec.beginFrom(r.node, text);
      return;
    }
    const joined = [...txn.joined].filter((c) => !c.closed);
    const home = txn.home;
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
        if (req.simple && /^\s*(commit|end)\s*(transaction|work)?\s*;?\s*$/i.test(text)) {
          this.s.client.send(encodeCommandComplete('COMMIT'));
          this.s.client.send(encodeReadyForQuery('I'));
          return;
        }
        // The client's own COMMIT messages (extended protocol, AND CHAIN) answered by a node
        // in a fresh empty transaction, so every reply is the one PostgreSQL gives.
        const r = await this.exec.read(this.exec.liveConns()[0] ?? home, req, false, true);
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

  private brokenTxn(kind: StatementInfo['kind']): void {
    if (kind === 'commit' || kind === 'rollback') {
      this.exec.txn = null;
      this.s.status = 'I';
      this.s.client.send(encodeCommandComplete('ROLLBACK'));
      this.s.client.send(encodeReadyForQuery('I'));
      return;
    }
    this.s.status = 'E';
    this.exec.sendError(
      new PgqError('ERR_TXN_ABORTED', 'current transaction is aborted, commands ignored until end of transaction block', {
        sqlstate: SqlState.IN_FAILED_SQL_TRANSACTION,
      }),
      true,
    );
  }

  // ---- simple query ----------------------------------------------------------

  async simpleQuery(sql: string, frame: Frame): Promise<void> {
    this.exec.busy = true;
    try {
      await this.simpleQueryInner(sql, frame);
    } finally {
      this.exec.busy = false;
      this.exec.flushAsync();
    }
  }

  private async simpleQueryInner(sql: string, frame: Frame): Promise<void> {
    const cls = classify(sql);
    const st = cls.statements;
    if (st.length === 0) {
      this.s.sendEmptyQuery();
      return;
    }
    const raw = frame.raw; // a view: frames are never overwritten once read
    const plain: Req = { forNode: () => ({ bufs: [raw], skip: 0 }), text: sql, simple: true };
    if (this.exec.txn?.broken) return this.brokenTxn(st.length === 1 ? st[0]!.kind : 'write');
    if (st.length === 1) return this.dispatch(st[0]!, cls, sql, plain, () => this.rewritten(sql, cls, raw));
    if (st.every((s) => s.kind === 'read' && !this.touchesTemp(s))) {
      await this.exec.read(this.exec.readConn(), plain, true);
      return;
    }
    if (st.some((s) => s.createsTemp || this.touchesTemp(s))) {
      await this.exec.mainOnly(plain, true);
      return;
    }
    const wrap = !this.exec.txn && !st.some((s) => isTxnControl(s.kind) || s.kind === 'non_transactional' || s.kind.endsWith('_database'));
    await this.exec.fanOut(this.rewritten(sql, cls, raw), wrap);
  }

  /** A write's Query with time values fixed by the coordinator. */
  private rewritten(sql: string, cls: Classification, raw: Buffer): Req {
    if (!cls.needsRewrite) return { forNode: () => ({ bufs: [raw], skip: 0 }), text: sql };
    const txnStart = this.exec.txn?.startMicros ?? nowMicros();
    const text = rewriteSimple(sql, timeValues(txnStart));
    const msg = text === null ? raw : encodeQuery(text);
    return { forNode: () => ({ bufs: [msg], skip: 0 }), text: sql };
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
  async dispatch(s: StatementInfo, cls: Classification, text: string, req: Req, writeReq: () => Req): Promise<void> {
    if (this.exec.txn?.broken) return this.brokenTxn(s.kind);
    if (this.s.status === 'E' && this.exec.txn && !isTxnControl(s.kind)) {
      await this.exec.read(this.exec.txn.home, req, false); // PostgreSQL answers 25P02
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
        if (this.touchesTemp(s)) await this.exec.mainOnly(req, false);
        else await this.exec.read(this.exec.readConn(), req, true);
        return;
      }
      case 'declare_cursor': {
        if (s.inner && s.inner.kind !== 'read') {
          // FOR UPDATE, nextval() ...: the cursor exists on every node and every FETCH runs everywhere.
          const w = await this.exec.fanOut(writeReq(), false);
          if (w && !w.error && s.name) this.cursors.set(s.name, 'all');
          return;
        }
        const c = this.exec.txn ? this.exec.txn.home : this.touchesTemp(s) ? this.exec.mainConn() : this.exec.readConn();
        const r = await this.exec.read(c, req, false);
        if (r && !r.error && s.name) this.cursors.set(s.name, c);
        return;
      }
      case 'fetch':
      case 'close_cursor': {
        const where = s.name ? this.cursors.get(s.name) : undefined;
        if (where === 'all') {
          const w = await this.exec.fanOut(req, false);
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
        return this.write(s, writeReq);
      case 'session':
      case 'prepare':
      case 'deallocate':
      case 'load': {
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
          const msg = encodeQuery(rewriteExecute(s.text, p.timeParams, timeValues(this.exec.txn?.startMicros ?? nowMicros())));
          wreq = { forNode: () => ({ bufs: [msg], skip: 0 }), text };
        }
        await this.exec.fanOut(wreq, !this.exec.txn);
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
        if (this.exec.txn) await this.exec.read(this.exec.txn.home, req, false); // PostgreSQL refuses it inside a block
        else await this.exec.fanOut(req, false);
        return;
      default:
        if (isTxnControl(s.kind)) {
          await this.txnControl(s.kind, s.text, req);
          if (s.kind === 'commit' || s.kind === 'rollback' || s.kind === 'rollback_to') await this.afterTxnControl();
          return;
        }
        return this.write(s, writeReq);
    }
  }

  isTempName(name: string): boolean {
    if (name.startsWith('pg_temp.')) return this.tempNames.has(name.slice(8));
    return this.tempUnqualified.has(name);
  }

  private async write(s: StatementInfo, writeReq: () => Req): Promise<void> {
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
    await this.exec.fanOut(writeReq(), !this.exec.txn);
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
    await Promise.all([...txn.joined].filter((c) => !c.closed && c.txnStatus === 'T').map((c) => c.exchange(Q_ABORT)));
  }

  /** After COMMIT/ROLLBACK/ROLLBACK TO: temporary objects may have come or gone. */
  async afterTxnControl(): Promise<void> {
    if (this.tempDirty && this.s.status !== 'E') await this.refreshTempNames();
  }

  private async afterSessionStatement(s: StatementInfo): Promise<void> {
    if (/search_path|^\s*RESET\s+ALL/i.test(s.text) || s.discard === 'all') {
      this.customSearchPath = /pg_temp/i.test(s.text) && /^\s*SET\b/i.test(s.text);
      if (this.tempNames.size > 0) await this.refreshTempNames();
    }
    if (s.kind === 'prepare' && s.name && s.inner) this.sqlPrepared.set(s.name, { inner: s.inner, timeParams: s.timeParams ?? [] });
    if (s.kind === 'deallocate') {
      if (s.name) this.sqlPrepared.delete(s.name);
      else this.sqlPrepared.clear();
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

  // ---- extended protocol -------------------------------------------------------

  async batch(frames: Frame[], end: 'sync' | 'flush', dec: BatchDecoders): Promise<void> {
    this.exec.busy = true;
    try {
      const pb = this.exec.planner.plan(frames, end, dec);
      await this.runBatch(pb);
      this.exec.planner.finish(end, this.s.status);
    } finally {
      this.exec.busy = false;
      this.exec.flushAsync();
    }
  }

  private async runBatch(pb: PlannedBatch): Promise<void> {
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

// Runs a session's requests on the nodes (DESIGN.md "The write path" and
// "Reads"). Every request is a Req that can be rendered for any node; the
// routes are:
//   read      one node, answer streamed to the client, retried elsewhere if
//             the node is lost before anything was forwarded;
//   fan-out   main node first, then the other `up` nodes in parallel, then the
//             vote; autocommit writes are wrapped in BEGIN/COMMIT so that the
//             main node keeps its row locks until the replicas have the write
//             (conflicting writes therefore reach every node in one order);
//   parallel  session state (SET ...) and transaction control on every node
//             of the session or transaction at once.
// Transactions join nodes lazily: a node that enters a transaction late gets
// the transaction's control statements replayed first (txn.log).
//
// Crash behaviour (until two-phase commit lands, issue 3): COMMIT goes to the
// replicas first and to the main node last; a coordinator crash between the
// two leaves the main node without the commit and the replicas with it.
import type { Logger } from 'pino';
import { PgqError, SqlState } from '../errors.js';
import type { CoordinatorContext } from '../context.js';
import type { Session } from '../frontend/session.js';
import type { ExchangeResult, NodeConnection } from '../backend/node-connection.js';
import { nodeError } from '../backend/node-connection.js';
import type { Frame } from '../protocol/reader.js';
import { BE, FE } from '../protocol/constants.js';
import {
  decodeDataRow,
  decodeParameterDescription,
  encodeCommandComplete,
  encodeParameterDescription,
  encodeReadyForQuery,
  errorFromPgq,
} from '../protocol/backend.js';
import { encodeCopyFail, encodeQuery } from '../protocol/frontend.js';
import { classify, type Classification, type StatementInfo } from '../sql/classify.js';
import { rewriteSimple } from '../sql/rewrite.js';
import { vote } from './vote.js';
import { redactSql } from '../sql/redact.js';
import { nowMicros, timeValues } from './times.js';
import { BatchPlanner, type BatchDecoders, type PlannedBatch } from './batch.js';

const Q_BEGIN = encodeQuery('BEGIN');
const Q_COMMIT = encodeQuery('COMMIT');
const Q_ROLLBACK = encodeQuery('ROLLBACK');
/** Puts a node's transaction into the failed state, as an error PostgreSQL raised itself would. */
const Q_ABORT = encodeQuery(
  "DO $pgquorum$BEGIN RAISE EXCEPTION 'pgquorum: a statement of this transaction was refused by the coordinator'; END$pgquorum$",
);
/** The session's temporary relations, and whether an unqualified name resolves to each (search_path may put pg_temp later). */
const Q_TEMP_NAMES = encodeQuery(
  'SELECT relname, pg_catalog.to_regclass(pg_catalog.quote_ident(relname)) = oid FROM pg_catalog.pg_class WHERE relnamespace = pg_catalog.pg_my_temp_schema()',
);

/** One request, renderable for any node. */
export interface Req {
  forNode(c: NodeConnection): { bufs: Buffer[]; skip: number };
  /** For a batch that ends in Flush: how many terminal replies end it. */
  expect?: number;
  /** Bookkeeping after a node answered. */
  after?(c: NodeConnection, r: ExchangeResult, forwarded: boolean): void;
  /** Short text for logs. */
  text: string;
}

interface Txn {
  /** Where reads go: the first node of the transaction until it writes, then the main node. */
  home: NodeConnection;
  wrote: boolean;
  joined: Set<NodeConnection>;
  /** Transaction-control statements so far (Query messages), replayed on late joiners. */
  log: Buffer[];
  startMicros: bigint;
  /** Set when the coordinator itself had to abort the transaction (main node lost). */
  broken: PgqError | null;
}

interface CopyIn {
  target: NodeConnection;
  spool: Buffer[] | null;
  done: boolean;
}

function isTxnControl(k: StatementInfo['kind']): boolean {
  return (
    k === 'begin' || k === 'commit' || k === 'rollback' || k === 'savepoint' || k === 'release' ||
    k === 'rollback_to' || k === 'set_transaction' || k === 'prepare_transaction' ||
    k === 'commit_prepared' || k === 'rollback_prepared'
  );
}

export class Executor {
  copyIn: CopyIn | null = null;
  txn: Txn | null = null;
  readonly planner: BatchPlanner;
  /** SQL-level PREPAREd statements: name -> inner statement. */
  private readonly sqlPrepared = new Map<string, StatementInfo>();
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
  /** Async frames (notifications) held while a request is being answered. */
  private pendingAsync: Buffer[] = [];
  private busy = false;
  private readonly ctx: CoordinatorContext;
  private readonly s: Session;
  private readonly log: Logger;

  constructor(ctx: CoordinatorContext, s: Session) {
    this.ctx = ctx;
    this.s = s;
    this.log = s.log;
    this.planner = new BatchPlanner(this);
  }

  // ---- nodes -------------------------------------------------------------

  liveConns(): NodeConnection[] {
    const out: NodeConnection[] = [];
    for (const n of this.ctx.cluster.nodes) {
      if (n.state !== 'up') continue;
      const c = this.s.conns.get(n);
      if (c && !c.closed) out.push(c);
    }
    return out;
  }

  mainConn(): NodeConnection {
    const main = this.ctx.cluster.main();
    const c = this.s.conns.get(main);
    if (!c || c.closed) {
      throw new PgqError('ERR_NO_MAIN_CONNECTION', `this session has no connection to the main node ${main.id}`, {
        sqlstate: SqlState.SERIALIZATION_FAILURE,
        hint: 'Reconnect; the new session connects to the current main node.',
        context: { session: this.s.id, node: main.id },
      });
    }
    return c;
  }

  /** The node a read goes to: the transaction's home, or one chosen by weight and load. */
  readConn(): NodeConnection {
    if (this.txn) return this.txn.home;
    const live = this.liveConns();
    const node = this.ctx.cluster.pickReadNode(live.map((c) => c.node));
    if (node) return this.s.conns.get(node)!;
    if (live.length > 0) return live[0]!;
    throw new PgqError('ERR_NO_NODE', 'no node is available for this session', { sqlstate: SqlState.NO_NODE_AVAILABLE });
  }

  /**
   * A node connection broke: evidence that the node is gone (DESIGN.md
   * "Nodes"). Not when the coordinator closed it itself (session ending,
   * node already ejected).
   */
  nodeLost(c: NodeConnection, err: PgqError): void {
    this.s.conns.delete(c.node);
    if (err.code === 'ERR_CONN_CLOSED' || this.s.closed) return;
    if (c.node.state === 'up') this.ctx.cluster.setState(c.node, 'down', err.message);
  }

  private markDiverged(c: NodeConnection, reason: string): void {
    if (c.node.state === 'up') this.ctx.cluster.setState(c.node, 'diverged', reason);
    this.s.dropNode(c.node);
  }

  // ---- output ------------------------------------------------------------

  /** Forward one node frame to the client, fixing what the coordinator changed. */
  forward(raw: Buffer, type: number): void {
    if (type === BE.ParameterDescription && this.planner.stripQueue.length > 0) {
      const strip = this.planner.stripQueue.shift()!;
      if (strip > 0) {
        const types = decodeParameterDescription(raw.subarray(5));
        this.s.client.send(encodeParameterDescription(types.slice(0, types.length - strip)));
        return;
      }
    }
    this.s.client.send(raw);
  }

  private sendFrames(frames: Buffer[], finalStatus: 'I' | 'T' | 'E' | null): void {
    for (const raw of frames) {
      const t = raw[0]!;
      if (t === BE.CopyInResponse) continue; // already sent live
      if (t === BE.ReadyForQuery) continue; // replaced below
      this.forward(raw, t);
    }
    if (finalStatus) this.s.client.send(encodeReadyForQuery(finalStatus));
  }

  private sendError(err: PgqError, ready: boolean): void {
    this.s.client.send(errorFromPgq(err));
    if (ready) this.s.client.send(encodeReadyForQuery(this.s.status));
  }

  onAsyncFrame(_c: NodeConnection, f: Frame): void {
    if (f.type === BE.NotificationResponse || f.type === BE.NoticeResponse) {
      const raw = Buffer.from(f.raw);
      if (this.busy) this.pendingAsync.push(raw);
      else {
        this.s.client.send(raw);
        this.s.client.flush();
      }
    }
  }

  private flushAsync(): void {
    if (this.pendingAsync.length === 0) return;
    for (const b of this.pendingAsync) this.s.client.send(b);
    this.pendingAsync = [];
  }

  // ---- COPY FROM STDIN -----------------------------------------------------

  copyInFrame(f: Frame): void {
    const ci = this.copyIn;
    if (!ci || ci.done) return;
    const raw = Buffer.from(f.raw);
    ci.target.write(raw);
    ci.spool?.push(raw);
    if (f.type === FE.CopyDone || f.type === FE.CopyFail) ci.done = true;
  }

  /** The client is gone during COPY FROM STDIN: fail the COPY on the node so its transaction rolls back. */
  abortCopy(): void {
    const ci = this.copyIn;
    if (ci && !ci.done) {
      const fail = encodeCopyFail('client connection lost during COPY');
      ci.target.write(fail);
      ci.spool?.push(fail); // the other nodes must fail the same COPY
      ci.done = true;
    }
  }

  // ---- exchanges -----------------------------------------------------------

  async exchangeOn(
    c: NodeConnection,
    req: Req,
    o: { wrap?: boolean; buffer?: boolean; live?: boolean; spool?: boolean; copyData?: Buffer[] | null },
  ): Promise<ExchangeResult & { forwarded: boolean; copy: CopyIn | null }> {
    const bufs: Buffer[] = [];
    let readies = 0;
    const txn = this.txn;
    if (o.wrap) {
      bufs.push(Q_BEGIN);
      readies = 1;
    } else if (txn && !txn.joined.has(c)) {
      for (const b of txn.log) bufs.push(b);
      readies = txn.log.length;
    }
    const body = req.forNode(c);
    for (const b of body.bufs) bufs.push(b);
    if (o.copyData) for (const b of o.copyData) bufs.push(b);
    let forwarded = false;
    const client = this.s.client;
    const r = await c.exchange(bufs, {
      skipReadies: readies,
      skipTerminals: body.skip,
      expectTerminals: req.expect,
      buffer: o.buffer ?? false,
      sink: (f) => {
        if (f.type === BE.CopyInResponse && !o.copyData) {
          // COPY FROM STDIN: the client must see this now to start sending data.
          client.send(f.raw);
          client.flush();
          this.copyIn = { target: c, spool: o.spool ? [] : null, done: false };
          forwarded = true;
          return;
        }
        if (!o.live) return;
        forwarded = true;
        this.forward(f.raw, f.type);
        if (client.congested) {
          client.flush();
          c.pause();
          client.socket.once('drain', () => c.resume());
        }
      },
    });
    if (txn && !o.wrap && !r.lost) txn.joined.add(c);
    req.after?.(c, r, forwarded);
    // A COPY FROM STDIN that ran in this exchange is over (its data is in copy.spool).
    const copy = this.copyIn;
    this.copyIn = null;
    return Object.assign(r, { forwarded, copy });
  }

  /** Read route: one node, streamed; retried on another node if lost before any byte was forwarded. */
  async read(c: NodeConnection, req: Req, retry: boolean): Promise<ExchangeResult | null> {
    for (let attempt = 0; ; attempt++) {
      const node = c.node;
      node.inflight++;
      node.reads++;
      let r: ExchangeResult & { forwarded: boolean; copy: CopyIn | null };
      try {
        r = await this.exchangeOn(c, req, { live: true });
      } finally {
        node.inflight--;
      }
      if (!r.lost) {
        this.setStatus(r.status);
        return r;
      }
      this.nodeLost(c, r.lost);
      if (retry && !r.forwarded && !this.txn && attempt < 3) {
        c = this.readConn();
        continue;
      }
      this.copyIn = null;
      this.failTxn(this.lostInRequest(r.lost));
      return null;
    }
  }

  /** The error a client gets when its node was lost in the middle of its request. */
  private lostInRequest(err: PgqError): PgqError {
    return new PgqError('ERR_NODE_LOST_IN_REQUEST', `${err.message}; the transaction was aborted, retry it`, {
      sqlstate: SqlState.SERIALIZATION_FAILURE,
      context: err.context,
      cause: err,
    });
  }

  /**
   * The coordinator must give up the request: roll back what the nodes hold
   * of the transaction and tell the client with an error (40001 for losses).
   */
  private failTxn(err: PgqError): void {
    const txn = this.txn;
    if (txn) {
      for (const c of txn.joined) if (!c.closed) void c.exchange(Q_ROLLBACK);
      txn.broken = err;
      txn.joined.clear();
      this.s.status = 'E';
    } else {
      this.s.status = 'I';
    }
    this.copyIn = null;
    this.sendError(err, true);
  }

  /** Parallel route: the same request on several nodes at once, answered with the vote's winner. */
  private async parallel(conns: NodeConnection[], req: Req, forwardFrom: NodeConnection): Promise<ExchangeResult | null> {
    const results = await Promise.all(conns.map((c) => this.exchangeOn(c, req, { buffer: true })));
    return this.settle(results, req, forwardFrom, null);
  }

  /**
   * Count votes over `results`, eject the outvoted and the lost, send the
   * winner's frames (the preferred node's when it is among the winners).
   * `finalStatus` overrides the ReadyForQuery status sent to the client.
   */
  private settle(
    results: ExchangeResult[],
    req: Req,
    preferred: NodeConnection,
    finalStatus: 'I' | 'T' | 'E' | null,
  ): ExchangeResult | null {
    const v = vote(results, this.ctx.cluster.quorum);
    for (const r of v.lost) this.nodeLost(r.node, r.lost!);
    if (!v.winner) {
      const detail = [...v.counts].map(([k, n]) => `${k} x${n}`).join(', ');
      this.failTxn(
        new PgqError('ERR_NO_MAJORITY', 'the nodes disagree about the outcome and no outcome has a majority', {
          sqlstate: SqlState.INTERNAL_ERROR,
          detail: `outcomes: ${detail}; statement: ${redactSql(req.text).slice(0, 200)}`,
        }),
      );
      return null;
    }
    for (const r of v.outvoted) {
      const reason = `outvoted on "${redactSql(req.text).slice(0, 120)}": node said ${describe(r)}, majority said ${describe(v.winner)}`;
      this.markDiverged(r.node, reason);
    }
    let winner = v.winner;
    const pref = results.find((r) => r.node === preferred && !r.lost && !v.outvoted.includes(r));
    if (pref) winner = pref;
    this.setStatus(finalStatus ?? winner.status);
    this.sendFrames(winner.frames, finalStatus ?? winner.status);
    return winner;
  }

  private setStatus(st: 'I' | 'T' | 'E' | null): void {
    if (st) this.s.status = st;
  }

  /**
   * Fan-out route (DESIGN.md write path 2-3): main node first; once it has
   * finished, every other `up` node in parallel; then the vote. `wrap` runs
   * an autocommit request in BEGIN/COMMIT on every node (COMMIT to the
   * replicas first, the main node last).
   */
  async fanOut(req: Req, wrap: boolean): Promise<ExchangeResult | null> {
    const main = this.mainConn();
    wrap = wrap && !this.txn;
    const first = await this.exchangeOn(main, req, { wrap, buffer: true, spool: true });
    const copy = first.copy;
    if (copy && !copy.done) {
      // The main node ended the COPY early (an error): the others must end it the same way.
      copy.spool?.push(encodeCopyFail('COPY failed on the main node'));
      copy.done = true;
    }
    if (first.lost) {
      this.nodeLost(main, first.lost);
      if (wrap) for (const c of this.liveConns()) void c; // nothing was sent to the others yet
      this.failTxn(this.lostInRequest(first.lost));
      return null;
    }
    main.node.writes++;
    const others = this.liveConns().filter((c) => c !== main);
    const rest = await Promise.all(
      others.map((c) => {
        c.node.writes++;
        return this.exchangeOn(c, req, { wrap, buffer: true, copyData: copy?.spool ?? null });
      }),
    );
    const results: ExchangeResult[] = [first, ...rest];
    if (!wrap) {
      const w = this.settle(results, req, main, null);
      if (w) this.afterTxnWrite(w);
      return w;
    }
    // Autocommit: decide, then finish the implicit transaction everywhere.
    const v = vote(results, this.ctx.cluster.quorum);
    const ok = v.winner !== null && v.winner.error === null && v.winner.status !== 'E';
    const participants = results.filter((r) => !r.lost && (v.winner === null || !v.outvoted.includes(r))).map((r) => r.node);
    if (ok) await this.commitOrdered(participants, main);
    else await Promise.all(participants.map((c) => c.exchange(Q_ROLLBACK)));
    this.s.status = 'I';
    return this.settle(results, req, main, 'I');
  }

  /** After a write inside a transaction (or a string that opened one): every participant joined. */
  private afterTxnWrite(w: ExchangeResult): void {
    if (w.status === 'I') {
      this.txn = null;
      return;
    }
    const main = this.mainConn();
    if (!this.txn) {
      this.txn = { home: main, wrote: true, joined: new Set(), log: [Q_BEGIN], startMicros: nowMicros(), broken: null };
    }
    this.txn.wrote = true;
    this.txn.home = main;
    for (const c of this.liveConns()) if (c.txnStatus !== 'I') this.txn.joined.add(c);
  }

  /** COMMIT on every participant, replicas first and `last` (the main node) at the end. */
  private async commitOrdered(conns: NodeConnection[], last: NodeConnection, commitMsg: Buffer = Q_COMMIT): Promise<void> {
    const firsts = conns.filter((c) => c !== last);
    const rs = await Promise.all(firsts.map((c) => c.exchange(commitMsg)));
    for (const r of rs) this.checkCommit(r);
    if (conns.includes(last)) this.checkCommit(await last.exchange(commitMsg));
  }

  private checkCommit(r: ExchangeResult): void {
    if (r.lost) this.nodeLost(r.node, r.lost);
    else if (r.error) this.markDiverged(r.node, `COMMIT failed: ${r.error['C']} ${r.error['M']}`);
  }

  /** Main node only (temporary objects, LISTEN/NOTIFY); joins the transaction there. */
  async mainOnly(req: Req, wrote: boolean): Promise<ExchangeResult | null> {
    const main = this.mainConn();
    const r = await this.read(main, req, false);
    if (r && this.txn && wrote) {
      this.txn.wrote = true;
      this.txn.home = main;
    }
    if (r && r.status === 'I') this.txn = null;
    return r;
  }

  /** Session state (SET, RESET, DISCARD, PREPARE ...): every node of the session, in the transaction if one is open. */
  async session(req: Req): Promise<ExchangeResult | null> {
    const conns = this.liveConns();
    const home = this.txn?.home ?? this.mainConn();
    const w = await this.parallel(conns, req, conns.includes(home) ? home : conns[0]!);
    if (w && this.txn === null && w.status === 'T') this.beginFrom(home, req);
    return w;
  }

  private beginFrom(home: NodeConnection, req: Req, text?: string): void {
    this.txn = {
      home,
      wrote: false,
      joined: new Set([home]),
      log: [text !== undefined ? encodeQuery(text) : Q_BEGIN],
      startMicros: nowMicros(),
      broken: null,
    };
    void req;
  }

  // ---- transaction control -------------------------------------------------

  async txnControl(kind: StatementInfo['kind'], text: string, req: Req): Promise<void> {
    const txn = this.txn;
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
      const c = this.readConn();
      const r = await this.read(c, req, true);
      if (r && kind === 'begin' && r.status === 'T') this.beginFrom(r.node, req, text);
      return;
    }
    const joined = [...txn.joined].filter((c) => !c.closed);
    const home = txn.home;
    if (kind === 'begin' || (this.s.status === 'E' && kind !== 'commit' && kind !== 'rollback' && kind !== 'rollback_to')) {
      await this.read(home, req, false); // warning "already in a transaction", or 25P02
      return;
    }
    if (kind === 'commit' || kind === 'rollback') {
      if (kind === 'rollback' || this.s.status === 'E' || joined.length <= 1) {
        // Roll back everywhere; the home node answers the client's own words.
        const others = joined.filter((c) => c !== home);
        await Promise.all(others.map((c) => c.exchange(Q_ROLLBACK)));
        await this.read(home, req, false);
      } else {
        const main = this.ctx.cluster.main();
        const last = joined.find((c) => c.node === main) ?? home;
        const firsts = joined.filter((c) => c !== last);
        const rs = await Promise.all(firsts.map((c) => this.exchangeOn(c, req, { buffer: true })));
        const r = await this.read(last, req, false);
        for (const x of rs) {
          if (x.lost) this.nodeLost(x.node, x.lost);
          else if (r && (x.error ? 'E' : x.tags.join()) !== (r.error ? 'E' : r.tags.join())) {
            this.markDiverged(x.node, `COMMIT outcome differs from the main node's: ${describe(x)}`);
          }
        }
      }
      if (this.s.status === 'I') this.txn = null;
      return;
    }
    // SAVEPOINT, RELEASE, ROLLBACK TO, SET TRANSACTION: every joined node, and logged for late joiners.
    await this.parallel(joined, req, home);
    txn.log.push(encodeQuery(text));
  }

  private brokenTxn(kind: StatementInfo['kind']): void {
    if (kind === 'commit' || kind === 'rollback') {
      this.txn = null;
      this.s.status = 'I';
      this.s.client.send(encodeCommandComplete('ROLLBACK'));
      this.s.client.send(encodeReadyForQuery('I'));
      return;
    }
    this.s.status = 'E';
    this.sendError(
      new PgqError('ERR_TXN_ABORTED', 'current transaction is aborted, commands ignored until end of transaction block', {
        sqlstate: SqlState.IN_FAILED_SQL_TRANSACTION,
      }),
      true,
    );
  }

  // ---- simple query ----------------------------------------------------------

  async simpleQuery(sql: string, frame: Frame): Promise<void> {
    this.busy = true;
    try {
      await this.simpleQueryInner(sql, frame);
    } finally {
      this.busy = false;
      this.flushAsync();
    }
  }

  private async simpleQueryInner(sql: string, frame: Frame): Promise<void> {
    const cls = classify(sql);
    const st = cls.statements;
    if (st.length === 0) {
      this.s.sendEmptyQuery();
      return;
    }
    const raw = Buffer.from(frame.raw);
    const plain: Req = { forNode: () => ({ bufs: [raw], skip: 0 }), text: sql };
    if (this.txn?.broken) return this.brokenTxn(st.length === 1 ? st[0]!.kind : 'write');
    if (st.length === 1) return this.dispatch(st[0]!, cls, sql, plain, () => this.rewritten(sql, cls, raw));
    if (st.every((s) => s.kind === 'read' && !this.touchesTemp(s))) {
      await this.read(this.readConn(), plain, true);
      return;
    }
    if (st.some((s) => s.createsTemp || this.touchesTemp(s))) {
      await this.mainOnly(plain, true);
      return;
    }
    const wrap = !this.txn && !st.some((s) => isTxnControl(s.kind) || s.kind === 'non_transactional' || s.kind.endsWith('_database'));
    await this.fanOut(this.rewritten(sql, cls, raw), wrap);
  }

  /** A write's Query with time values fixed by the coordinator. */
  private rewritten(sql: string, cls: Classification, raw: Buffer): Req {
    if (!cls.needsRewrite) return { forNode: () => ({ bufs: [raw], skip: 0 }), text: sql };
    const txnStart = this.txn?.startMicros ?? nowMicros();
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
    if (this.txn?.broken) return this.brokenTxn(s.kind);
    if (this.s.status === 'E' && this.txn && !isTxnControl(s.kind)) {
      await this.read(this.txn.home, req, false); // PostgreSQL answers 25P02
      return;
    }
    switch (s.kind) {
      case 'read':
      case 'copy_to':
        if (this.touchesTemp(s)) await this.mainOnly(req, false);
        else await this.read(this.readConn(), req, true);
        return;
      case 'declare_cursor': {
        if (s.inner && s.inner.kind !== 'read') {
          // FOR UPDATE, nextval() ...: the cursor exists on every node and every FETCH runs everywhere.
          const w = await this.fanOut(writeReq(), false);
          if (w && !w.error && s.name) this.cursors.set(s.name, 'all');
          return;
        }
        const c = this.txn ? this.txn.home : this.touchesTemp(s) ? this.mainConn() : this.readConn();
        const r = await this.read(c, req, false);
        if (r && !r.error && s.name) this.cursors.set(s.name, c);
        return;
      }
      case 'fetch':
      case 'close_cursor': {
        const where = s.name ? this.cursors.get(s.name) : undefined;
        if (where === 'all') {
          const w = await this.fanOut(req, false);
          if (w && !w.error && s.kind === 'close_cursor' && s.name) this.cursors.delete(s.name);
          return;
        }
        const c = where ?? this.txn?.home ?? this.readConn();
        const r = await this.read(c.closed ? this.readConn() : c, req, false);
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
        const r = await this.session(req);
        if (r && !r.error) await this.afterSessionStatement(s);
        return;
      }
      case 'execute': {
        const inner = s.name ? this.sqlPrepared.get(s.name) : undefined;
        if (inner && inner.kind === 'read' && !this.touchesTemp(inner)) await this.read(this.readConn(), req, true);
        else await this.fanOut(req, !this.txn);
        return;
      }
      case 'listen':
      case 'unlisten':
      case 'notify':
        await this.mainOnly(req, false);
        return;
      case 'create_database':
      case 'drop_database':
      case 'alter_database':
      case 'non_transactional':
        if (this.txn) await this.read(this.txn.home, req, false); // PostgreSQL refuses it inside a block
        else await this.fanOut(req, false);
        return;
      default:
        if (isTxnControl(s.kind)) {
          await this.txnControl(s.kind, s.text, req);
          if (s.kind === 'commit' || s.kind === 'rollback' || s.kind === 'rollback_to') await this.afterTxnControl();
          return;
        }
        return this.write(s, writeReq);
    }
    void cls;
    void text;
  }

  isTempName(name: string): boolean {
    if (name.startsWith('pg_temp.')) return this.tempNames.has(name.slice(8));
    return this.tempUnqualified.has(name);
  }

  private async write(s: StatementInfo, writeReq: () => Req): Promise<void> {
    if (s.tag === 'LOCK TABLE' && !this.txn) {
      await this.read(this.readConn(), writeReq(), true); // PostgreSQL: only in transaction blocks
      return;
    }
    if (s.createsTemp) {
      if (this.txn || /\bON\s+COMMIT\s+DROP\b/i.test(s.text)) this.tempDirty = true;
      const r = await this.mainOnly(writeReq(), true);
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
        if (view || /^DROP /.test(s.tag) || this.txn) this.tempDirty = true;
        const r = await this.mainOnly(writeReq(), true);
        if (r && !r.error && !this.txn && this.tempDirty) await this.refreshTempNames();
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
    await this.fanOut(writeReq(), !this.txn);
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
    const txn = this.txn;
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
    if (s.kind === 'prepare' && s.name && s.inner) this.sqlPrepared.set(s.name, s.inner);
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
      this.planner.forgetAll();
    }
  }

  // ---- extended protocol -------------------------------------------------------

  async batch(frames: Frame[], end: 'sync' | 'flush', dec: BatchDecoders): Promise<void> {
    this.busy = true;
    try {
      const pb = this.planner.plan(frames, end, dec);
      await this.runBatch(pb);
      this.planner.finish(end, this.s.status);
    } finally {
      this.busy = false;
      this.flushAsync();
    }
  }

  private async runBatch(pb: PlannedBatch): Promise<void> {
    if (this.txn?.broken && pb.end === 'sync') {
      const only = pb.execs.length === 1 ? pb.execs[0]!.info : null;
      return this.brokenTxn(only ? only.kind : 'write');
    }
    const req = pb.req;
    // Execute on a portal that lives on one node: that node.
    const pinned = pb.pinnedTo;
    if (pinned && !pinned.closed) {
      await this.read(pinned, req, false);
      return;
    }
    if (pb.execs.length === 0) {
      await this.read(this.readConn(), req, true);
      return;
    }
    if (pb.execs.length === 1) {
      const e = pb.execs[0]!;
      const info = e.info;
      if (info) {
        await this.dispatch(info, e.cls!, e.sql, req, () => req);
        return;
      }
      await this.read(this.readConn(), req, true); // unknown statement: the node reports it
      return;
    }
    // Several Executes in one batch.
    const infos = pb.execs.map((e) => e.info);
    if (infos.every((i) => i && i.kind === 'read' && !this.touchesTemp(i))) {
      await this.read(this.readConn(), req, true);
      return;
    }
    const wrap = !this.txn && pb.end === 'sync' && !infos.some((i) => i && isTxnControl(i.kind));
    const w = await this.fanOut(req, wrap);
    void w;
  }

  /** Raise a node's ErrorResponse fields as the client's error (used by planners). */
  static nodeErr(nodeId: string, f: Record<string, string>): PgqError {
    return nodeError(nodeId, f);
  }
}

function describe(r: ExchangeResult): string {
  if (r.lost) return 'connection lost';
  if (r.error) return `error ${r.error['C']} (${r.error['M']})`;
  return r.tags.length > 0 ? r.tags.join(', ') : 'ok';
}

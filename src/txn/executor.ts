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
import type { ExchangeOptions, ExchangeResult, NodeConnection } from '../backend/node-connection.js';
import type { ClusterNode } from '../cluster/cluster.js';
import type { Writer } from './write-gate.js';
import type { Frame } from '../protocol/reader.js';
import { BE, FE } from '../protocol/constants.js';
import {
  decodeParameterDescription,
  firstRowText,
  encodeCommandComplete,
  encodeErrorResponse,
  encodeParameterDescription,
  encodeReadyForQuery,
  errorFromPgq,
} from '../protocol/backend.js';
import { encodeCopyFail, encodeQuery } from '../protocol/frontend.js';
import { classify, type Classification, type StatementInfo } from '../sql/classify.js';
import { rewriteSimple, type TimeValues } from '../sql/rewrite.js';
import { rowsDigest, vote } from './vote.js';
import { refuse } from '../determinism/plan.js';
import { quoteLiteral } from '../determinism/catalog.js';
import type { CommitOutcome, HeldCommit, HeldVote } from './commit.js';
import { redactSql } from '../sql/redact.js';
import { nowMicros, timeValues } from './times.js';
import { BatchPlanner, type BatchDecoders, type PlannedBatch } from './batch.js';

const Q_BEGIN = encodeQuery('BEGIN');
const Q_COMMIT = encodeQuery('COMMIT');
const Q_ROLLBACK = encodeQuery('ROLLBACK');
/** Puts a node's transaction into the failed state, as an error PostgreSQL raised itself would. */
export const Q_ABORT = encodeQuery(
  "DO $pgquorum$BEGIN RAISE EXCEPTION 'pgquorum: another node of this transaction failed the statement'; END$pgquorum$",
);

/**
 * Errors that say something about the moment, not about the data: they are
 * never voted on (DESIGN.md write path step 3 compares outcomes of the data).
 * Class 40 (serialization failure, deadlock), 53 (resources), 55P03 (lock
 * timeout), 57 (cancel, shutdown), 08 (connection), 25P02 (already failed).
 */
export function isTransient(r: ExchangeResult): boolean {
  const c = r.error?.['C'];
  return c !== undefined && /^(40|53|57|08)|^55P03$|^25P02$/.test(c);
}

/** One request, renderable for any node. */
export interface Req {
  /**
   * The messages for `c`, and how many leading replies to swallow.
   * `lead`: what the client gets before the first of the answer passed on
   * (a reply to its own message that was swallowed; honoured by the read
   * fast path, the only one that runs such a request).
   */
  forNode(c: NodeConnection): { bufs: Buffer[]; skip: number; lead?: Buffer };
  /** For a batch that ends in Flush: how many terminal replies end it. */
  expect?: number;
  /** Bookkeeping after a node answered. */
  after?(c: NodeConnection, r: ExchangeResult, forwarded: boolean): void;
  /**
   * An ErrorResponse forwarded live, as the client must see it (a prepared
   * form's position mapped to the client's text); `at`: the message it
   * answers (ExchangeOptions.sink).
   */
  mapError?(raw: Buffer, at: number): Buffer;
  /** A simple Query that must go as sent (its prepared form was refused on the node). */
  unprepared?: boolean;
  /** Short text for logs. */
  text: string;
  /** A simple-protocol Query holding exactly the statement being routed. */
  simple?: boolean;
  /** Determinism (src/determinism/plan.ts): sequences to serialize on; the main node locks them first. */
  sequences?: readonly string[];
  /** Seed every node's random generator with this value (-1..1) right before the request. */
  seed?: number;
  /** The request draws values in row order: refuse it if the main node touched more than one row. */
  singleRow?: boolean;
}

/** First key of pgquorum's advisory locks (the second is the sequence's OID): 'pgq!'. */
export const SEQ_LOCK_KEY = 0x70677121;
const seqLockArg = (name: string): string =>
  `${SEQ_LOCK_KEY}, pg_catalog.to_regclass(${quoteLiteral(name)})::pg_catalog.oid::pg_catalog.int4`;

function rowCount(tags: readonly string[]): number {
  let n = 0;
  for (const t of tags) {
    const m = /(\d+)$/.exec(t);
    if (m && /^(UPDATE|DELETE|MERGE|INSERT)/.test(t)) n += Number(m[1]);
  }
  return n;
}

/** An exchange result that no node sent: a held write counted as run, or taken back (NOT_RUN). */
function notRun(c: NodeConnection): ExchangeResult {
  return { node: c, status: 'T', tags: [], error: null, frames: [], lost: null, terminals: 0 };
}

const NOT_RUN = Object.freeze({ S: 'ERROR', C: '25P02', M: 'the held write did not run on this node: the transaction rolled back' });

/** A transaction holds at most this many writes, or about this many bytes of them; the next write makes the other nodes catch up. */
export const MAX_HELD_WRITES = 1000;
export const MAX_HELD_BYTES = 16 * 1024 * 1024;

/**
 * A write held back from the other nodes (docs/routing.md "Writes held until
 * COMMIT"): the main node ran it and the client has its answer; the others
 * run it, pipelined with the rest, before the transaction's next statement
 * that needs them (COMMIT, SAVEPOINT, SET, a write that is not held).
 */
interface Held {
  text: string;
  /** The main node's result (frames kept): the outcome the others must agree with. */
  main: ExchangeResult;
  /** The messages for each other node, rendered when the main node ran it. */
  bodies: Map<NodeConnection, { bufs: Buffer[]; skip: number }>;
  after: Req['after'];
}

/** Held writes taken out of a transaction to run on the other nodes (Executor.takeHeld()). */
interface HeldRun {
  held: Held[];
  conns: NodeConnection[];
  reqs(c: NodeConnection): { msgs: Buffer[]; opts: ExchangeOptions }[];
}

interface Txn {
  /**
   * Where reads go: the first node of the transaction until it writes, then
   * the main node. Null while a transaction begun by a plain BEGIN has run
   * nothing on any node (router.ts, "lazy BEGIN"): txnHome() chooses it then.
   */
  home: NodeConnection | null;
  wrote: boolean;
  joined: Set<NodeConnection>;
  /** Transaction-control statements so far (Query messages), replayed on late joiners. */
  log: Buffer[];
  /** When the transaction began: what now() means in its writes (txnStart()). */
  startMicros: bigint;
  /** Begun lazily and its time not fixed yet: it is fixed when its first statement is sent (as PostgreSQL's own start would be). */
  lazyStart?: boolean;
  /** Set when the coordinator itself had to abort the transaction (main node lost). */
  broken: PgqError | null;
  /** The main node did something PostgreSQL cannot PREPARE: it gets a plain COMMIT after the decision. */
  plainOnMain?: boolean;
  /** Writes the main node ran that the other nodes run at the next statement needing them (flushHeld()). */
  held?: Held[];
  /** Bytes kept for them (messages for one node and the main node's answers). */
  heldBytes?: number;
  /**
   * A node the transaction depends on was lost between or during its
   * statements (the main node of a transaction that wrote, or the node its
   * reads went to): the transaction must fail with this error (40001).
   */
  lost?: PgqError;
  /** The error the client has not heard yet (sent once by the next statement). */
  report?: PgqError | null;
}

interface CopyIn {
  target: NodeConnection;
  spool: Buffer[] | null;
  done: boolean;
}

export function isTxnControl(k: StatementInfo['kind']): boolean {
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
  /** Async frames (notifications) held while a request is being answered. */
  private pendingAsync: Buffer[] = [];
  busy = false;
  private readonly ctx: CoordinatorContext;
  private readonly s: Session;
  private readonly log: Logger;
  /**
   * Sequence locks this session holds on the main node (session-level
   * advisory locks), and whether the sequence must be copied from the main
   * node to the others before the lock goes (after a statement that ran on
   * the main node only).
   */
  private readonly seqLocks = new Map<string, boolean>();
  /** Inside the write gate (src/txn/write-gate.ts) until the transaction ends. */
  private writer: Writer | null = null;
  /** reads.balance = session: the connection this session's autocommit reads go to (counted in its node's readSessions). */
  private readHome: NodeConnection | null = null;

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

  /**
   * Before the first write of a transaction (or autocommit statement): pass
   * the write gate, and connect to nodes that came `up` since the session
   * started, so that the write reaches every `up` node.
   */
  async enterWrite(): Promise<void> {
    if (this.writer) return;
    this.writer = await this.ctx.writes.enter();
    await this.s.connectMissing();
  }

  /** The transaction (or autocommit statement) is over: leave the write gate. */
  leaveWrite(): void {
    const w = this.writer;
    if (!w) return;
    this.writer = null;
    this.ctx.writes.leave(w);
  }

  /**
   * A node left `up`. The transaction goes on without it, unless it needs
   * it: the main node of a transaction that wrote (its row locks and the
   * main-first order were there), or the node its reads went to. A
   * transaction that has not written and reads at READ COMMITTED moves its
   * reads to another node; otherwise it fails with 40001.
   */
  nodeLeft(node: ClusterNode, wasMain: boolean): void {
    if (wasMain) this.seqLocks.clear(); // they went with the connection
    const txn = this.txn;
    if (!txn || txn.broken || txn.lost) return;
    const home = txn.home?.node === node;
    if (!(home || (wasMain && txn.wrote))) return;
    if (home && !txn.wrote && this.canMoveReads(txn)) {
      const next = this.liveConns()[0];
      if (next) {
        txn.home = next;
        this.log.info({ node: node.id, to: next.node.id }, 'the node of a read-only transaction was lost; its reads go on elsewhere');
        return;
      }
    }
    txn.lost = new PgqError('ERR_TXN_NODE_LOST', `node ${node.id} was lost during the transaction (${node.stateReason}); the transaction was rolled back, retry it`, {
      sqlstate: SqlState.SERIALIZATION_FAILURE,
      context: { session: this.s.id, node: node.id },
    });
  }

  /** Reads may move: no snapshot kept across statements, no cursor, no locks taken by reads on one node. */
  private canMoveReads(txn: Txn): boolean {
    if (txn.home && this.s.router.hasCursorOn(txn.home)) return false;
    const iso = /repeatable|serializable|snapshot|for\s+(update|share|no\s+key|key\s+share)/i;
    if (txn.log.some((b) => iso.test(b.toString('utf8', 5)))) return false;
    return !this.s.sessionLog.some((t) => /default_transaction_isolation/i.test(t) && iso.test(t));
  }

  /**
   * A lost node doomed the transaction: roll it back where it is still open
   * and make it fail (the client hears the 40001 at its next statement).
   */
  async settleLostTxn(): Promise<void> {
    const txn = this.txn;
    if (!txn || !txn.lost || txn.broken) return;
    await Promise.all([...txn.joined].filter((c) => !c.closed && !c.busy && c.txnStatus !== 'I').map((c) => c.exchange(Q_ROLLBACK)));
    txn.broken = txn.lost;
    txn.report = txn.lost;
    txn.joined.clear();
    this.s.status = 'E';
    await this.releaseSequences();
  }

  /** Writes need a majority of the configured nodes `up` (invariant 2); reads go on without it. */
  checkWriteQuorum(): void {
    this.noQuorum(this.liveConns().length);
  }

  private checkClusterQuorum(): void {
    this.noQuorum(this.ctx.cluster.upNodes().length);
  }

  private noQuorum(up: number): void {
    if (up < this.ctx.cluster.quorum) throw this.noQuorumError(up);
  }

  private noQuorumError(up: number): PgqError {
    const cluster = this.ctx.cluster;
    return new PgqError(
      'ERR_NO_QUORUM',
      `cannot write: only ${up} of ${cluster.configuredCount} nodes are up and ${cluster.quorum} are needed`,
      {
        sqlstate: SqlState.READ_ONLY_SQL_TRANSACTION,
        hint: 'The cluster serves reads only until a majority of its nodes is back.',
      },
    );
  }

  /**
   * The node a read goes to: the transaction's home; else with
   * reads.balance = session the session's read node (chosen by weight and
   * the sessions each node serves, kept while it is `up` with a weight),
   * with reads.balance = statement one chosen by weight and reads in flight.
   */
  readConn(): NodeConnection {
    return this.txn ? this.txnHome(this.txn) : this.sessionReadConn();
  }

  /** The transaction's home node; one begun without a node yet gets the session's read node now (it joins at its first exchange). */
  txnHome(txn: Txn): NodeConnection {
    return (txn.home ??= this.sessionReadConn());
  }

  private sessionReadConn(): NodeConnection {
    const perSession = this.ctx.config.reads?.balance !== 'statement';
    const home = this.readHome;
    if (home) {
      if (perSession && !home.closed && home.node.state === 'up' && home.node.weight > 0 && this.s.conns.get(home.node) === home) return home;
      this.releaseReadHome();
    }
    const live = this.liveConns();
    const node = perSession ? this.ctx.cluster.pickSessionReadNode(live.map((c) => c.node)) : this.ctx.cluster.pickReadNode(live.map((c) => c.node));
    const c = node ? this.s.conns.get(node)! : live[0];
    if (!c) throw new PgqError('ERR_NO_NODE', 'no node is available for this session', { sqlstate: SqlState.NO_NODE_AVAILABLE });
    if (perSession && node && !this.s.closed) {
      this.readHome = c;
      node.readSessions++;
    }
    return c;
  }

  /** The session no longer reads from its read node (it ends, or the node left or lost its weight). */
  releaseReadHome(): void {
    const home = this.readHome;
    if (!home) return;
    this.readHome = null;
    home.node.readSessions--;
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

  markDiverged(c: NodeConnection, reason: string): void {
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

  /** Backpressure: while the client's socket is full, stop reading the node that streams to it. */
  throttle(c: NodeConnection): void {
    const client = this.s.client;
    if (!client.congested) return;
    client.flush();
    c.pause();
    client.socket.once('drain', () => c.resume());
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

  sendError(err: PgqError, ready: boolean): void {
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

  flushAsync(): void {
    if (this.pendingAsync.length === 0) return;
    for (const b of this.pendingAsync) this.s.client.send(b);
    this.pendingAsync = [];
  }

  // ---- COPY FROM STDIN -----------------------------------------------------

  copyInFrame(f: Frame): void {
    const ci = this.copyIn;
    if (!ci || ci.done) return;
    const raw = f.raw;
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
    o: { wrap?: boolean; buffer?: boolean; live?: boolean; spool?: boolean; copyData?: Buffer[] | null; prefix?: Buffer[] },
  ): Promise<ExchangeResult & { forwarded: boolean; copy: CopyIn | null }> {
    const bufs: Buffer[] = [];
    let readies = 0;
    const txn = this.txn;
    if (o.wrap) {
      bufs.push(Q_BEGIN);
      readies = 1;
    } else if (txn && !txn.joined.has(c)) {
      this.txnStart(); // the transaction reaches its first node now (lazy BEGIN)
      for (const b of txn.log) bufs.push(b);
      readies = txn.log.length;
    }
    if (o.prefix) {
      for (const b of o.prefix) bufs.push(b);
      readies += o.prefix.length;
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
      sink: (f, at) => {
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
        this.forward(f.type === BE.ErrorResponse && req.mapError ? req.mapError(f.raw, at) : f.raw, f.type);
        this.throttle(c);
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
  async read(c: NodeConnection, req: Req, retry: boolean, wrap = false): Promise<ExchangeResult | null> {
    for (let attempt = 0; ; attempt++) {
      const node = c.node;
      node.inflight++;
      node.reads++;
      let r: ExchangeResult & { forwarded: boolean; copy: CopyIn | null };
      try {
        r = await this.exchangeOn(c, req, { live: true, wrap });
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
      const txn = this.txn;
      if (txn && txn.home && !r.forwarded && !txn.lost && !txn.broken && txn.home !== c && !txn.home.closed && attempt < 3) {
        c = txn.home; // a read-only transaction whose node was lost: its reads moved (nodeLeft)
        continue;
      }
      this.copyIn = null;
      await this.failTxn(this.lostInRequest(r.lost));
      return null;
    }
  }

  /** The error a client gets when its node was lost in the middle of its request. */
  lostInRequest(err: PgqError): PgqError {
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
  async failTxn(err: PgqError): Promise<void> {
    const txn = this.txn;
    if (txn) {
      await this.rollbackJoined(txn);
      txn.broken = err;
      txn.joined.clear();
      this.s.status = 'E';
    } else {
      this.s.status = 'I';
    }
    this.copyIn = null;
    this.sendError(err, true);
    await this.releaseSequences();
  }

  /** Roll the transaction back on every node it reached (and drop its held writes); waits, so the connections are idle after. */
  async rollbackJoined(txn: Txn): Promise<void> {
    this.dropHeld(txn);
    await Promise.all([...txn.joined].filter((c) => !c.closed && !c.busy).map((c) => c.exchange(Q_ROLLBACK)));
  }

  /**
   * The held writes will never run on the other nodes (the transaction rolls
   * back). Their messages were counted as run when they were held (prepared
   * statements a node would have created): that is taken back.
   */
  dropHeld(txn: Txn): void {
    const held = txn.held;
    txn.held = undefined;
    txn.heldBytes = 0;
    if (!held) return;
    for (const h of held) {
      if (!h.after) continue;
      for (const c of h.bodies.keys()) h.after(c, { ...notRun(c), error: NOT_RUN }, false);
    }
  }

  /**
   * Before a statement that needs the other nodes: they run the held writes
   * first (flushHeld()). False when that ended the transaction: the client
   * has the error, and with `ending` (COMMIT) the session is out of the
   * transaction, as after any failed COMMIT.
   */
  async catchUp(ending = false): Promise<boolean> {
    const txn = this.txn;
    if (!txn?.held) return true;
    const err = await this.flushHeld();
    if (!err) return true;
    if (!ending) {
      await this.failTxn(err);
      return false;
    }
    await this.rollbackJoined(txn);
    this.txn = null;
    this.s.status = 'I';
    this.sendError(err, true);
    await this.releaseSequences();
    return false;
  }

  /** Parallel route: the same request on several nodes at once, answered with the vote's winner. */
  async parallel(conns: NodeConnection[], req: Req, forwardFrom: NodeConnection): Promise<ExchangeResult | null> {
    const results = await Promise.all(conns.map((c) => this.exchangeOn(c, req, { buffer: true })));
    return await this.settle(results, req, forwardFrom, null);
  }

  /**
   * Count votes over `results`, eject the outvoted and the lost, send the
   * winner's frames (the preferred node's when it is among the winners).
   * `finalStatus` overrides the ReadyForQuery status sent to the client.
   */
  private async settle(
    results: ExchangeResult[],
    req: Req,
    preferred: NodeConnection,
    finalStatus: 'I' | 'T' | 'E' | null,
  ): Promise<ExchangeResult | null> {
    const v = vote(results, this.ctx.cluster.quorum);
    if (this.s.closed) return null; // the client is gone: its cancelled statements are no evidence against any node
    for (const r of v.lost) this.nodeLost(r.node, r.lost!);
    if (!v.winner) {
      await this.failTxn(noMajority(v.counts, req.text));
      return null;
    }
    for (const r of v.outvoted) this.markDiverged(r.node, outvotedReason(req.text, r, v.winner));
    await this.ctx.cluster.persisted(); // ejections are durable before the client hears the outcome
    let winner = v.winner;
    const pref = results.find((r) => r.node === preferred && !r.lost && !v.outvoted.includes(r));
    if (pref) winner = pref;
    this.setStatus(finalStatus ?? winner.status);
    this.sendFrames(winner.frames, finalStatus ?? winner.status);
    return winner;
  }

  setStatus(st: 'I' | 'T' | 'E' | null): void {
    if (st) this.s.status = st;
  }

  /**
   * Fan-out route (DESIGN.md write path 2-3): main node first; once it has
   * finished, every other `up` node in parallel; then the vote. `wrap` runs
   * an autocommit request in BEGIN/COMMIT on every node (COMMIT to the
   * replicas first, the main node last).
   */
  async fanOut(req: Req, wrap: boolean, hold: 'one' | 'any' | null = null): Promise<ExchangeResult | null> {
    this.checkClusterQuorum(); // before the gate: a refused write changes nothing
    await this.enterWrite();
    this.checkWriteQuorum();
    const main = this.mainConn();
    wrap = wrap && !this.txn;
    // No transaction block around it (multi-statement strings, non-transactional commands): it commits as it runs.
    if (!wrap && !this.txn) await this.ctx.writes.selfCommitting(this.writer);
    // determinism (src/determinism/plan.ts): most writes have neither seed nor sequences
    if (req.seed === undefined && !req.sequences) return this.fanOutLocked(req, wrap, main, undefined, undefined, hold);
    const seedQ = req.seed !== undefined ? [encodeQuery(`SELECT pg_catalog.setseed(${req.seed})`)] : undefined;
    const mainPrefix = [...this.lockSequences(req.sequences), ...(seedQ ?? [])];
    try {
      return await this.fanOutLocked(req, wrap, main, mainPrefix, seedQ);
    } finally {
      if (this.seqLocks.size > 0) await this.releaseSequences();
    }
  }

  /** Lock messages for the sequences not locked yet (they stay locked until releaseSequences()). */
  private lockSequences(names: readonly string[] | undefined): Buffer[] {
    if (!names || names.length === 0) return [];
    const fresh = names.filter((n) => !this.seqLocks.has(n));
    if (fresh.length === 0) return [];
    for (const n of fresh) this.seqLocks.set(n, false);
    return [encodeQuery(`SELECT ${fresh.map((n) => `pg_catalog.pg_advisory_lock(${seqLockArg(n)})`).join(', ')}`)];
  }

  /**
   * Copies sequences the main node advanced alone to the other nodes, then
   * unlocks them. Deferred while a node's transaction is in the failed
   * state (nothing runs there until ROLLBACK); called again after the
   * transaction ends.
   */
  async releaseSequences(): Promise<void> {
    if (this.seqLocks.size === 0) return;
    const main = this.s.conns.get(this.ctx.cluster.main());
    if (!main || main.closed) {
      this.seqLocks.clear(); // the locks went with the connection
      return;
    }
    const others = this.liveConns().filter((c) => c !== main);
    if (main.txnStatus === 'E' || main.busy) return;
    const sync = [...this.seqLocks].filter(([, v]) => v).map(([k]) => k);
    if (sync.length > 0) {
      if (others.some((c) => c.txnStatus === 'E' || c.busy)) return;
      for (const name of sync) {
        const r = await main.exchange(encodeQuery(`SELECT last_value, is_called FROM ${name}`), { buffer: true });
        const row = r.lost || r.error ? null : firstRowText(r.frames);
        const [v, called] = row ?? [];
        if (!v) continue;
        const q = encodeQuery(`SELECT pg_catalog.setval(${quoteLiteral(name)}, ${v}, ${called === 't'})`);
        const rs = await Promise.all(others.map((c) => c.exchange(q)));
        rs.forEach((x, i) => {
          if (x.lost) this.nodeLost(others[i]!, x.lost);
          else if (x.error) this.markDiverged(others[i]!, `could not copy sequence ${name} from the main node: ${x.error['M']}`);
        });
        this.log.info({ sequence: name, value: v.toString() }, 'sequence copied from the main node after a statement that ran there alone');
      }
    }
    const names = [...this.seqLocks.keys()];
    this.seqLocks.clear();
    const r = await main.exchange(encodeQuery(`SELECT ${names.map((n) => `pg_catalog.pg_advisory_unlock(${seqLockArg(n)})`).join(', ')}`));
    if (r.lost) this.nodeLost(main, r.lost);
  }

  /** The main node ran a statement that drew sequence values and the others did not: copy them before unlocking. */
  private mainAloneDrew(req: Req): void {
    for (const n of req.sequences ?? []) if (this.seqLocks.has(n)) this.seqLocks.set(n, true);
  }

  private async fanOutLocked(
    req: Req,
    wrap: boolean,
    main: NodeConnection,
    mainPrefix: Buffer[] | undefined,
    seedQ: Buffer[] | undefined,
    hold: 'one' | 'any' | null = null,
  ): Promise<ExchangeResult | null> {
    const first = await this.exchangeOn(main, req, { wrap, buffer: true, spool: true, prefix: mainPrefix });
    const copy = first.copy;
    if (copy && !copy.done) {
      // The main node ended the COPY early (an error): the others must end it the same way.
      copy.spool?.push(encodeCopyFail('COPY failed on the main node'));
      copy.done = true;
    }
    if (first.lost) {
      this.nodeLost(main, first.lost);
      await this.failTxn(this.lostInRequest(first.lost));
      return null;
    }
    main.node.writes++;
    if (req.singleRow && !first.error && rowCount(first.tags) > 1) {
      // Values drawn per row in each node's own row order: refused after the fact (rolled back).
      this.mainAloneDrew(req);
      const err = refuse(
        'row-order',
        `the statement draws random or sequence values for ${rowCount(first.tags)} rows, in an order that differs between nodes`,
        'Touch one row per statement (e.g. WHERE on the primary key), or compute the values in a subquery with ORDER BY over a key.',
      );
      if (wrap) {
        await main.exchange(Q_ROLLBACK);
        this.s.status = 'I';
      } else {
        await Promise.all([...(this.txn?.joined ?? [main])].filter((c) => !c.closed && c.txnStatus === 'T').map((c) => c.exchange(Q_ABORT)));
        this.s.status = 'E';
      }
      this.sendError(err, true);
      return null;
    }
    if (req.singleRow && !first.error && rowCount(first.tags) === 0) {
      // A row that stopped matching while the main node waited for its lock may still have drawn
      // a sequence value there: the others (which touch no row) get the main node's state.
      this.mainAloneDrew(req);
    }
    if (isTransient(first)) {
      this.mainAloneDrew(req);
      // Deadlock victim, serialization failure, lock timeout, cancel: an answer of
      // this moment, not of the data. The replicas must not run the statement (they
      // would wait for locks the main node already gave away, and could pick another
      // deadlock victim); the main node's error is the outcome.
      if (wrap) {
        await main.exchange(Q_ROLLBACK);
        this.s.status = 'I';
        this.sendFrames(first.frames, 'I');
      } else {
        this.setStatus(first.status);
        this.sendFrames(first.frames, first.status);
      }
      return first;
    }
    if (
      hold &&
      this.txn &&
      !wrap &&
      !copy &&
      first.error === null &&
      first.status === 'T' &&
      req.expect === undefined &&
      (hold === 'any' || rowCount(first.tags) === 1) &&
      (this.txn.held?.length ?? 0) < MAX_HELD_WRITES &&
      (this.txn.heldBytes ?? 0) < MAX_HELD_BYTES
    ) {
      return this.holdWrite(req, first, main);
    }
    if (!(await this.catchUp())) return null; // the others run the held writes first, in the order the main node ran them
    const others = this.liveConns().filter((c) => c !== main);
    const rest = await Promise.all(
      others.map((c) => {
        c.node.writes++;
        return this.exchangeOn(c, req, { wrap, buffer: true, copyData: copy?.spool ?? null, prefix: seedQ });
      }),
    );
    const results: ExchangeResult[] = [first, ...rest];
    const alive = results.filter((r) => !r.lost);
    if (alive.length < this.ctx.cluster.quorum) {
      // Nodes were lost during the statement and too few are left to decide: nothing commits.
      this.mainAloneDrew(req);
      for (const r of results) if (r.lost) this.nodeLost(r.node, r.lost);
      const err = this.noQuorumError(alive.length);
      if (!wrap) {
        await this.failTxn(err);
        return null;
      }
      await Promise.all(alive.map((r) => r.node.exchange(Q_ROLLBACK)));
      this.s.status = 'I';
      this.sendError(err, true);
      return null;
    }
    const transient = rest.find(isTransient);
    if (transient) {
      this.mainAloneDrew(req);
      // A replica was cancelled or picked as a victim where the main node was not: the
      // statement fails for the client with that error and nobody is outvoted.
      const live = results.filter((r) => !r.lost).map((r) => r.node);
      if (wrap) await Promise.all(live.map((c) => c.exchange(Q_ROLLBACK)));
      else await Promise.all(live.filter((c) => c.txnStatus === 'T').map((c) => c.exchange(Q_ABORT)));
      for (const r of results) if (r.lost) this.nodeLost(r.node, r.lost);
      this.s.status = wrap ? 'I' : 'E';
      this.s.client.send(encodeErrorResponse(transient.error!));
      this.s.client.send(encodeReadyForQuery(this.s.status));
      return null;
    }
    if (!wrap) {
      const w = await this.settle(results, req, main, null);
      if (w) this.afterTxnWrite(w);
      return w;
    }
    // Autocommit: decide, then finish the implicit transaction everywhere.
    const v = vote(results, this.ctx.cluster.quorum);
    const ok = v.winner !== null && v.winner.error === null && v.winner.status !== 'E';
    const participants = results.filter((r) => !r.lost && (v.winner === null || !v.outvoted.includes(r))).map((r) => r.node);
    this.s.status = 'I';
    if (ok) {
      const c = await this.commitNodes(participants, null);
      if (!c.ok) {
        this.sendError(c.error, true);
        return null;
      }
    } else await Promise.all(participants.map((c) => c.exchange(Q_ROLLBACK)));
    return await this.settle(results, req, main, 'I');
  }

  /**
   * Hold a write the main node ran (docs/routing.md "Writes held until
   * COMMIT"): the client gets the main node's answer now; the other nodes'
   * messages are rendered now (their copies of prepared statements are
   * counted as if they ran it, which they do before anything else).
   */
  private holdWrite(req: Req, first: ExchangeResult, main: NodeConnection): ExchangeResult {
    const txn = this.txn!;
    const bodies = new Map<NodeConnection, { bufs: Buffer[]; skip: number }>();
    let bytes = 0;
    for (const f of first.frames) bytes += f.length;
    for (const c of this.liveConns()) {
      if (c === main) continue;
      const body = req.forNode(c);
      if (bodies.size === 0) for (const b of body.bufs) bytes += b.length;
      bodies.set(c, body);
      req.after?.(c, { ...notRun(c), tags: first.tags, terminals: first.terminals }, false);
    }
    (txn.held ??= []).push({ text: req.text, main: first, bodies, after: req.after });
    txn.heldBytes = (txn.heldBytes ?? 0) + bytes;
    this.afterTxnWrite(first);
    this.setStatus(first.status);
    this.sendFrames(first.frames, first.status);
    return first;
  }

  /** The nodes that run the held writes when they are flushed (every `up` node but the main node, with their messages). */
  heldConns(): NodeConnection[] {
    const held = this.txn?.held;
    if (!held) return [];
    const main = held[0]!.main.node;
    return this.liveConns().filter((c) => c !== main && held.every((h) => h.bodies.has(c)));
  }

  /**
   * Takes the held writes out of the transaction: which nodes run them, and
   * each node's requests (one per write, pipelined; a node that has not
   * joined the transaction yet gets its BEGIN first).
   */
  private takeHeld(): HeldRun | null {
    const txn = this.txn;
    const held = txn?.held;
    if (!txn || !held) return null;
    const conns = this.heldConns();
    txn.held = undefined;
    txn.heldBytes = 0;
    return {
      held,
      conns,
      reqs: (c) => {
        const joined = txn.joined.has(c);
        c.node.writes += held.length;
        return held.map((h, i) => {
          const body = h.bodies.get(c)!;
          const log = i === 0 && !joined ? txn.log : [];
          return { msgs: [...log, ...body.bufs], opts: { skipReadies: log.length, skipTerminals: body.skip, buffer: true } };
        });
      },
    };
  }

  /**
   * The other nodes run the transaction's held writes, pipelined (one write
   * and one wait per node), and each write's outcomes are voted on as if it
   * had run at once (settleHeld()). Returns the error that must end the
   * transaction, or null.
   */
  async flushHeld(): Promise<PgqError | null> {
    const run = this.takeHeld();
    if (!run) return null;
    const answers = await Promise.all(run.conns.map((c) => c.exchangeMany(run.reqs(c))));
    const r = this.settleHeld(run, answers);
    await r.eject();
    return r.error;
  }

  /**
   * The vote on each held write, over the main node's answer and the
   * others' (`answers[j]` is `run.conns[j]`'s, one result per write;
   * missing: its connection closed before it could run them).
   * `out` holds the outvoted nodes and the lost ones (their later answers
   * do not count); eject() makes the outvoted `diverged`, durably (the
   * caller may first roll back what they prepared on their connections,
   * which close when they leave `up`). `error` is what must end the
   * transaction: no majority left, a node cancelled or picked as a deadlock
   * victim, or the main node outvoted (the client already has its answer,
   * so the transaction cannot go on).
   */
  settleHeld(run: HeldRun, answers: (ExchangeResult[] | undefined)[]): HeldVote {
    const txn = this.txn;
    const { held, conns } = run;
    const main = held[0]!.main.node;
    const out = new Set<NodeConnection>();
    const outvoted: [NodeConnection, string][] = [];
    const eject = async (): Promise<void> => {
      for (const [c, reason] of outvoted) this.markDiverged(c, reason);
      await this.ctx.cluster.persisted(); // ejections are durable before the client hears anything more
    };
    conns.forEach((c, j) => {
      const a = answers[j];
      if (!a) {
        out.add(c);
        return;
      }
      if (txn && !a[0]!.lost) txn.joined.add(c);
      // What failed here did not create the statements it was counted as creating when it was held.
      held.forEach((h, i) => {
        const r = a[i]!;
        if (r.error && !r.lost) h.after?.(c, r, false);
      });
    });
    const quorum = this.ctx.cluster.quorum;
    const fail = (error: PgqError): HeldVote => ({ error, out, eject });
    for (let i = 0; i < held.length; i++) {
      const h = held[i]!;
      const results: ExchangeResult[] = [h.main];
      conns.forEach((c, j) => {
        if (out.has(c)) return;
        const r = answers[j]![i]!; // out: no answers
        if (r.lost) {
          out.add(c);
          this.nodeLost(c, r.lost);
        } else results.push(r);
      });
      if (results.length < quorum) return fail(this.noQuorumError(results.length));
      const transient = results.find(isTransient);
      if (transient) {
        const e = transient.error!;
        return fail(
          new PgqError('ERR_HELD_WRITE_FAILED', e['M'] ?? 'a held write failed on another node', {
            sqlstate: e['C'] ?? SqlState.SERIALIZATION_FAILURE,
            detail: `node ${transient.node.node.id}, statement: ${redactSql(h.text).slice(0, 200)}`,
            hint: 'Retry the transaction.',
          }),
        );
      }
      const v = vote(results, quorum);
      if (!v.winner) return fail(noMajority(v.counts, h.text));
      for (const r of v.outvoted) {
        outvoted.push([r.node, outvotedReason(h.text, r, v.winner)]);
        out.add(r.node);
        if (r.node !== main) h.after?.(r.node, r, false);
      }
      if (out.has(main)) {
        return fail(
          new PgqError('ERR_MAIN_OUTVOTED', `the main node ${main.node.id} was outvoted on a write of this transaction whose result the client already had; the transaction was rolled back, retry it`, {
            sqlstate: SqlState.SERIALIZATION_FAILURE,
            detail: `statement: ${redactSql(h.text).slice(0, 200)}`,
          }),
        );
      }
    }
    return { error: null, out, eject };
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

  /**
   * Commit the open transaction on `conns`: two-phase commit when more than
   * one node takes part (src/txn/commit.ts), a plain COMMIT otherwise.
   */
  async commitNodes(conns: NodeConnection[], plain: NodeConnection | null): Promise<CommitOutcome> {
    await this.ctx.writes.beforeCommit(this.writer); // nodes this write went without: marked first
    // Held writes go to the other nodes (among `conns`: heldConns()) in the same socket write as their PREPARE TRANSACTION.
    const run = this.takeHeld();
    const live = conns.filter((c) => !c.closed);
    if (live.length > 1) {
      const held: HeldCommit | undefined = run
        ? {
            before: (c) => (run.conns.includes(c) ? run.reqs(c) : []),
            settle: (answers) => this.settleHeld(run, run.conns.map((c) => answers.get(c))),
          }
        : undefined;
      return this.ctx.commit.commit(live, this.s.id, plain && !plain.closed ? plain : null, held);
    }
    if (run) {
      const v = this.settleHeld(run, []); // no other node is left to run them
      await v.eject();
      if (v.error) return { ok: false, error: v.error };
    }
    const only = live[0];
    if (!only) {
      return { ok: false, error: this.lostInRequest(new PgqError('ERR_NODE_LOST', 'every node of the transaction was lost', { sqlstate: SqlState.CONNECTION_FAILURE })) };
    }
    const r = await this.ctx.barrier.around(() => only.exchange(Q_COMMIT)); // the commit barrier (src/txn/barrier.ts)
    if (r.lost) {
      this.nodeLost(only, r.lost);
      return { ok: false, error: this.lostInRequest(r.lost) };
    }
    if (r.error) return { ok: false, error: new PgqError('ERR_COMMIT_FAILED', r.error['M'] ?? 'COMMIT failed', { sqlstate: r.error['C'] ?? SqlState.INTERNAL_ERROR }) };
    return { ok: true, gid: '' };
  }

  /** Main node only (temporary objects, LISTEN/NOTIFY); joins the transaction there. */
  async mainOnly(req: Req, wrote: boolean, preparable = false): Promise<ExchangeResult | null> {
    const main = this.mainConn();
    if (this.txn && !preparable) this.txn.plainOnMain = true; // temporary objects, LISTEN/NOTIFY: PostgreSQL cannot PREPARE these
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
    if (!(await this.catchUp())) return null; // SET LOCAL and the like come after the held writes everywhere
    const conns = this.liveConns();
    const home = this.txn?.home ?? this.mainConn();
    const w = await this.parallel(conns, req, conns.includes(home) ? home : conns[0]!);
    if (w && this.txn === null && w.status === 'T') this.beginFrom(home);
    return w;
  }

  /**
   * A plain BEGIN answered by the coordinator (router.ts, "lazy BEGIN"): the
   * transaction has no node until its first statement, which carries the
   * BEGIN with it (txn.log, replayed on every node it reaches first).
   */
  beginLazily(text: string): void {
    this.txn = { home: null, wrote: false, joined: new Set(), log: [encodeQuery(text)], startMicros: nowMicros(), lazyStart: true, broken: null };
  }

  /**
   * The start time of the transaction (what now() is in its writes), or of
   * this statement outside one. A lazily begun transaction starts on the
   * nodes with its first statement: its time is fixed then.
   */
  /** The clock values of txnStart() (what the time functions of this statement return). */
  times(): TimeValues {
    return timeValues(this.txnStart());
  }

  txnStart(): bigint {
    const txn = this.txn;
    if (!txn) return nowMicros();
    if (txn.lazyStart) {
      txn.lazyStart = false;
      txn.startMicros = nowMicros();
    }
    return txn.startMicros;
  }

  beginFrom(home: NodeConnection, text?: string): void {
    this.txn = {
      home,
      wrote: false,
      joined: new Set([home]),
      log: [text !== undefined ? encodeQuery(text) : Q_BEGIN],
      startMicros: nowMicros(),
      broken: null,
    };
  }

}

/** The error when the nodes' outcomes have no majority (`counts`: outcome -> nodes). */
function noMajority(counts: ReadonlyMap<string, number>, text: string): PgqError {
  const detail = [...counts].map(([k, n]) => `${k} x${n}`).join(', ');
  return new PgqError('ERR_NO_MAJORITY', 'the nodes disagree about the outcome and no outcome has a majority', {
    sqlstate: SqlState.INTERNAL_ERROR,
    detail: `outcomes: ${detail}; statement: ${redactSql(text).slice(0, 200)}`,
  });
}

/** Why a node outvoted on `text` leaves service. */
function outvotedReason(text: string, r: ExchangeResult, winner: ExchangeResult): string {
  return `outvoted on "${redactSql(text).slice(0, 120)}": node said ${describe(r)}, majority said ${describe(winner)}`;
}

export function describe(r: ExchangeResult): string {
  if (r.lost) return 'connection lost';
  if (r.error) return `error ${r.error['C']} (${r.error['M']})`;
  const rows = rowsDigest(r.frames);
  const tags = r.tags.length > 0 ? r.tags.join(', ') : 'ok';
  return rows === '' ? tags : `${tags} with rows digest ${rows.slice(0, 10)}`;
}

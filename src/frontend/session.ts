// One client session after login: reads the client's messages, groups the
// extended protocol into batches that end at Sync or Flush, classifies each
// request and hands it to the executor (src/txn/executor.ts). Requests are
// processed one at a time, in order, as PostgreSQL does; COPY data and
// Terminate are handled as they arrive.
import type { Logger } from 'pino';
import { PgqError, SqlState } from '../errors.js';
import { FE } from '../protocol/constants.js';
import type { Frame } from '../protocol/reader.js';
import { errorFromPgq, encodeReadyForQuery, EMPTY_QUERY_RESPONSE } from '../protocol/backend.js';
import { decodeBind, decodeClose, decodeDescribe, decodeExecute, decodeParse, decodeQuery, encodeQuery } from '../protocol/frontend.js';
import { NodeConnection, type NodeLogin, type TxnStatus } from '../backend/node-connection.js';
import type { ClusterNode, StateChange } from '../cluster/cluster.js';
import type { CoordinatorContext } from '../context.js';
import { ClientIO, readIntoShared } from './client-io.js';
import { Executor } from '../txn/executor.js';
import { Router } from '../txn/router.js';
import { preparedReq } from '../txn/prepared-write.js';
import type { BatchDecoders } from '../txn/batch.js';
import type { Req } from '../txn/executor.js';
import type { Classification } from '../sql/classify.js';

type Unit =
  | QueryUnit
  | { kind: 'batch'; frames: Frame[]; end: 'sync' | 'flush' }
  | { kind: 'function-call' };

/** A simple Query; its text and classification once the fast path made them. */
interface QueryUnit {
  kind: 'query';
  frame: Frame;
  sql?: string;
  cls?: Classification;
  /** Its prepared form was refused on the node: it goes as sent. */
  unprepared?: boolean;
}

let sessionSeq = 0;

const DECODERS: BatchDecoders = { parse: decodeParse, bind: decodeBind, describe: decodeDescribe, execute: decodeExecute, close: decodeClose };

/** What a relayed prepared read's bookkeeping hears when the node refused its prepared form (the error itself is not passed on). */
const REFUSED = Object.freeze({ S: 'ERROR', C: '26000', M: 'the prepared form of the read was refused; it runs as sent' });

/** A read on a shared connection cancelled by the client (cancel()): PostgreSQL's own words for a cancelled statement. */
const CANCELLED = new PgqError('ERR_QUERY_CANCELED', 'canceling statement due to user request', { sqlstate: SqlState.QUERY_CANCELED });

export class Session {
  readonly id = ++sessionSeq;
  /** BackendKeyData the coordinator handed to the client (for CancelRequest). */
  readonly pid: number;
  readonly secret: number;
  readonly user: string;
  readonly database: string;
  readonly log: Logger;
  readonly client: ClientIO;
  readonly conns = new Map<ClusterNode, NodeConnection>();
  readonly exec: Executor;
  readonly router: Router;
  status: TxnStatus = 'I';
  closed = false;
  /** How this session logs in to a node (for nodes put back into service after it started). */
  readonly login: NodeLogin;
  /** Session state set outside transactions (SET, PREPARE, ...), replayed on connections opened later. */
  readonly sessionLog: string[] = [];
  startedAt = new Date();
  private readonly ctx: CoordinatorContext;
  private queue: Unit[] = [];
  private running = false;
  private batch: Frame[] = [];
  /** After a coordinator-made error in a Flush batch: drop messages until Sync, as PostgreSQL does. */
  private skipUntilSync = false;
  private readonly onClusterChange: (c: StateChange) => void;
  /** The shared read connection this session's read is pipelined on now (relayRead), or null. */
  private sharedRead: NodeConnection | null = null;
  /** The client cancelled that read: it ends with 57014 (cancel()). */
  private sharedCancelled = false;

  constructor(
    ctx: CoordinatorContext,
    client: ClientIO,
    opts: { user: string; database: string; pid: number; secret: number; conns: NodeConnection[]; login: NodeLogin },
  ) {
    this.ctx = ctx;
    this.login = opts.login;
    this.client = client;
    this.user = opts.user;
    this.database = opts.database;
    this.pid = opts.pid;
    this.secret = opts.secret;
    this.log = ctx.log.child({ session: this.id, user: opts.user, db: opts.database });
    for (const c of opts.conns) this.adopt(c);
    this.exec = new Executor(ctx, this);
    this.router = new Router(ctx, this, this.exec);
    this.onClusterChange = (c) => {
      if (c.from !== 'up' || c.to === 'up') return;
      // The node was the main node if no node still up ranks before it.
      const wasMain = ctx.cluster.nodes.every((n) => n.state !== 'up' || n.rank > c.node.rank);
      this.dropNode(c.node);
      this.exec.nodeLeft(c.node, wasMain);
    };
    ctx.cluster.on('change', this.onClusterChange);
  }

  /** Take a node connection into the session and watch it. */
  adopt(c: NodeConnection): void {
    this.conns.set(c.node, c);
    c.onAsync = (f) => this.exec.onAsyncFrame(c, f);
    c.onClose = (err) => {
      if (this.closed) return;
      this.conns.delete(c.node);
      if (err) this.exec.nodeLost(c, err);
    };
  }

  /**
   * Connect to the `up` nodes this session has no connection to (nodes put
   * back into service since it started), replaying its session state. A
   * node that cannot be reached is ejected; one that refuses the login or
   * the replay fails the request.
   */
  async connectMissing(): Promise<void> {
    const missing = this.ctx.cluster.upNodes().filter((n) => !this.conns.has(n));
    if (missing.length === 0) return;
    await Promise.all(
      missing.map(async (node) => {
        let c: NodeConnection;
        try {
          c = await NodeConnection.connect(node, this.login, this.log);
        } catch (e) {
          const err = e as PgqError;
          if (err.code === 'ERR_NODE_LOST') {
            if (node.state === 'up') this.ctx.cluster.setState(node, 'down', err.message);
            return;
          }
          throw err;
        }
        if (this.closed || node.state !== 'up') {
          c.close();
          return;
        }
        if (this.sessionLog.length > 0) {
          const r = await c.exchange(
            this.sessionLog.map((t) => encodeQuery(t)),
            { skipReadies: this.sessionLog.length - 1 },
          );
          if (r.lost || r.error) {
            c.close();
            if (r.lost) {
              if (node.state === 'up') this.ctx.cluster.setState(node, 'down', r.lost.message);
              return;
            }
            throw new PgqError('ERR_SESSION_REPLAY', `could not bring this session's settings to node ${node.id}: ${r.error!['M']}`, {
              sqlstate: SqlState.SERIALIZATION_FAILURE,
              hint: 'Reconnect.',
            });
          }
        }
        this.adopt(c);
        this.log.debug({ node: node.id }, 'session connected to a node put back into service');
      }),
    );
  }

  dropNode(node: ClusterNode): void {
    const c = this.conns.get(node);
    if (!c) return;
    this.conns.delete(node);
    c.close();
  }

  /** Start reading the client. Frames already buffered in the reader are processed first. */
  start(): void {
    const onChunk = (chunk: Buffer): void => {
      this.client.reader.push(chunk);
      this.pump();
    };
    if (!readIntoShared(this.client.socket, onChunk)) this.client.socket.on('data', onChunk);
    this.client.socket.on('close', () => this.close());
    this.client.socket.on('error', () => this.close());
    this.pump();
  }

  private pump(): void {
    let f: Frame | null;
    try {
      while (!this.closed && (f = this.client.reader.next()) !== null) this.onClientFrame(f);
    } catch (e) {
      this.fatal(e instanceof PgqError ? e : new PgqError('ERR_PROTOCOL', String(e), { sqlstate: SqlState.PROTOCOL_VIOLATION }));
    }
  }

  private onClientFrame(f: Frame): void {
    const t = f.type;
    if (this.exec.copyIn && (t === FE.CopyData || t === FE.CopyDone || t === FE.CopyFail)) {
      this.exec.copyInFrame(f);
      return;
    }
    if (this.exec.copyIn && (t === FE.Sync || t === FE.Flush)) return; // ignored during COPY, as PostgreSQL does
    switch (t) {
      case FE.Query: {
        const u: QueryUnit = { kind: 'query', frame: f };
        if (!this.running && this.queue.length === 0 && this.fastRead(u)) return;
        this.enqueue(u);
        return;
      }
      case FE.Parse:
      case FE.Bind:
      case FE.Describe:
      case FE.Execute:
      case FE.Close:
        if (!this.skipUntilSync) this.batch.push(f);
        return;
      case FE.Sync: {
        this.skipUntilSync = false;
        const frames = this.batch;
        this.batch = [];
        frames.push(f);
        if (!this.running && this.queue.length === 0 && this.fastBatch(frames)) return;
        this.enqueue({ kind: 'batch', frames, end: 'sync' });
        return;
      }
      case FE.Flush: {
        if (this.batch.length === 0) return;
        const frames = this.batch;
        this.batch = [];
        frames.push(f);
        this.enqueue({ kind: 'batch', frames, end: 'flush' });
        return;
      }
      case FE.Terminate:
        this.close();
        return;
      case FE.CopyData:
      case FE.CopyDone:
      case FE.CopyFail:
        return; // outside COPY these are ignored (PostgreSQL does the same after a failed COPY)
      case FE.FunctionCall:
        this.router.noteStatement(null);
        this.enqueue({ kind: 'function-call' });
        return;
      default:
        this.fatal(
          new PgqError('ERR_PROTOCOL_UNKNOWN_MESSAGE', `invalid frontend message type ${t}`, {
            sqlstate: SqlState.PROTOCOL_VIOLATION,
            severity: 'FATAL',
          }),
        );
    }
  }

  /**
   * The read fast path (docs/routing.md): a Query outside a transaction
   * block that is one plain read is relayed to the node chosen for it, and
   * the node's answer streamed back as it arrives, without the request
   * machinery. Anything else, or a connection that cannot take it, goes the
   * usual way (false). A node lost before any of its answer was passed on
   * is retried the usual way (on another node); after, the client gets 40001.
   * A keyed read goes as a prepared statement (docs/routing.md); one whose
   * prepared form the node refused (an error before BindComplete) goes
   * again, as sent.
   */
  private fastRead(u: QueryUnit): boolean {
    // Nothing is pending before it: a malformed Query ends the session here as it would in process().
    const sql = (u.sql = decodeQuery(u.frame.payload));
    const target = this.router.fastReadTarget(sql);
    if (target.cls) u.cls = target.cls;
    const c = target.conn;
    if (!c || !c.relayable) return false;
    const req = target.form ? preparedReq(sql, target.form) : null;
    // A keyed read of a session whose connections hold only what its login set may go over a shared one.
    const shared = req && target.shareable ? (this.ctx.sharedReads?.conn(c.node, this.login) ?? null) : null;
    const use = shared ?? c;
    const body = req ? req.forNode(use) : { bufs: [u.frame.raw], skip: 0 };
    return this.relayRead(
      use,
      body,
      req,
      (refused) => {
        if (refused) u.unprepared = true;
        this.queue.unshift(u);
      },
      shared !== null,
    );
  }

  /**
   * The read fast path for the extended protocol: a batch ending in Sync,
   * outside a transaction block, that runs one read of a statement the
   * session prepared before (no Parse, no Close in it) is relayed like a
   * fast-path Query (docs/routing.md). Injected Parses of the statement (a
   * node that does not have it yet) are swallowed from the front of the
   * answer; if one fails, nothing is passed on and the batch goes the usual
   * way.
   */
  private fastBatch(frames: Frame[]): boolean {
    const target = this.router.fastBatchTarget(frames, DECODERS);
    if (!target) return false;
    const { conn: c, req, shared } = target;
    return this.relayRead(c, req.forNode(c), req, () => this.queue.unshift({ kind: 'batch', frames, end: 'sync' }), shared);
  }

  /**
   * Relay one read request (its messages for `c`, and how many leading
   * replies to swallow) to `c` (NodeConnection.relay) and end the run
   * when its answer is complete. `again` puts the request back at the head
   * of the queue, to go the usual way: when the node was lost before any
   * of the answer was passed on, or refused the request's injected part.
   * `shared`: `c` is a shared read connection (src/backend/shared-reads.ts):
   * the request is pipelined behind other sessions' and a slow client does
   * not pause it (a keyed read's answer is one row).
   * `body.lead` goes to the client before the first of the answer.
   */
  private relayRead(c: NodeConnection, body: { bufs: Buffer[]; skip: number; lead?: Buffer }, req: Req | null, again: (refused: boolean) => void, shared = false): boolean {
    const { bufs, skip } = body;
    const msg = bufs.length === 1 ? bufs[0]! : Buffer.concat(bufs);
    const client = this.client;
    const exec = this.exec;
    const node = c.node;
    let lead = body.lead;
    if (shared) this.sharedRead = c;
    const ok = c.relay(
      msg,
      (chunk) => {
        if (lead) {
          client.send(lead);
          lead = undefined;
        }
        client.send(chunk);
        if (!shared) exec.throttle(c);
      },
      (status, lost, forwarded, refused) => {
        node.inflight--;
        exec.busy = false;
        const cancelled = shared && this.sharedCancelled && lost !== null;
        if (shared) {
          this.sharedRead = null;
          this.sharedCancelled = false;
        }
        req?.after?.(c, { node: c, status, tags: [], error: refused ? { ...REFUSED } : null, frames: [], lost, terminals: 0 }, forwarded);
        if (cancelled) exec.sendError(CANCELLED, true);
        else if ((refused || (lost && !forwarded)) && !this.closed) again(refused);
        else if (lost) exec.sendError(exec.lostInRequest(lost), true);
        else if (status) this.status = status;
        exec.planner.finish('sync', this.status); // portals end with the transaction
        exec.flushAsync();
        client.flush();
        this.runEnded();
        if (!this.closed && this.queue.length > 0) void this.drain();
      },
      skip,
      shared,
    );
    if (!ok) {
      if (shared) this.sharedRead = null;
      return false;
    }
    node.inflight++;
    node.reads++;
    exec.busy = true;
    this.running = true;
    return true;
  }

  private enqueue(u: Unit): void {
    this.queue.push(u);
    if (!this.running) void this.drain();
  }

  private async drain(): Promise<void> {
    this.running = true;
    while (this.queue.length > 0 && !this.closed) {
      const u = this.queue.shift()!;
      try {
        await this.process(u);
      } catch (e) {
        await this.requestFailed(e, u);
      }
      if (this.status === 'I') this.exec.leaveWrite(); // the transaction or autocommit write is over
      this.client.flush();
    }
    this.runEnded();
  }

  /** No request runs any more; a session closed meanwhile lets go of its nodes now. */
  private runEnded(): void {
    this.running = false;
    if (!this.closed) return;
    this.exec.leaveWrite();
    this.closeNodes();
  }

  private async process(u: Unit): Promise<void> {
    if (u.kind === 'query') {
      await this.router.simpleQuery(u.sql ?? decodeQuery(u.frame.payload), u.frame, u.cls, u.unprepared === true);
    } else if (u.kind === 'batch') {
      await this.router.batch(u.frames, u.end, DECODERS);
    } else {
      throw new PgqError('ERR_FUNCTION_CALL', 'the fastpath function call protocol is not supported by pgquorum', {
        sqlstate: SqlState.FEATURE_NOT_SUPPORTED,
        hint: 'Call the function with SELECT instead.',
      });
    }
  }

  /** A request failed inside the coordinator: an ErrorResponse (and ReadyForQuery where one is due). */
  private async requestFailed(e: unknown, u: Unit): Promise<void> {
    const err =
      e instanceof PgqError
        ? e
        : new PgqError('ERR_INTERNAL', `internal error: ${(e as Error)?.message ?? String(e)}`, { cause: e });
    if (!(e instanceof PgqError)) this.log.error({ err: e }, 'internal error while serving a request');
    if (err.severity === 'FATAL') {
      this.fatal(err);
      return;
    }
    if (this.status === 'T') {
      await this.router.abortTxnOnNodes();
      this.status = 'E';
    }
    this.client.send(errorFromPgq(err));
    if (u.kind === 'batch' && u.end === 'flush') {
      this.skipUntilSync = true;
      return;
    }
    this.client.send(encodeReadyForQuery(this.status));
  }

  /** Send a FATAL error and end the session. */
  fatal(err: PgqError): void {
    if (this.closed) return;
    this.log.info({ code: err.code, sqlstate: err.sqlstate }, `session ends: ${err.message}`);
    this.client.end(errorFromPgq({ ...err, message: err.message, severity: 'FATAL' }));
    this.close();
  }

  sendEmptyQuery(): void {
    this.client.send(EMPTY_QUERY_RESPONSE);
    this.client.send(encodeReadyForQuery(this.status));
  }

  /**
   * Cancel whatever the session runs on its nodes (CancelRequest from the
   * client). A read pipelined on a shared read connection cannot be
   * cancelled alone: a cancel reaches whatever that connection's backend
   * runs when it arrives, which may be another session's read by then. So
   * the connection is closed (the other sessions' reads on it run again on
   * their own connections, as after any loss of a shared connection), its
   * backend is cancelled (nothing of anyone else runs there any more), and
   * this session's read ends with 57014 as a cancelled statement does.
   */
  async cancel(): Promise<void> {
    const sc = this.sharedRead;
    if (sc && !this.sharedCancelled) {
      this.sharedCancelled = true;
      this.log.info({ node: sc.node.id }, 'cancel of a read on a shared connection: the connection is closed and its backend cancelled');
      sc.abandon();
    }
    await this.cancelOwn();
  }

  /** Cancel what runs on the session's own node connections. */
  private async cancelOwn(): Promise<void> {
    await Promise.all([...this.conns.values()].filter((c) => c.busy).map((c) => c.cancel()));
  }

  /**
   * End the session. A request that is running is allowed to finish on the
   * nodes (it is cancelled there, and COPY is failed) so that no node is left
   * half-way through a commit; the node connections close after it.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ctx.cluster.off('change', this.onClusterChange);
    this.ctx.sessions.delete(this.pid);
    this.exec.releaseReadHome();
    if (!this.client.closed) this.client.end();
    this.exec.abortCopy();
    if (this.running) void this.cancelOwn(); // a read on a shared connection just finishes (its answer goes nowhere)
    else {
      this.exec.leaveWrite();
      this.closeNodes();
    }
    this.log.debug('session closed');
  }

  private closeNodes(): void {
    for (const c of this.conns.values()) c.close();
    this.conns.clear();
  }
}

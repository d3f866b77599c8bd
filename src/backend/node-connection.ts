// One connection from the coordinator to one node, owned by one client
// session: login, and "exchanges" (send some messages, collect the node's
// answer up to ReadyForQuery or up to a counted number of replies).
//
// The connection never interprets more than routing and voting need: frames
// are kept raw and either handed to a sink (to be forwarded to the client
// untouched) or buffered for the vote.
import net from 'node:net';
import { connectTarget } from '../config/node-address.js';
import type { Logger } from 'pino';
import { PgqError, SqlState } from '../errors.js';
import { FrameReader, type Frame } from '../protocol/reader.js';
import { BE } from '../protocol/constants.js';
import {
  decodeAuthentication,
  decodeBackendKeyData,
  decodeCommandComplete,
  decodeErrorFields,
  decodeParameterStatus,
  decodeReadyForQuery,
  type ErrorFields,
} from '../protocol/backend.js';
import {
  encodeCancelRequest,
  encodePassword,
  encodeSASLInitialResponse,
  encodeSASLResponse,
  encodeStartup,
  TERMINATE,
} from '../protocol/frontend.js';
import { md5Response, ScramClient } from './auth.js';
import type { ClusterNode } from '../cluster/cluster.js';

export interface NodeLogin {
  user: string;
  password: string | null;
  database: string;
  /** Startup parameters passed on from the client (application_name, options, ...). */
  params: Record<string, string>;
  connectTimeoutMs: number;
}

export type TxnStatus = 'I' | 'T' | 'E';

/** What a node answered to one exchange. */
export interface ExchangeResult {
  node: NodeConnection;
  /** ReadyForQuery status, or null for an exchange that ended at a Flush. */
  status: TxnStatus | null;
  /** CommandComplete tags, in order (EmptyQueryResponse counts as ''). */
  tags: string[];
  /** The first ErrorResponse, if any. */
  error: ErrorFields | null;
  /** Raw frames, when the exchange buffered them. */
  frames: Buffer[];
  /** Set when the connection was lost or broke the protocol during the exchange. */
  lost: PgqError | null;
  /** Terminal replies counted, per message sent (see countTerminal). */
  terminals: number;
}

export interface ExchangeOptions {
  /** Leading ReadyForQuery messages (and all before them) that belong to injected prefix queries; swallowed. */
  skipReadies?: number;
  /** Then this many leading terminal replies (ParseComplete/CloseComplete of injected messages); swallowed. */
  skipTerminals?: number;
  /** For an exchange that ends in Flush: how many terminal replies end it. Omit to end at ReadyForQuery. */
  expectTerminals?: number;
  /** Keep the frames (after the swallowed prefix) in result.frames. */
  buffer?: boolean;
  /**
   * Called with every frame after the swallowed prefix, before it is
   * buffered; `at`: the terminal replies counted so far, this frame's
   * included (an ErrorResponse answers the at-th message sent), 0 for the
   * error of an injected message.
   */
  sink?: (f: Frame, at: number) => void;
}

/** Replies that finish one message of the extended protocol. */
function isTerminal(type: number): boolean {
  switch (type) {
    case BE.ParseComplete:
    case BE.BindComplete:
    case BE.CloseComplete:
    case BE.NoData:
    case BE.RowDescription:
    case BE.CommandComplete:
    case BE.EmptyQueryResponse:
    case BE.PortalSuspended:
    case BE.ErrorResponse:
      return true;
    default:
      return false;
  }
}

let connSeq = 0;
const EMPTY = Buffer.alloc(0);
/** Where every node connection's socket reads land before onData() gets its own copy (see connect()). */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** How a relayed answer ended: its ReadyForQuery status, or the loss; `refused`: see relay(). */
export type RelayDone = (status: TxnStatus | null, lost: PgqError | null, forwarded: boolean, refused: boolean) => void;

interface Relay {
  out: (chunk: Buffer) => void;
  done: RelayDone;
  /** Leading ParseComplete / CloseComplete / BindComplete replies still to swallow. */
  skip: number;
  /** Something else came first (an error): nothing of the answer is passed on. */
  refused: boolean;
  /** A frame whose end has not arrived yet. */
  tail: Buffer | null;
  forwarded: boolean;
  /** Set when ReadyForQuery arrived. */
  status: TxnStatus | null;
}

/** A value of NodeConnection.prepared meaning "this node's copy is unknown": the next use closes and parses it again. */
export const UNKNOWN_STATEMENT = '\u0000unknown';

export class NodeConnection {
  readonly node: ClusterNode;
  readonly id = ++connSeq;
  readonly params = new Map<string, string>();
  /** Named (and unnamed '') prepared statements that exist on this node: name -> SQL as sent. */
  readonly prepared = new Map<string, string>();
  /** The coordinator's own statements made on this node (src/txn/prepared-write.ts), oldest first. */
  readonly ownStatements = new Set<string>();
  /**
   * A shared read connection (src/backend/shared-reads.ts): requests are
   * pipelined on it, so a statement whose Parse was sent counts as made at
   * once (prepared-write.ts injectOwn()), or every request sent before the
   * first answer would Parse it again and fail.
   */
  shared = false;
  pid = 0;
  secret = 0;
  txnStatus: TxnStatus = 'I';
  closed = false;
  /** Frames that arrive outside an exchange: NotificationResponse, NoticeResponse, ParameterStatus, FATAL errors. */
  onAsync: ((f: Frame) => void) | null = null;
  /** Called once when the connection ends, with the reason unless we closed it ourselves. */
  onClose: ((err: PgqError | null) => void) | null = null;

  private readonly socket: net.Socket;
  private readonly reader: FrameReader;
  private readonly log: Logger;
  private handler: ((f: Frame) => void) | null = null;
  private failer: ((e: PgqError) => void) | null = null;
  /** The relay in progress (see relay()), or null. */
  private relaying: Relay | null = null;
  /** Relays sent behind `relaying` (relay(..., pipelined)), answered in order. */
  private relayQueue: Relay[] = [];
  /** performance.now() when the node began on the answer `relaying` waits for (sent, or the previous one ended). */
  private relayHeadSince = 0;
  /** performance.now() when bytes of a relay's answer last arrived. */
  private relayProgressAt = 0;
  /** A pipelined relay corked the socket: its writes go out together when this turn of the event loop is done. */
  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  private constructor(node: ClusterNode, socket: net.Socket, log: Logger) {
    this.node = node;
    this.socket = socket;
    this.log = log;
    this.reader = new FrameReader({ maxMessageSize: 0x7fffffff });
    socket.setNoDelay(true);
    socket.on('error', (e) => this.fail(this.lostError(e.message)));
    socket.on('close', () => this.fail(this.lostError('connection closed')));
  }

  private lostError(why: string): PgqError {
    return new PgqError('ERR_NODE_LOST', `lost connection to node ${this.node.id}: ${why}`, {
      sqlstate: SqlState.CONNECTION_FAILURE,
      context: { node: this.node.id },
    });
  }

  /** Open a connection and log in. Rejects with the node's own error fields on refusal. */
  static async connect(node: ClusterNode, login: NodeLogin, log: Logger): Promise<NodeConnection> {
    let conn: NodeConnection | null = null;
    const socket = net.connect({
      ...connectTarget(node.host, node.port),
      // Read into one shared buffer and copy out what arrived (usually a few hundred bytes): no stream
      // machinery and no fresh 64 KiB allocation per read. The copy is ours to keep (frames outlive the read).
      onread: {
        buffer: READ_BUFFER,
        callback: (n: number, buf: Uint8Array): boolean => {
          conn?.onData(Buffer.from(buf.subarray(0, n)));
          return true;
        },
      },
    });
    conn = new NodeConnection(node, socket, log);
    const timer = setTimeout(
      () => conn.fail(conn.lostError(`no login within ${login.connectTimeoutMs} ms`)),
      login.connectTimeoutMs,
    );
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        conn.failer = reject;
      });
      await conn.login(login);
      return conn;
    } catch (e) {
      conn.close();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  private login(login: NodeLogin): Promise<void> {
    const params: Record<string, string> = { ...login.params, user: login.user, database: login.database };
    let scram: ScramClient | null = null;
    return new Promise<void>((resolve, reject) => {
      this.failer = reject;
      this.handler = (f) => {
        try {
          switch (f.type) {
            case BE.Authentication: {
              const a = decodeAuthentication(f.payload);
              if (a.kind === 'ok') break;
              if (login.password === null) {
                throw new PgqError('ERR_NODE_AUTH', `node ${this.node.id} asks for a password and none is configured for user "${login.user}"`, {
                  sqlstate: SqlState.INVALID_PASSWORD,
                  context: { node: this.node.id },
                });
              }
              if (a.kind === 'cleartext') this.socket.write(encodePassword(login.password));
              else if (a.kind === 'md5') this.socket.write(encodePassword(md5Response(login.user, login.password, a.salt)));
              else if (a.kind === 'sasl') {
                if (!a.mechanisms.includes('SCRAM-SHA-256')) {
                  throw new PgqError('ERR_NODE_AUTH', `node ${this.node.id} offers no supported SASL mechanism`, {
                    sqlstate: SqlState.FEATURE_NOT_SUPPORTED,
                  });
                }
                scram = new ScramClient(login.user, login.password);
                this.socket.write(encodeSASLInitialResponse('SCRAM-SHA-256', scram.clientFirst()));
              } else if (a.kind === 'sasl-continue' && scram) {
                this.socket.write(encodeSASLResponse(scram.serverFirst(a.data)));
              } else if (a.kind === 'sasl-final' && scram) {
                scram.serverFinal(a.data);
              } else {
                throw new PgqError('ERR_NODE_AUTH', `node ${this.node.id} asks for an unsupported authentication method`, {
                  sqlstate: SqlState.FEATURE_NOT_SUPPORTED,
                });
              }
              break;
            }
            case BE.ParameterStatus:
              this.noteParameter(f.payload);
              break;
            case BE.BackendKeyData: {
              const k = decodeBackendKeyData(f.payload);
              this.pid = k.pid;
              this.secret = k.secret;
              break;
            }
            case BE.ReadyForQuery:
              this.txnStatus = decodeReadyForQuery(f.payload);
              this.handler = null;
              this.failer = null;
              resolve();
              break;
            case BE.ErrorResponse:
              throw nodeError(this.node.id, decodeErrorFields(f.payload));
            default:
              // NoticeResponse, NegotiateProtocolVersion: nothing to do at login.
              break;
          }
        } catch (e) {
          this.handler = null;
          this.failer = null;
          reject(e);
        }
      };
      this.socket.write(encodeStartup(params));
    });
  }

  private onData(chunk: Buffer): void {
    let relay = this.relaying;
    if (relay && this.shared) this.relayProgressAt = performance.now();
    while (relay) {
      chunk = this.onRelayData(relay, chunk);
      if (relay.status === null) return; // the answer goes on (or the connection failed)
      // The answer is complete. With no pipelined relay behind it, the bytes after it are read
      // as usual before the session hears of it; else the next relay takes them.
      this.relaying = this.relayQueue.shift() ?? null;
      if (this.relaying === null) {
        if (chunk.length > 0) this.readFrames(chunk);
        relay.done(relay.status, null, relay.forwarded, relay.refused);
        return;
      }
      this.relayHeadSince = performance.now();
      relay.done(relay.status, null, relay.forwarded, relay.refused);
      relay = this.relaying;
      if (relay === null || chunk.length === 0) return; // null: done() closed the connection, the rest goes with it
    }
    this.readFrames(chunk);
  }

  /** Relays sent and not answered yet (relay(..., pipelined)). */
  get relaysInFlight(): number {
    return (this.relaying ? 1 : 0) + this.relayQueue.length;
  }

  /** How long the node has been on the oldest unanswered relay, in ms (0 with none). */
  relayHeadAge(now: number): number {
    return this.relaying ? now - this.relayHeadSince : 0;
  }

  /**
   * How long the oldest unanswered relay has gone without any of its answer
   * arriving, in ms (0 with none): unlike relayHeadAge(), a long answer that
   * is still streaming in (a large value) is not stalled. Tracked on shared
   * connections only.
   */
  relayStalledFor(now: number): number {
    return this.relaying ? now - Math.max(this.relayHeadSince, this.relayProgressAt) : 0;
  }

  private readFrames(chunk: Buffer): void {
    this.reader.push(chunk);
    let f: Frame | null;
    try {
      while ((f = this.reader.next()) !== null) {
        if (this.handler) this.handler(f);
        else this.onIdleFrame(f);
      }
    } catch (e) {
      this.fail(e instanceof PgqError ? e : this.lostError(String(e)));
    }
  }

  private onIdleFrame(f: Frame): void {
    if (f.type === BE.ParameterStatus) this.noteParameter(f.payload);
    if (this.onAsync) this.onAsync(f);
  }

  private noteParameter(payload: Buffer): void {
    const p = decodeParameterStatus(payload);
    this.params.set(p.name, p.value);
  }

  /**
   * An ErrorResponse during an exchange that is FATAL or PANIC: the backend
   * is ending the connection (postmaster gone, shutdown, terminated), so the
   * node is lost for this exchange and its words are not an outcome to vote
   * on or forward. The loss to fail the connection with, or null.
   */
  private endedBy(e: ErrorFields): PgqError | null {
    const sev = e['V'] ?? e['S'];
    if (sev !== 'FATAL' && sev !== 'PANIC') return null;
    return this.lostError(`the node ended the connection: ${e['C'] ?? ''} ${e['M'] ?? ''}`.trim());
  }

  private fail(err: PgqError): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    const failer = this.failer;
    this.failer = null;
    this.handler = null;
    if (failer) failer(err);
    this.endRelay(null, err);
    const cb = this.onClose;
    this.onClose = null;
    if (cb) cb(err);
  }

  get busy(): boolean {
    return this.handler !== null || this.relaying !== null;
  }

  /** relay() can take a request now: open, idle, nothing unread. */
  get relayable(): boolean {
    return !this.closed && !this.busy && this.reader.buffered === 0;
  }

  /**
   * The read fast path: send one Query message (or a prepared statement's
   * messages) and stream the node's answer to `out` in the chunks it arrives
   * in, without cutting it into frames (only frame headers are walked, to
   * find the end, FATAL errors and ParameterStatus). `skip`: that many
   * leading ParseComplete / CloseComplete / BindComplete replies are
   * swallowed; if anything else comes before them (an error), nothing of the
   * answer is passed on and `done` says `refused`. `done` is called once:
   * with the ReadyForQuery status, or with the loss of the connection
   * (`forwarded` says whether any of the answer was passed on). Returns false
   * (nothing sent) when the connection cannot take it: closed, busy, or
   * holding unread bytes.
   * `pipelined` (a connection that sessions share, src/backend/shared-reads.ts):
   * the request is sent at once, behind the relays in flight, and its answer
   * is taken in order. Each request ends in Sync (or is a Query), so an error
   * in one does not touch the next. Such a connection takes no exchange().
   */
  relay(msg: Buffer, out: (chunk: Buffer) => void, done: RelayDone, skip = 0, pipelined = false): boolean {
    const behind = pipelined && this.relaying !== null && !this.closed && this.handler === null;
    if (!behind && !this.relayable) return false;
    const r: Relay = { out, done, skip, refused: false, tail: null, forwarded: false, status: null };
    if (behind) this.relayQueue.push(r);
    else {
      this.relaying = r;
      this.relayHeadSince = performance.now();
    }
    if (pipelined && !this.corked) {
      this.corked = true;
      this.socket.cork();
      setImmediate(this.uncork);
    }
    this.socket.write(msg);
    return true;
  }

  /** Relay one chunk; when the answer's ReadyForQuery is in it, sets r.status and returns the bytes after it (usually none). */
  private onRelayData(r: Relay, chunk: Buffer): Buffer {
    let buf = chunk;
    if (r.tail) {
      buf = Buffer.concat([r.tail, chunk]);
      r.tail = null;
    }
    const n = buf.length;
    let o = 0;
    /** Where the bytes to pass on start (after swallowed replies). */
    let from = 0;
    let status: TxnStatus | null = null;
    while (o + 5 <= n) {
      const t = buf[o]!;
      const len = buf.readInt32BE(o + 1);
      if (len < 4) {
        this.fail(this.lostError(`invalid message length ${len}`));
        return EMPTY;
      }
      const end = o + 1 + len;
      if (end > n) break;
      if (t === BE.ReadyForQuery) {
        status = (this.txnStatus = decodeReadyForQuery(buf.subarray(o + 5, end)));
        o = end;
        break;
      }
      if (r.skip > 0) {
        if (len === 4 && (t === BE.ParseComplete || t === BE.CloseComplete || t === BE.BindComplete)) {
          r.skip--;
          from = o = end;
          continue;
        }
        r.skip = 0;
        r.refused = true;
      }
      if (t === BE.ErrorResponse) {
        const lost = this.endedBy(decodeErrorFields(buf.subarray(o + 5, end)));
        if (lost) {
          if (o > from) this.relayOut(r, buf.subarray(from, o));
          this.fail(lost);
          return EMPTY;
        }
      } else if (t === BE.ParameterStatus) this.noteParameter(buf.subarray(o + 5, end));
      o = end;
    }
    if (status === null) {
      // The answer goes on: pass on the whole frames, keep a partial one.
      if (o < n) r.tail = buf.subarray(o);
      if (o > from) this.relayOut(r, buf.subarray(from, o));
      return EMPTY;
    }
    if (o > from) this.relayOut(r, from === 0 && o === n ? buf : buf.subarray(from, o));
    r.status = status;
    return o === n ? EMPTY : buf.subarray(o);
  }

  private relayOut(r: Relay, b: Buffer): void {
    if (r.refused) return;
    r.forwarded = true;
    r.out(b);
  }

  private endRelay(status: TxnStatus | null, lost: PgqError | null): void {
    const r = this.relaying;
    if (!r) return;
    this.relaying = null;
    const rest = this.relayQueue;
    this.relayQueue = [];
    r.done(status, lost, r.forwarded, r.refused);
    // Pipelined behind it: nothing of theirs was passed on.
    for (const q of rest) q.done(status, lost, false, q.refused);
  }

  /** Stop reading (backpressure from a slow client). */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Send bytes outside any exchange (CopyData during COPY FROM STDIN). */
  write(buf: Buffer): void {
    if (!this.closed) this.socket.write(buf);
  }

  /**
   * Send `msgs` and collect the answer. Resolves (never rejects) when the
   * node sent ReadyForQuery (or the expected number of terminal replies for a
   * Flush-terminated batch), or when the connection was lost.
   */
  exchange(msgs: Buffer | Buffer[], opts: ExchangeOptions = {}): Promise<ExchangeResult> {
    const result = this.newResult();
    if (this.closed) {
      result.lost = this.lostError('connection already closed');
      return Promise.resolve(result);
    }
    if (this.handler) throw new PgqError('ERR_NODE_BUSY', `node connection ${this.node.id} is busy`);
    return new Promise<ExchangeResult>((resolve) => {
      const finish = (): void => {
        this.handler = null;
        this.failer = null;
        resolve(result);
      };
      this.failer = (e) => {
        result.lost = e;
        finish();
      };
      this.handler = this.collector(result, opts, finish);
      if (Array.isArray(msgs)) {
        if (msgs.length === 1) this.socket.write(msgs[0]!);
        else this.socket.write(Buffer.concat(msgs));
      } else this.socket.write(msgs);
    });
  }

  /**
   * Several exchanges pipelined: every request is sent in one write, then
   * the answers are collected in order, one result per request (as if each
   * had been sent after the previous one was answered). A loss ends the
   * current result and every later one with it.
   */
  exchangeMany(reqs: readonly { msgs: Buffer[]; opts: ExchangeOptions }[]): Promise<ExchangeResult[]> {
    const results = reqs.map(() => this.newResult());
    if (reqs.length === 0) return Promise.resolve(results);
    if (this.closed) {
      const lost = this.lostError('connection already closed');
      for (const r of results) r.lost = lost;
      return Promise.resolve(results);
    }
    if (this.handler) throw new PgqError('ERR_NODE_BUSY', `node connection ${this.node.id} is busy`);
    return new Promise<ExchangeResult[]>((resolve) => {
      let i = 0;
      const next = (): void => {
        i++;
        if (i < reqs.length) {
          this.handler = this.collector(results[i]!, reqs[i]!.opts, next);
          return;
        }
        this.handler = null;
        this.failer = null;
        resolve(results);
      };
      this.failer = (e) => {
        for (let j = i; j < results.length; j++) results[j]!.lost = e;
        this.handler = null;
        this.failer = null;
        resolve(results);
      };
      this.handler = this.collector(results[0]!, reqs[0]!.opts, next);
      const all: Buffer[] = [];
      for (const r of reqs) for (const b of r.msgs) all.push(b);
      this.socket.write(all.length === 1 ? all[0]! : Buffer.concat(all));
    });
  }

  private newResult(): ExchangeResult {
    return { node: this, status: null, tags: [], error: null, frames: [], lost: null, terminals: 0 };
  }

  /** The frame handler of one exchange: fills `result`, calls `finish` at its end. */
  private collector(result: ExchangeResult, opts: ExchangeOptions, finish: () => void): (f: Frame) => void {
    let skipReadies = opts.skipReadies ?? 0;
    let skipTerminals = opts.skipTerminals ?? 0;
    const expect = opts.expectTerminals ?? -1;
    const buffer = opts.buffer ?? false;
    const sink = opts.sink;
    let injectedError = false;
    return (f) => {
      const t = f.type;
      if (skipReadies > 0) {
        if (t === BE.ReadyForQuery) {
          skipReadies--;
          this.txnStatus = decodeReadyForQuery(f.payload);
        } else if (t === BE.ErrorResponse && result.error === null) {
          // An injected prefix failed: report it as this exchange's error.
          result.error = decodeErrorFields(f.payload);
        }
        return;
      }
      if (skipTerminals > 0 && isTerminal(t)) {
        skipTerminals--;
        if (t !== BE.ErrorResponse) return;
        // An injected Parse/Close failed: the node skips to Sync. Keep it.
        skipTerminals = 0;
        injectedError = true;
      }
      if (t === BE.ReadyForQuery) {
        result.status = this.txnStatus = decodeReadyForQuery(f.payload);
      } else if (t === BE.CommandComplete) {
        result.tags.push(decodeCommandComplete(f.payload));
      } else if (t === BE.EmptyQueryResponse) {
        result.tags.push('');
      } else if (t === BE.ErrorResponse) {
        const e = decodeErrorFields(f.payload);
        const lost = this.endedBy(e);
        if (lost) {
          this.fail(lost);
          return;
        }
        if (result.error === null) result.error = e;
      } else if (t === BE.ParameterStatus) this.noteParameter(f.payload);
      if (isTerminal(t)) result.terminals++;
      if (sink) sink(f, injectedError ? 0 : result.terminals);
      if (buffer) result.frames.push(f.raw); // views stay valid: the reader never reuses its memory
      if (t === BE.ReadyForQuery) finish();
      else if (expect >= 0 && (result.terminals >= expect || t === BE.ErrorResponse)) finish();
    };
  }

  /** Ask the node to cancel what this connection runs (a separate connection, as the protocol wants). */
  cancel(): Promise<void> {
    return new Promise<void>((resolve) => {
      const s = net.connect(connectTarget(this.node.host, this.node.port));
      s.on('connect', () => s.end(encodeCancelRequest(this.pid, this.secret)));
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.setTimeout(5000, () => s.destroy());
    });
  }

  /**
   * Close, and cancel whatever the backend still runs: for a shared read
   * connection given up with a read stuck on it (nothing of anyone else
   * runs there any more, so the cancel can hit no one else's statement).
   */
  abandon(): void {
    this.close();
    void this.cancel();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose = null;
    const failer = this.failer;
    this.failer = null;
    this.handler = null;
    const closedErr = new PgqError('ERR_CONN_CLOSED', `connection to node ${this.node.id} closed by the coordinator`, {
      sqlstate: SqlState.CONNECTION_FAILURE,
      context: { node: this.node.id },
    });
    if (failer) failer(closedErr);
    this.endRelay(null, closedErr);
    try {
      this.socket.end(TERMINATE);
    } catch {
      /* already gone */
    }
    this.socket.destroySoon?.();
  }
}

/** A PgqError carrying a node's ErrorResponse fields. */
export function nodeError(nodeId: string, f: ErrorFields): PgqError {
  return new PgqError('ERR_NODE_ERROR', f['M'] ?? 'error from node', {
    sqlstate: f['C'] ?? SqlState.INTERNAL_ERROR,
    severity: f['V'] === 'FATAL' || f['S'] === 'FATAL' ? 'FATAL' : 'ERROR',
    detail: f['D'],
    hint: f['H'],
    context: { node: nodeId, fields: f },
  });
}

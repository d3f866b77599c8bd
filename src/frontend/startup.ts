// The client's side of connection start (handleClientStartup): SSLRequest /
// GSSENCRequest answers and the TLS upgrade, CancelRequest, the protocol
// version check, pg_hba-style rules, authentication (SCRAM-SHA-256, md5,
// trust), login to every `up` node as the same user, and the greeting
// (AuthenticationOk, ParameterStatus, BackendKeyData, ReadyForQuery).
import net from 'node:net';
import tls from 'node:tls';
import fs from 'node:fs';
import { randomInt } from 'node:crypto';
import { PgqError, SqlState } from '../errors.js';
import { FrameReader, type Frame } from '../protocol/reader.js';
import { FE, protocolMajor, protocolMinor } from '../protocol/constants.js';
import {
  AUTH_OK,
  encodeAuthentication,
  encodeBackendKeyData,
  encodeNegotiateProtocolVersion,
  encodeParameterStatus,
  errorFromPgq,
  READY_IDLE,
} from '../protocol/backend.js';
import { decodePassword, decodeSASLInitialResponse, decodeStartupPacket } from '../protocol/frontend.js';
import { matchHba } from './auth/hba.js';
import { makeScramVerifier, ScramServer, type ScramVerifier } from './auth/scram.js';
import { md5Salt, md5Verify } from './auth/md5.js';
import { NodeConnection, nodeError } from '../backend/node-connection.js';
import type { CoordinatorContext } from '../context.js';
import { ClientIO } from './client-io.js';
import { Session } from './session.js';

/** PostgreSQL's own limit for a startup packet. */
const MAX_STARTUP_PACKET = 10000;
/** Startup parameters that are not passed on to the nodes. */
const NOT_PASSED = new Set(['user', 'database', 'replication']);

let nextPid = randomInt(1000, 1 << 22);

const verifierCache = new Map<string, { password: string; verifier: ScramVerifier }>();
function scramVerifierFor(user: string, password: string): ScramVerifier {
  const hit = verifierCache.get(user);
  if (hit && hit.password === password) return hit.verifier;
  const verifier = makeScramVerifier(password);
  verifierCache.set(user, { password, verifier });
  return verifier;
}

let tlsContext: { key: string; ctx: tls.SecureContext } | null = null;
function secureContext(cert: string, key: string): tls.SecureContext {
  const id = `${cert}\0${key}`;
  if (tlsContext?.key !== id) {
    tlsContext = { key: id, ctx: tls.createSecureContext({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }) };
  }
  return tlsContext.ctx;
}

/** Frames from a socket as promises, for the few round trips of startup. */
class StartupChannel {
  socket: net.Socket;
  readonly reader: FrameReader;
  private waiter: { resolve: (f: Frame) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  private readonly onData = (chunk: Buffer): void => {
    this.reader.push(chunk);
    this.wake();
  };
  private readonly onEnd = (): void => {
    this.failure ??= new PgqError('ERR_CLIENT_GONE', 'client closed the connection during startup', {
      sqlstate: SqlState.CONNECTION_FAILURE,
    });
    this.wake();
  };

  constructor(socket: net.Socket, maxMessageSize: number) {
    this.socket = socket;
    this.reader = new FrameReader({ maxMessageSize, startup: true });
    this.attach();
  }

  private attach(): void {
    this.socket.on('data', this.onData);
    this.socket.on('close', this.onEnd);
    this.socket.on('error', this.onEnd);
  }

  detach(): void {
    this.socket.off('data', this.onData);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onEnd);
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    let f: Frame | null;
    try {
      f = this.reader.next();
    } catch (e) {
      this.waiter = null;
      w.reject(e as Error);
      return;
    }
    if (f) {
      this.waiter = null;
      w.resolve(f);
    } else if (this.failure) {
      this.waiter = null;
      w.reject(this.failure);
    }
  }

  next(): Promise<Frame> {
    return new Promise<Frame>((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.wake();
    });
  }

  /** Replace the socket by its TLS wrapper after answering 'S'. */
  upgrade(ctx: tls.SecureContext): void {
    this.detach();
    const secure = new tls.TLSSocket(this.socket, { isServer: true, secureContext: ctx });
    this.socket = secure;
    this.attach();
  }
}

function fatal(code: string, message: string, sqlstate: string, hint?: string): PgqError {
  return new PgqError(code, message, { sqlstate, severity: 'FATAL', hint });
}

/** Serve one new client connection until its session starts (or it is refused). */
export async function handleClientStartup(raw: net.Socket, ctx: CoordinatorContext): Promise<void> {
  const cfg = ctx.config;
  const ch = new StartupChannel(raw, Math.min(cfg.coordinator.max_message_size, MAX_STARTUP_PACKET));
  const timer = setTimeout(() => {
    ch.socket.end(errorFromPgq(fatal('ERR_AUTH_TIMEOUT', 'canceling authentication due to timeout', SqlState.CONNECTION_FAILURE)));
    ch.socket.destroy();
  }, cfg.coordinator.authentication_timeout * 1000);
  const remote = raw.remoteAddress ?? '';
  try {
    await startup(ch, ctx, remote);
  } catch (e) {
    const err =
      e instanceof PgqError
        ? e
        : new PgqError('ERR_STARTUP', `internal error during startup: ${(e as Error).message}`, { severity: 'FATAL' });
    if (err.code !== 'ERR_CLIENT_GONE') {
      ctx.log.info({ remote, code: err.code, sqlstate: err.sqlstate }, `connection refused: ${err.message}`);
      ch.detach();
      if (!ch.socket.destroyed) {
        ch.socket.end(errorFromPgq({ ...err, message: err.message, severity: 'FATAL' }));
        setTimeout(() => ch.socket.destroy(), 1000).unref();
      }
    } else ch.socket.destroy();
  } finally {
    clearTimeout(timer);
  }
}

async function startup(ch: StartupChannel, ctx: CoordinatorContext, remote: string): Promise<void> {
  const cfg = ctx.config;
  let ssl = false;
  let params: Record<string, string>;
  for (;;) {
    const f = await ch.next();
    const pkt = decodeStartupPacket(f.payload);
    if (pkt.kind === 'ssl') {
      if (cfg.coordinator.tls && !ssl) {
        if (ch.reader.buffered > 0) {
          throw fatal('ERR_PROTOCOL', 'received unencrypted data after SSL request', SqlState.PROTOCOL_VIOLATION);
        }
        ch.socket.write('S');
        ch.upgrade(secureContext(cfg.coordinator.tls.cert, cfg.coordinator.tls.key));
        ssl = true;
      } else ch.socket.write('N');
      ch.reader.expectStartup();
      continue;
    }
    if (pkt.kind === 'gssenc') {
      ch.socket.write('N');
      ch.reader.expectStartup();
      continue;
    }
    if (pkt.kind === 'cancel') {
      const s = ctx.sessions.get(pkt.pid);
      if (s && s.secret === pkt.secret) {
        ctx.log.info({ session: s.id }, 'cancel request');
        await s.cancel();
      }
      ch.socket.destroy();
      throw new PgqError('ERR_CLIENT_GONE', 'cancel request served');
    }
    if (protocolMajor(pkt.protocolVersion) !== 3) {
      throw fatal(
        'ERR_PROTOCOL_VERSION',
        `unsupported frontend protocol ${protocolMajor(pkt.protocolVersion)}.${protocolMinor(pkt.protocolVersion)}: server supports 3.0 to 3.0`,
        SqlState.FEATURE_NOT_SUPPORTED,
      );
    }
    params = pkt.params;
    const unrecognized = Object.keys(params).filter((k) => k.startsWith('_pq_.'));
    if (protocolMinor(pkt.protocolVersion) > 0 || unrecognized.length > 0) {
      ch.socket.write(encodeNegotiateProtocolVersion(0, unrecognized));
      for (const k of unrecognized) delete params[k];
    }
    break;
  }
  const user = params['user'];
  if (!user) throw fatal('ERR_NO_USER', 'no PostgreSQL user name specified in startup packet', SqlState.INVALID_AUTHORIZATION_SPECIFICATION);
  const database = params['database'] || user;
  if (params['replication'] && params['replication'] !== 'false' && params['replication'] !== '0') {
    throw fatal('ERR_REPLICATION', 'replication connections are not supported by pgquorum', SqlState.FEATURE_NOT_SUPPORTED);
  }
  if (ctx.sessions.size >= cfg.coordinator.max_client_connections) {
    throw fatal('ERR_TOO_MANY_CLIENTS', 'sorry, too many clients already', SqlState.TOO_MANY_CONNECTIONS);
  }
  const who = `host "${remote}", user "${user}", database "${database}", ${ssl ? 'SSL on' : 'SSL off'}`;
  const rule = matchHba(cfg.hba, { user, database, address: remote, ssl });
  if (!rule || rule.method === 'reject') {
    throw fatal('ERR_HBA', `no pgquorum hba entry for ${who}`, SqlState.INVALID_AUTHORIZATION_SPECIFICATION);
  }
  const userCfg = cfg.users.find((u) => u.name === user) ?? null;
  const authFailed = (): PgqError =>
    fatal('ERR_AUTH_FAILED', `password authentication failed for user "${user}"`, SqlState.INVALID_PASSWORD);
  if (rule.method === 'scram-sha-256') {
    const server = new ScramServer(userCfg ? scramVerifierFor(user, userCfg.password) : null);
    ch.socket.write(encodeAuthentication({ kind: 'sasl', mechanisms: server.mechanisms }));
    const first = await expectPassword(ch);
    const init = decodeSASLInitialResponse(first.payload);
    let reply: Buffer;
    try {
      reply = server.clientFirst(init.mechanism, init.data ?? Buffer.alloc(0));
    } catch (e) {
      throw asFatal(e);
    }
    ch.socket.write(encodeAuthentication({ kind: 'sasl-continue', data: reply }));
    const fin = await expectPassword(ch);
    try {
      reply = server.clientFinal(fin.payload);
    } catch (e) {
      if (e instanceof PgqError && e.code === 'ERR_AUTH_FAILED') throw authFailed();
      throw asFatal(e);
    }
    ch.socket.write(encodeAuthentication({ kind: 'sasl-final', data: reply }));
  } else if (rule.method === 'md5') {
    const salt = md5Salt();
    ch.socket.write(encodeAuthentication({ kind: 'md5', salt }));
    const resp = decodePassword((await expectPassword(ch)).payload);
    if (!userCfg || !md5Verify(user, userCfg.password, salt, resp)) throw authFailed();
  }
  // Log in to every `up` node as the same user.
  const login = {
    user,
    password: userCfg?.password ?? null,
    database,
    params: Object.fromEntries(Object.entries(params).filter(([k]) => !NOT_PASSED.has(k))),
    connectTimeoutMs: cfg.backend.connect_timeout * 1000,
  };
  const up = ctx.cluster.upNodes();
  const settled = await Promise.allSettled(up.map((n) => NodeConnection.connect(n, login, ctx.log)));
  const conns: NodeConnection[] = [];
  let refusal: PgqError | null = null;
  settled.forEach((r, i) => {
    const node = up[i]!;
    if (r.status === 'fulfilled') conns.push(r.value);
    else {
      const err = r.reason as PgqError;
      if (err.code === 'ERR_NODE_LOST') {
        if (node.state === 'up') ctx.cluster.setState(node, 'down', err.message);
      } else refusal ??= err;
    }
  });
  if (refusal !== null || conns.length === 0) {
    for (const c of conns) c.close();
    const r = refusal as PgqError | null;
    if (r) throw new PgqError(r.code, r.message, { sqlstate: r.sqlstate, severity: 'FATAL', detail: r.detail, hint: r.hint });
    throw fatal('ERR_NO_NODE', 'no node of the cluster accepted the connection', SqlState.CONNECTION_FAILURE);
  }
  ch.detach();
  if (ch.socket.destroyed) {
    for (const c of conns) c.close();
    return;
  }
  const pid = nextPid++ & 0x7fffffff;
  const secret = randomInt(0, 0x7fffffff);
  ch.reader.setMaxMessageSize(cfg.coordinator.max_message_size);
  const client = new ClientIO(ch.socket, ch.reader);
  const main = conns[0]!;
  client.send(AUTH_OK);
  for (const [k, v] of main.params) client.send(encodeParameterStatus(k, v));
  client.send(encodeBackendKeyData(pid, secret));
  client.send(READY_IDLE);
  client.flush();
  const session = new Session(ctx, client, { user, database, pid, secret, conns, login });
  ctx.sessions.set(pid, session);
  session.log.debug({ remote, ssl, nodes: conns.map((c) => c.node.id) }, 'session started');
  session.start();
}

async function expectPassword(ch: StartupChannel): Promise<Frame> {
  const f = await ch.next();
  if (f.type !== FE.Password) {
    throw fatal('ERR_PROTOCOL', `expected a password message, got message type ${f.type}`, SqlState.PROTOCOL_VIOLATION);
  }
  return f;
}

function asFatal(e: unknown): PgqError {
  if (e instanceof PgqError) return new PgqError(e.code, e.message, { sqlstate: e.sqlstate, severity: 'FATAL' });
  return fatal('ERR_AUTH_PROTOCOL', String(e), SqlState.PROTOCOL_VIOLATION);
}

export { nodeError };

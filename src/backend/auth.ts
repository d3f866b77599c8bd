// Client side of node authentication: the coordinator logging in to a
// PostgreSQL node as the client's user with that user's configured password.
// Pure state machines (SCRAM-SHA-256 like libpq, without channel binding, and
// the md5 answer); the node connection code moves the bytes.

import { createHmac, randomBytes } from 'node:crypto';
import { PgqError, SqlState } from '../errors.js';
import { md5SaltedResponse } from '../frontend/auth/md5.js';
import {
  SCRAM_MECHANISM,
  ScramReader,
  decodeBase64,
  deriveKeys,
  escapeSaslName,
  hmac,
  isPrintable,
  randomNonce,
  safeEqual,
  saltedPassword,
  xor,
} from '../frontend/auth/scram-common.js';

/** Refuse servers asking for more PBKDF2 rounds than this (it blocks the event loop). */
export const MAX_SCRAM_ITERATIONS = 10_000_000;

export interface ScramClientOptions {
  /** Fixed client nonce (tests only); random 18 bytes, base64, otherwise. */
  nonce?: string;
  /**
   * gs2 channel-binding flag: 'n' (default, "client does not support channel
   * binding") or 'y' ("client supports it but the server did not offer it"),
   * which libpq sends over TLS when the server only offers SCRAM-SHA-256.
   */
  gs2Flag?: 'n' | 'y';
}

type ClientState = 'start' | 'first-sent' | 'final-sent' | 'done' | 'failed';

/**
 * Picks the SASL mechanism to answer an AuthenticationSASL with; throws when
 * the node offers nothing we speak (we never do channel binding).
 */
export function chooseSaslMechanism(offered: readonly string[]): string {
  if (offered.includes(SCRAM_MECHANISM)) return SCRAM_MECHANISM;
  throw new PgqError('ERR_AUTH_PROTOCOL', 'the server offered no supported SASL mechanism', {
    sqlstate: SqlState.PROTOCOL_VIOLATION,
    detail: `Offered: ${offered.join(', ') || '(none)'}; supported: ${SCRAM_MECHANISM}.`,
  });
}

/** One SCRAM-SHA-256 login. Not reusable. */
export class ScramClient {
  readonly mechanism = SCRAM_MECHANISM;

  private state: ClientState = 'start';
  private readonly clientNonce: string;
  private readonly gs2Header: string;
  private readonly clientFirstBare: string;
  private expectedServerSignature: Buffer | null = null;

  constructor(
    user: string,
    private readonly password: string,
    opts: ScramClientOptions = {},
  ) {
    this.clientNonce = opts.nonce ?? randomNonce();
    if (this.clientNonce === '' || !isPrintable(this.clientNonce)) {
      throw new RangeError('SCRAM client nonce must be non-empty printable ASCII without commas');
    }
    this.gs2Header = `${opts.gs2Flag ?? 'n'},,`;
    this.clientFirstBare = `n=${escapeSaslName(user)},r=${this.clientNonce}`;
  }

  /** True once serverFinal() has verified the server's signature. */
  get succeeded(): boolean {
    return this.state === 'done';
  }

  /** The client-first-message, for the SASLInitialResponse data. */
  clientFirst(): Buffer {
    this.expect('start', 'clientFirst');
    this.state = 'first-sent';
    return Buffer.from(this.gs2Header + this.clientFirstBare, 'utf8');
  }

  /** Takes AuthenticationSASLContinue's data; returns the client-final-message. */
  serverFirst(data: Buffer): Buffer {
    this.expect('first-sent', 'serverFirst');
    try {
      const text = data.toString('latin1');
      const r = new ScramReader(text, malformed);
      if (r.peek() === 'm') malformed('The server requires an unsupported SCRAM extension.');
      const nonce = r.read('r');
      if (!nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length || !isPrintable(nonce)) {
        throw protocolError('invalid SCRAM response (nonce mismatch)');
      }
      const salt = decodeBase64(r.read('s'));
      if (salt === null || salt.length === 0) malformed('Invalid salt in server-first-message.');
      const iterText = r.read('i');
      const iterations = /^[1-9][0-9]{0,9}$/.test(iterText) ? Number(iterText) : 0;
      if (iterations < 1) malformed('Invalid iteration count in server-first-message.');
      if (iterations > MAX_SCRAM_ITERATIONS) {
        malformed(`The server asks for ${iterations} iterations; at most ${MAX_SCRAM_ITERATIONS} are allowed.`);
      }
      while (!r.atEnd()) r.readAny(); // extensions are ignored

      const keys = deriveKeys(cachedSaltedPassword(this.password, salt, iterations));
      const withoutProof = `c=${Buffer.from(this.gs2Header, 'utf8').toString('base64')},r=${nonce}`;
      const authMessage = Buffer.concat([
        Buffer.from(this.clientFirstBare + ',', 'utf8'),
        data,
        Buffer.from(',' + withoutProof, 'utf8'),
      ]);
      const proof = xor(keys.clientKey, hmac(keys.storedKey, authMessage));
      this.expectedServerSignature = hmac(keys.serverKey, authMessage);
      this.state = 'final-sent';
      return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`, 'utf8');
    } catch (err) {
      this.state = 'failed';
      throw err;
    }
  }

  /** Takes AuthenticationSASLFinal's data and checks the server's signature. */
  serverFinal(data: Buffer): void {
    this.expect('final-sent', 'serverFinal');
    this.state = 'failed';
    const text = data.toString('latin1');
    const r = new ScramReader(text, malformed);
    if (r.peek() === 'e') {
      const why = r.read('e').replace(/[^\x20-\x7e]/g, '?');
      throw new PgqError('ERR_AUTH_FAILED', `the server rejected SCRAM authentication: ${why}`, {
        sqlstate: SqlState.INVALID_PASSWORD,
      });
    }
    const signature = decodeBase64(r.read('v'));
    if (signature === null || signature.length !== 32) malformed('Malformed server signature in server-final-message.');
    while (!r.atEnd()) r.readAny();
    if (!safeEqual(signature, this.expectedServerSignature!)) {
      throw new PgqError('ERR_AUTH_SERVER_SIGNATURE', 'incorrect server signature in SCRAM authentication', {
        sqlstate: SqlState.INVALID_AUTHORIZATION_SPECIFICATION,
        detail: 'The node could not prove that it knows the password; it may not be the server it claims to be.',
      });
    }
    this.state = 'done';
  }

  private expect(state: ClientState, step: string): void {
    if (this.state !== state) {
      const was = this.state;
      this.state = 'failed';
      throw protocolError(`unexpected SCRAM step ${step}() in state ${was}`);
    }
  }
}

/** The PasswordMessage for AuthenticationMD5Password: 'md5' + 32 hex digits. */
export function md5Response(user: string, password: string, salt: Buffer): string {
  if (salt.length !== 4) {
    throw new PgqError('ERR_AUTH_PROTOCOL', `md5 salt must be 4 bytes, got ${salt.length}`, {
      sqlstate: SqlState.PROTOCOL_VIOLATION,
    });
  }
  return md5SaltedResponse(user, password, salt);
}

// The coordinator logs in to every node, over and over, with the same
// passwords; PBKDF2 is the expensive part, so remember recent results. Keyed
// by a keyed hash of (password, salt, iterations): no plaintext is kept here.
const SALTED_CACHE_MAX = 256;
const CACHE_KEY_SECRET = randomBytes(32);
const saltedCache = new Map<string, Buffer>();

function cachedSaltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
  const key = createHmac('sha256', CACHE_KEY_SECRET)
    .update(`${iterations}:${salt.toString('base64')}:`)
    .update(password, 'utf8')
    .digest('base64');
  const hit = saltedCache.get(key);
  if (hit) {
    saltedCache.delete(key); // refresh its place in the LRU order
    saltedCache.set(key, hit);
    return hit;
  }
  const salted = saltedPassword(password, salt, iterations);
  if (saltedCache.size >= SALTED_CACHE_MAX) saltedCache.delete(saltedCache.keys().next().value!);
  saltedCache.set(key, salted);
  return salted;
}

function protocolError(message: string, detail?: string): PgqError {
  return new PgqError('ERR_AUTH_PROTOCOL', message, {
    sqlstate: SqlState.PROTOCOL_VIOLATION,
    ...(detail === undefined ? {} : { detail }),
  });
}

function malformed(detail: string): never {
  throw protocolError('malformed SCRAM message', detail);
}

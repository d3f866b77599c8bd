// Server side of SCRAM-SHA-256 (RFC 5802 / RFC 7677) as PostgreSQL does it:
// verifies a client logging in to the coordinator. A pure state machine: the
// session code feeds it the SASLInitialResponse / SASLResponse payloads and
// sends back what it returns (AuthenticationSASLContinue / SASLFinal).
//
// No channel binding: only 'SCRAM-SHA-256' is advertised; gs2 headers 'n,,'
// and 'y,,' are accepted and 'p=...' is refused. The user name inside the
// client-first-message is ignored (the startup packet's user counts), like
// PostgreSQL. Unknown users get a fake exchange that fails at the very end,
// so a client cannot tell "no such user" from "wrong password".

import { createHmac, randomBytes } from 'node:crypto';
import { PgqError, SqlState } from '../../errors.js';
import {
  SCRAM_DEFAULT_ITERATIONS,
  SCRAM_DEFAULT_SALT_LEN,
  SCRAM_KEY_LEN,
  SCRAM_MECHANISM,
  ScramReader,
  decodeBase64,
  deriveKeys,
  hmac,
  isPrintable,
  randomNonce,
  safeEqual,
  saltedPassword,
  sha256,
  showChar,
  xor,
} from './scram-common.js';

export interface ScramVerifier {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

/**
 * Builds the verifier PostgreSQL would store for `password` (SASLprep'd, or
 * raw when SASLprep refuses it). Salt defaults to 16 random bytes.
 */
export function makeScramVerifier(
  password: string,
  salt: Buffer = randomBytes(SCRAM_DEFAULT_SALT_LEN),
  iterations: number = SCRAM_DEFAULT_ITERATIONS,
): ScramVerifier {
  if (!Number.isSafeInteger(iterations) || iterations < 1) {
    throw new RangeError(`SCRAM iteration count must be a positive integer, got ${iterations}`);
  }
  if (salt.length === 0) throw new RangeError('SCRAM salt must not be empty');
  const { storedKey, serverKey } = deriveKeys(saltedPassword(password, salt, iterations));
  return { iterations, salt: Buffer.from(salt), storedKey, serverKey };
}

/**
 * Parses a verifier in PostgreSQL's pg_authid format:
 * 'SCRAM-SHA-256$<iterations>:<b64 salt>$<b64 StoredKey>:<b64 ServerKey>'.
 * Returns null if `s` is not one.
 */
export function parseScramVerifier(s: string): ScramVerifier | null {
  const m = /^SCRAM-SHA-256\$([0-9]+):([^$:]+)\$([^$:]+):([^$:]+)$/.exec(s);
  if (!m) return null;
  const iterations = Number(m[1]);
  const salt = decodeBase64(m[2]!);
  const storedKey = decodeBase64(m[3]!);
  const serverKey = decodeBase64(m[4]!);
  if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > 0x7fffffff) return null;
  if (!salt || salt.length === 0) return null;
  if (!storedKey || storedKey.length !== SCRAM_KEY_LEN) return null;
  if (!serverKey || serverKey.length !== SCRAM_KEY_LEN) return null;
  return { iterations, salt, storedKey, serverKey };
}

/** The inverse of parseScramVerifier (PostgreSQL's pg_authid format). */
export function formatScramVerifier(v: ScramVerifier): string {
  const b64 = (b: Buffer): string => b.toString('base64');
  return `SCRAM-SHA-256$${v.iterations}:${b64(v.salt)}$${b64(v.storedKey)}:${b64(v.serverKey)}`;
}

// Per-process secret for the fake salts of unknown users: stable within a
// process (the same unknown user always sees the same salt, as with a real
// user) and unpredictable across processes.
const MOCK_SECRET = randomBytes(32);

function mockVerifier(user: string | undefined): ScramVerifier {
  const salt =
    user === undefined
      ? randomBytes(SCRAM_DEFAULT_SALT_LEN)
      : createHmac('sha256', MOCK_SECRET).update(`mock-salt:${user}`).digest().subarray(0, SCRAM_DEFAULT_SALT_LEN);
  return {
    iterations: SCRAM_DEFAULT_ITERATIONS,
    salt,
    storedKey: randomBytes(SCRAM_KEY_LEN),
    serverKey: randomBytes(SCRAM_KEY_LEN),
  };
}

export interface ScramServerOptions {
  /**
   * The startup packet's user. Named in the failure message, and used to
   * derive a stable fake salt when the verifier is null.
   */
  user?: string;
  /** Fixed server nonce part (tests only); random 18 bytes, base64, otherwise. */
  serverNonce?: string;
}

type ServerState = 'start' | 'continue' | 'done' | 'failed';

/** One SCRAM-SHA-256 exchange with one client. Not reusable. */
export class ScramServer {
  readonly mechanisms: string[] = [SCRAM_MECHANISM];

  private state: ServerState = 'start';
  private readonly verifier: ScramVerifier;
  /** Unknown user: the exchange runs normally but can never succeed. */
  private readonly doomed: boolean;
  private readonly user: string | undefined;
  private readonly serverNonce: string;
  private gs2Header = '';
  private clientFirstBare = '';
  private serverFirstMessage = '';
  private nonce = '';

  constructor(verifier: ScramVerifier | null, opts: ScramServerOptions = {}) {
    this.doomed = verifier === null;
    this.verifier = verifier ?? mockVerifier(opts.user);
    this.user = opts.user;
    this.serverNonce = opts.serverNonce ?? randomNonce();
    if (!isPrintable(this.serverNonce) || this.serverNonce === '') {
      throw new RangeError('SCRAM server nonce must be non-empty printable ASCII without commas');
    }
  }

  /** True once clientFinal() has accepted the client's proof. */
  get succeeded(): boolean {
    return this.state === 'done';
  }

  /**
   * Handles the SASLInitialResponse (mechanism + client-first-message) and
   * returns the server-first-message for AuthenticationSASLContinue.
   */
  clientFirst(mechanism: string, data: Buffer): Buffer {
    if (this.state !== 'start') throw this.fatal(protocolError('unexpected SCRAM client-first-message'));
    try {
      if (mechanism !== SCRAM_MECHANISM) {
        throw protocolError('client selected an invalid SASL authentication mechanism', `Only ${SCRAM_MECHANISM} is supported.`);
      }
      // latin1 keeps every byte as one char, so the AuthMessage we hash is
      // byte-identical to what the client hashed.
      const text = data.toString('latin1');
      const r = reader(text);
      if (text.length === 0) malformed('The message is empty.');
      if (text.includes('\0')) malformed('The message contains a NUL byte.');

      // gs2-header: cbind-flag "," [authzid] ","
      const flag = text[0];
      if (flag === 'p') {
        throw protocolError(
          'SCRAM channel binding is not supported',
          'The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes channel binding data.',
          'Connect with channel_binding=disable or prefer; the coordinator offers SCRAM-SHA-256 only.',
        );
      }
      if (flag !== 'n' && flag !== 'y') malformed(`Unexpected channel-binding flag ${showChar(flag)}.`);
      if (text[1] !== ',') malformed(`Comma expected, but found ${showChar(text[1])}.`);
      r.pos = 2;
      if (r.peek() === 'a') {
        throw protocolError(
          'client uses authorization identity, but it is not supported',
          undefined,
          undefined,
          SqlState.FEATURE_NOT_SUPPORTED,
        );
      }
      if (r.peek() !== ',') malformed(`Unexpected attribute ${showChar(r.peek())} in client-first-message.`);
      r.pos = 3;
      this.gs2Header = text.slice(0, 3);

      // client-first-message-bare: [reserved-mext ","] username "," nonce ["," extensions]
      this.clientFirstBare = text.slice(3);
      if (r.peek() === 'm') {
        throw protocolError('client requires an unsupported SCRAM extension', undefined, undefined, SqlState.FEATURE_NOT_SUPPORTED);
      }
      r.read('n'); // ignored: the startup packet's user is the one that counts
      const clientNonce = r.read('r');
      if (clientNonce === '') malformed('The client nonce is empty.');
      if (!isPrintable(clientNonce)) malformed('non-printable characters in SCRAM nonce');
      while (!r.atEnd()) r.readAny(); // extensions are ignored

      this.nonce = clientNonce + this.serverNonce;
      const v = this.verifier;
      this.serverFirstMessage = `r=${this.nonce},s=${v.salt.toString('base64')},i=${v.iterations}`;
      this.state = 'continue';
      return Buffer.from(this.serverFirstMessage, 'latin1');
    } catch (err) {
      throw this.fatal(err);
    }
  }

  /**
   * Handles the SASLResponse (client-final-message). Returns the
   * server-final-message for AuthenticationSASLFinal when the proof is right;
   * throws ERR_AUTH_FAILED (28P01) when it is not or the user is unknown.
   */
  clientFinal(data: Buffer): Buffer {
    if (this.state !== 'continue') throw this.fatal(protocolError('unexpected SCRAM client-final-message'));
    try {
      const text = data.toString('latin1');
      if (text.includes('\0')) malformed('The message contains a NUL byte.');
      const r = reader(text);

      const cbind = decodeBase64(r.read('c'));
      if (cbind === null) malformed('Invalid base64 in the channel-binding attribute.');
      // Without channel binding the attribute must repeat our gs2 header.
      if (cbind.toString('latin1') !== this.gs2Header) {
        throw protocolError('unexpected SCRAM channel-binding attribute in client-final-message');
      }
      if (r.read('r') !== this.nonce) throw protocolError('invalid SCRAM response', 'Nonce does not match.');
      while (!r.atEnd() && r.peek() !== 'p') r.readAny(); // extensions are ignored

      const proofStart = r.pos;
      const proof = decodeBase64(r.read('p'));
      if (proof === null || proof.length !== 32) malformed('Malformed proof in client-final-message.');
      if (!r.atEnd() || text.endsWith(',')) malformed('Garbage found at the end of client-final-message.');

      const withoutProof = text.slice(0, proofStart - 1); // drop the ',' before "p="
      const authMessage = Buffer.from(
        `${this.clientFirstBare},${this.serverFirstMessage},${withoutProof}`,
        'latin1',
      );
      const v = this.verifier;
      const clientKey = xor(proof, hmac(v.storedKey, authMessage));
      const proofOk = safeEqual(sha256(clientKey), v.storedKey);
      if (!proofOk || this.doomed) {
        const who = this.user === undefined ? '' : ` for user "${this.user}"`;
        throw new PgqError('ERR_AUTH_FAILED', `password authentication failed${who}`, {
          sqlstate: SqlState.INVALID_PASSWORD,
          severity: 'FATAL',
        });
      }
      this.state = 'done';
      return Buffer.from(`v=${hmac(v.serverKey, authMessage).toString('base64')}`, 'latin1');
    } catch (err) {
      throw this.fatal(err);
    }
  }

  private fatal(err: unknown): unknown {
    this.state = 'failed';
    return err;
  }
}

function protocolError(message: string, detail?: string, hint?: string, sqlstate: string = SqlState.PROTOCOL_VIOLATION): PgqError {
  return new PgqError('ERR_AUTH_PROTOCOL', message, {
    sqlstate,
    severity: 'FATAL',
    ...(detail === undefined ? {} : { detail }),
    ...(hint === undefined ? {} : { hint }),
  });
}

function malformed(detail: string): never {
  throw protocolError('malformed SCRAM message', detail);
}

function reader(text: string): ScramReader {
  return new ScramReader(text, malformed);
}

// SCRAM-SHA-256 building blocks (RFC 5802 / RFC 7677) shared by the server
// side (frontend/auth/scram.ts, clients logging in to the coordinator) and the
// client side (backend/auth.ts, the coordinator logging in to nodes): key
// derivation, strict base64, and a reader for "a=value,b=value" messages.

import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { scramPasswordBytes } from './saslprep.js';

export const SCRAM_MECHANISM = 'SCRAM-SHA-256';
/** SHA-256 output length: every key and proof is this long. */
export const SCRAM_KEY_LEN = 32;
/** PostgreSQL 15's fixed iteration count (scram_iterations arrived in 16). */
export const SCRAM_DEFAULT_ITERATIONS = 4096;
/** PostgreSQL's salt length in bytes. */
export const SCRAM_DEFAULT_SALT_LEN = 16;
/** PostgreSQL and libpq use 18 random bytes, base64-encoded, as a nonce. */
export const SCRAM_RAW_NONCE_LEN = 18;

export function hmac(key: Buffer, data: Buffer | string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

export function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

export function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** Constant-time equality of two buffers (false on length mismatch). */
export function safeEqual(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) {
    timingSafeEqual(a, a); // keep the work roughly the same
    return false;
  }
  return timingSafeEqual(a, b);
}

/** SaltedPassword := Hi(Normalize(password), salt, i) */
export function saltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(scramPasswordBytes(password), salt, iterations, SCRAM_KEY_LEN, 'sha256');
}

/** The keys derived from a SaltedPassword. */
export function deriveKeys(salted: Buffer): { clientKey: Buffer; storedKey: Buffer; serverKey: Buffer } {
  const clientKey = hmac(salted, 'Client Key');
  return { clientKey, storedKey: sha256(clientKey), serverKey: hmac(salted, 'Server Key') };
}

/** A fresh random nonce in PostgreSQL's format (printable, no commas). */
export function randomNonce(): string {
  return randomBytes(SCRAM_RAW_NONCE_LEN).toString('base64');
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes canonical base64; null on anything Buffer.from would silently skip. */
export function decodeBase64(s: string): Buffer | null {
  if (!BASE64_RE.test(s)) return null;
  return Buffer.from(s, 'base64');
}

/** RFC 5802 "printable": %x21-2B / %x2D-7E (visible ASCII except ','). */
export function isPrintable(s: string): boolean {
  return /^[\x21-\x2b\x2d-\x7e]*$/.test(s);
}

/** Escapes a SCRAM saslname ('=' -> '=3D', ',' -> '=2C'). */
export function escapeSaslName(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

/** Shows one character of untrusted input safely in an error detail. */
export function showChar(ch: string | undefined): string {
  if (ch === undefined) return 'end of message';
  return /^[\x21-\x7e]$/.test(ch) ? `"${ch}"` : `0x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
}

/**
 * Reads the attributes of a SCRAM message in order, the way PostgreSQL's
 * read_attribute_value()/read_any_attr() do. `fail` must throw.
 */
export class ScramReader {
  pos = 0;

  constructor(
    readonly text: string,
    private readonly fail: (detail: string) => never,
  ) {}

  atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  peek(): string | undefined {
    return this.text[this.pos];
  }

  /** Reads "attr=value" and the ',' after it (if any); returns the value. */
  read(attr: string): string {
    const found = this.text[this.pos];
    if (found !== attr) this.fail(`Expected attribute "${attr}" but found ${showChar(found)}.`);
    return this.value(attr);
  }

  /** Reads any "x=value" attribute (an extension); returns its name and value. */
  readAny(): { attr: string; value: string } {
    const attr = this.text[this.pos];
    if (attr === undefined || !/^[A-Za-z]$/.test(attr)) {
      this.fail(`Attribute expected, but found invalid character ${showChar(attr)}.`);
    }
    return { attr, value: this.value(attr) };
  }

  private value(attr: string): string {
    if (this.text[this.pos + 1] !== '=') this.fail(`Expected character "=" for attribute "${attr}".`);
    const start = this.pos + 2;
    const comma = this.text.indexOf(',', start);
    const end = comma < 0 ? this.text.length : comma;
    this.pos = comma < 0 ? end : end + 1;
    return this.text.slice(start, end);
  }
}

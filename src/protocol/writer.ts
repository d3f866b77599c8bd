// Writer: builds one or more messages into one growing buffer, reserving each
// length field and back-patching it when the message ends.

import { PgqError, SqlState } from '../errors.js';

/** The error an encoder throws for a value the wire cannot carry. */
export function encodeError(message: string, sqlstate: string = SqlState.INVALID_PARAMETER_VALUE): PgqError {
  return new PgqError('ERR_PROTOCOL_ENCODE', message, { sqlstate });
}

/** Strings below this many UTF-16 units are sized by the 3-bytes-per-unit bound, not measured. */
const MEASURE_THRESHOLD = 2048;

export class Writer {
  private buf: Buffer;
  private pos = 0;
  /** Offset of the open message's length field, or -1 when no message is open. */
  private lengthAt = -1;
  private readonly initialSize: number;

  constructor(size = 1024) {
    this.initialSize = Math.max(16, size);
    this.buf = Buffer.allocUnsafe(this.initialSize);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.pos;
  }

  private ensure(n: number): void {
    const needed = this.pos + n;
    if (needed <= this.buf.length) return;
    let size = this.buf.length * 2;
    if (size < needed) size = needed;
    const grown = Buffer.allocUnsafe(size);
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  /** Open a message: type byte (none when type is 0, a startup-phase packet) and a length placeholder. */
  startMessage(type: number): this {
    if (this.lengthAt !== -1) {
      throw new PgqError('ERR_INTERNAL', 'Writer.startMessage: previous message not ended');
    }
    this.ensure(5);
    if (type !== 0) this.buf[this.pos++] = type;
    this.lengthAt = this.pos;
    this.pos += 4;
    return this;
  }

  /** Close the open message, back-patching its length (which counts itself). */
  endMessage(): this {
    const at = this.lengthAt;
    if (at === -1) throw new PgqError('ERR_INTERNAL', 'Writer.endMessage: no message open');
    this.buf.writeUInt32BE(this.pos - at, at);
    this.lengthAt = -1;
    return this;
  }

  uint8(n: number): this {
    this.ensure(1);
    this.buf[this.pos++] = n & 0xff;
    return this;
  }

  /** Low 16 bits of n: accepts signed (-1) and unsigned (65535) values alike. */
  int16(n: number): this {
    this.ensure(2);
    const b = this.buf;
    b[this.pos++] = (n >>> 8) & 0xff;
    b[this.pos++] = n & 0xff;
    return this;
  }

  uint16(n: number): this {
    return this.int16(n);
  }

  /** Low 32 bits of n: accepts signed and unsigned (OID) values alike. */
  int32(n: number): this {
    this.ensure(4);
    const b = this.buf;
    const p = this.pos;
    b[p] = (n >>> 24) & 0xff;
    b[p + 1] = (n >>> 16) & 0xff;
    b[p + 2] = (n >>> 8) & 0xff;
    b[p + 3] = n & 0xff;
    this.pos = p + 4;
    return this;
  }

  uint32(n: number): this {
    return this.int32(n);
  }

  /** UTF-8 string without a terminator. */
  string(s: string): this {
    const max = s.length < MEASURE_THRESHOLD ? s.length * 3 : Buffer.byteLength(s, 'utf8');
    this.ensure(max);
    this.pos += this.buf.write(s, this.pos, 'utf8');
    return this;
  }

  /** NUL-terminated UTF-8 string; a string with an embedded NUL cannot be sent. */
  cstring(s: string): this {
    if (s.indexOf('\0') !== -1) {
      throw encodeError('string to send contains a NUL byte');
    }
    this.string(s);
    this.ensure(1);
    this.buf[this.pos++] = 0;
    return this;
  }

  bytes(b: Buffer): this {
    this.ensure(b.length);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
    return this;
  }

  /** Drop everything written, including an unfinished message. */
  reset(): this {
    this.pos = 0;
    this.lengthAt = -1;
    return this;
  }

  /** The bytes written so far, then reset. The result never shares memory with later writes. */
  finish(): Buffer {
    if (this.lengthAt !== -1) {
      throw new PgqError('ERR_INTERNAL', 'Writer.finish: message not ended');
    }
    const n = this.pos;
    let out: Buffer;
    if (n * 2 >= this.buf.length) {
      // Mostly full: hand the buffer over and start a fresh one (no copy).
      out = this.buf.subarray(0, n);
      this.buf = Buffer.allocUnsafe(this.initialSize);
    } else {
      // Mostly empty: copy out (small results come from Node's pool) and keep the buffer.
      out = Buffer.allocUnsafe(n);
      this.buf.copy(out, 0, 0, n);
    }
    this.pos = 0;
    return out;
  }
}

const shared = new Writer(4096);

/** The module-wide writer the encode* functions use, reset and ready. Synchronous use only. */
export function sharedWriter(): Writer {
  return shared.reset();
}

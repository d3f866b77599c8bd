// Cursor: a bounds-checked, reusable read position over one message payload.
// Every read that would run past the end throws ERR_PROTOCOL_MALFORMED (08P01).

import { PgqError, SqlState } from '../errors.js';

/** The error every decoder throws for a payload that does not parse. */
export function malformed(message: string): PgqError {
  return new PgqError('ERR_PROTOCOL_MALFORMED', message, {
    sqlstate: SqlState.PROTOCOL_VIOLATION,
    severity: 'FATAL',
  });
}

export class Cursor {
  buf: Buffer;
  pos: number;

  constructor(buf: Buffer, offset = 0) {
    this.buf = buf;
    this.pos = offset;
  }

  /** Point the cursor at another buffer (one cursor per connection can be reused). */
  reset(buf: Buffer, offset = 0): this {
    this.buf = buf;
    this.pos = offset;
    return this;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number): number {
    const p = this.pos;
    if (p + n > this.buf.length) {
      throw malformed(
        `message truncated: needed ${n} byte(s) at offset ${p}, only ${this.buf.length - p} left`,
      );
    }
    this.pos = p + n;
    return p;
  }

  int8(): number {
    const p = this.need(1);
    return (this.buf[p]! << 24) >> 24;
  }

  uint8(): number {
    const p = this.need(1);
    return this.buf[p]!;
  }

  int16(): number {
    const p = this.need(2);
    const b = this.buf;
    return (((b[p]! << 8) | b[p + 1]!) << 16) >> 16;
  }

  /** Unsigned 16-bit: the wire's element counts (PostgreSQL reads them as uint16). */
  uint16(): number {
    const p = this.need(2);
    const b = this.buf;
    return (b[p]! << 8) | b[p + 1]!;
  }

  int32(): number {
    const p = this.need(4);
    const b = this.buf;
    return (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
  }

  /** Unsigned 32-bit: OIDs. */
  uint32(): number {
    return this.int32() >>> 0;
  }

  /** A NUL-terminated UTF-8 string; the NUL is consumed, not returned. */
  cstring(): string {
    const start = this.pos;
    const end = this.buf.indexOf(0, start);
    if (end === -1) {
      throw malformed(`unterminated string at offset ${start}`);
    }
    this.pos = end + 1;
    return this.buf.toString('utf8', start, end);
  }

  /** The next n bytes as a view (not a copy). */
  bytes(n: number): Buffer {
    if (n < 0) throw malformed(`negative byte count ${n} at offset ${this.pos}`);
    const p = this.need(n);
    return this.buf.subarray(p, p + n);
  }

  /** Everything left, as a view; the cursor ends at the end. */
  rest(): Buffer {
    const p = this.pos;
    this.pos = this.buf.length;
    return this.buf.subarray(p);
  }

  /** Throws unless the whole payload was consumed (as libpq and the server do). */
  end(what: string): void {
    if (this.pos !== this.buf.length) {
      throw malformed(
        `${what}: ${this.buf.length - this.pos} unexpected byte(s) after the message contents`,
      );
    }
  }
}

// FrameReader: streaming framer. Splits incoming bytes into whole messages and
// keeps them raw; it decodes nothing beyond the type byte and the length.
//
// Chunks are kept in a list, never concatenated on push. A frame that lies in
// one chunk is returned as a view; a frame that spans chunks is joined once,
// when its last byte has arrived. The length is checked as soon as the header
// is known, before any of the body is buffered.

import { PgqError, SqlState } from '../errors.js';

export interface Frame {
  /** Message type byte; 0 for an untyped startup-phase packet. */
  type: number;
  /** The whole message as received (type byte + length + payload; for startup packets length + payload). */
  raw: Buffer;
  /** View of the payload only. */
  payload: Buffer;
}

const EMPTY = Buffer.alloc(0);
/** Compact the chunk list once this many consumed slots lead it. */
const COMPACT_AT = 1024;

export class FrameReader {
  private maxMessageSize: number;
  private startup: boolean;
  private chunks: Buffer[] = [];
  /** Index of the first chunk still holding unread bytes. */
  private head = 0;
  /** Read offset inside chunks[head]. */
  private offset = 0;
  private total = 0;
  /** Header of the frame being waited for: its type and whole size, or -1 when not yet parsed. */
  private pendingType = 0;
  private pendingSize = -1;

  /** Change the limit (the startup packet has a smaller one than later messages). */
  setMaxMessageSize(n: number): void {
    this.maxMessageSize = n;
  }

  constructor(opts: { maxMessageSize: number; startup?: boolean }) {
    this.maxMessageSize = opts.maxMessageSize;
    this.startup = opts.startup === true;
  }

  /** The next frame is an untyped startup packet again (after SSLRequest/GSSENCRequest was answered). */
  expectStartup(): void {
    this.startup = true;
    this.pendingSize = -1;
  }

  /** True while the next frame is expected to be an untyped startup packet. */
  get expectingStartup(): boolean {
    return this.startup;
  }

  /** Bytes held. */
  get buffered(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** A complete frame, or null if more bytes are needed. */
  next(): Frame | null {
    let size = this.pendingSize;
    if (size === -1) {
      size = this.readHeader();
      if (size === -1) return null;
    }
    if (this.total < size) return null;
    const raw = this.take(size);
    const type = this.pendingType;
    this.pendingSize = -1;
    let headerLength = 5;
    if (this.startup) {
      headerLength = 4;
      this.startup = false;
    }
    return { type, raw, payload: raw.subarray(headerLength) };
  }

  /**
   * One raw byte, not framed: the server's 'S'/'N' answer to SSLRequest or
   * GSSENCRequest. Null when nothing is buffered.
   */
  takeByte(): number | null {
    if (this.total === 0) return null;
    this.pendingSize = -1;
    return this.take(1)[0]!;
  }

  /**
   * Everything buffered, unframed, and empty the reader. Used before a TLS
   * upgrade: bytes that arrived in clear text after an SSLRequest must not be
   * read as if they came through TLS.
   */
  drain(): Buffer {
    const out = this.total === 0 ? EMPTY : this.take(this.total);
    this.pendingSize = -1;
    return out;
  }

  /** Parse and check the header at the read position; sets pendingType/pendingSize. -1 if incomplete. */
  private readHeader(): number {
    const startup = this.startup;
    const headerLength = startup ? 4 : 5;
    if (this.total < headerLength) return -1;
    let type = 0;
    let length: number;
    const c = this.chunks[this.head]!;
    const o = this.offset;
    if (c.length - o >= headerLength) {
      if (!startup) type = c[o]!;
      length = c.readInt32BE(startup ? o : o + 1);
    } else {
      const h = this.peek(headerLength);
      if (!startup) type = h[0]!;
      length = h.readInt32BE(startup ? 0 : 1);
    }
    const minimum = startup ? 8 : 4;
    if (length < minimum) {
      throw new PgqError(
        'ERR_PROTOCOL_BAD_LENGTH',
        `invalid ${startup ? 'startup packet' : 'message'} length ${length} (minimum ${minimum})`,
        { sqlstate: SqlState.PROTOCOL_VIOLATION, severity: 'FATAL' },
      );
    }
    if (length > this.maxMessageSize) {
      throw new PgqError(
        'ERR_PROTOCOL_TOO_LARGE',
        `message of ${length} bytes exceeds the limit of ${this.maxMessageSize} bytes`,
        { sqlstate: SqlState.PROGRAM_LIMIT_EXCEEDED, severity: 'FATAL' },
      );
    }
    this.pendingType = type;
    this.pendingSize = startup ? length : length + 1;
    return this.pendingSize;
  }

  /** Copy of the first n buffered bytes (n small: a header split across chunks). */
  private peek(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    let i = this.head;
    let o = this.offset;
    while (filled < n) {
      const c = this.chunks[i]!;
      filled += c.copy(out, filled, o, Math.min(c.length, o + n - filled));
      i++;
      o = 0;
    }
    return out;
  }

  /** Consume n bytes (n <= total): a view when they lie in one chunk, else one joined copy. */
  private take(n: number): Buffer {
    const c = this.chunks[this.head]!;
    const o = this.offset;
    let out: Buffer;
    if (c.length - o >= n) {
      out = c.subarray(o, o + n);
      this.offset = o + n;
      if (this.offset === c.length) this.advance();
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const cur = this.chunks[this.head]!;
        const start = this.offset;
        const end = Math.min(cur.length, start + n - filled);
        filled += cur.copy(out, filled, start, end);
        if (end === cur.length) this.advance();
        else this.offset = end;
      }
    }
    this.total -= n;
    return out;
  }

  /** Drop the head chunk (fully read). */
  private advance(): void {
    this.chunks[this.head] = EMPTY;
    this.head++;
    this.offset = 0;
    if (this.head === this.chunks.length) {
      this.chunks.length = 0;
      this.head = 0;
    } else if (this.head >= COMPACT_AT && this.head * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }
}

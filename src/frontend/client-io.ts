// The client's socket as the session sees it: framed input, and output that
// is gathered and written once per answer (one syscall instead of one per
// frame), with backpressure when the client reads slowly.
import type net from 'node:net';
import { FrameReader, type Frame } from '../protocol/reader.js';

const FLUSH_AT = 64 * 1024;

/** What every plain client socket reads into (copied out at once: frames outlive the read). */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** Node's own property keys of a net.Socket that route reads into a user buffer (net.Socket's `onread` option). */
interface UserBufferKeys {
  buffer: symbol;
  callback: symbol;
}
let userBufferKeys: UserBufferKeys | null | undefined;

function findUserBufferKeys(socket: net.Socket): UserBufferKeys | null {
  if (userBufferKeys !== undefined) return userBufferKeys;
  const syms = Object.getOwnPropertySymbols(socket);
  const buffer = syms.find((k) => k.description === 'kBuffer');
  const callback = syms.find((k) => k.description === 'kBufferCb');
  userBufferKeys = buffer && callback ? { buffer, callback } : null;
  return userBufferKeys;
}

/**
 * Make an accepted plain TCP socket read into one shared buffer, as
 * `net.connect({ onread })` does for the node connections: no 64 KiB
 * allocation per read and no trip through the Readable stream, which on a
 * keyed read is a good part of what the coordinator does besides its
 * system calls. net.Server cannot pass `onread` to the sockets it accepts,
 * so the socket's own keys for it are set here. False (nothing changed:
 * use 'data' events) for a TLS socket, or where this Node lacks them; the
 * test suite checks that it works on the Node it runs on.
 */
export function readIntoShared(socket: net.Socket, onChunk: (chunk: Buffer) => void): boolean {
  const handle = (socket as unknown as { _handle?: { useUserBuffer?: (b: Uint8Array) => void } | null })._handle;
  if (socket.constructor.name !== 'Socket' || !handle || typeof handle.useUserBuffer !== 'function' || socket.readableLength > 0) return false;
  const keys = findUserBufferKeys(socket);
  if (!keys) return false;
  const s = socket as unknown as Record<symbol, unknown>;
  if (s[keys.buffer] !== null || s[keys.callback] !== null) return false;
  s[keys.buffer] = READ_BUFFER;
  s[keys.callback] = (n: number, buf: Uint8Array): boolean => {
    onChunk(Buffer.from(buf.subarray(0, n)));
    return true;
  };
  handle.useUserBuffer(READ_BUFFER);
  return true;
}

export class ClientIO {
  readonly socket: net.Socket;
  readonly reader: FrameReader;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  closed = false;

  constructor(socket: net.Socket, reader: FrameReader) {
    this.socket = socket;
    this.reader = reader;
    socket.once('close', () => {
      this.closed = true;
    });
  }

  /** Queue bytes for the client; written at flush() or when enough piled up. */
  send(buf: Buffer): void {
    if (this.closed) return;
    this.pending.push(buf);
    this.pendingBytes += buf.length;
    if (this.pendingBytes >= FLUSH_AT) this.flush();
  }

  flush(): void {
    if (this.pending.length === 0 || this.closed) {
      this.pending = [];
      this.pendingBytes = 0;
      return;
    }
    const out = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.socket.write(out);
  }

  /** True when the kernel buffer is full and the producer should pause. */
  get congested(): boolean {
    return this.socket.writableNeedDrain;
  }

  /** Send a last message and close. */
  end(buf?: Buffer): void {
    if (this.closed) return;
    if (buf) this.send(buf);
    this.flush();
    this.closed = true;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }
}

export type { Frame };

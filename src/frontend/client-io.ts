// The client's socket as the session sees it: framed input, and output that
// is gathered and written once per answer (one syscall instead of one per
// frame), with backpressure when the client reads slowly.
import type net from 'node:net';
import { FrameReader, type Frame } from '../protocol/reader.js';

const FLUSH_AT = 64 * 1024;

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

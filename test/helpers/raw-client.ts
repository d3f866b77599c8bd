// A tiny raw-socket PostgreSQL client for tests that send hand-made bytes:
// frames what the server answers, logs in with SCRAM-SHA-256 / md5 / trust,
// and tells when the server closed the connection.
import * as crypto from 'node:crypto';
import * as net from 'node:net';

export interface Msg {
  /** Type byte as a character ('R', 'E', 'Z', ...). */
  type: string;
  payload: Buffer;
}

export const PROTOCOL_3_0 = 196608;

/** A typed message: type byte, Int32 length, body. */
export function msg(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

export function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

export function int16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
}

export function cstr(s: string): Buffer {
  return Buffer.from(`${s}\0`, 'utf8');
}

/** An untyped startup-phase packet: Int32 length, then `body`. */
export function untyped(...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([int32(body.length + 4), body]);
}

export function startupPacket(params: Record<string, string>, version = PROTOCOL_3_0): Buffer {
  const kv = Object.entries(params).map(([k, v]) => Buffer.concat([cstr(k), cstr(v)]));
  return untyped(int32(version), ...kv, Buffer.from([0]));
}

export const query = (sql: string): Buffer => msg('Q', cstr(sql));

/** Fields of an ErrorResponse/NoticeResponse payload by their code letter ('C' = SQLSTATE). */
export function errorFields(payload: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < payload.length && payload[i] !== 0) {
    const code = String.fromCharCode(payload[i]!);
    const end = payload.indexOf(0, i + 1);
    out[code] = payload.toString('utf8', i + 1, end);
    i = end + 1;
  }
  return out;
}

export class RawClient {
  readonly socket: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  private wake: (() => void) | null = null;
  readonly closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      this.poke();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.ended = true;
        this.poke();
        resolve();
      }),
    );
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host, noDelay: true });
      s.once('error', reject);
      s.once('connect', () => {
        s.off('error', reject);
        resolve(new RawClient(s));
      });
    });
  }

  get isClosed(): boolean {
    return this.ended;
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private async waitFor<T>(take: () => T | null, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = take();
      if (v !== null) return v;
      if (this.ended) throw new Error(`connection closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  write(b: Buffer): Promise<void> {
    return new Promise((resolve) => this.socket.write(b, () => resolve()));
  }

  /** One raw, unframed byte (the answer to SSLRequest / GSSENCRequest). */
  readByte(timeoutMs = 5000): Promise<string> {
    return this.waitFor(
      () => {
        if (this.buf.length < 1) return null;
        const c = String.fromCharCode(this.buf[0]!);
        this.buf = this.buf.subarray(1);
        return c;
      },
      timeoutMs,
      'one byte',
    );
  }

  /** The next typed message from the server. */
  next(timeoutMs = 10_000): Promise<Msg> {
    return this.waitFor(
      () => {
        if (this.buf.length < 5) return null;
        const len = this.buf.readInt32BE(1);
        if (this.buf.length < len + 1) return null;
        const m = { type: String.fromCharCode(this.buf[0]!), payload: Buffer.from(this.buf.subarray(5, len + 1)) };
        this.buf = this.buf.subarray(len + 1);
        return m;
      },
      timeoutMs,
      'a message',
    );
  }

  /** Messages up to and including the first one of type `type`. */
  async until(type: string, timeoutMs = 10_000): Promise<Msg[]> {
    const out: Msg[] = [];
    for (;;) {
      let m: Msg;
      try {
        m = await this.next(timeoutMs);
      } catch (e) {
        const err = out.find((x) => x.type === 'E');
        if (!err) throw e;
        const f = errorFields(err.payload);
        throw Object.assign(new Error(`${(e as Error).message}, after ErrorResponse ${f['V']} ${f['C']} ${f['M']}`), { code: f['C'] });
      }
      out.push(m);
      if (m.type === type) return out;
    }
  }

  /** The SQLSTATE of the next ErrorResponse (other messages before it are skipped). */
  async errorCode(timeoutMs = 10_000): Promise<string> {
    const ms = await this.until('E', timeoutMs);
    return errorFields(ms[ms.length - 1]!.payload)['C'] ?? '';
  }

  /** True when the server closes the connection within `timeoutMs`. */
  async closesWithin(timeoutMs: number): Promise<boolean> {
    let t: NodeJS.Timeout | undefined;
    const r = await Promise.race([
      this.closed.then(() => true),
      new Promise<boolean>((resolve) => {
        t = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(t);
    return r;
  }

  destroy(): void {
    this.socket.destroy();
  }

  /**
   * Send a StartupMessage and authenticate. Resolves with the BackendKeyData
   * after ReadyForQuery; rejects with an Error whose `code` is the SQLSTATE
   * when the server refuses.
   */
  async login(user: string, password: string, params: Record<string, string> = {}): Promise<{ pid: number; secret: number }> {
    await this.write(startupPacket({ user, database: 'postgres', ...params }));
    let key = { pid: 0, secret: 0 };
    let nonce = '';
    let firstBare = '';
    for (;;) {
      const m = await this.next();
      if (m.type === 'E') {
        const f = errorFields(m.payload);
        throw Object.assign(new Error(`login refused: ${f['C']} ${f['M']}`), { code: f['C'] });
      }
      if (m.type === 'K') key = { pid: m.payload.readInt32BE(0), secret: m.payload.readInt32BE(4) };
      if (m.type === 'Z') return key;
      if (m.type !== 'R') continue;
      const kind = m.payload.readInt32BE(0);
      if (kind === 5) {
        const salt = m.payload.subarray(4, 8);
        const inner = md5hex(Buffer.from(password + user));
        const outer = 'md5' + md5hex(Buffer.concat([Buffer.from(inner), salt]));
        await this.write(msg('p', cstr(outer)));
      } else if (kind === 10) {
        nonce = crypto.randomBytes(18).toString('base64');
        firstBare = `n=,r=${nonce}`;
        const data = Buffer.from(`n,,${firstBare}`);
        await this.write(msg('p', cstr('SCRAM-SHA-256'), int32(data.length), data));
      } else if (kind === 11) {
        const serverFirst = m.payload.subarray(4).toString();
        const attrs = Object.fromEntries(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)]));
        const salted = crypto.pbkdf2Sync(password, Buffer.from(attrs['s']!, 'base64'), Number(attrs['i']), 32, 'sha256');
        const clientKey = hmac(salted, 'Client Key');
        const storedKey = crypto.createHash('sha256').update(clientKey).digest();
        const finalNoProof = `c=biws,r=${attrs['r']}`;
        const sig = hmac(storedKey, `${firstBare},${serverFirst},${finalNoProof}`);
        const proof = Buffer.from(clientKey.map((b, i) => b ^ sig[i]!));
        await this.write(msg('p', Buffer.from(`${finalNoProof},p=${proof.toString('base64')}`)));
      }
    }
  }
}

function md5hex(b: Buffer): string {
  return crypto.createHash('md5').update(b).digest('hex');
}

function hmac(key: Buffer, text: string): Buffer {
  return crypto.createHmac('sha256', key).update(text).digest();
}

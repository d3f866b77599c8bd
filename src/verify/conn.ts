// A minimal SQL client for `pgquorum verify` over the project's own
// NodeConnection (src/backend/node-connection.ts): log in, run a simple
// query, get the rows as text. Used for the coordinator and for the nodes.
import pino from 'pino';
import { ClusterNode } from '../cluster/cluster.js';
import { NodeConnection } from '../backend/node-connection.js';
import { BE } from '../protocol/constants.js';
import { decodeDataRow, decodeErrorFields, type ErrorFields } from '../protocol/backend.js';
import { encodeQuery } from '../protocol/frontend.js';
import { nodeAddress } from '../config/node-address.js';

const silent = pino({ level: 'silent' });

export interface Endpoint {
  id: string;
  host: string;
  port: number;
}

export interface Login {
  user: string;
  password: string;
  database: string;
  connectTimeoutMs: number;
}

/** A failed query or a lost connection; `sqlstate` is set for errors the server sent. */
export class SqlError extends Error {
  constructor(
    readonly endpoint: string,
    message: string,
    readonly sqlstate: string | null,
  ) {
    super(`${endpoint}: ${message}`);
    this.name = 'SqlError';
  }
}

export interface QueryResult {
  rows: (string | null)[][];
  notices: ErrorFields[];
}

export class SqlConn {
  readonly id: string;
  private readonly c: NodeConnection;

  private constructor(id: string, c: NodeConnection) {
    this.id = id;
    this.c = c;
  }

  static async connect(ep: Endpoint, login: Login): Promise<SqlConn> {
    const node = new ClusterNode({ id: ep.id, host: ep.host, port: ep.port, weight: 0 }, 0);
    try {
      const c = await NodeConnection.connect(
        node,
        {
          user: login.user,
          password: login.password,
          database: login.database,
          params: { application_name: 'pgquorum verify', client_encoding: 'UTF8' },
          connectTimeoutMs: login.connectTimeoutMs,
        },
        silent,
      );
      c.onClose = () => {};
      return new SqlConn(ep.id, c);
    } catch (e) {
      const err = e as Error & { sqlstate?: string };
      throw new SqlError(`${ep.id} (${nodeAddress(ep.host, ep.port)})`, `cannot connect: ${err.message}`, err.sqlstate ?? null);
    }
  }

  /** Run `sql` (simple protocol; may hold several statements); the rows of all of them, as text. */
  async query(sql: string): Promise<QueryResult> {
    const r = await this.c.exchange(encodeQuery(sql), { buffer: true });
    if (r.lost) throw new SqlError(this.id, r.lost.message, r.lost.sqlstate);
    if (r.error) {
      const msg = r.error['M'] ?? 'error';
      throw new SqlError(this.id, r.error['D'] ? `${msg} (${r.error['D']})` : msg, r.error['C'] ?? null);
    }
    const rows: (string | null)[][] = [];
    const notices: ErrorFields[] = [];
    for (const raw of r.frames) {
      if (raw[0] === BE.DataRow) rows.push(decodeDataRow(raw.subarray(5)).map((v) => (v === null ? null : v.toString('utf8'))));
      else if (raw[0] === BE.NoticeResponse) notices.push(decodeErrorFields(raw.subarray(5)));
    }
    return { rows, notices };
  }

  /** The transaction status after the last exchange. */
  get txnStatus(): 'I' | 'T' | 'E' {
    return this.c.txnStatus;
  }

  close(): void {
    this.c.close();
  }
}

// `pgquorum status --config FILE [--json]`: logs in to the coordinator of FILE
// like any client and prints SHOW pgquorum.nodes, every column the
// coordinator reports, as an aligned table (psql style) or as JSON.
//
// Also the small coordinator client shared with `pgquorum node` (node.ts):
// login with a user of the config, one simple query, the answer with its
// column names, notices and error fields (SqlConn of src/verify/conn.ts keeps
// only the rows; this is the same NodeConnection underneath).
import pino from 'pino';
import { ClusterNode } from '../cluster/cluster.js';
import { NodeConnection } from '../backend/node-connection.js';
import { loadConfig } from '../config/load.js';
import { BE } from '../protocol/constants.js';
import { decodeDataRow, decodeErrorFields, decodeRowDescription, type ErrorFields, type FieldDescription } from '../protocol/backend.js';
import { encodeQuery } from '../protocol/frontend.js';
import { UsageError, type Parsed } from './args.js';

const silent = pino({ level: 'silent' });

/** The coordinator could not be reached or answered with an error. */
export class CoordinatorError extends Error {
  constructor(
    message: string,
    readonly sqlstate: string | null,
    readonly detail?: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'CoordinatorError';
  }
}

/** What the coordinator answered to one simple query. */
export interface Answer {
  /** Columns of the (last) result set; empty when there was none. */
  fields: FieldDescription[];
  rows: (string | null)[][];
  /** CommandComplete tags, in order. */
  tags: string[];
  notices: ErrorFields[];
}

export class CoordinatorSession {
  private constructor(
    /** host:port, for messages. */
    readonly address: string,
    private readonly c: NodeConnection,
  ) {}

  /**
   * Log in to the coordinator named in the config of `--config` as `--user`
   * (default: the first of the config's users) to `--dbname`.
   */
  static async open(p: Parsed, command: string): Promise<CoordinatorSession> {
    const file = p.values.config as string | undefined;
    if (file === undefined) throw new UsageError('--config FILE is required', command);
    const cfg = loadConfig(file, process.env); // a ConfigError: exit 1 with the bad key (main.ts)
    const host = connectHost(cfg.coordinator.host);
    const port = cfg.coordinator.port;
    const address = `${host}:${port}`;
    const user = (p.values.user as string | undefined) ?? cfg.users[0]?.name;
    if (user === undefined) throw new CoordinatorError(`config ${file} has no users to log in with`, null);
    const u = cfg.users.find((x) => x.name === user);
    if (!u) {
      throw new CoordinatorError(`user ${JSON.stringify(user)} is not in the config's users (${cfg.users.map((x) => x.name).join(', ')}); its password is needed`, null);
    }
    const database = (p.values.dbname as string | undefined) ?? 'postgres';
    const node = new ClusterNode({ id: 'coordinator', host, port, weight: 0 }, 0);
    try {
      const c = await NodeConnection.connect(
        node,
        {
          user,
          password: u.password,
          database,
          params: { application_name: `pgquorum ${command}`, client_encoding: 'UTF8' },
          connectTimeoutMs: cfg.backend.connect_timeout * 1000,
        },
        silent,
      );
      c.onClose = () => {};
      return new CoordinatorSession(address, c);
    } catch (e) {
      const err = e as Error & { code?: string; sqlstate?: string; detail?: string; hint?: string };
      if (err.code === 'ERR_NODE_LOST') {
        const why = err.message.replace(/^lost connection to node coordinator: /, '');
        throw new CoordinatorError(`cannot reach the coordinator at ${address}: ${why}`, err.sqlstate ?? null);
      }
      throw new CoordinatorError(
        `the coordinator at ${address} refused the login as ${JSON.stringify(user)}: ${err.message}`,
        err.sqlstate ?? null,
        err.detail,
        err.hint,
      );
    }
  }

  /** Run one simple query; rejects with a CoordinatorError on an ErrorResponse or a lost connection. */
  async query(sql: string): Promise<Answer> {
    const r = await this.c.exchange(encodeQuery(sql), { buffer: true });
    if (r.lost) {
      const why = r.lost.message.replace(/^lost connection to node coordinator: /, '');
      throw new CoordinatorError(`lost the connection to the coordinator at ${this.address}: ${why}`, r.lost.sqlstate);
    }
    if (r.error) throw new CoordinatorError(r.error['M'] ?? 'error', r.error['C'] ?? null, r.error['D'], r.error['H']);
    const answer: Answer = { fields: [], rows: [], tags: r.tags, notices: [] };
    for (const raw of r.frames) {
      const body = raw.subarray(5);
      if (raw[0] === BE.RowDescription) {
        answer.fields = decodeRowDescription(body);
        answer.rows = [];
      } else if (raw[0] === BE.DataRow) {
        answer.rows.push(decodeDataRow(body).map((v) => (v === null ? null : v.toString('utf8'))));
      } else if (raw[0] === BE.NoticeResponse) {
        answer.notices.push(decodeErrorFields(body));
      }
    }
    return answer;
  }

  close(): void {
    this.c.close();
  }
}

/** Where a client reaches a coordinator that listens on `host`. */
function connectHost(host: string): string {
  if (host === '' || host === '0.0.0.0' || host === '::' || host === '[::]' || host === '*') return '127.0.0.1';
  return host;
}

/** `pgquorum: MESSAGE (SQLSTATE X)`, then detail and hint lines, on stderr; returns exit code 1. */
export function reportCoordinatorError(e: CoordinatorError): number {
  const state = e.sqlstate ? ` (SQLSTATE ${e.sqlstate})` : '';
  let text = `pgquorum: ${e.message}${state}\n`;
  if (e.detail) text += `detail: ${e.detail}\n`;
  if (e.hint) text += `hint: ${e.hint}\n`;
  process.stderr.write(text);
  return 1;
}

/** A notice as text lines: the message (prefixed for warnings), then detail and hint. */
export function noticeLines(n: ErrorFields): string[] {
  const severity = n['V'] ?? n['S'] ?? 'NOTICE';
  const lines = [`${severity === 'NOTICE' || severity === 'INFO' || severity === 'LOG' ? '' : `${severity.toLowerCase()}: `}${n['M'] ?? ''}`];
  if (n['D']) lines.push(`detail: ${n['D']}`);
  if (n['H']) lines.push(`hint: ${n['H']}`);
  return lines;
}

/**
 * Open a session to the coordinator of --config, run `fn`, close it; a
 * coordinator error is reported (`pgquorum: MESSAGE (SQLSTATE X)`) as exit 1.
 */
export async function withCoordinator(p: Parsed, command: string, fn: (s: CoordinatorSession) => Promise<number>): Promise<number> {
  let session: CoordinatorSession | null = null;
  try {
    session = await CoordinatorSession.open(p, command);
    return await fn(session);
  } catch (e) {
    if (e instanceof CoordinatorError) return reportCoordinatorError(e);
    throw e;
  } finally {
    session?.close();
  }
}

export function cmdStatus(p: Parsed): Promise<number> {
  return withCoordinator(p, 'status', async (session) => {
    const a = await session.query('SHOW pgquorum.nodes');
    for (const n of a.notices) process.stderr.write(noticeLines(n).map((l) => `pgquorum: ${l}\n`).join(''));
    const names = a.fields.map((f) => f.name);
    if (p.values.json === true) {
      const objects = a.rows.map((row) => Object.fromEntries(names.map((name, i) => [name, row[i] ?? null])));
      process.stdout.write(`${JSON.stringify(objects, null, 2)}\n`);
    } else {
      process.stdout.write(`${alignedTable(a.fields, a.rows).join('\n')}\n`);
    }
    return 0;
  });
}

/** Types psql right-aligns: int2, int4, int8, oid, float4, float8, numeric. */
const NUMERIC_TYPES = new Set([21, 23, 20, 26, 700, 701, 1700]);

/** psql's aligned format: centered header, a rule, one line per row, `(N rows)`. */
export function alignedTable(fields: FieldDescription[], rows: (string | null)[][]): string[] {
  const footer = `(${rows.length} ${rows.length === 1 ? 'row' : 'rows'})`;
  if (fields.length === 0) return [footer];
  const cell = (v: string | null | undefined): string => (v ?? '').replace(/[\x00-\x1f\x7f]/g, (ch) => JSON.stringify(ch).slice(1, -1));
  const width = (s: string): number => [...s].length;
  const header = fields.map((f) => cell(f.name));
  const body = rows.map((r) => fields.map((_, i) => cell(r[i])));
  const widths = header.map((h, i) => Math.max(width(h), ...body.map((r) => width(r[i]!))));
  const line = (cells: string[], align: (i: number, s: string, pad: number) => string): string =>
    cells
      .map((s, i) => ` ${align(i, s, widths[i]! - width(s))} `)
      .join('|')
      .trimEnd();
  const out = [line(header, (_, s, pad) => ' '.repeat(Math.floor(pad / 2)) + s + ' '.repeat(Math.ceil(pad / 2)))];
  out.push(widths.map((w) => '-'.repeat(w + 2)).join('+'));
  for (const r of body) {
    out.push(line(r, (i, s, pad) => (NUMERIC_TYPES.has(fields[i]!.typeOid) ? ' '.repeat(pad) + s : s + ' '.repeat(pad))));
  }
  out.push(footer);
  return out;
}

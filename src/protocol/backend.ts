// Backend messages (server -> client): decode what a PostgreSQL node sends us
// and encode what we send a client, plus prebuilt constant messages.

import { AUTH, BE } from './constants.js';
import { Cursor, malformed } from './cursor.js';
import { SqlState } from '../errors.js';
import { Writer, encodeError, sharedWriter } from './writer.js';

function fixed(type: number, body: (w: Writer) => void): Buffer {
  const w = new Writer(16).startMessage(type);
  body(w);
  return w.endMessage().finish();
}

function checkCount(what: string, n: number): void {
  if (n > 0xffff) {
    throw encodeError(`${what}: ${n} exceeds the protocol limit of 65535`, SqlState.PROGRAM_LIMIT_EXCEEDED);
  }
}

// ---------------------------------------------------------------- ErrorResponse / NoticeResponse

/** Keyed by the one-letter field code: S, V, C, M, D, H, P, p, q, W, s, t, c, d, n, F, L, R. */
export type ErrorFields = Record<string, string>;

/** Fields of an ErrorResponse or NoticeResponse: (code byte, cstring)* then a 0 byte. */
export function decodeErrorFields(payload: Buffer): ErrorFields {
  const c = new Cursor(payload);
  const fields: ErrorFields = {};
  for (;;) {
    const code = c.uint8();
    if (code === 0) break;
    fields[String.fromCharCode(code)] = c.cstring();
  }
  c.end('ErrorResponse');
  return fields;
}

function encodeFields(type: number, f: ErrorFields): Buffer {
  const w = sharedWriter().startMessage(type);
  for (const key of Object.keys(f)) {
    const code = key.charCodeAt(0);
    if (key.length !== 1 || code === 0 || code > 0xff) {
      throw encodeError(`error field code must be one character (byte), got ${JSON.stringify(key)}`);
    }
    w.uint8(code).cstring(f[key]!);
  }
  return w.uint8(0).endMessage().finish();
}

/** ErrorResponse with the fields in the order given. */
export function encodeErrorResponse(f: ErrorFields): Buffer {
  return encodeFields(BE.ErrorResponse, f);
}

/** NoticeResponse with the fields in the order given. */
export function encodeNoticeResponse(f: ErrorFields): Buffer {
  return encodeFields(BE.NoticeResponse, f);
}

/** ErrorResponse for one of our own errors: S, V, C, M, then D and H when present. */
export function errorFromPgq(err: {
  sqlstate: string;
  message: string;
  severity: string;
  detail?: string;
  hint?: string;
}): Buffer {
  const f: ErrorFields = { S: err.severity, V: err.severity, C: err.sqlstate, M: err.message };
  if (err.detail !== undefined) f['D'] = err.detail;
  if (err.hint !== undefined) f['H'] = err.hint;
  return encodeFields(BE.ErrorResponse, f);
}

// ---------------------------------------------------------------- Authentication

export type AuthRequest =
  | { kind: 'ok' }
  | { kind: 'cleartext' }
  | { kind: 'md5'; salt: Buffer }
  | { kind: 'sasl'; mechanisms: string[] }
  | { kind: 'sasl-continue'; data: Buffer }
  | { kind: 'sasl-final'; data: Buffer }
  /** Kerberos, GSS, GSSContinue, SSPI, or unknown; data is whatever followed the code. */
  | { kind: 'other'; code: number; data?: Buffer };

export function decodeAuthentication(payload: Buffer): AuthRequest {
  const c = new Cursor(payload);
  const code = c.int32();
  let a: AuthRequest;
  switch (code) {
    case AUTH.Ok:
      a = { kind: 'ok' };
      break;
    case AUTH.CleartextPassword:
      a = { kind: 'cleartext' };
      break;
    case AUTH.MD5Password:
      a = { kind: 'md5', salt: c.bytes(4) };
      break;
    case AUTH.SASL: {
      const mechanisms: string[] = [];
      for (;;) {
        const m = c.cstring();
        if (m === '') break;
        mechanisms.push(m);
      }
      a = { kind: 'sasl', mechanisms };
      break;
    }
    case AUTH.SASLContinue:
      a = { kind: 'sasl-continue', data: c.rest() };
      break;
    case AUTH.SASLFinal:
      a = { kind: 'sasl-final', data: c.rest() };
      break;
    default:
      a = c.remaining > 0 ? { kind: 'other', code, data: c.rest() } : { kind: 'other', code };
  }
  c.end('Authentication');
  return a;
}

export function encodeAuthentication(a: AuthRequest): Buffer {
  const w = sharedWriter().startMessage(BE.Authentication);
  switch (a.kind) {
    case 'ok':
      w.int32(AUTH.Ok);
      break;
    case 'cleartext':
      w.int32(AUTH.CleartextPassword);
      break;
    case 'md5':
      if (a.salt.length !== 4) throw encodeError(`md5 salt must be 4 bytes, got ${a.salt.length}`);
      w.int32(AUTH.MD5Password).bytes(a.salt);
      break;
    case 'sasl':
      w.int32(AUTH.SASL);
      for (const m of a.mechanisms) {
        if (m === '') throw encodeError('empty SASL mechanism name');
        w.cstring(m);
      }
      w.uint8(0);
      break;
    case 'sasl-continue':
      w.int32(AUTH.SASLContinue).bytes(a.data);
      break;
    case 'sasl-final':
      w.int32(AUTH.SASLFinal).bytes(a.data);
      break;
    case 'other':
      w.int32(a.code);
      if (a.data !== undefined) w.bytes(a.data);
      break;
  }
  return w.endMessage().finish();
}

export const AUTH_OK: Buffer = fixed(BE.Authentication, (w) => w.int32(AUTH.Ok));

// ---------------------------------------------------------------- session start

export function decodeBackendKeyData(p: Buffer): { pid: number; secret: number } {
  const c = new Cursor(p);
  const pid = c.int32();
  const secret = c.int32();
  c.end('BackendKeyData');
  return { pid, secret };
}

export function encodeBackendKeyData(pid: number, secret: number): Buffer {
  return sharedWriter().startMessage(BE.BackendKeyData).int32(pid).int32(secret).endMessage().finish();
}

export function decodeParameterStatus(p: Buffer): { name: string; value: string } {
  const c = new Cursor(p);
  const name = c.cstring();
  const value = c.cstring();
  c.end('ParameterStatus');
  return { name, value };
}

export function encodeParameterStatus(name: string, value: string): Buffer {
  return sharedWriter().startMessage(BE.ParameterStatus).cstring(name).cstring(value).endMessage().finish();
}

export function decodeNegotiateProtocolVersion(p: Buffer): { newestMinor: number; unrecognized: string[] } {
  const c = new Cursor(p);
  const newestMinor = c.int32();
  const n = c.int32();
  if (n < 0) throw malformed(`NegotiateProtocolVersion: invalid option count ${n}`);
  const unrecognized: string[] = [];
  for (let i = 0; i < n; i++) unrecognized.push(c.cstring());
  c.end('NegotiateProtocolVersion');
  return { newestMinor, unrecognized };
}

export function encodeNegotiateProtocolVersion(newestMinor: number, unrecognized: string[]): Buffer {
  const w = sharedWriter().startMessage(BE.NegotiateProtocolVersion).int32(newestMinor).int32(unrecognized.length);
  for (const o of unrecognized) w.cstring(o);
  return w.endMessage().finish();
}

// ---------------------------------------------------------------- ReadyForQuery

export type TxStatus = 'I' | 'T' | 'E';

export function decodeReadyForQuery(p: Buffer): TxStatus {
  const c = new Cursor(p);
  const s = c.uint8();
  c.end('ReadyForQuery');
  if (s === 0x49) return 'I';
  if (s === 0x54) return 'T';
  if (s === 0x45) return 'E';
  throw malformed(`ReadyForQuery: invalid transaction status 0x${s.toString(16)}`);
}

export const READY_IDLE: Buffer = fixed(BE.ReadyForQuery, (w) => w.uint8(0x49));
export const READY_IN_TXN: Buffer = fixed(BE.ReadyForQuery, (w) => w.uint8(0x54));
export const READY_FAILED: Buffer = fixed(BE.ReadyForQuery, (w) => w.uint8(0x45));

/** One of the prebuilt READY_* buffers. */
export function encodeReadyForQuery(s: TxStatus): Buffer {
  if (s === 'I') return READY_IDLE;
  if (s === 'T') return READY_IN_TXN;
  if (s === 'E') return READY_FAILED;
  throw encodeError(`invalid transaction status ${JSON.stringify(s)}`);
}

// ---------------------------------------------------------------- results

export interface FieldDescription {
  name: string;
  tableOid: number;
  columnAttr: number;
  typeOid: number;
  typeSize: number;
  typeModifier: number;
  format: number;
}

export function decodeRowDescription(p: Buffer): FieldDescription[] {
  const c = new Cursor(p);
  const n = c.uint16();
  const fields = new Array<FieldDescription>(n);
  for (let i = 0; i < n; i++) {
    fields[i] = {
      name: c.cstring(),
      tableOid: c.uint32(),
      columnAttr: c.int16(),
      typeOid: c.uint32(),
      typeSize: c.int16(),
      typeModifier: c.int32(),
      format: c.int16(),
    };
  }
  c.end('RowDescription');
  return fields;
}

export function encodeRowDescription(fields: FieldDescription[]): Buffer {
  checkCount('RowDescription fields', fields.length);
  const w = sharedWriter().startMessage(BE.RowDescription).uint16(fields.length);
  for (const f of fields) {
    w.cstring(f.name)
      .uint32(f.tableOid)
      .int16(f.columnAttr)
      .uint32(f.typeOid)
      .int16(f.typeSize)
      .int32(f.typeModifier)
      .int16(f.format);
  }
  return w.endMessage().finish();
}

/** The first DataRow among whole backend frames, as text values (null for SQL NULL); null when there is none. */
export function firstRowText(frames: readonly Buffer[]): Array<string | null> | null {
  for (const raw of frames) {
    if (raw[0] === 0x44 /* DataRow */) return decodeDataRow(raw.subarray(5)).map((v) => (v === null ? null : v.toString('utf8')));
  }
  return null;
}

/** Column values as views; null for SQL NULL (length -1). */
export function decodeDataRow(p: Buffer): (Buffer | null)[] {
  const c = new Cursor(p);
  const n = c.uint16();
  const values = new Array<Buffer | null>(n);
  for (let i = 0; i < n; i++) {
    const len = c.int32();
    if (len === -1) values[i] = null;
    else if (len < 0) throw malformed(`DataRow: invalid value length ${len}`);
    else values[i] = c.bytes(len);
  }
  c.end('DataRow');
  return values;
}

/** Strings are sent as UTF-8 text. */
export function encodeDataRow(values: (Buffer | string | null)[]): Buffer {
  checkCount('DataRow columns', values.length);
  const w = sharedWriter().startMessage(BE.DataRow).uint16(values.length);
  for (const v of values) {
    if (v === null || v === undefined) {
      w.int32(-1);
    } else if (typeof v === 'string') {
      w.int32(Buffer.byteLength(v, 'utf8')).string(v);
    } else {
      w.int32(v.length).bytes(v);
    }
  }
  return w.endMessage().finish();
}

export function decodeCommandComplete(p: Buffer): string {
  const c = new Cursor(p);
  const tag = c.cstring();
  c.end('CommandComplete');
  return tag;
}

export function encodeCommandComplete(tag: string): Buffer {
  return sharedWriter().startMessage(BE.CommandComplete).cstring(tag).endMessage().finish();
}

const ROW_COUNT_VERBS = new Set(['SELECT', 'UPDATE', 'DELETE', 'MERGE', 'FETCH', 'MOVE', 'COPY']);

/**
 * Rows reported by a command tag: 'INSERT 0 5' -> 5, 'UPDATE 3' -> 3,
 * 'SELECT 7', 'COPY 10', 'DELETE 1', 'MERGE 2', 'FETCH 4', 'MOVE 1'.
 * Null for tags that carry no row count ('CREATE TABLE', 'BEGIN').
 */
export function commandTagRows(tag: string): number | null {
  const parts = tag.split(' ');
  const verb = parts[0]!;
  let count: string | undefined;
  if (verb === 'INSERT') {
    if (parts.length !== 3) return null;
    count = parts[2];
  } else if (ROW_COUNT_VERBS.has(verb)) {
    if (parts.length !== 2) return null;
    count = parts[1];
  } else {
    return null;
  }
  if (count === undefined || !/^[0-9]+$/.test(count)) return null;
  return Number(count);
}

export function decodeParameterDescription(p: Buffer): number[] {
  const c = new Cursor(p);
  const n = c.uint16();
  const types = new Array<number>(n);
  for (let i = 0; i < n; i++) types[i] = c.uint32();
  c.end('ParameterDescription');
  return types;
}

export function encodeParameterDescription(types: number[]): Buffer {
  checkCount('ParameterDescription types', types.length);
  const w = sharedWriter().startMessage(BE.ParameterDescription).uint16(types.length);
  for (const t of types) w.uint32(t);
  return w.endMessage().finish();
}

export const PARSE_COMPLETE: Buffer = fixed(BE.ParseComplete, () => {});
export const BIND_COMPLETE: Buffer = fixed(BE.BindComplete, () => {});
export const CLOSE_COMPLETE: Buffer = fixed(BE.CloseComplete, () => {});
export const NO_DATA: Buffer = fixed(BE.NoData, () => {});
export const PORTAL_SUSPENDED: Buffer = fixed(BE.PortalSuspended, () => {});
export const EMPTY_QUERY_RESPONSE: Buffer = fixed(BE.EmptyQueryResponse, () => {});

// ---------------------------------------------------------------- COPY

/** CopyInResponse, CopyOutResponse and CopyBothResponse share this layout. */
export function decodeCopyResponse(p: Buffer): { format: number; columnFormats: number[] } {
  const c = new Cursor(p);
  const format = c.int8();
  const n = c.uint16();
  const columnFormats = new Array<number>(n);
  for (let i = 0; i < n; i++) columnFormats[i] = c.int16();
  c.end('CopyResponse');
  return { format, columnFormats };
}

function encodeCopyResponse(type: number, format: number, columnFormats: number[]): Buffer {
  checkCount('CopyResponse column formats', columnFormats.length);
  const w = sharedWriter().startMessage(type).uint8(format).uint16(columnFormats.length);
  for (const f of columnFormats) w.int16(f);
  return w.endMessage().finish();
}

export function encodeCopyInResponse(format: number, columnFormats: number[]): Buffer {
  return encodeCopyResponse(BE.CopyInResponse, format, columnFormats);
}

export function encodeCopyOutResponse(format: number, columnFormats: number[]): Buffer {
  return encodeCopyResponse(BE.CopyOutResponse, format, columnFormats);
}

export function encodeCopyBothResponse(format: number, columnFormats: number[]): Buffer {
  return encodeCopyResponse(BE.CopyBothResponse, format, columnFormats);
}

/** Backend CopyDone ('c'); the same bytes as the frontend COPY_DONE. CopyData: encodeCopyData in frontend.ts. */
export const COPY_DONE_BE: Buffer = fixed(BE.CopyDone, () => {});

// ---------------------------------------------------------------- asynchronous and function call

export function decodeNotification(p: Buffer): { pid: number; channel: string; payload: string } {
  const c = new Cursor(p);
  const pid = c.int32();
  const channel = c.cstring();
  const payload = c.cstring();
  c.end('NotificationResponse');
  return { pid, channel, payload };
}

export function encodeNotification(pid: number, channel: string, payload: string): Buffer {
  return sharedWriter()
    .startMessage(BE.NotificationResponse)
    .int32(pid)
    .cstring(channel)
    .cstring(payload)
    .endMessage()
    .finish();
}

/** The function's result as a view, or null for SQL NULL. */
export function decodeFunctionCallResponse(p: Buffer): Buffer | null {
  const c = new Cursor(p);
  const len = c.int32();
  let value: Buffer | null = null;
  if (len === -1) value = null;
  else if (len < 0) throw malformed(`FunctionCallResponse: invalid value length ${len}`);
  else value = c.bytes(len);
  c.end('FunctionCallResponse');
  return value;
}

export function encodeFunctionCallResponse(value: Buffer | null): Buffer {
  const w = sharedWriter().startMessage(BE.FunctionCallResponse);
  if (value === null) w.int32(-1);
  else w.int32(value.length).bytes(value);
  return w.endMessage().finish();
}

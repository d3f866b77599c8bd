// Frontend messages (client -> server): decode what a client sends us and
// encode what we send a PostgreSQL node. Payload in, Buffer out; no sockets.

import {
  CANCEL_REQUEST_CODE,
  FE,
  GSSENC_REQUEST_CODE,
  PROTOCOL_3_0,
  SSL_REQUEST_CODE,
  protocolMajor,
} from './constants.js';
import { Cursor, malformed } from './cursor.js';
import { SqlState } from '../errors.js';
import { Writer, encodeError, sharedWriter } from './writer.js';

// ---------------------------------------------------------------- startup phase

export type StartupPacket =
  | { kind: 'startup'; protocolVersion: number; params: Record<string, string> }
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; pid: number; secret: number };

/** Set a key even when it is "__proto__" (startup parameter names come from the client). */
function setParam(params: Record<string, string>, name: string, value: string): void {
  Object.defineProperty(params, name, { value, enumerable: true, writable: true, configurable: true });
}

/** name\0value\0 ... \0 — the terminator must be the last byte. */
function decodeStartupParams(c: Cursor): Record<string, string> {
  const params: Record<string, string> = {};
  for (;;) {
    const name = c.cstring();
    if (name === '') break;
    if (c.remaining === 0) throw malformed(`startup packet: parameter "${name}" has no value`);
    setParam(params, name, c.cstring());
  }
  c.end('startup packet');
  return params;
}

/**
 * Decode an untyped startup-phase packet; payload = bytes after the 4-byte length.
 * A protocol version whose major is not 3 comes back as 'startup' with that
 * version and its parameters if they parse (else none): the caller rejects it.
 */
export function decodeStartupPacket(payload: Buffer): StartupPacket {
  const c = new Cursor(payload);
  const code = c.int32();
  switch (code) {
    case SSL_REQUEST_CODE:
      c.end('SSLRequest');
      return { kind: 'ssl' };
    case GSSENC_REQUEST_CODE:
      c.end('GSSENCRequest');
      return { kind: 'gssenc' };
    case CANCEL_REQUEST_CODE: {
      const pid = c.int32();
      const secret = c.int32();
      c.end('CancelRequest');
      return { kind: 'cancel', pid, secret };
    }
  }
  if (protocolMajor(code) === 3) {
    return { kind: 'startup', protocolVersion: code, params: decodeStartupParams(c) };
  }
  let params: Record<string, string> = {};
  try {
    params = decodeStartupParams(c);
  } catch {
    params = {};
  }
  return { kind: 'startup', protocolVersion: code, params };
}

export function encodeStartup(params: Record<string, string>, protocolVersion: number = PROTOCOL_3_0): Buffer {
  const w = sharedWriter().startMessage(0).int32(protocolVersion);
  for (const name of Object.keys(params)) {
    if (name === '') throw encodeError('startup parameter with an empty name');
    w.cstring(name).cstring(params[name]!);
  }
  return w.uint8(0).endMessage().finish();
}

function fixed(type: number, body: (w: Writer) => void): Buffer {
  const w = new Writer(16).startMessage(type);
  body(w);
  return w.endMessage().finish();
}

const SSL_REQUEST = fixed(0, (w) => w.int32(SSL_REQUEST_CODE));
const GSSENC_REQUEST = fixed(0, (w) => w.int32(GSSENC_REQUEST_CODE));

export function encodeSSLRequest(): Buffer {
  return SSL_REQUEST;
}

export function encodeGSSENCRequest(): Buffer {
  return GSSENC_REQUEST;
}

export function encodeCancelRequest(pid: number, secret: number): Buffer {
  return sharedWriter().startMessage(0).int32(CANCEL_REQUEST_CODE).int32(pid).int32(secret).endMessage().finish();
}

// ---------------------------------------------------------------- message shapes

export interface Parse {
  name: string;
  sql: string;
  paramTypes: number[];
}
export interface Bind {
  portal: string;
  statement: string;
  paramFormats: number[];
  params: (Buffer | null)[];
  resultFormats: number[];
}
export interface Describe {
  kind: 'S' | 'P';
  name: string;
}
export interface Execute {
  portal: string;
  maxRows: number;
}
export interface Close {
  kind: 'S' | 'P';
  name: string;
}
export interface FunctionCall {
  oid: number;
  argFormats: number[];
  args: (Buffer | null)[];
  resultFormat: number;
}

// ---------------------------------------------------------------- shared pieces

/** A uint16 element count as the wire carries it. */
function checkCount(what: string, n: number): void {
  if (n > 0xffff) {
    throw encodeError(`${what}: ${n} exceeds the protocol limit of 65535`, SqlState.PROGRAM_LIMIT_EXCEEDED);
  }
}

function readInt16List(c: Cursor): number[] {
  const n = c.uint16();
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = c.int16();
  return out;
}

function writeInt16List(w: Writer, what: string, list: number[]): void {
  checkCount(what, list.length);
  w.uint16(list.length);
  for (let i = 0; i < list.length; i++) w.int16(list[i]!);
}

/** Int16 count, then per value Int32 length (-1 = NULL) and the bytes (views). */
function readValues(c: Cursor, what: string): (Buffer | null)[] {
  const n = c.uint16();
  const out = new Array<Buffer | null>(n);
  for (let i = 0; i < n; i++) {
    const len = c.int32();
    if (len === -1) out[i] = null;
    else if (len < 0) throw malformed(`${what}: invalid value length ${len}`);
    else out[i] = c.bytes(len);
  }
  return out;
}

function writeValues(w: Writer, what: string, values: (Buffer | null)[]): void {
  checkCount(what, values.length);
  w.uint16(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined) w.int32(-1);
    else w.int32(v.length).bytes(v);
  }
}

function readKind(c: Cursor, what: string): 'S' | 'P' {
  const k = c.uint8();
  if (k === 0x53) return 'S';
  if (k === 0x50) return 'P';
  throw malformed(`${what}: invalid target type 0x${k.toString(16)} (expected 'S' or 'P')`);
}

// ---------------------------------------------------------------- decoders

export function decodeQuery(payload: Buffer): string {
  const c = new Cursor(payload);
  const sql = c.cstring();
  c.end('Query');
  return sql;
}

export function decodeParse(payload: Buffer): Parse {
  const c = new Cursor(payload);
  const name = c.cstring();
  const sql = c.cstring();
  const n = c.uint16();
  const paramTypes = new Array<number>(n);
  for (let i = 0; i < n; i++) paramTypes[i] = c.uint32();
  c.end('Parse');
  return { name, sql, paramTypes };
}

export function decodeBind(payload: Buffer): Bind {
  const c = new Cursor(payload);
  const portal = c.cstring();
  const statement = c.cstring();
  const paramFormats = readInt16List(c);
  const params = readValues(c, 'Bind');
  const resultFormats = readInt16List(c);
  c.end('Bind');
  return { portal, statement, paramFormats, params, resultFormats };
}

export function decodeDescribe(payload: Buffer): Describe {
  const c = new Cursor(payload);
  const kind = readKind(c, 'Describe');
  const name = c.cstring();
  c.end('Describe');
  return { kind, name };
}

export function decodeExecute(payload: Buffer): Execute {
  const c = new Cursor(payload);
  const portal = c.cstring();
  const maxRows = c.int32();
  c.end('Execute');
  return { portal, maxRows };
}

export function decodeClose(payload: Buffer): Close {
  const c = new Cursor(payload);
  const kind = readKind(c, 'Close');
  const name = c.cstring();
  c.end('Close');
  return { kind, name };
}

/** CopyData is its payload; this is the identity, here for symmetry. */
export function decodeCopyData(payload: Buffer): Buffer {
  return payload;
}

export function decodeCopyFail(payload: Buffer): string {
  const c = new Cursor(payload);
  const msg = c.cstring();
  c.end('CopyFail');
  return msg;
}

/** PasswordMessage (cleartext or md5). */
export function decodePassword(payload: Buffer): string {
  const c = new Cursor(payload);
  const pw = c.cstring();
  c.end('PasswordMessage');
  return pw;
}

export function decodeSASLInitialResponse(payload: Buffer): { mechanism: string; data: Buffer | null } {
  const c = new Cursor(payload);
  const mechanism = c.cstring();
  const len = c.int32();
  let data: Buffer | null = null;
  if (len === -1) data = null;
  else if (len < 0) throw malformed(`SASLInitialResponse: invalid data length ${len}`);
  else data = c.bytes(len);
  c.end('SASLInitialResponse');
  return { mechanism, data };
}

/** SASLResponse and GSSResponse: the payload is the data (a view). */
export function decodeSASLResponse(payload: Buffer): Buffer {
  return payload;
}

export function decodeFunctionCall(payload: Buffer): FunctionCall {
  const c = new Cursor(payload);
  const oid = c.uint32();
  const argFormats = readInt16List(c);
  const args = readValues(c, 'FunctionCall');
  const resultFormat = c.int16();
  c.end('FunctionCall');
  return { oid, argFormats, args, resultFormat };
}

// ---------------------------------------------------------------- encoders

export function encodeQuery(sql: string): Buffer {
  return sharedWriter().startMessage(FE.Query).cstring(sql).endMessage().finish();
}

export function encodeParse(p: Parse): Buffer {
  const w = sharedWriter().startMessage(FE.Parse).cstring(p.name).cstring(p.sql);
  checkCount('Parse parameter types', p.paramTypes.length);
  w.uint16(p.paramTypes.length);
  for (let i = 0; i < p.paramTypes.length; i++) w.uint32(p.paramTypes[i]!);
  return w.endMessage().finish();
}

export function encodeBind(b: Bind): Buffer {
  const w = sharedWriter().startMessage(FE.Bind).cstring(b.portal).cstring(b.statement);
  writeInt16List(w, 'Bind parameter formats', b.paramFormats);
  writeValues(w, 'Bind parameters', b.params);
  writeInt16List(w, 'Bind result formats', b.resultFormats);
  return w.endMessage().finish();
}

export function encodeDescribe(d: Describe): Buffer {
  return sharedWriter()
    .startMessage(FE.Describe)
    .uint8(d.kind === 'S' ? 0x53 : 0x50)
    .cstring(d.name)
    .endMessage()
    .finish();
}

export function encodeExecute(e: Execute): Buffer {
  return sharedWriter().startMessage(FE.Execute).cstring(e.portal).int32(e.maxRows).endMessage().finish();
}

export function encodeClose(c: Close): Buffer {
  return sharedWriter()
    .startMessage(FE.Close)
    .uint8(c.kind === 'S' ? 0x53 : 0x50)
    .cstring(c.name)
    .endMessage()
    .finish();
}

export const SYNC: Buffer = fixed(FE.Sync, () => {});
export const FLUSH: Buffer = fixed(FE.Flush, () => {});
export const TERMINATE: Buffer = fixed(FE.Terminate, () => {});
/** CopyDone ('c'); the same bytes in both directions. */
export const COPY_DONE: Buffer = fixed(FE.CopyDone, () => {});

/** CopyData ('d'), either direction. Copies data; see copyDataHeader to avoid that. */
export function encodeCopyData(data: Buffer): Buffer {
  return sharedWriter().startMessage(FE.CopyData).bytes(data).endMessage().finish();
}

/** The 5-byte header of a CopyData carrying `length` bytes, for writev without copying the data. */
export function copyDataHeader(length: number): Buffer {
  const h = Buffer.allocUnsafe(5);
  h[0] = FE.CopyData;
  h.writeUInt32BE(length + 4, 1);
  return h;
}

export function encodeCopyFail(msg: string): Buffer {
  return sharedWriter().startMessage(FE.CopyFail).cstring(msg).endMessage().finish();
}

/** PasswordMessage: cleartext password or "md5" + hex digest. */
export function encodePassword(pw: string): Buffer {
  return sharedWriter().startMessage(FE.Password).cstring(pw).endMessage().finish();
}

/** SASLInitialResponse; data null sends length -1 (no initial response). */
export function encodeSASLInitialResponse(mech: string, data: Buffer | null): Buffer {
  const w = sharedWriter().startMessage(FE.Password).cstring(mech);
  if (data === null) w.int32(-1);
  else w.int32(data.length).bytes(data);
  return w.endMessage().finish();
}

export function encodeSASLResponse(data: Buffer): Buffer {
  return sharedWriter().startMessage(FE.Password).bytes(data).endMessage().finish();
}

/** GSSResponse has the same layout as SASLResponse. */
export const encodeGSSResponse = encodeSASLResponse;

export function encodeFunctionCall(f: FunctionCall): Buffer {
  const w = sharedWriter().startMessage(FE.FunctionCall).uint32(f.oid);
  writeInt16List(w, 'FunctionCall argument formats', f.argFormats);
  writeValues(w, 'FunctionCall arguments', f.args);
  return w.int16(f.resultFormat).endMessage().finish();
}

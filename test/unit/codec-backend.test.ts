// Tests for backend (server -> client) messages: round-trip of every message,
// truncation and trailing-byte rejection, a stream split at every byte,
// prebuilt constants, commandTagRows, and agreement with node-postgres' parser.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { FrameReader, type Frame } from '../../src/protocol/reader.js';
import { PgqError, SqlState } from '../../src/errors.js';
import { BE } from '../../src/protocol/constants.js';
import * as be from '../../src/protocol/backend.js';
import { COPY_DONE, encodeCopyData, decodeCopyData } from '../../src/protocol/frontend.js';

interface Case {
  name: string;
  type: number;
  bytes: Buffer;
  expected: unknown;
  decode: (payload: Buffer) => unknown;
  /** Every shorter payload and a payload with one extra byte must be rejected. */
  strict: boolean;
}

function mk<T>(name: string, type: number, value: T, encode: (v: T) => Buffer, decode: (p: Buffer) => T, strict = true): Case {
  return { name, type, bytes: encode(value), expected: value, decode, strict };
}

function empty(name: string, type: number, bytes: Buffer): Case {
  return { name, type, bytes, expected: 0, decode: (p) => p.length, strict: false };
}

const isMalformed = (e: unknown) => e instanceof PgqError && e.code === 'ERR_PROTOCOL_MALFORMED' && e.sqlstate === '08P01';

const allErrorFields: be.ErrorFields = {
  S: 'ERROR',
  V: 'ERROR',
  C: '23505',
  M: 'duplicate key value violates unique constraint "t_pkey"',
  D: 'Key (id)=(1) already exists.',
  H: 'try another id',
  P: '12',
  p: '3',
  q: 'SELECT 1',
  W: 'PL/pgSQL function f() line 3',
  s: 'public',
  t: 't',
  c: 'id',
  d: 'int4',
  n: 't_pkey',
  F: 'nbtinsert.c',
  L: '666',
  R: '_bt_check_unique',
};

const fields: be.FieldDescription[] = [
  { name: 'id', tableOid: 16384, columnAttr: 1, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 },
  { name: 'název', tableOid: 0, columnAttr: 0, typeOid: 4294967295, typeSize: -1, typeModifier: 68, format: 1 },
];

const cases: Case[] = [
  mk('AuthenticationOk', BE.Authentication, { kind: 'ok' } as be.AuthRequest, be.encodeAuthentication, be.decodeAuthentication),
  mk('AuthenticationCleartextPassword', BE.Authentication, { kind: 'cleartext' } as be.AuthRequest, be.encodeAuthentication, be.decodeAuthentication),
  mk('AuthenticationMD5Password', BE.Authentication, { kind: 'md5', salt: Buffer.from([1, 2, 3, 4]) } as be.AuthRequest, be.encodeAuthentication, be.decodeAuthentication),
  mk('AuthenticationSASL', BE.Authentication, { kind: 'sasl', mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] } as be.AuthRequest, be.encodeAuthentication, be.decodeAuthentication),
  mk('AuthenticationSASL (none)', BE.Authentication, { kind: 'sasl', mechanisms: [] } as be.AuthRequest, be.encodeAuthentication, be.decodeAuthentication),
  mk('AuthenticationSASLContinue', BE.Authentication, { kind: 'sasl-continue', data: Buffer.from('r=abc,s=c2FsdA==,i=4096') } as be.AuthRequest, be.encodeAuthentication, be.decodeAuthentication, false),
  mk('AuthenticationSASLFinal', BE.Authentication, { kind: 'sasl-final', data: Buffer.from('v=xyz') } as be.AuthRequest, be.encodeAuthentication, be.decodeAuthentication, false),
  mk('AuthenticationGSS', BE.Authentication, { kind: 'other', code: 7 } as be.AuthRequest, be.encodeAuthentication, be.decodeAuthentication, false),
  mk('AuthenticationGSSContinue', BE.Authentication, { kind: 'other', code: 8, data: Buffer.from([9, 8, 7]) } as be.AuthRequest, be.encodeAuthentication, be.decodeAuthentication, false),
  mk('NegotiateProtocolVersion', BE.NegotiateProtocolVersion, { newestMinor: 0, unrecognized: ['_pq_.compression', '_pq_.x'] }, (v) => be.encodeNegotiateProtocolVersion(v.newestMinor, v.unrecognized), be.decodeNegotiateProtocolVersion),
  mk('BackendKeyData', BE.BackendKeyData, { pid: 31337, secret: -559038737 }, (v) => be.encodeBackendKeyData(v.pid, v.secret), be.decodeBackendKeyData),
  mk('ParameterStatus', BE.ParameterStatus, { name: 'server_version', value: '17.2' }, (v) => be.encodeParameterStatus(v.name, v.value), be.decodeParameterStatus),
  mk('ParameterStatus (empty value)', BE.ParameterStatus, { name: 'application_name', value: '' }, (v) => be.encodeParameterStatus(v.name, v.value), be.decodeParameterStatus),
  mk('ReadyForQuery I', BE.ReadyForQuery, 'I' as be.TxStatus, be.encodeReadyForQuery, be.decodeReadyForQuery),
  mk('ParseComplete', BE.ParseComplete, 0, () => be.PARSE_COMPLETE, (p) => p.length, false),
  mk('BindComplete', BE.BindComplete, 0, () => be.BIND_COMPLETE, (p) => p.length, false),
  mk('ParameterDescription', BE.ParameterDescription, [23, 25, 4294967295], be.encodeParameterDescription, be.decodeParameterDescription),
  mk('ParameterDescription (none)', BE.ParameterDescription, [] as number[], be.encodeParameterDescription, be.decodeParameterDescription),
  mk('RowDescription', BE.RowDescription, fields, be.encodeRowDescription, be.decodeRowDescription),
  mk('RowDescription (no columns)', BE.RowDescription, [] as be.FieldDescription[], be.encodeRowDescription, be.decodeRowDescription),
  empty('NoData', BE.NoData, be.NO_DATA),
  {
    name: 'DataRow',
    type: BE.DataRow,
    bytes: be.encodeDataRow(['1', null, Buffer.from([0, 1, 2]), '', 'žluť', null]),
    expected: [Buffer.from('1'), null, Buffer.from([0, 1, 2]), Buffer.alloc(0), Buffer.from('žluť'), null],
    decode: be.decodeDataRow,
    strict: true,
  },
  mk('DataRow (no columns)', BE.DataRow, [] as (Buffer | null)[], be.encodeDataRow, be.decodeDataRow),
  empty('PortalSuspended', BE.PortalSuspended, be.PORTAL_SUSPENDED),
  mk('CommandComplete', BE.CommandComplete, 'INSERT 0 5', be.encodeCommandComplete, be.decodeCommandComplete),
  empty('EmptyQueryResponse', BE.EmptyQueryResponse, be.EMPTY_QUERY_RESPONSE),
  mk('CopyInResponse', BE.CopyInResponse, { format: 0, columnFormats: [0, 0, 0] }, (v) => be.encodeCopyInResponse(v.format, v.columnFormats), be.decodeCopyResponse),
  mk('CopyOutResponse', BE.CopyOutResponse, { format: 1, columnFormats: [1, 1] }, (v) => be.encodeCopyOutResponse(v.format, v.columnFormats), be.decodeCopyResponse),
  mk('CopyBothResponse', BE.CopyBothResponse, { format: 0, columnFormats: [] as number[] }, (v) => be.encodeCopyBothResponse(v.format, v.columnFormats), be.decodeCopyResponse),
  mk('CopyData', BE.CopyData, Buffer.from('1\tone\n'), encodeCopyData, decodeCopyData, false),
  empty('CopyDone', BE.CopyDone, be.COPY_DONE_BE),
  mk('ErrorResponse (all fields)', BE.ErrorResponse, allErrorFields, be.encodeErrorResponse, be.decodeErrorFields),
  mk('NoticeResponse', BE.NoticeResponse, { S: 'NOTICE', V: 'NOTICE', C: '00000', M: 'relation "t" already exists, skipping' }, be.encodeNoticeResponse, be.decodeErrorFields),
  mk('NotificationResponse', BE.NotificationResponse, { pid: 4242, channel: 'jobs', payload: '{"id":1}' }, (v) => be.encodeNotification(v.pid, v.channel, v.payload), be.decodeNotification),
  mk('NotificationResponse (empty payload)', BE.NotificationResponse, { pid: 1, channel: 'c', payload: '' }, (v) => be.encodeNotification(v.pid, v.channel, v.payload), be.decodeNotification),
  mk('FunctionCallResponse', BE.FunctionCallResponse, Buffer.from([0, 0, 0, 42]) as Buffer | null, be.encodeFunctionCallResponse, be.decodeFunctionCallResponse),
  mk('FunctionCallResponse (NULL)', BE.FunctionCallResponse, null as Buffer | null, be.encodeFunctionCallResponse, be.decodeFunctionCallResponse),
  empty('CloseComplete', BE.CloseComplete, be.CLOSE_COMPLETE),
  mk('ReadyForQuery T', BE.ReadyForQuery, 'T' as be.TxStatus, be.encodeReadyForQuery, be.decodeReadyForQuery),
  mk('ReadyForQuery E', BE.ReadyForQuery, 'E' as be.TxStatus, be.encodeReadyForQuery, be.decodeReadyForQuery),
];

function checkFrame(c: Case, f: Frame, where: string): void {
  assert.equal(f.type, c.type, `${c.name} type ${where}`);
  assert.deepEqual(f.raw, c.bytes, `${c.name} raw ${where}`);
  assert.deepEqual(f.payload, c.bytes.subarray(5), `${c.name} payload ${where}`);
  assert.deepEqual(c.decode(f.payload), c.expected, `${c.name} decoded ${where}`);
}

test('every backend message round-trips and carries a correct header', () => {
  for (const c of cases) {
    assert.equal(c.bytes[0], c.type, c.name);
    assert.equal(c.bytes.readInt32BE(1), c.bytes.length - 1, `${c.name} length`);
    assert.deepEqual(c.decode(c.bytes.subarray(5)), c.expected, c.name);
  }
});

test('truncated payloads and trailing bytes are rejected with ERR_PROTOCOL_MALFORMED', () => {
  for (const c of cases) {
    if (!c.strict) continue;
    const payload = c.bytes.subarray(5);
    for (let k = 0; k < payload.length; k++) {
      assert.throws(() => c.decode(payload.subarray(0, k)), isMalformed, `${c.name} cut to ${k} bytes`);
    }
    assert.throws(() => c.decode(Buffer.concat([payload, Buffer.from([0x41])])), isMalformed, `${c.name} + 1 byte`);
  }
});

function readStream(chunks: Buffer[]): Frame[] {
  const r = new FrameReader({ maxMessageSize: 1 << 20 });
  const frames: Frame[] = [];
  for (const ch of chunks) {
    r.push(ch);
    let f: Frame | null;
    while ((f = r.next()) !== null) frames.push(f);
  }
  assert.equal(r.buffered, 0, 'nothing left over');
  return frames;
}

function checkStream(frames: Frame[], where: string): void {
  assert.equal(frames.length, cases.length, `frame count ${where}`);
  for (let i = 0; i < cases.length; i++) checkFrame(cases[i]!, frames[i]!, where);
}

const stream = Buffer.concat(cases.map((c) => c.bytes));

test('every backend message back to back, split into two chunks at every byte', () => {
  for (let split = 0; split <= stream.length; split++) {
    checkStream(readStream([Buffer.from(stream.subarray(0, split)), Buffer.from(stream.subarray(split))]), `split at ${split}`);
  }
});

test('every backend message, byte by byte', () => {
  const chunks: Buffer[] = [];
  for (let i = 0; i < stream.length; i++) chunks.push(stream.subarray(i, i + 1));
  checkStream(readStream(chunks), 'byte by byte');
});

test('every backend message, random multi-way splits', () => {
  let seed = 777;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let round = 0; round < 300; round++) {
    const chunks: Buffer[] = [];
    for (let o = 0; o < stream.length; ) {
      const n = 1 + rand(40);
      chunks.push(stream.subarray(o, o + n));
      o += n;
    }
    checkStream(readStream(chunks), `round ${round}`);
  }
});

test('prebuilt constants equal what the encoders build', () => {
  const empty = (type: number) => Buffer.from([type, 0, 0, 0, 4]);
  assert.deepEqual(be.AUTH_OK, be.encodeAuthentication({ kind: 'ok' }));
  assert.deepEqual(be.PARSE_COMPLETE, empty(BE.ParseComplete));
  assert.deepEqual(be.BIND_COMPLETE, empty(BE.BindComplete));
  assert.deepEqual(be.CLOSE_COMPLETE, empty(BE.CloseComplete));
  assert.deepEqual(be.NO_DATA, empty(BE.NoData));
  assert.deepEqual(be.PORTAL_SUSPENDED, empty(BE.PortalSuspended));
  assert.deepEqual(be.EMPTY_QUERY_RESPONSE, empty(BE.EmptyQueryResponse));
  assert.deepEqual(be.COPY_DONE_BE, empty(BE.CopyDone));
  assert.deepEqual(be.COPY_DONE_BE, COPY_DONE);
  assert.deepEqual(be.READY_IDLE, Buffer.from([BE.ReadyForQuery, 0, 0, 0, 5, 0x49]));
  assert.deepEqual(be.READY_IN_TXN, Buffer.from([BE.ReadyForQuery, 0, 0, 0, 5, 0x54]));
  assert.deepEqual(be.READY_FAILED, Buffer.from([BE.ReadyForQuery, 0, 0, 0, 5, 0x45]));
  assert.equal(be.encodeReadyForQuery('I'), be.READY_IDLE);
});

test('errorFromPgq builds S, V, C, M (+D, H) in that order', () => {
  const err = new PgqError('ERR_PROTOCOL_TOO_LARGE', 'message too large', {
    sqlstate: SqlState.PROGRAM_LIMIT_EXCEEDED,
    severity: 'FATAL',
    hint: 'raise max_message_size',
  });
  const bytes = be.errorFromPgq(err);
  assert.equal(bytes[0], BE.ErrorResponse);
  const f = be.decodeErrorFields(bytes.subarray(5));
  assert.deepEqual(f, { S: 'FATAL', V: 'FATAL', C: '54000', M: 'message too large', H: 'raise max_message_size' });
  assert.deepEqual(Object.keys(f), ['S', 'V', 'C', 'M', 'H']);
  const plain = be.decodeErrorFields(be.errorFromPgq({ sqlstate: '57014', message: 'canceled', severity: 'ERROR', detail: 'd' }).subarray(5));
  assert.deepEqual(Object.keys(plain), ['S', 'V', 'C', 'M', 'D']);
});

test('ErrorResponse keeps field order as given and refuses bad field codes', () => {
  const f = { M: 'm', C: 'XX000', S: 'ERROR' };
  assert.deepEqual(Object.keys(be.decodeErrorFields(be.encodeErrorResponse(f).subarray(5))), ['M', 'C', 'S']);
  const isEncode = (e: unknown) => e instanceof PgqError && e.code === 'ERR_PROTOCOL_ENCODE';
  assert.throws(() => be.encodeErrorResponse({ MM: 'x' }), isEncode);
  assert.throws(() => be.encodeErrorResponse({ '': 'x' }), isEncode);
});

test('malformed backend payloads are rejected', () => {
  assert.throws(() => be.decodeReadyForQuery(Buffer.from('X')), isMalformed);
  assert.throws(() => be.decodeDataRow(Buffer.from([0, 1, 0xff, 0xff, 0xff, 0xfe])), isMalformed);
  assert.throws(() => be.decodeDataRow(Buffer.from([0, 1, 0, 0, 0, 9, 1, 2])), isMalformed, 'value longer than payload');
  assert.throws(() => be.decodeFunctionCallResponse(Buffer.from([0xff, 0xff, 0xff, 0xf0])), isMalformed);
  assert.throws(() => be.decodeNegotiateProtocolVersion(Buffer.from([0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff])), isMalformed);
  assert.throws(() => be.decodeErrorFields(Buffer.from('Mno terminator')), isMalformed);
});

test('commandTagRows', () => {
  const expect: [string, number | null][] = [
    ['INSERT 0 5', 5],
    ['UPDATE 3', 3],
    ['SELECT 7', 7],
    ['COPY 10', 10],
    ['DELETE 1', 1],
    ['MERGE 2', 2],
    ['FETCH 4', 4],
    ['MOVE 1', 1],
    ['UPDATE 0', 0],
    ['INSERT 0 12345678901', 12345678901],
    ['CREATE TABLE', null],
    ['BEGIN', null],
    ['SELECT', null],
    ['INSERT 5', null],
    ['UPDATE x', null],
    ['', null],
  ];
  for (const [tag, rows] of expect) assert.equal(be.commandTagRows(tag), rows, tag);
});

type PgParser = new () => { parse(buf: Buffer, cb: (msg: unknown) => void): void };

async function loadPgParser(): Promise<PgParser | null> {
  try {
    return (await import('pg-protocol/dist/parser.js')).Parser as unknown as PgParser;
  } catch {
    try {
      const req = createRequire(path.join(process.cwd(), 'package.json'));
      return (req('pg-protocol/dist/parser.js') as { Parser: PgParser }).Parser;
    } catch {
      return null;
    }
  }
}

test('node-postgres (pg-protocol) parser reads what we encode', async (t) => {
  const Parser = await loadPgParser();
  if (Parser === null) {
    t.skip('pg-protocol not resolvable');
    return;
  }
  const msgs: Record<string, unknown>[] = [];
  const p = new Parser();
  const ours = Buffer.concat([
    be.AUTH_OK,
    be.encodeAuthentication({ kind: 'md5', salt: Buffer.from([1, 2, 3, 4]) }),
    be.encodeAuthentication({ kind: 'sasl', mechanisms: ['SCRAM-SHA-256'] }),
    be.encodeAuthentication({ kind: 'sasl-continue', data: Buffer.from('r=1') }),
    be.encodeBackendKeyData(5, 6),
    be.encodeParameterStatus('TimeZone', 'UTC'),
    be.encodeRowDescription(fields),
    be.encodeDataRow(['1', null]),
    be.encodeCommandComplete('SELECT 1'),
    be.encodeParameterDescription([23]),
    be.encodeCopyOutResponse(0, [0, 0]),
    be.encodeNotification(9, 'ch', 'hi'),
    be.encodeErrorResponse(allErrorFields),
    be.READY_IN_TXN,
  ]);
  p.parse(ours, (m) => msgs.push(m as Record<string, unknown>));
  assert.deepEqual(
    msgs.map((m) => m['name']),
    ['authenticationOk', 'authenticationMD5Password', 'authenticationSASL', 'authenticationSASLContinue', 'backendKeyData', 'parameterStatus',
      'rowDescription', 'dataRow', 'commandComplete', 'parameterDescription', 'copyOutResponse', 'notification', 'error', 'readyForQuery'],
  );
  assert.deepEqual(msgs[1]!['salt'], Buffer.from([1, 2, 3, 4]));
  assert.deepEqual(msgs[2]!['mechanisms'], ['SCRAM-SHA-256']);
  assert.equal(msgs[3]!['data'], 'r=1');
  assert.equal(msgs[4]!['processID'], 5);
  assert.equal(msgs[4]!['secretKey'], 6);
  assert.equal(msgs[5]!['parameterValue'], 'UTC');
  const f = (msgs[6]!['fields'] as Record<string, unknown>[])[1]!;
  assert.equal(f['name'], 'název');
  assert.equal(f['dataTypeID'], 4294967295);
  assert.equal(f['dataTypeModifier'], 68);
  assert.deepEqual(msgs[7]!['fields'], ['1', null]);
  assert.equal(msgs[8]!['text'], 'SELECT 1');
  assert.deepEqual(msgs[9]!['dataTypeIDs'], [23]);
  assert.equal(msgs[11]!['channel'], 'ch');
  assert.equal(msgs[12]!['code'], '23505');
  assert.equal(msgs[12]!['routine'], '_bt_check_unique');
  assert.equal(msgs[13]!['status'], 'T');
});

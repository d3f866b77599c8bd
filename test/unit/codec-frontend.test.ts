// Tests for frontend (client -> server) messages: round-trip of every message,
// truncation and trailing-byte rejection, a startup-mode stream split at every
// byte, and agreement with node-postgres' serializer.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { FrameReader, type Frame } from '../../src/protocol/reader.js';
import { PgqError } from '../../src/errors.js';
import { FE, PROTOCOL_3_0 } from '../../src/protocol/constants.js';
import * as fe from '../../src/protocol/frontend.js';

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

/** A message with an empty payload: decoding checks emptiness. */
function empty(name: string, type: number, bytes: Buffer): Case {
  return { name, type, bytes, expected: 0, decode: (p) => p.length, strict: false };
}

type PgSerialize = typeof import('pg-protocol/dist/serializer.js').serialize;

/** node-postgres' serializer as an oracle; resolved from the build or, for out-of-tree builds, from the cwd. */
async function loadPgSerializer(): Promise<PgSerialize | null> {
  try {
    return (await import('pg-protocol/dist/serializer.js')).serialize;
  } catch {
    try {
      const req = createRequire(path.join(process.cwd(), 'package.json'));
      return (req('pg-protocol/dist/serializer.js') as { serialize: PgSerialize }).serialize;
    } catch {
      return null;
    }
  }
}

const isMalformed = (e: unknown) => e instanceof PgqError && e.code === 'ERR_PROTOCOL_MALFORMED' && e.sqlstate === '08P01';

const startupCases: Case[] = [
  mk('SSLRequest', 0, { kind: 'ssl' } as fe.StartupPacket, () => fe.encodeSSLRequest(), fe.decodeStartupPacket),
  mk('GSSENCRequest', 0, { kind: 'gssenc' } as fe.StartupPacket, () => fe.encodeGSSENCRequest(), fe.decodeStartupPacket),
  mk(
    'StartupMessage',
    0,
    {
      kind: 'startup',
      protocolVersion: PROTOCOL_3_0,
      params: { user: 'alice', database: 'shop', application_name: 'přehled ✓', options: '-c search_path=a,b', _pq_x: '' },
    } as fe.StartupPacket,
    (v) => fe.encodeStartup((v as { params: Record<string, string> }).params),
    fe.decodeStartupPacket,
  ),
];

const messageCases: Case[] = [
  mk('Query', FE.Query, 'SELECT 1', fe.encodeQuery, fe.decodeQuery),
  mk('Query (empty)', FE.Query, '', fe.encodeQuery, fe.decodeQuery),
  mk('Query (unicode, long)', FE.Query, "INSERT INTO t VALUES ('žluťoučký 🐎')".repeat(50), fe.encodeQuery, fe.decodeQuery),
  mk('Parse', FE.Parse, { name: 's1', sql: 'SELECT $1::int, $2, $3', paramTypes: [23, 0, 4294967295] }, fe.encodeParse, fe.decodeParse),
  mk('Parse (unnamed, no types)', FE.Parse, { name: '', sql: 'BEGIN', paramTypes: [] }, fe.encodeParse, fe.decodeParse),
  mk(
    'Bind',
    FE.Bind,
    {
      portal: 'p1',
      statement: 's1',
      paramFormats: [0, 1],
      params: [Buffer.from('42'), null, Buffer.alloc(0), Buffer.from([0, 0, 0, 7]), null],
      resultFormats: [1, 0, 1],
    },
    fe.encodeBind,
    fe.decodeBind,
  ),
  mk('Bind (all NULL)', FE.Bind, { portal: '', statement: '', paramFormats: [], params: [null, null, null], resultFormats: [] }, fe.encodeBind, fe.decodeBind),
  mk('Bind (empty)', FE.Bind, { portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] }, fe.encodeBind, fe.decodeBind),
  mk('Describe S', FE.Describe, { kind: 'S', name: 's1' } as fe.Describe, fe.encodeDescribe, fe.decodeDescribe),
  mk('Describe P', FE.Describe, { kind: 'P', name: '' } as fe.Describe, fe.encodeDescribe, fe.decodeDescribe),
  mk('Execute', FE.Execute, { portal: '', maxRows: 0 }, fe.encodeExecute, fe.decodeExecute),
  mk('Execute (limited)', FE.Execute, { portal: 'p1', maxRows: 100 }, fe.encodeExecute, fe.decodeExecute),
  mk('Close S', FE.Close, { kind: 'S', name: 's1' } as fe.Close, fe.encodeClose, fe.decodeClose),
  mk('Close P', FE.Close, { kind: 'P', name: 'p1' } as fe.Close, fe.encodeClose, fe.decodeClose),
  empty('Sync', FE.Sync, fe.SYNC),
  empty('Flush', FE.Flush, fe.FLUSH),
  mk('CopyData', FE.CopyData, Buffer.from('1\tone\n2\ttwo\n'), fe.encodeCopyData, fe.decodeCopyData, false),
  mk('CopyData (empty)', FE.CopyData, Buffer.alloc(0), fe.encodeCopyData, fe.decodeCopyData, false),
  empty('CopyDone', FE.CopyDone, fe.COPY_DONE),
  mk('CopyFail', FE.CopyFail, 'client gave up', fe.encodeCopyFail, fe.decodeCopyFail),
  mk('PasswordMessage', FE.Password, 'md5' + 'a'.repeat(32), fe.encodePassword, fe.decodePassword),
  mk(
    'SASLInitialResponse',
    FE.Password,
    { mechanism: 'SCRAM-SHA-256', data: Buffer.from('n,,n=,r=rOprNGfwEbeRWgbNEkqO') as Buffer | null },
    (v) => fe.encodeSASLInitialResponse(v.mechanism, v.data),
    fe.decodeSASLInitialResponse,
  ),
  mk(
    'SASLInitialResponse (no data)',
    FE.Password,
    { mechanism: 'SCRAM-SHA-256-PLUS', data: null as Buffer | null },
    (v) => fe.encodeSASLInitialResponse(v.mechanism, v.data),
    fe.decodeSASLInitialResponse,
  ),
  mk('SASLResponse', FE.Password, Buffer.from('c=biws,r=abc,p=xyz'), fe.encodeSASLResponse, fe.decodeSASLResponse, false),
  mk('GSSResponse', FE.Password, Buffer.from([0x60, 0x82, 0, 1]), fe.encodeGSSResponse, fe.decodeSASLResponse, false),
  mk(
    'FunctionCall',
    FE.FunctionCall,
    { oid: 2147483650, argFormats: [1], args: [Buffer.from([0, 0, 0, 1]), null], resultFormat: 1 },
    fe.encodeFunctionCall,
    fe.decodeFunctionCall,
  ),
  empty('Terminate', FE.Terminate, fe.TERMINATE),
];

function checkFrame(c: Case, f: Frame, where: string): void {
  assert.equal(f.type, c.type, `${c.name} type ${where}`);
  assert.deepEqual(f.raw, c.bytes, `${c.name} raw ${where}`);
  assert.deepEqual(f.payload, c.bytes.subarray(c.type === 0 ? 4 : 5), `${c.name} payload ${where}`);
  assert.deepEqual(c.decode(f.payload), c.expected, `${c.name} decoded ${where}`);
}

test('every frontend message round-trips and carries a correct header', () => {
  for (const c of [...startupCases, ...messageCases]) {
    const headerLength = c.type === 0 ? 4 : 5;
    if (c.type !== 0) assert.equal(c.bytes[0], c.type, c.name);
    assert.equal(c.bytes.readInt32BE(headerLength - 4), c.bytes.length - (headerLength - 4), `${c.name} length`);
    assert.deepEqual(c.decode(c.bytes.subarray(headerLength)), c.expected, c.name);
  }
});

test('truncated payloads and trailing bytes are rejected with ERR_PROTOCOL_MALFORMED', () => {
  for (const c of [...startupCases, ...messageCases]) {
    if (!c.strict) continue;
    const payload = c.bytes.subarray(c.type === 0 ? 4 : 5);
    for (let k = 0; k < payload.length; k++) {
      assert.throws(() => c.decode(payload.subarray(0, k)), isMalformed, `${c.name} cut to ${k} bytes`);
    }
    assert.throws(() => c.decode(Buffer.concat([payload, Buffer.from([0x41])])), isMalformed, `${c.name} + 1 byte`);
  }
});

/** Feed chunks; answer SSL/GSSENC requests by expecting another startup packet. */
function readStream(chunks: Buffer[]): Frame[] {
  const r = new FrameReader({ maxMessageSize: 1 << 20, startup: true });
  const frames: Frame[] = [];
  for (const ch of chunks) {
    r.push(ch);
    let f: Frame | null;
    while ((f = r.next()) !== null) {
      frames.push(f);
      if (f.type === 0) {
        const kind = fe.decodeStartupPacket(f.payload).kind;
        if (kind === 'ssl' || kind === 'gssenc') r.expectStartup();
      }
    }
  }
  assert.equal(r.buffered, 0, 'nothing left over');
  return frames;
}

function checkStream(cases: Case[], frames: Frame[], where: string): void {
  assert.equal(frames.length, cases.length, `frame count ${where}`);
  for (let i = 0; i < cases.length; i++) checkFrame(cases[i]!, frames[i]!, where);
}

const streamCases = [...startupCases, ...messageCases];
const stream = Buffer.concat(streamCases.map((c) => c.bytes));

test('startup + every frontend message back to back, split into two chunks at every byte', () => {
  for (let split = 0; split <= stream.length; split++) {
    // copies so that no chunk shares memory with the source
    const frames = readStream([Buffer.from(stream.subarray(0, split)), Buffer.from(stream.subarray(split))]);
    checkStream(streamCases, frames, `split at ${split}`);
  }
});

test('startup + every frontend message, byte by byte', () => {
  const chunks: Buffer[] = [];
  for (let i = 0; i < stream.length; i++) chunks.push(stream.subarray(i, i + 1));
  checkStream(streamCases, readStream(chunks), 'byte by byte');
});

test('startup + every frontend message, random multi-way splits', () => {
  let seed = 12345;
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
    checkStream(streamCases, readStream(chunks), `round ${round}`);
  }
});

test('CancelRequest as the first packet, split at every byte', () => {
  const bytes = fe.encodeCancelRequest(4242, -123456789);
  assert.equal(bytes.length, 16);
  for (let split = 0; split <= bytes.length; split++) {
    const frames = readStream([bytes.subarray(0, split), bytes.subarray(split)]);
    assert.equal(frames.length, 1);
    assert.deepEqual(fe.decodeStartupPacket(frames[0]!.payload), { kind: 'cancel', pid: 4242, secret: -123456789 });
  }
  assert.throws(() => fe.decodeStartupPacket(bytes.subarray(4, 15)), isMalformed);
});

test('startup packet edge cases', () => {
  // protocol 3.2 with a _pq_ option: still a 3.x startup
  const v32 = fe.encodeStartup({ user: 'u', _pq_: 'x' }, (3 << 16) | 2);
  assert.deepEqual(fe.decodeStartupPacket(v32.subarray(4)), {
    kind: 'startup',
    protocolVersion: (3 << 16) | 2,
    params: { user: 'u', _pq_: 'x' },
  });
  // unknown major: returned for the caller to reject, params best effort
  const v2 = Buffer.alloc(296 - 4);
  v2.writeInt32BE(2 << 16, 0);
  v2.write('alice', 4);
  assert.deepEqual(fe.decodeStartupPacket(v2), { kind: 'startup', protocolVersion: 2 << 16, params: {} });
  const v4 = fe.encodeStartup({ user: 'u' }, 4 << 16);
  assert.deepEqual(fe.decodeStartupPacket(v4.subarray(4)), { kind: 'startup', protocolVersion: 4 << 16, params: { user: 'u' } });
  // a parameter name without a value
  const noValue = Buffer.concat([Buffer.from([0, 3, 0, 0]), Buffer.from('user\0')]);
  assert.throws(() => fe.decodeStartupPacket(noValue), isMalformed);
  // "__proto__" is kept as a plain key
  const proto = fe.decodeStartupPacket(Buffer.concat([Buffer.from([0, 3, 0, 0]), Buffer.from('__proto__\0x\0\0')]));
  assert.equal(proto.kind, 'startup');
  if (proto.kind === 'startup') {
    assert.equal(Object.getOwnPropertyDescriptor(proto.params, '__proto__')?.value, 'x');
    assert.equal(Object.getPrototypeOf(proto.params), Object.prototype);
  }
  assert.throws(() => fe.encodeStartup({ '': 'x' }), (e: unknown) => e instanceof PgqError && e.code === 'ERR_PROTOCOL_ENCODE');
});

test('Bind with NULL parameters (-1 length) decodes to null; bad lengths and kinds are rejected', () => {
  const b = fe.encodeBind({ portal: '', statement: 's', paramFormats: [], params: [null, Buffer.from('x'), null], resultFormats: [] });
  const payload = b.subarray(5);
  // s\0 = portal '' (1) + 's\0' (2), formats count (2), params count (2), then -1
  assert.equal(payload.readInt32BE(7), -1);
  assert.deepEqual(fe.decodeBind(payload).params, [null, Buffer.from('x'), null]);
  const bad = Buffer.from(payload);
  bad.writeInt32BE(-2, 7);
  assert.throws(() => fe.decodeBind(bad), isMalformed);
  assert.throws(() => fe.decodeDescribe(Buffer.from('Xname\0')), isMalformed);
  assert.throws(() => fe.decodeClose(Buffer.from('\0')), isMalformed);
  assert.throws(() => fe.decodeSASLInitialResponse(Buffer.from([0x6d, 0, 0xff, 0xff, 0xff, 0xfe])), isMalformed);
  // Bind whose value length runs past the payload
  const overrun = Buffer.from(fe.encodeBind({ portal: '', statement: '', paramFormats: [], params: [Buffer.from('abc')], resultFormats: [] }).subarray(5));
  overrun.writeInt32BE(1000, 6);
  assert.throws(() => fe.decodeBind(overrun), isMalformed);
});

test('encoders refuse values the wire cannot carry', () => {
  const isEncode = (e: unknown) => e instanceof PgqError && e.code === 'ERR_PROTOCOL_ENCODE';
  assert.throws(() => fe.encodeQuery('select 1\0; drop table t'), isEncode);
  const tooMany = new Array<Buffer | null>(65536).fill(null);
  assert.throws(() => fe.encodeBind({ portal: '', statement: '', paramFormats: [], params: tooMany, resultFormats: [] }), isEncode);
  // the shared writer is usable after a failed encode
  assert.deepEqual(fe.decodeQuery(fe.encodeQuery('ok').subarray(5)), 'ok');
  // 65535 parameters is the limit and works
  const max = new Array<Buffer | null>(65535).fill(null);
  assert.equal(fe.decodeBind(fe.encodeBind({ portal: '', statement: '', paramFormats: [], params: max, resultFormats: [] }).subarray(5)).params.length, 65535);
});

test('encoded results do not share memory with later encodes', () => {
  const a = fe.encodeQuery('first');
  const b = fe.encodeQuery('second');
  assert.equal(fe.decodeQuery(a.subarray(5)), 'first');
  assert.equal(fe.decodeQuery(b.subarray(5)), 'second');
});

test('agrees byte for byte with node-postgres (pg-protocol) serializer', async (t) => {
  const serialize = await loadPgSerializer();
  if (serialize === null) {
    t.skip('pg-protocol not resolvable');
    return;
  }
  assert.deepEqual(fe.encodeQuery('SELECT 1'), serialize.query('SELECT 1'));
  assert.deepEqual(
    fe.encodeParse({ name: 's1', sql: 'SELECT $1', paramTypes: [23, 25] }),
    serialize.parse({ name: 's1', text: 'SELECT $1', types: [23, 25] }),
  );
  assert.deepEqual(
    fe.encodeBind({ portal: 'p', statement: 's', paramFormats: [0, 0, 1], params: [Buffer.from('a'), null, Buffer.from([1, 2])], resultFormats: [0] }),
    serialize.bind({ portal: 'p', statement: 's', values: ['a', null, Buffer.from([1, 2])] }),
  );
  assert.deepEqual(fe.encodeExecute({ portal: '', maxRows: 0 }), serialize.execute());
  assert.deepEqual(fe.encodeExecute({ portal: 'p', maxRows: 5 }), serialize.execute({ portal: 'p', rows: 5 }));
  assert.deepEqual(fe.encodeDescribe({ kind: 'P', name: 'p' }), serialize.describe({ type: 'P', name: 'p' }));
  assert.deepEqual(fe.encodeClose({ kind: 'S', name: 's' }), serialize.close({ type: 'S', name: 's' }));
  assert.deepEqual(fe.SYNC, serialize.sync());
  assert.deepEqual(fe.FLUSH, serialize.flush());
  assert.deepEqual(fe.TERMINATE, serialize.end());
  assert.deepEqual(fe.COPY_DONE, serialize.copyDone());
  assert.deepEqual(fe.encodeCopyData(Buffer.from('abc')), serialize.copyData(Buffer.from('abc')));
  assert.deepEqual(fe.encodeCopyFail('nope'), serialize.copyFail('nope'));
  assert.deepEqual(fe.encodePassword('secret'), serialize.password('secret'));
  assert.deepEqual(fe.encodeSSLRequest(), serialize.requestSsl());
  assert.deepEqual(fe.encodeCancelRequest(7, 99), serialize.cancel(7, 99));
  assert.deepEqual(
    fe.encodeSASLInitialResponse('SCRAM-SHA-256', Buffer.from('n,,n=,r=x')),
    serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=,r=x'),
  );
  assert.deepEqual(fe.encodeSASLResponse(Buffer.from('c=biws')), serialize.sendSCRAMClientFinalMessage('c=biws'));
  assert.deepEqual(
    fe.encodeStartup({ user: 'u', database: 'd', client_encoding: 'UTF8' }),
    serialize.startup({ user: 'u', database: 'd' }),
  );
});

test('copyDataHeader + data equals encodeCopyData', () => {
  const data = Buffer.from('row\n');
  assert.deepEqual(Buffer.concat([fe.copyDataHeader(data.length), data]), fe.encodeCopyData(data));
});

// Tests for FrameReader: framing across chunk boundaries, views vs joins, and
// length checks made before the body arrives.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameReader, type Frame } from '../../src/protocol/reader.js';
import { PgqError } from '../../src/errors.js';
import {
  encodeCopyData,
  encodeQuery,
  encodeSSLRequest,
  encodeStartup,
  decodeStartupPacket,
  SYNC,
} from '../../src/protocol/frontend.js';
import { FE } from '../../src/protocol/constants.js';

const MiB = 1024 * 1024;

function drainFrames(r: FrameReader): Frame[] {
  const out: Frame[] = [];
  let f: Frame | null;
  while ((f = r.next()) !== null) out.push(f);
  return out;
}

function isCode(code: string, sqlstate: string) {
  return (e: unknown) => e instanceof PgqError && e.code === code && e.sqlstate === sqlstate;
}

test('a frame inside one chunk is a view; one that spans chunks is joined', () => {
  const q = encodeQuery('select 1');
  const chunk = Buffer.concat([q, SYNC]);
  const r = new FrameReader({ maxMessageSize: 1024 });
  r.push(chunk);
  const [a, b] = drainFrames(r);
  assert.ok(a && b);
  assert.equal(a.type, FE.Query);
  assert.equal(a.raw.buffer, chunk.buffer);
  assert.equal(a.raw.byteOffset, chunk.byteOffset);
  assert.equal(a.payload.byteOffset, chunk.byteOffset + 5);
  assert.deepEqual(a.raw, q);
  assert.deepEqual(b.raw, SYNC);
  assert.equal(b.payload.length, 0);
  assert.equal(r.buffered, 0);

  r.push(q.subarray(0, 7));
  assert.equal(r.next(), null);
  assert.equal(r.buffered, 7);
  r.push(q.subarray(7));
  const [c] = drainFrames(r);
  assert.ok(c);
  assert.deepEqual(c.raw, q);
  assert.equal(r.buffered, 0);
});

test('oversize length is rejected as soon as the header is known, before the body', () => {
  const r = new FrameReader({ maxMessageSize: 1000 });
  const header = Buffer.from([FE.CopyData, 0, 0, 0x03, 0xe9]); // length 1001
  r.push(header.subarray(0, 3));
  assert.equal(r.next(), null);
  r.push(header.subarray(3));
  assert.throws(() => r.next(), isCode('ERR_PROTOCOL_TOO_LARGE', '54000'));
  assert.equal(r.buffered, 5, 'nothing of the body was needed');

  const ok = new FrameReader({ maxMessageSize: 1000 });
  ok.push(Buffer.from([FE.CopyData, 0, 0, 0x03, 0xe8])); // length 1000 is allowed
  assert.equal(ok.next(), null);

  const huge = new FrameReader({ maxMessageSize: 1000 });
  huge.push(Buffer.from([FE.Query, 0x7f, 0xff, 0xff, 0xff]));
  assert.throws(() => huge.next(), isCode('ERR_PROTOCOL_TOO_LARGE', '54000'));

  const startup = new FrameReader({ maxMessageSize: 1000, startup: true });
  startup.push(Buffer.from([0, 0, 0x27, 0x10]));
  assert.throws(() => startup.next(), isCode('ERR_PROTOCOL_TOO_LARGE', '54000'));
});

test('length < 4 (startup: < 8) is rejected', () => {
  for (const len of [0, 1, 3, -1, -2147483648]) {
    const r = new FrameReader({ maxMessageSize: 1000 });
    const h = Buffer.alloc(5);
    h[0] = FE.Query;
    h.writeInt32BE(len, 1);
    r.push(h);
    assert.throws(() => r.next(), isCode('ERR_PROTOCOL_BAD_LENGTH', '08P01'), `length ${len}`);
  }
  for (const len of [0, 4, 7, -8]) {
    const r = new FrameReader({ maxMessageSize: 1000, startup: true });
    const h = Buffer.alloc(4);
    h.writeInt32BE(len, 0);
    r.push(h);
    assert.throws(() => r.next(), isCode('ERR_PROTOCOL_BAD_LENGTH', '08P01'), `startup length ${len}`);
  }
  const r = new FrameReader({ maxMessageSize: 1000 });
  r.push(Buffer.from([FE.Sync, 0, 0, 0, 4]));
  assert.equal(r.next()?.type, FE.Sync, 'length 4 (empty payload) is fine');
});

test('a 1 MiB CopyData arriving in 64 KiB chunks is joined once and correctly', () => {
  const data = Buffer.allocUnsafe(MiB);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >>> 8)) & 0xff;
  const msg = Buffer.concat([encodeCopyData(data), SYNC]);
  const r = new FrameReader({ maxMessageSize: 2 * MiB });
  const frames: Frame[] = [];
  for (let o = 0; o < msg.length; o += 64 * 1024) {
    r.push(msg.subarray(o, Math.min(msg.length, o + 64 * 1024)));
    const got = drainFrames(r);
    if (o + 64 * 1024 < MiB) assert.equal(got.length, 0, 'nothing before the last byte');
    frames.push(...got);
  }
  assert.equal(frames.length, 2);
  const [copy, sync] = frames;
  assert.ok(copy && sync);
  assert.equal(copy.type, FE.CopyData);
  assert.equal(copy.payload.length, MiB);
  assert.ok(copy.payload.equals(data));
  assert.notEqual(copy.raw.buffer, msg.buffer, 'spanning frame was joined into its own buffer');
  assert.equal(sync.type, FE.Sync);
  assert.equal(r.buffered, 0);
});

test('many tiny chunks: header split across three chunks, body byte by byte', () => {
  const q = encodeQuery('x'.repeat(3000));
  const r = new FrameReader({ maxMessageSize: 10_000 });
  r.push(q.subarray(0, 1));
  r.push(q.subarray(1, 2));
  assert.equal(r.next(), null);
  r.push(q.subarray(2, 5));
  for (let i = 5; i < q.length; i++) {
    assert.equal(r.next(), null);
    r.push(q.subarray(i, i + 1));
  }
  r.push(Buffer.alloc(0));
  const f = r.next();
  assert.ok(f);
  assert.deepEqual(f.raw, q);
  assert.equal(r.next(), null);
  assert.equal(r.buffered, 0);
});

test('startup mode: one untyped frame, then typed; expectStartup after SSLRequest', () => {
  const stream = Buffer.concat([encodeSSLRequest(), encodeStartup({ user: 'u', database: 'd' }), encodeQuery('q')]);
  for (let split = 0; split <= stream.length; split++) {
    const r = new FrameReader({ maxMessageSize: 1024, startup: true });
    assert.equal(r.expectingStartup, true);
    const frames: Frame[] = [];
    for (const part of [stream.subarray(0, split), stream.subarray(split)]) {
      r.push(part);
      let f: Frame | null;
      while ((f = r.next()) !== null) {
        frames.push(f);
        if (f.type === 0 && decodeStartupPacket(f.payload).kind === 'ssl') r.expectStartup();
      }
    }
    assert.equal(frames.length, 3, `split ${split}`);
    assert.deepEqual(frames.map((f) => f.type), [0, 0, FE.Query]);
    assert.deepEqual(decodeStartupPacket(frames[1]!.payload), {
      kind: 'startup',
      protocolVersion: 196608,
      params: { user: 'u', database: 'd' },
    });
    assert.equal(frames[0]!.raw.length, 8);
    assert.equal(frames[0]!.payload.length, 4);
    assert.equal(r.expectingStartup, false);
  }
});

test('takeByte reads the unframed SSL answer; drain returns what is left', () => {
  const r = new FrameReader({ maxMessageSize: 1024 });
  assert.equal(r.takeByte(), null);
  r.push(Buffer.from('S'));
  r.push(SYNC.subarray(0, 2));
  assert.equal(r.takeByte(), 0x53);
  assert.equal(r.next(), null);
  r.push(SYNC.subarray(2));
  assert.equal(r.next()?.type, FE.Sync);

  const d = new FrameReader({ maxMessageSize: 1024 });
  d.push(Buffer.from('N'));
  d.push(Buffer.from([1, 2]));
  d.push(Buffer.from([3]));
  assert.equal(d.takeByte(), 0x4e);
  assert.deepEqual(d.drain(), Buffer.from([1, 2, 3]));
  assert.equal(d.buffered, 0);
  assert.equal(d.drain().length, 0);
  d.push(SYNC);
  assert.equal(d.next()?.type, FE.Sync);
});

test('a long run of small frames keeps the chunk list bounded and every frame intact', () => {
  const r = new FrameReader({ maxMessageSize: 1024 });
  const q = encodeQuery('select 42');
  let seen = 0;
  for (let i = 0; i < 5000; i++) {
    // each message arrives in two pieces, the second also carrying the start of nothing
    r.push(q.subarray(0, 4));
    r.push(q.subarray(4));
    for (const f of drainFrames(r)) {
      assert.deepEqual(f.raw, q);
      seen++;
    }
  }
  assert.equal(seen, 5000);
  assert.equal(r.buffered, 0);
});

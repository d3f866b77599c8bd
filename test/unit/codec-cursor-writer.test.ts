// Tests for the codec's Cursor (bounds-checked reads) and Writer (length back-patching).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cursor } from '../../src/protocol/cursor.js';
import { Writer } from '../../src/protocol/writer.js';
import { PgqError } from '../../src/errors.js';

function isMalformed(err: unknown): boolean {
  return err instanceof PgqError && err.code === 'ERR_PROTOCOL_MALFORMED' && err.sqlstate === '08P01';
}

test('Cursor reads every width, signed and unsigned', () => {
  const b = Buffer.from([
    0xff, // int8 -1
    0xfe, // uint8 254
    0xff, 0xfe, // int16 -2
    0xff, 0xfd, // uint16 65533
    0xff, 0xff, 0xff, 0xfc, // int32 -4
    0xff, 0xff, 0xff, 0xfb, // uint32 4294967291
    0x68, 0x69, 0x00, // "hi"
    0xc3, 0xa9, 0x00, // "é"
    1, 2, 3, 4, 5,
  ]);
  const c = new Cursor(b);
  assert.equal(c.int8(), -1);
  assert.equal(c.uint8(), 254);
  assert.equal(c.int16(), -2);
  assert.equal(c.uint16(), 65533);
  assert.equal(c.int32(), -4);
  assert.equal(c.uint32(), 4294967291);
  assert.equal(c.cstring(), 'hi');
  assert.equal(c.cstring(), 'é');
  assert.equal(c.remaining, 5);
  const v = c.bytes(2);
  assert.deepEqual([...v], [1, 2]);
  assert.equal(v.buffer, b.buffer, 'bytes() is a view');
  assert.deepEqual([...c.rest()], [3, 4, 5]);
  assert.equal(c.remaining, 0);
  assert.equal(c.pos, b.length);
  c.end('test');
});

test('Cursor honours a start offset, a sub-view and reset', () => {
  const big = Buffer.from([9, 9, 0, 0, 0, 7, 9]);
  const view = big.subarray(2, 6);
  assert.equal(new Cursor(view).int32(), 7);
  assert.equal(new Cursor(big, 2).int32(), 7);
  const c = new Cursor(Buffer.alloc(0));
  c.reset(big, 1);
  assert.equal(c.uint8(), 9);
});

test('every Cursor read past the end throws ERR_PROTOCOL_MALFORMED', () => {
  const reads: [string, (c: Cursor) => unknown, number][] = [
    ['int8', (c) => c.int8(), 1],
    ['uint8', (c) => c.uint8(), 1],
    ['int16', (c) => c.int16(), 2],
    ['uint16', (c) => c.uint16(), 2],
    ['int32', (c) => c.int32(), 4],
    ['uint32', (c) => c.uint32(), 4],
    ['bytes(3)', (c) => c.bytes(3), 3],
  ];
  for (const [name, read, width] of reads) {
    for (let have = 0; have < width; have++) {
      const c = new Cursor(Buffer.alloc(have));
      assert.throws(() => read(c), isMalformed, `${name} with ${have} byte(s)`);
      assert.equal(c.pos, 0, 'a failed read does not move the cursor');
    }
    read(new Cursor(Buffer.alloc(width)));
  }
  assert.throws(() => new Cursor(Buffer.alloc(4)).bytes(-1), isMalformed);
});

test('unterminated cstring throws ERR_PROTOCOL_MALFORMED; terminator beyond a view is not seen', () => {
  assert.throws(() => new Cursor(Buffer.from('abc')).cstring(), isMalformed);
  assert.throws(() => new Cursor(Buffer.alloc(0)).cstring(), isMalformed);
  const whole = Buffer.from('abc\0');
  assert.throws(() => new Cursor(whole.subarray(0, 3)).cstring(), isMalformed);
  assert.equal(new Cursor(Buffer.from([0])).cstring(), '');
});

test('Cursor.end rejects leftover bytes', () => {
  const c = new Cursor(Buffer.from([1, 2]));
  c.uint8();
  assert.throws(() => c.end('X'), isMalformed);
});

test('Writer back-patches lengths of typed and untyped messages', () => {
  const w = new Writer(16);
  w.startMessage(0x51).cstring('select 1').endMessage();
  w.startMessage(0).int32(196608).cstring('user').cstring('u').uint8(0).endMessage();
  w.startMessage(0x53).endMessage();
  const out = w.finish();
  const q = Buffer.concat([Buffer.from([0x51, 0, 0, 0, 13]), Buffer.from('select 1\0')]);
  const s = Buffer.concat([Buffer.from([0, 0, 0, 16, 0, 3, 0, 0]), Buffer.from('user\0u\0\0')]);
  assert.deepEqual(out, Buffer.concat([q, s, Buffer.from([0x53, 0, 0, 0, 4])]));
  assert.equal(w.length, 0, 'finish resets');
  assert.deepEqual(w.startMessage(0x48).endMessage().finish(), Buffer.from([0x48, 0, 0, 0, 4]));
});

test('Writer integer writes accept signed and unsigned forms', () => {
  const out = new Writer().int16(-1).int16(65535).int32(-1).int32(0xffffffff).uint8(-1).uint16(0x1234).uint32(7).finish();
  assert.deepEqual(out, Buffer.from([255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 0x12, 0x34, 0, 0, 0, 7]));
});

test('Writer grows past its initial size and finish() never aliases later writes', () => {
  const w = new Writer(16);
  const big = Buffer.alloc(100_000, 0xab);
  const a = w.startMessage(0x64).bytes(big).endMessage().finish();
  assert.equal(a.length, 100_005);
  assert.equal(a.readUInt32BE(1), 100_004);
  assert.ok(a.subarray(5).equals(big));
  const b = w.startMessage(0x64).bytes(Buffer.from([1])).endMessage().finish();
  const c = w.startMessage(0x64).bytes(Buffer.from([2])).endMessage().finish();
  assert.deepEqual(b, Buffer.from([0x64, 0, 0, 0, 5, 1]));
  assert.deepEqual(c, Buffer.from([0x64, 0, 0, 0, 5, 2]));
  assert.equal(a[5], 0xab);
  // multibyte strings near and above the measuring threshold
  for (const n of [0, 1, 700, 2047, 2048, 5000]) {
    const s = 'é€😀'.repeat(n);
    const out = w.cstring(s).finish();
    assert.equal(out.toString('utf8', 0, out.length - 1), s);
    assert.equal(out[out.length - 1], 0);
  }
});

test('Writer refuses misuse and strings with NUL', () => {
  const w = new Writer();
  assert.throws(() => w.cstring('a\0b'), (e: unknown) => e instanceof PgqError && e.code === 'ERR_PROTOCOL_ENCODE');
  w.reset();
  assert.throws(() => w.endMessage(), (e: unknown) => e instanceof PgqError && e.code === 'ERR_INTERNAL');
  w.startMessage(0x51);
  assert.throws(() => w.startMessage(0x51), (e: unknown) => e instanceof PgqError && e.code === 'ERR_INTERNAL');
  assert.throws(() => w.finish(), (e: unknown) => e instanceof PgqError && e.code === 'ERR_INTERNAL');
  w.reset();
  assert.equal(w.finish().length, 0);
});

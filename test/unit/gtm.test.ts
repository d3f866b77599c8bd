// The gxid allocator: GIDs, the synchronous hot path, prefetch at 80%,
// serialised leases, errors, and unique increasing ids under concurrency and
// across a reopen of the file store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GxidAllocator, formatGid, parseGid } from '../../src/txn/gtm.js';
import { FileStateStore } from '../../src/state/file-store.js';
import type { GxidRange, StateStore } from '../../src/state/store.js';
import { PgqError } from '../../src/errors.js';

/** A store with only leases, controllable: delay, failure, concurrency tracking. */
class FakeStore {
  readonly kind = 'file' as const;
  next = 1n;
  leases = 0;
  inflight = 0;
  maxInflight = 0;
  delayMs = 0;
  fail: Error | null = null;
  /** Hand out this start instead (a broken store). */
  override: bigint | null = null;
  async leaseGxidRange(_id: string, size: number): Promise<GxidRange> {
    this.leases++;
    this.inflight++;
    this.maxInflight = Math.max(this.maxInflight, this.inflight);
    try {
      await new Promise((r) => setTimeout(r, this.delayMs));
      if (this.fail) throw this.fail;
      const start = this.override ?? this.next;
      this.next = start + BigInt(size);
      return { start, end: start + BigInt(size) };
    } finally {
      this.inflight--;
    }
  }
  asStore(): StateStore {
    return this as unknown as StateStore;
  }
}

test('GIDs embed the coordinator id and the gxid', () => {
  const a = new GxidAllocator(new FakeStore().asStore(), 'coord-1');
  assert.equal(a.gid(42n), 'pgq_coord-1_42');
  assert.equal(formatGid('c1', 18446744073709551615n), 'pgq_c1_18446744073709551615');
  assert.deepEqual(parseGid('pgq_coord-1_42'), { coordinatorId: 'coord-1', gxid: 42n });
  assert.deepEqual(a.parseGid(a.gid(7n)), { coordinatorId: 'coord-1', gxid: 7n });
  for (const bad of ['pgq_a_b_1', 'pgq__1', 'pgq_a_', 'pgq_a_01', 'pgq_a_1x', 'foo', 'PGQ_a_1', 'pgq_a_1 ', '']) {
    assert.equal(parseGid(bad), null, bad);
  }
  assert.throws(() => new GxidAllocator(new FakeStore().asStore(), 'a_b'), (e) => e instanceof PgqError && e.code === 'ERR_GTM_BAD_COORDINATOR_ID');
  assert.throws(() => new GxidAllocator(new FakeStore().asStore(), 'a', 0), (e) => e instanceof PgqError && e.code === 'ERR_GTM_BAD_RANGE_SIZE');
});

test('next() returns a bigint synchronously while the range has room; a Promise only when a lease is needed', async () => {
  const store = new FakeStore();
  const a = new GxidAllocator(store.asStore(), 'c1', 10);
  const first = a.next();
  assert.ok(first instanceof Promise, 'no range yet');
  assert.equal(await first, 1n);
  for (let i = 2n; i <= 8n; i++) assert.equal(a.next(), i);
  assert.equal(store.leases, 2, 'the 8th id (80%) started the prefetch');
  await new Promise((r) => setTimeout(r, 5));
  for (let i = 9n; i <= 20n; i++) assert.equal(a.next(), i, 'prefetched range used without waiting');
  assert.equal(a.stats.waits, 1);
  const b = new GxidAllocator(new FakeStore().asStore(), 'c1', 10);
  await b.ready();
  assert.equal(b.next(), 1n);
  assert.equal(b.tryNext(), 2n);
});

test('the hot path costs next to nothing', async (t) => {
  const a = new GxidAllocator(new FakeStore().asStore(), 'c1', 1_000_000);
  await a.ready();
  const n = 200_000;
  const t0 = performance.now();
  let sync = 0;
  for (let i = 0; i < n; i++) if (typeof a.next() === 'bigint') sync++;
  const ns = ((performance.now() - t0) * 1e6) / n;
  t.diagnostic(`next() with room in the range: ${ns.toFixed(0)} ns per call, ${sync}/${n} synchronous`);
  assert.equal(sync, n);
});

test('leases are serialised and waiting callers are served in order', async () => {
  const store = new FakeStore();
  store.delayMs = 2;
  const a = new GxidAllocator(store.asStore(), 'c1', 3);
  const got = await Promise.all(Array.from({ length: 100 }, () => a.nextAsync()));
  assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => BigInt(i + 1)));
  assert.equal(store.maxInflight, 1);
  assert.ok(store.leases >= 34);
});

test('a failed lease rejects the waiting callers; the next call tries again', async () => {
  const store = new FakeStore();
  const a = new GxidAllocator(store.asStore(), 'c1', 5);
  store.fail = new PgqError('ERR_STATE_IO', 'disk on fire');
  const results = await Promise.allSettled([a.nextAsync(), a.nextAsync()]);
  assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
  await assert.rejects(a.ready(), /disk on fire/);
  store.fail = null;
  assert.equal(await a.nextAsync(), 1n);
  assert.equal(a.next(), 2n);
  assert.equal(a.next(), 3n);
  // A failing prefetch (started by the 4th id) does not hurt the ids still in hand.
  store.fail = new Error('flaky');
  assert.equal(a.next(), 4n);
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(a.stats.prefetchFailures, 1);
  assert.equal(a.next(), 5n);
  store.fail = null;
  assert.equal(await a.nextAsync(), 6n, 'a demand lease retries at once');
});

test('a store that would reuse ids is refused', async () => {
  const store = new FakeStore();
  const a = new GxidAllocator(store.asStore(), 'c1', 2);
  assert.equal(await a.nextAsync(), 1n);
  store.override = 2n; // overlaps 1..2
  assert.equal(a.next(), 2n); // its prefetch gets the bad range
  await assert.rejects(a.nextAsync(), (e) => e instanceof PgqError && e.code === 'ERR_GTM_RANGE_REUSED');
});

test('5,000 ids from concurrent callers are unique and increasing, also across reopen', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgq-gtm-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  let prevMax = 0n;
  for (let round = 0; round < 2; round++) {
    const store = new FileStateStore(dir);
    await store.open();
    const a = new GxidAllocator(store, 'c1', 100);
    const b = new GxidAllocator(store, 'c2', 64); // another coordinator id on the same store
    const order: bigint[] = [];
    const others: bigint[] = [];
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 50 }, async (_, w) => {
        for (let i = 0; i < 100; i++) {
          order.push(await a.next());
          if (i % 10 === w % 10) others.push(await b.next());
          if ((i + w) % 7 === 0) await new Promise((r) => setImmediate(r));
        }
      }),
    );
    const ms = performance.now() - t0;
    assert.equal(order.length, 5000);
    for (let i = 1; i < order.length; i++) assert.ok(order[i]! > order[i - 1]!, `id ${order[i]} after ${order[i - 1]}`);
    assert.ok(order[0]! > prevMax, 'ids after reopen are above every earlier one');
    const all = new Set([...order, ...others]);
    assert.equal(all.size, order.length + others.length, 'two coordinators never share an id');
    t.diagnostic(`round ${round}: 5000 ids (tight loop, no work between ids) in ${ms.toFixed(1)} ms, ${a.stats.leases} leases, ${a.stats.waits} calls waited`);
    prevMax = [...all].reduce((x, y) => (y > x ? y : x), 0n);
    await store.close();
    // Ids left unused in the old ranges are skipped, never reused.
  }
});

// The commit barrier (src/txn/barrier.ts): hold() waits for the commits in
// flight, new commits queue behind it and go on after the release, a hold
// ends by itself after maxHoldMs, and the open gate costs no await.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommitBarrier } from '../../src/txn/barrier.js';

const tick = () => new Promise((r) => setImmediate(r));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('an open gate lets commits in synchronously', () => {
  const b = new CommitBarrier();
  assert.equal(b.enter(), undefined);
  assert.equal(b.enter(), undefined);
  assert.equal(b.inside, 2);
  b.exit();
  b.exit();
  assert.equal(b.inside, 0);
  assert.equal(b.closed, false);
});

test('hold() waits until the commits in flight have finished', async () => {
  const b = new CommitBarrier();
  b.enter();
  b.enter();
  let held = false;
  const h = b.hold().then((x) => {
    held = true;
    return x;
  });
  await tick();
  assert.equal(held, false);
  b.exit();
  await tick();
  assert.equal(held, false, 'one commit still in flight');
  b.exit();
  const hold = await h;
  assert.equal(held, true);
  assert.equal(b.closed, true);
  hold.release();
  assert.equal(b.closed, false);
});

test('commits that arrive during a hold (or its drain) queue, then proceed after the release', async () => {
  const b = new CommitBarrier();
  b.enter(); // in flight
  const h = b.hold();
  const order: string[] = [];
  const w1 = b.enter(); // arrives while the hold drains: must wait too
  assert.ok(w1 instanceof Promise);
  void w1.then(() => order.push('c1'));
  b.exit();
  const hold = await h;
  const w2 = b.enter();
  assert.ok(w2 instanceof Promise);
  void w2.then(() => order.push('c2'));
  await sleep(20);
  assert.deepEqual(order, [], 'nothing commits while the barrier is held');
  assert.equal(b.queued, 2);
  const ms = hold.release();
  assert.ok(ms >= 15, `held ${ms} ms`);
  await tick();
  assert.deepEqual(order, ['c1', 'c2']);
  assert.equal(b.inside, 2);
  b.exit();
  b.exit();
  assert.equal(hold.release(), ms, 'a second release changes nothing');
  assert.equal(b.enter(), undefined);
  b.exit();
});

test('a hold ends by itself after maxHoldMs', async () => {
  const b = new CommitBarrier({ maxHoldMs: 50 });
  const hold = await b.hold();
  const w = b.enter();
  assert.ok(w instanceof Promise);
  let through = false;
  void w.then(() => (through = true));
  await sleep(120);
  assert.equal(through, true, 'the queued commit went on');
  assert.equal(hold.autoReleased, true);
  assert.equal(b.autoReleases, 1);
  assert.equal(b.closed, false);
  b.exit();
  hold.release(); // late release by the holder: harmless
  assert.equal(b.closed, false);
});

test('a drain that takes too long fails the hold and lets the queued commits through', async () => {
  const b = new CommitBarrier();
  b.enter(); // a commit that never finishes (within the test)
  const h = b.hold(30);
  const w = b.enter();
  assert.ok(w instanceof Promise);
  await assert.rejects(h, /did not finish within 30 ms/);
  await w; // let in
  assert.equal(b.closed, false);
  assert.equal(b.inside, 2);
  b.exit();
  b.exit();
});

test('holders take turns; commits queued behind the first go before the second holds', async () => {
  const b = new CommitBarrier();
  const first = await b.hold();
  const w = b.enter();
  let secondHeld = false;
  const second = b.hold().then((x) => {
    secondHeld = true;
    return x;
  });
  first.release();
  await w; // admitted at the release
  await tick();
  assert.equal(secondHeld, false, 'the second holder waits for the admitted commit');
  b.exit();
  const s = await second;
  assert.equal(secondHeld, true);
  s.release();
  assert.equal(b.closed, false);
});

test('around() runs a commit inside the gate', async () => {
  const b = new CommitBarrier();
  const hold = await b.hold();
  let ran = false;
  const p = b.around(async () => {
    ran = true;
    return 7;
  });
  await sleep(10);
  assert.equal(ran, false);
  hold.release();
  assert.equal(await p, 7);
  assert.equal(b.inside, 0);
});

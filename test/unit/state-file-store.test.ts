// The embedded file state store: round trips, compare-and-swap on the epoch,
// gxid ranges, group commit, compaction, recovery of torn and temp files,
// the lock file, and the measured cost of recordCommit.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { FileStateStore } from '../../src/state/file-store.js';
import { PREALLOC_BYTES } from '../../src/state/decision-log.js';
import type { ClusterRecord, GxidRange } from '../../src/state/store.js';
import { PgqError } from '../../src/errors.js';

const made: string[] = [];
after(async () => {
  for (const d of made) await fs.rm(d, { recursive: true, force: true });
});

async function tmpDir(): Promise<string> {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), 'pgq-state-'));
  made.push(d);
  return d;
}

async function opened(dir: string, opts = {}): Promise<FileStateStore> {
  const s = new FileStateStore(dir, opts);
  await s.open();
  return s;
}

function rec(epoch: number, states: Array<'up' | 'down' | 'diverged' | 'recovering' | 'removed'> = ['up', 'up', 'up']): ClusterRecord {
  return {
    epoch,
    nodes: states.map((state, i) => ({ id: `n${i + 1}`, state, reason: `r${epoch}`, changedAt: new Date(1700000000000 + epoch).toISOString() })),
  };
}

function isCode(code: string) {
  return (err: unknown): boolean => err instanceof PgqError && err.code === code;
}

function assertDisjointIncreasing(ranges: GxidRange[]): void {
  for (let i = 1; i < ranges.length; i++) {
    assert.ok(ranges[i]!.start >= ranges[i - 1]!.end, `range ${i} ${ranges[i]!.start}..${ranges[i]!.end} overlaps ${ranges[i - 1]!.start}..${ranges[i - 1]!.end}`);
  }
}

/** The pid of a process that has exited (for stale locks). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => child.on('exit', r));
  return child.pid!;
}

test('round trip: cluster record, gxid mark and decisions survive close and reopen', async () => {
  const base = await tmpDir();
  const dir = path.join(base, 'a', 'state');
  const s = await opened(dir);
  assert.equal(s.kind, 'file');
  assert.equal((await fs.stat(dir)).mode & 0o777, 0o700);
  assert.equal(await s.readCluster(), null);
  assert.equal(await s.writeCluster(null, rec(1)), true);
  assert.deepEqual(await s.readCluster(), rec(1));
  const r1 = await s.leaseGxidRange('c1', 1000);
  assert.deepEqual(r1, { start: 1n, end: 1001n });
  await Promise.all(['pgq_c1_1', 'pgq_c1_2', 'pgq_c1_3'].map((g) => s.recordCommit(g)));
  assert.ok(s.hasCommit('pgq_c1_2'));
  assert.ok(!s.hasCommit('pgq_c1_4'));
  s.forgetCommits(['pgq_c1_1', 'not-there']);
  assert.deepEqual(s.commits().sort(), ['pgq_c1_2', 'pgq_c1_3']);
  // A returned record is a copy: changing it changes nothing stored.
  const got = (await s.readCluster())!;
  got.nodes[0]!.state = 'down';
  assert.equal((await s.readCluster())!.nodes[0]!.state, 'up');
  await s.close();

  const files = (await fs.readdir(dir)).sort();
  assert.deepEqual(files, ['cluster.json', 'decisions.log', 'gxid.json']);
  const gx = JSON.parse(await fs.readFile(path.join(dir, 'gxid.json'), 'utf8'));
  assert.equal(gx.next, '1001');
  assert.equal(gx.leases.c1.start, '1');

  const t = await opened(dir);
  assert.deepEqual(await t.readCluster(), rec(1));
  assert.deepEqual(t.commits().sort(), ['pgq_c1_2', 'pgq_c1_3'], 'forgotten decision written as F on close');
  assert.equal(t.highWater(), 1001n);
  assert.deepEqual(await t.leaseGxidRange('c1', 10), { start: 1001n, end: 1011n });
  await t.close();
  await assert.rejects(t.recordCommit('pgq_c1_9'), isCode('ERR_STATE_CLOSED'));
});

test('writeCluster is a compare-and-swap on the epoch', async () => {
  const s = await opened(await tmpDir());
  assert.equal(await s.writeCluster(null, rec(1)), true);
  assert.equal(await s.writeCluster(null, rec(2)), false, 'something is stored already');
  assert.equal(await s.writeCluster(1, rec(2, ['up', 'down', 'up'])), true);
  assert.equal(await s.writeCluster(1, rec(3)), false, 'stale epoch refused');
  assert.deepEqual(await s.readCluster(), rec(2, ['up', 'down', 'up']));
  await assert.rejects(s.writeCluster(2, rec(2)), isCode('ERR_STATE_BAD_RECORD'), 'epoch must grow');
  await assert.rejects(s.writeCluster(2, { epoch: 3, nodes: [{ id: 'n1', state: 'sideways' as 'up', reason: '', changedAt: 'x' }] }), isCode('ERR_STATE_BAD_RECORD'));
  // Two writers race from the same epoch: exactly one wins.
  const results = await Promise.all([s.writeCluster(2, rec(3, ['down', 'down', 'up'])), s.writeCluster(2, rec(3, ['up', 'up', 'down']))]);
  assert.deepEqual(results.sort(), [false, true]);
  assert.equal((await s.readCluster())!.epoch, 3);
  const unsubscribe = s.onClusterChange(() => assert.fail('the file store has no other writer'));
  unsubscribe();
  await s.close();
});

test('gxid ranges never overlap: across coordinators, concurrent leases and reopen', async () => {
  const dir = await tmpDir();
  const all: GxidRange[] = [];
  for (let round = 0; round < 3; round++) {
    const s = await opened(dir);
    const concurrent = await Promise.all(Array.from({ length: 50 }, (_, i) => s.leaseGxidRange(i % 2 ? 'c1' : 'c2', 1 + (i % 7) * 100)));
    all.push(...concurrent);
    all.push(await s.leaseGxidRange('c3', 1));
    assert.ok(s.highWater() >= all[all.length - 1]!.end);
    await s.close();
  }
  assertDisjointIncreasing(all);
  assert.equal(all[0]!.start, 1n);
  const s = await opened(dir);
  await assert.rejects(s.leaseGxidRange('c1', 0), isCode('ERR_STATE_BAD_LEASE'));
  await assert.rejects(s.leaseGxidRange('c1', 1.5), isCode('ERR_STATE_BAD_LEASE'));
  await s.close();
});

test('a decision counts only once it is durable; bad GIDs are refused', async () => {
  const s = await opened(await tmpDir());
  const p = s.recordCommit('pgq_c1_7');
  assert.equal(s.hasCommit('pgq_c1_7'), false);
  await p;
  assert.equal(s.hasCommit('pgq_c1_7'), true);
  await s.recordCommit('pgq_c1_7'); // idempotent
  await assert.rejects(s.recordCommit('has space'), isCode('ERR_STATE_BAD_GID'));
  await assert.rejects(s.recordCommit(''), isCode('ERR_STATE_BAD_GID'));
  await assert.rejects(s.recordCommit('x'.repeat(201)), isCode('ERR_STATE_BAD_GID'));
  await s.close();
});

test('group commit: 1000 concurrent recordCommit calls share a few fsyncs', async (t) => {
  const s = await opened(await tmpDir());
  const before = s.stats.log.fsyncs;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 1000 }, (_, i) => s.recordCommit(`pgq_c1_${i}`)));
  const ms = performance.now() - t0;
  const fsyncs = s.stats.log.fsyncs - before;
  t.diagnostic(`1000 concurrent recordCommit: ${ms.toFixed(2)} ms total, ${fsyncs} fsync(s)`);
  assert.ok(fsyncs >= 1 && fsyncs <= 5, `fsyncs: ${fsyncs}`);
  assert.equal(s.commits().length, 1000);

  // Callers arriving over time (as sessions do) still batch while an fsync runs.
  const b2 = s.stats.log.fsyncs;
  const waits: Array<Promise<void>> = [];
  for (let i = 0; i < 1000; i++) {
    waits.push(s.recordCommit(`pgq_c1_t${i}`));
    if (i % 10 === 9) await new Promise((r) => setImmediate(r));
  }
  await Promise.all(waits);
  const f2 = s.stats.log.fsyncs - b2;
  t.diagnostic(`1000 recordCommit spread over 100 event-loop turns: ${f2} fsyncs`);
  assert.ok(f2 < 250, `fsyncs: ${f2}`);
  await s.close();
});

/** The open flags of this process's file descriptor for `file` (from /proc/self/fdinfo), or null. */
async function openFlags(file: string): Promise<number | null> {
  for (const fd of await fs.readdir('/proc/self/fd')) {
    const target = await fs.readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target !== file) continue;
    const info = await fs.readFile(`/proc/self/fdinfo/${fd}`, 'utf8');
    return parseInt(/^flags:\s*([0-7]+)/m.exec(info)![1]!, 8);
  }
  return null;
}

test('state.fsync false: the log is appended without O_DSYNC and nothing is synced; every record survives reopen', async () => {
  const O_DSYNC = 0o10000;
  const synced = await tmpDir();
  const a = await opened(synced);
  assert.equal(((await openFlags(path.join(synced, 'decisions.log'))) ?? 0) & O_DSYNC, O_DSYNC, 'the default log is opened with O_DSYNC');
  await a.close();

  const dir = await tmpDir();
  const s = await opened(dir, { fsync: false, compactMinLines: 100 });
  const flags = await openFlags(path.join(dir, 'decisions.log'));
  assert.ok(flags !== null, 'the log is open');
  assert.equal(flags & O_DSYNC, 0, 'no O_DSYNC');
  await s.leaseGxidRange('c1', 1000);
  assert.equal(await s.writeCluster(null, rec(1)), true);
  const gids = Array.from({ length: 400 }, (_, i) => `pgq_c1_${i + 1}`);
  await Promise.all(gids.slice(0, 200).map((g) => s.recordCommit(g)));
  for (const g of gids.slice(200)) await s.recordCommit(g); // one batch each
  s.forgetCommits(gids.slice(0, 300)); // over half dead: the next batch compacts
  await s.recordCommit('pgq_c1_998'); // the writer compacts after this batch (after answering it)
  await s.recordCommit('pgq_c1_999'); // queued behind the compaction
  assert.equal(s.stats.log.compactions, 1);
  assert.equal(s.stats.log.fsyncs, 0, 'no sync of any kind');
  assert.ok(s.stats.log.batches >= 201, `batches: ${s.stats.log.batches}`);
  await s.close();
  const t = await opened(dir, { fsync: false });
  assert.deepEqual(new Set(t.commits()), new Set([...gids.slice(300), 'pgq_c1_998', 'pgq_c1_999']));
  assert.equal(t.highWater(), 1001n);
  assert.equal((await t.readCluster())?.epoch, 1);
  await t.close();
});

test('compaction drops forgotten decisions and keeps every live one', async () => {
  const dir = await tmpDir();
  const s = await opened(dir);
  await s.leaseGxidRange('c1', 20_002);
  const gids = Array.from({ length: 12_000 }, (_, i) => `pgq_c1_${i + 1}`);
  for (let i = 0; i < gids.length; i += 2000) await Promise.all(gids.slice(i, i + 2000).map((g) => s.recordCommit(g)));
  const live = new Set(gids.filter((_, i) => i % 12 === 0)); // 1000 stay
  s.forgetCommits(gids.filter((g) => !live.has(g)));
  assert.equal(s.stats.log.compactions, 0);
  await s.recordCommit('pgq_c1_20000'); // the writer compacts after this batch (after answering it)
  live.add('pgq_c1_20000');
  await s.recordCommit('pgq_c1_20001'); // queued behind the compaction
  live.add('pgq_c1_20001');
  assert.equal(s.stats.log.compactions, 1);
  assert.equal(s.stats.log.lines, live.size);
  await s.close();
  const lines = (await fs.readFile(path.join(dir, 'decisions.log'), 'utf8')).trim().split('\n');
  assert.equal(lines.length, live.size);
  const t = await opened(dir);
  assert.deepEqual(new Set(t.commits()), live);
  await t.close();
});

test('a compaction cut short leaves the old log and a temp file: open removes the temp file', async () => {
  const dir = await tmpDir();
  const s = await opened(dir);
  await s.leaseGxidRange('c1', 10);
  await Promise.all(['a', 'b', 'c'].map((g) => s.recordCommit(`pgq_c1_${g}`)));
  await s.close();
  // As if killed after writing the compacted temp file, before the rename.
  await fs.writeFile(path.join(dir, 'decisions.log.tmp-999-1'), 'C pgq_c1_a\n');
  await fs.writeFile(path.join(dir, 'gxid.json.tmp-999-2'), '{"version":1,"ne');
  const t = await opened(dir);
  assert.deepEqual(t.commits().sort(), ['pgq_c1_a', 'pgq_c1_b', 'pgq_c1_c']);
  assert.equal(t.warnings.filter((w) => w.includes('temp file')).length, 2);
  assert.deepEqual((await fs.readdir(dir)).sort(), ['decisions.log', 'gxid.json', 'lock']);
  await t.close();
});

test('recovery: a torn last line is dropped and cut off; torn-page residue is skipped; garbage is refused', async () => {
  const dir = await tmpDir();
  await fs.writeFile(path.join(dir, 'gxid.json'), JSON.stringify({ version: 1, next: '100', leases: {} }));
  await fs.writeFile(path.join(dir, 'decisions.log'), 'C pgq_c1_1\nC pgq_c1_2\nF pgq_c1_1\nC pgq_c1_3\nC pgq_c1_');
  const s = await opened(dir);
  assert.deepEqual(s.commits().sort(), ['pgq_c1_2', 'pgq_c1_3']);
  assert.ok(s.warnings.some((w) => w.includes('torn')));
  await s.recordCommit('pgq_c1_4'); // must start on a line of its own
  await s.close();
  assert.equal(await fs.readFile(path.join(dir, 'decisions.log'), 'utf8'), 'C pgq_c1_1\nC pgq_c1_2\nF pgq_c1_1\nC pgq_c1_3\nC pgq_c1_4\n');

  await fs.appendFile(path.join(dir, 'decisions.log'), '\0\0\0\0_5\nC pgq_c1_6\n');
  const t = await opened(dir);
  assert.deepEqual(t.commits().sort(), ['pgq_c1_2', 'pgq_c1_3', 'pgq_c1_4', 'pgq_c1_6']);
  await t.close();

  await fs.appendFile(path.join(dir, 'decisions.log'), 'X what\n');
  await assert.rejects(opened(dir), isCode('ERR_STATE_CORRUPT'));
  // The failed open released the lock.
  assert.ok(!(await fs.readdir(dir)).includes('lock'));
});

test('the log is preallocated: lines, then zeros; a reopen after a crash writes after the last line; close cuts the zeros off', async () => {
  const dir = await tmpDir();
  const log = path.join(dir, 'decisions.log');
  const s = await opened(dir, { compactMinLines: 100 });
  await s.leaseGxidRange('c1', 1000);
  await s.recordCommit('pgq_c1_1');
  await s.recordCommit('pgq_c1_2');
  // While open: the lines, then PREALLOC_BYTES of zeros (written with the first batch).
  let data = await fs.readFile(log);
  const lines = 'C pgq_c1_1\nC pgq_c1_2\n';
  assert.equal(data.length, 'C pgq_c1_1\n'.length + PREALLOC_BYTES);
  assert.equal(data.subarray(0, lines.length).toString('latin1'), lines);
  assert.ok(data.subarray(lines.length).every((b) => b === 0), 'zeros after the last line');

  // What a SIGKILL leaves (the file as it is now, zeros included) opens cleanly elsewhere: no torn line reported.
  const copy = await tmpDir();
  await fs.copyFile(path.join(dir, 'gxid.json'), path.join(copy, 'gxid.json'));
  await fs.copyFile(log, path.join(copy, 'decisions.log'));
  const c = await opened(copy);
  assert.deepEqual(c.commits().sort(), ['pgq_c1_1', 'pgq_c1_2']);
  assert.deepEqual(c.warnings, []);
  assert.equal(c.stats.log.tornBytes, 0);
  await c.recordCommit('pgq_c1_3'); // into the zeros, right after the last line
  data = await fs.readFile(path.join(copy, 'decisions.log'));
  assert.equal(data.subarray(0, lines.length + 11).toString('latin1'), `${lines}C pgq_c1_3\n`);
  assert.ok(data.subarray(lines.length + 11).every((b) => b === 0));
  await c.close();
  assert.equal(await fs.readFile(path.join(copy, 'decisions.log'), 'latin1'), `${lines}C pgq_c1_3\n`);

  // A torn line inside the zeros is cut off with them; the next line starts where it began.
  await fs.writeFile(path.join(copy, 'decisions.log'), Buffer.concat([Buffer.from(`${lines}C pgq_c1_`), Buffer.alloc(4096)]));
  const t = await opened(copy);
  assert.equal(t.stats.log.tornBytes, 'C pgq_c1_'.length);
  assert.ok(t.warnings.some((w) => w.includes('torn')));
  await t.recordCommit('pgq_c1_4');
  await t.close();
  assert.equal(await fs.readFile(path.join(copy, 'decisions.log'), 'latin1'), `${lines}C pgq_c1_4\n`);

  // A batch that does not fit in the zeros carries the next run of them.
  const big = Array.from({ length: 20_000 }, (_, i) => `pgq_c1_${i + 10}`);
  await s.leaseGxidRange('c1', 20_100);
  await Promise.all(big.map((g) => s.recordCommit(g)));
  data = await fs.readFile(log);
  const text = data.toString('latin1');
  const end = text.lastIndexOf('\n') + 1;
  assert.equal(data.length, end + PREALLOC_BYTES, 'the write that overflowed brought PREALLOC_BYTES more');
  assert.equal(text.slice(0, end).split('\n').length - 1, 20_002);

  // A compaction writes the new file preallocated too.
  s.forgetCommits(big);
  await s.recordCommit('pgq_c1_20050'); // the writer compacts after this batch (after answering it)
  await s.recordCommit('pgq_c1_20051'); // queued behind the compaction: written into the new file's zeros
  assert.equal(s.stats.log.compactions, 1);
  data = await fs.readFile(log);
  const kept = 'C pgq_c1_1\nC pgq_c1_2\nC pgq_c1_20050\n';
  assert.equal(data.length, kept.length + PREALLOC_BYTES);
  assert.equal(data.subarray(0, kept.length + 15).toString('latin1'), `${kept}C pgq_c1_20051\n`);
  await s.close();
  assert.equal(await fs.readFile(log, 'latin1'), `${kept}C pgq_c1_20051\n`);
});

test('corrupt or missing files are refused with ERR_STATE_CORRUPT', async () => {
  const dir = await tmpDir();
  const s = await opened(dir);
  await s.leaseGxidRange('c1', 5);
  await s.recordCommit('pgq_c1_1');
  await s.writeCluster(null, rec(1));
  await s.close();
  await fs.writeFile(path.join(dir, 'cluster.json'), '{"version":1,"epoch":"x","nodes":[]}');
  await assert.rejects(opened(dir), (e) => isCode('ERR_STATE_CORRUPT')(e) && /epoch/.test((e as Error).message));
  await fs.rm(path.join(dir, 'cluster.json'));
  await fs.rename(path.join(dir, 'gxid.json'), path.join(dir, 'gxid.saved'));
  await assert.rejects(opened(dir), (e) => isCode('ERR_STATE_CORRUPT')(e) && /gxid\.json is missing/.test((e as Error).message));
  await fs.writeFile(path.join(dir, 'gxid.json'), '{"version":1,"next":"-3"}');
  await assert.rejects(opened(dir), isCode('ERR_STATE_CORRUPT'));
  await fs.rename(path.join(dir, 'gxid.saved'), path.join(dir, 'gxid.json'));
  const t = await opened(dir);
  assert.equal(t.highWater(), 6n);
  await t.close();
});

test('the lock refuses a second coordinator and takes over stale locks', async () => {
  const dir = await tmpDir();
  const a = await opened(dir);
  assert.equal((await fs.readFile(path.join(dir, 'lock'), 'utf8')).trim(), String(process.pid));
  const b = new FileStateStore(dir);
  await assert.rejects(b.open(), (e) => isCode('ERR_STATE_LOCKED')(e) && (e as Error).message.includes(dir));
  await a.close();
  assert.ok(!(await fs.readdir(dir)).includes('lock'));

  // Held by another live process.
  const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
  try {
    await fs.writeFile(path.join(dir, 'lock'), `${sleeper.pid}\n`);
    const c = new FileStateStore(dir);
    await assert.rejects(c.open(), (e) => isCode('ERR_STATE_LOCKED')(e) && (e as Error).message.includes(`pid ${sleeper.pid}`));
  } finally {
    sleeper.kill('SIGKILL');
  }
  // Left by a dead process: stale.
  await fs.writeFile(path.join(dir, 'lock'), `${await deadPid()}\n`);
  const d = await opened(dir);
  await d.close();
  // Holding our own pid but not taken by this process (a restart that got the same pid): stale.
  await fs.writeFile(path.join(dir, 'lock'), `${process.pid}\n`);
  const e = await opened(dir);
  await e.close();
  // Empty and old (died between create and write): stale; empty and fresh: being taken.
  await fs.writeFile(path.join(dir, 'lock'), '');
  await assert.rejects(new FileStateStore(dir).open(), isCode('ERR_STATE_LOCKED'));
  const old = new Date(Date.now() - 60_000);
  await fs.utimes(path.join(dir, 'lock'), old, old);
  const f = await opened(dir);
  await f.close();
});

test('timing of recordCommit on this machine (single and concurrent)', async (t) => {
  const s = await opened(await tmpDir());
  // Single caller: each call is one write + one fdatasync.
  const single: number[] = [];
  for (let i = 0; i < 300; i++) {
    const t0 = performance.now();
    await s.recordCommit(`pgq_c1_s${i}`);
    single.push(performance.now() - t0);
  }
  single.sort((x, y) => x - y);
  const pct = (a: number[], p: number) => a[Math.min(a.length - 1, Math.floor(a.length * p))]!;
  const mean = single.reduce((x, y) => x + y, 0) / single.length;
  t.diagnostic(`single recordCommit: mean ${mean.toFixed(3)} ms, p50 ${pct(single, 0.5).toFixed(3)} ms, p99 ${pct(single, 0.99).toFixed(3)} ms`);

  // 64 sessions committing in a loop: latency per call and fsyncs per record.
  const f0 = s.stats.log.fsyncs;
  const lat: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 64 }, async (_, w) => {
      for (let i = 0; i < 50; i++) {
        const c0 = performance.now();
        await s.recordCommit(`pgq_c1_w${w}x${i}`);
        lat.push(performance.now() - c0);
      }
    }),
  );
  const total = performance.now() - t0;
  lat.sort((x, y) => x - y);
  const fs2 = s.stats.log.fsyncs - f0;
  t.diagnostic(
    `64 concurrent sessions x 50 recordCommit: ${(3200 / (total / 1000)).toFixed(0)} records/s, latency p50 ${pct(lat, 0.5).toFixed(3)} ms, p99 ${pct(lat, 0.99).toFixed(3)} ms, ${fs2} fsyncs (${(3200 / fs2).toFixed(1)} records per fsync)`,
  );
  assert.ok(fs2 < 3200);

  // A gxid lease: one atomic replace of gxid.json (two fsyncs).
  const l0 = performance.now();
  for (let i = 0; i < 100; i++) await s.leaseGxidRange('c1', 1000);
  t.diagnostic(`leaseGxidRange: mean ${((performance.now() - l0) / 100).toFixed(3)} ms`);
  await s.close();
});

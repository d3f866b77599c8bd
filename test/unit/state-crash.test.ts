// Crash safety of the file state store: a child process leases gxids and
// records commit decisions in a loop (small ranges, a tiny compaction
// threshold so kills also land in compactions and atomic renames) and is
// SIGKILLed at random moments, 20 times on the same directory. After every
// kill the store must reopen with a high-water mark above every id the child
// handed out, and with every decision the child saw acknowledged. The same
// holds with state.fsync = false (a crash of the process, not of the OS).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { FileStateStore } from '../../src/state/file-store.js';
import { parseGid } from '../../src/txn/gtm.js';

const STORE_JS = fileURLToPath(new URL('../../src/state/file-store.js', import.meta.url));
const GTM_JS = fileURLToPath(new URL('../../src/txn/gtm.js', import.meta.url));

// Prints a line only after the fact it reports: `I <id>` after next() gave the
// id, `L <start> <end>` after a raw lease resolved, `R <gid>` after
// recordCommit resolved, `F <gid>` before forgetCommits (so a forgotten
// decision may or may not survive). stdout to a pipe is synchronous on Linux.
const CHILD = `
const { FileStateStore } = await import(${JSON.stringify('file://' + STORE_JS)});
const { GxidAllocator } = await import(${JSON.stringify('file://' + GTM_JS)});
const store = new FileStateStore(process.argv[2], { compactMinLines: 40, forgetFlushLines: 4, fsync: process.argv[3] !== 'nosync' });
await store.open();
const alloc = new GxidAllocator(store, 'c1', 7);
const out = (s) => process.stdout.write(s + '\\n');
out('ready');
async function worker() {
  for (;;) {
    const id = await alloc.next();
    out('I ' + id);
    const gid = alloc.gid(id);
    await store.recordCommit(gid);
    out('R ' + gid);
    if (id % 20n !== 0n) { out('F ' + gid); store.forgetCommits([gid]); }
  }
}
async function leaser() {
  for (;;) {
    const r = await store.leaseGxidRange('c2', 5);
    out('L ' + r.start + ' ' + r.end);
  }
}
for (let w = 0; w < 8; w++) worker();
leaser();
`;

interface Round {
  ids: bigint[];
  recorded: string[];
  forgotten: Set<string>;
  lines: number;
}

async function runAndKill(script: string, dir: string, delayMs: number, fsync: boolean): Promise<Round> {
  const child = spawn(process.execPath, [script, dir, fsync ? 'sync' : 'nosync'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  // 'close': the child exited and its stdout and stderr are drained.
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child not ready: ${err}`)), 15000);
    const onData = () => {
      if (out.includes('ready\n')) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    void exited.then(() => reject(new Error(`child exited early: ${err}`)));
  });
  await new Promise((r) => setTimeout(r, delayMs));
  child.kill('SIGKILL');
  await exited;
  assert.equal(err, '', 'child wrote to stderr');
  const complete = out.slice(0, out.lastIndexOf('\n') + 1).split('\n').filter(Boolean);
  const round: Round = { ids: [], recorded: [], forgotten: new Set(), lines: complete.length };
  for (const line of complete) {
    const [kind, a, b] = line.split(' ');
    if (kind === 'I') round.ids.push(BigInt(a!));
    else if (kind === 'L') for (let i = BigInt(a!); i < BigInt(b!); i++) round.ids.push(i);
    else if (kind === 'R') round.recorded.push(a!);
    else if (kind === 'F') round.forgotten.add(a!);
  }
  return round;
}

for (const fsync of [true, false]) {
  test(`SIGKILL at random moments: no gxid handed out twice, no acknowledged decision lost (state.fsync ${fsync})`, { timeout: 180_000 }, async (t) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgq-crash-'));
    const script = path.join(dir, '..', `${path.basename(dir)}-child.mjs`);
    await fs.writeFile(script, CHILD);
    const stateDir = path.join(dir, 'state');
    const seen = new Set<bigint>();
    const mustHave = new Set<string>();
    let handedOut = 0;
    let recorded = 0;
    const repairs: string[] = [];
    let compactionsSeen = 0;
    try {
      for (let round = 0; round < 20; round++) {
        const delay = 20 + Math.floor(Math.random() * 280);
        const r = await runAndKill(script, stateDir, delay, fsync);
        handedOut += r.ids.length;
        recorded += r.recorded.length;
        for (const id of r.ids) {
          assert.ok(!seen.has(id), `round ${round}: gxid ${id} handed out twice`);
          seen.add(id);
        }
        for (const g of r.recorded) if (!r.forgotten.has(g)) mustHave.add(g);
        for (const g of r.forgotten) mustHave.delete(g);

        const s = new FileStateStore(stateDir, { fsync });
        await s.open(); // the dead child's lock is stale
        repairs.push(...s.warnings);
        const hw = s.highWater();
        for (const id of r.ids) assert.ok(id < hw, `round ${round}: id ${id} not below the high-water mark ${hw}`);
        const commits = new Set(s.commits());
        for (const g of mustHave) assert.ok(commits.has(g), `round ${round} (killed after ${delay} ms): acknowledged decision ${g} lost`);
        for (const g of commits) {
          const p = parseGid(g);
          assert.ok(p !== null && seen.has(p.gxid), `round ${round}: decision ${g} for an id never handed out`);
        }
        const lines = (await fs.readFile(path.join(stateDir, 'decisions.log'), 'utf8')).split('\n').length - 1;
        if (lines < r.recorded.length) compactionsSeen++;
        await s.close();
      }
    } finally {
      await fs.rm(script, { force: true });
      await fs.rm(dir, { recursive: true, force: true });
    }
    t.diagnostic(`20 kills: ${handedOut} ids handed out, ${recorded} decisions acknowledged, ${mustHave.size} still live; ${compactionsSeen} rounds compacted; repairs on reopen: ${repairs.length} (${[...new Set(repairs.map((w) => w.replace(/\.tmp-\S*/, '.tmp-*')))].join('; ')})`);
    assert.ok(handedOut > 100, 'the child did some work');
    assert.ok(recorded > 20, 'the child recorded decisions');
  });
}

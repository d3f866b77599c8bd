// The write gate (src/txn/write-gate.ts) and the missed-write rule of the
// cluster: a node not `up` is marked only when a write commits without it,
// a refused/rolled-back write marks nobody, a write that commits as it runs
// marks at once; close() drains the writers (bounded) and holds new ones.
// Also the PGQUORUM NODE command parser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { Cluster } from '../../src/cluster/cluster.js';
import { WriteGate } from '../../src/txn/write-gate.js';
import { parseAdminCommand } from '../../src/admin/node-command.js';

const log = pino({ level: 'silent' });
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function setup(): { cluster: Cluster; gate: WriteGate } {
  const cluster = new Cluster(
    ['n1', 'n2', 'n3'].map((id, i) => ({ id, host: '127.0.0.1', port: 5000 + i, weight: 1 })),
    log,
  );
  const gate = new WriteGate(cluster);
  cluster.onNodeLeft = (n) => gate.nodeLeft(n);
  return { cluster, gate };
}

test('a node lost with no write in flight missed nothing; a write that then commits marks it', async () => {
  const { cluster, gate } = setup();
  const n3 = cluster.byId('n3')!;
  cluster.setState(n3, 'down', 'lost');
  assert.equal(n3.missedWrites, false);
  const w = await gate.enter();
  assert.equal(n3.missedWrites, false, 'entering does not mark');
  await gate.beforeCommit(w);
  assert.equal(n3.missedWrites, true);
  gate.leave(w);
  assert.equal(gate.active, 0);
});

test('a node lost while a write is in flight is marked only if that write commits', async () => {
  const { cluster, gate } = setup();
  const [n2, n3] = [cluster.byId('n2')!, cluster.byId('n3')!];
  const refused = await gate.enter();
  const committed = await gate.enter();
  cluster.setState(n2, 'down', 'lost');
  assert.equal(n2.missedWrites, false);
  gate.leave(refused); // rolled back: nothing
  assert.equal(n2.missedWrites, false);
  await gate.beforeCommit(committed);
  assert.equal(n2.missedWrites, true);
  gate.leave(committed);
  // a write that commits as it runs: a node lost meanwhile is marked at once
  const self = await gate.enter();
  await gate.selfCommitting(self);
  cluster.setState(n3, 'down', 'lost');
  assert.equal(n3.missedWrites, true);
  gate.leave(self);
});

test('outvoted nodes always missed writes; a clean detach never does; attach clears', () => {
  const { cluster } = setup();
  const [n2, n3] = [cluster.byId('n2')!, cluster.byId('n3')!];
  cluster.setState(n2, 'diverged', 'outvoted');
  assert.equal(n2.missedWrites, true);
  n3.detached = true;
  cluster.setState(n3, 'down', 'detached', { clean: true });
  assert.equal(n3.missedWrites, false);
  cluster.setState(n3, 'up', 'attached');
  assert.equal(n3.detached, false);
  assert.equal(n3.missedWrites, false);
});

test('close() waits for the writers inside, holds new ones until open(), and gives up after its timeout', async () => {
  const { gate } = setup();
  const w = await gate.enter();
  let closed: boolean | null = null;
  const c = gate.close(5000).then((v) => (closed = v));
  await tick();
  assert.equal(closed, null);
  let entered = false;
  const late = gate.enter().then((x) => {
    entered = true;
    return x;
  });
  gate.leave(w);
  await c;
  assert.equal(closed, true);
  await tick();
  assert.equal(entered, false, 'new writers wait while the gate is closed');
  gate.open();
  gate.leave(await late);
  assert.equal(entered, true);
  // timeout: a writer that stays inside
  const stuck = await gate.enter();
  assert.equal(await gate.close(30), false);
  assert.equal(gate.isClosed, false, 'open again after a timeout');
  gate.leave(stuck);
});

test('PGQUORUM NODE command parser', () => {
  assert.deepEqual(parseAdminCommand('PGQUORUM NODE DETACH n3'), { verb: 'detach', node: 'n3' });
  assert.deepEqual(parseAdminCommand("  pgquorum node attach 'n-2' ; "), { verb: 'attach', node: 'n-2' });
  assert.deepEqual(parseAdminCommand('pgquorum node ATTACH "n1"'), { verb: 'attach', node: 'n1' });
  assert.equal(parseAdminCommand('SELECT 1'), null);
  assert.equal(parseAdminCommand('prepare p as select 1'), null);
  assert.throws(() => parseAdminCommand('PGQUORUM NODE REBOOT n1'), /syntax error in a pgquorum command/);
});

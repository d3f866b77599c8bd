// Invariants 3 and 4 under coordinator crashes: for each failpoint of two-
// phase commit, SIGKILL the coordinator there during a concurrent workload,
// start it again, and check on the nodes themselves that within 10 seconds
// no pgquorum prepared transaction remains, all nodes are identical, and
// every transaction whose COMMIT the client saw succeed is on every node.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import pg from 'pg';
import { freePort, startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { tableChecksums } from '../helpers/coordinator.js';
import { clientOn, startChildCoordinator, writeConfig, type ChildCoordinator } from '../helpers/child-coordinator.js';
import { FAILPOINTS } from '../../src/txn/failpoints.js';

let cluster: TestCluster;
let configFile: string;
let port: number;
let child: ChildCoordinator | null = null;

before(async () => {
  cluster = await startTestCluster({ nodes: 3 });
  configFile = path.join(cluster.dir, 'crash.json');
  const cfg = structuredClone(cluster.config);
  cfg.coordinator.id = 'crash';
  cfg.state.dir = path.join(cluster.dir, 'state-crash');
  writeConfig(cfg, configFile);
  port = await freePort();
  child = await startChildCoordinator(configFile, port);
  const c = await client();
  await c.query('CREATE TABLE ledger (id text PRIMARY KEY, amount int NOT NULL)');
  await c.query('CREATE TABLE totals (k int PRIMARY KEY, total bigint NOT NULL)');
  await c.query('INSERT INTO totals VALUES (1, 0)');
  await c.end();
  await child.kill('SIGTERM');
});
after(async () => {
  await child?.kill('SIGKILL');
  await cluster?.stop();
});

function client(): Promise<pg.Client> {
  return clientOn(port, cluster.password);
}

/** Transfers until the connection dies; returns the ids whose COMMIT succeeded. */
async function worker(tag: string, autocommit: boolean): Promise<string[]> {
  const acked: string[] = [];
  let c: pg.Client;
  try {
    c = await client();
  } catch {
    return acked;
  }
  for (let i = 0; i < 100_000; i++) {
    const id = `${tag}-${i}`;
    try {
      if (autocommit) {
        await c.query('INSERT INTO ledger VALUES ($1, 1)', [id]);
      } else {
        await c.query('BEGIN');
        await c.query('INSERT INTO ledger VALUES ($1, 1)', [id]);
        await c.query('UPDATE totals SET total = total + 1 WHERE k = 1');
        await c.query('COMMIT');
      }
      acked.push(id);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === '40001' || code === '40P01') continue; // retryable
      break; // the coordinator died
    }
  }
  await c.end().catch(() => {});
  return acked;
}

for (const fp of FAILPOINTS) {
  test(`SIGKILL at ${fp}: restart resolves every prepared transaction; acknowledged commits are everywhere`, async () => {
    child = await startChildCoordinator(configFile, port, { PGQUORUM_FAILPOINT: `${fp}:40` });
    const work = Promise.all([worker(`${fp}-a`, false), worker(`${fp}-b`, false), worker(`${fp}-c`, true), worker(`${fp}-d`, true)]);
    const sig = await Promise.race([child.exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 60_000))]);
    assert.equal(sig, 'SIGKILL', `the coordinator should die at ${fp}:\n${child.output().slice(-2000)}`);
    const acked = (await work).flat();
    assert.ok(acked.length > 0, 'some transactions were acknowledged before the crash');
    // Start again: the resolver must clean up within 10 s.
    child = await startChildCoordinator(configFile, port);
    const deadline = Date.now() + 10_000;
    let left = '';
    for (;;) {
      left = [0, 1, 2].map((i) => cluster.psqlNode(i, "SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'pgq\\_%'")).join(',');
      if (left === '0,0,0' || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(left, '0,0,0', 'prepared transactions left on the nodes');
    const sums = await Promise.all([0, 1, 2].map((i) => tableChecksums(cluster, i)));
    assert.deepEqual(sums[1], sums[0], 'node 2 differs from node 1');
    assert.deepEqual(sums[2], sums[0], 'node 3 differs from node 1');
    const ids = new Set(cluster.psqlNode(0, 'SELECT id FROM ledger').split('\n'));
    const missing = acked.filter((id) => !ids.has(id));
    assert.deepEqual(missing, [], 'acknowledged transactions missing');
    // Explicit transactions keep ledger and totals in step on every node.
    for (const i of [0, 1, 2]) {
      const [ledgerN, total] = cluster
        .psqlNode(i, "SELECT (SELECT count(*) FROM ledger WHERE id NOT LIKE '%-c-%' AND id NOT LIKE '%-d-%'), (SELECT total FROM totals)")
        .split('|');
      assert.equal(ledgerN, total, `node ${i + 1}: ledger rows of explicit transactions != total`);
    }
    await child.kill('SIGTERM');
  });
}

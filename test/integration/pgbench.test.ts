// pgbench through pgquorum (DESIGN.md tier 3): initialise, then TPC-B in the
// simple, extended and prepared protocols with 16 clients; afterwards every
// table is identical on all nodes and pgbench's balance sums agree on each.
// Then select-only: the nodes' own statistics show the reads spread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { tableChecksums, useClusterWithCoordinator } from '../helpers/coordinator.js';
import { waitFor } from '../helpers/ha.js';

const run = promisify(execFile);
const fx = useClusterWithCoordinator({ nodes: 3 });
const DURATION = process.env.PGQUORUM_PGBENCH_SECONDS ?? '20';

async function pgbench(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run('pgbench', args, { env: fx.coord.env(), maxBuffer: 64 * 1024 * 1024, timeout: 300_000 });
}

function processed(out: string): number {
  const m = /number of transactions actually processed: (\d+)/.exec(out);
  assert.ok(m, `pgbench output has no transaction count:\n${out}`);
  return Number(m[1]);
}

function failedCount(out: string): number {
  const m = /number of failed transactions: (\d+)/.exec(out);
  return m ? Number(m[1]) : 0;
}

async function checkConsistent(): Promise<void> {
  const sums = await Promise.all([0, 1, 2].map((i) => tableChecksums(fx.cluster, i)));
  assert.ok(Object.keys(sums[0]!).includes('public.pgbench_accounts'));
  assert.deepEqual(sums[1], sums[0], 'node 2 differs from node 1');
  assert.deepEqual(sums[2], sums[0], 'node 3 differs from node 1');
  for (const i of [0, 1, 2]) {
    const r = fx.cluster.psqlNode(
      i,
      `SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(bbalance) FROM pgbench_branches),
              (SELECT sum(tbalance) FROM pgbench_tellers), (SELECT coalesce(sum(delta), 0) FROM pgbench_history)`,
    );
    const [a, b, t, h] = r.split('|');
    assert.equal(a, b, `node ${i + 1}: sum(abalance) != sum(bbalance): ${r}`);
    assert.equal(b, t, `node ${i + 1}: sum(bbalance) != sum(tbalance): ${r}`);
    assert.equal(t, h, `node ${i + 1}: sum(tbalance) != sum(delta): ${r}`);
  }
  for (const i of [0, 1, 2]) assert.equal(fx.cluster.psqlNode(i, 'SELECT count(*) FROM pg_prepared_xacts'), '0');
}

test('pgbench -i -s 2 through pgquorum', async () => {
  const out = await pgbench(['-i', '-s', '2', '-q']);
  assert.match(out.stderr, /done/);
  await checkConsistent();
  for (const i of [0, 1, 2]) assert.equal(fx.cluster.psqlNode(i, 'SELECT count(*) FROM pgbench_accounts'), '200000');
});

let history = 0;
for (const mode of ['simple', 'extended', 'prepared']) {
  test(`TPC-B -M ${mode}, 16 clients: nodes identical, balances agree`, async () => {
    const out = await pgbench(['-n', '-c', '16', '-j', '2', '-T', DURATION, '-M', mode]);
    const n = processed(out.stdout);
    assert.ok(n > 0);
    assert.equal(failedCount(out.stdout), 0);
    history += n;
    await checkConsistent();
    assert.equal(fx.cluster.psqlNode(0, 'SELECT count(*) FROM pgbench_history'), String(history));
    console.log(`# TPC-B -M ${mode}: ${n} transactions; ${/tps = [\d.]+/.exec(out.stdout)?.[0]}`);
  });
}

for (const mode of ['prepared', 'simple']) {
  test(`select-only -M ${mode}: 9 sessions are spread 3 per node (25%..42% of the reads each, from pg_stat_statements)`, async () => {
    const admin = await fx.coord.client();
    await run('psql', ['-X', '-c', 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements'], { env: fx.coord.env() });
    for (const i of [0, 1, 2]) fx.cluster.psqlNode(i, 'SELECT pg_stat_statements_reset()');
    // -R: every session sends at the same pace, so each node's share is its share of the sessions
    // (unthrottled, a node slowed down by autovacuum after the TPC-B runs serves its sessions less)
    await pgbench(['-n', '-S', '-c', '9', '-j', '3', '-T', '8', '-R', '900', '-M', mode]);
    const counts = [0, 1, 2].map((i) =>
      Number(
        fx.cluster.psqlNode(i, "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE 'SELECT abalance FROM pgbench_accounts%'"),
      ),
    );
    const total = counts.reduce((a, b) => a + b, 0);
    assert.ok(total > 100, `too few selects counted: ${counts}`);
    for (const c of counts) {
      const share = c / total;
      assert.ok(share >= 0.25 && share <= 0.42, `share ${share.toFixed(3)} out of range; counts ${counts}`);
    }
    console.log(`# select-only -M ${mode} spread: ${counts.map((c) => ((100 * c) / total).toFixed(1) + '%').join(' ')}`);
    // every session has ended: no node still counts one of them
    const readSessions = async (): Promise<string> =>
      (await admin.query('SHOW pgquorum.nodes')).rows.map((r: { read_sessions: string }) => r.read_sessions).join(',');
    await waitFor(async () => (await readSessions()) === '0,0,0', 5000, `read_sessions back to 0 (${await readSessions()})`);
    await admin.end();
  });
}

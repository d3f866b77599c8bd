// Nodes that stop answering without closing their connections (issue 5):
// 5 real nodes, each behind a fault-injecting relay; a transactional
// workload runs while a replica is blackholed by its relay and then the
// main node is frozen with SIGSTOP. Each is ejected within the configured
// bound (period + query_timeout + retries x (connect_timeout +
// query_timeout), checked with slack for a shared machine); the workload's
// latency spikes but no transaction fails except with 40001/40P01, which
// it retries; what committed is exactly what the survivors hold.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { startTestCoordinator, tableChecksums, type TestCoordinator } from '../helpers/coordinator.js';
import { startRelay, type Relay } from '../helpers/relay.js';
import { nodeRow, PsqlSession, runWorkload, waitFor } from '../helpers/ha.js';
import { livePostmaster, signalTree } from '../../src/devcluster/index.js';

const HEALTH = { period: 0.5, connect_timeout: 1, query_timeout: 1, retries: 1, auto_attach: false };
const BOUND_MS = (HEALTH.period + HEALTH.query_timeout + HEALTH.retries * (HEALTH.connect_timeout + HEALTH.query_timeout)) * 1000;
const SLACK_MS = 4000;
const ACCOUNTS = 50;

let cluster: TestCluster;
let coord: TestCoordinator;
const relays: Relay[] = [];
let frozen: number | null = null;
let psql: PsqlSession | null = null;

before(async () => {
  cluster = await startTestCluster({ nodes: 5 });
  for (const n of cluster.nodes) relays.push(await startRelay({ host: n.host, port: n.port }));
  coord = await startTestCoordinator(cluster, (c) => {
    c.nodes.forEach((n, i) => (n.port = relays[i]!.port));
    c.health = { ...HEALTH };
  });
});

after(async () => {
  psql?.close();
  if (frozen !== null) signalTree(frozen, 'SIGCONT');
  await coord?.stop();
  for (const r of relays) await r.close();
  await cluster?.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('a blackholed replica and a frozen main node are ejected within the bound; the workload only retries 40001', async () => {
  const admin = await coord.client();
  await admin.query('CREATE TABLE acct (id int PRIMARY KEY, bal int NOT NULL)');
  await admin.query('CREATE TABLE hist (client int, n int, delta int)');
  await admin.query(`INSERT INTO acct SELECT g, 0 FROM generate_series(1, ${ACCOUNTS}) g`);
  psql = new PsqlSession(coord.env());
  assert.equal((await psql.run('SELECT count(*) FROM acct;')).out, String(ACCOUNTS));

  const w = runWorkload(() => coord.client(), { clients: 8, accounts: ACCOUNTS });
  await sleep(2000);

  // A replica's network goes silent: connections stay open, nothing answers.
  /** `id` is ejected by the health checks within the bound after `hang()`. */
  const ejectedWithinBound = async (id: string, what: string, hang: () => void): Promise<number> => {
    const t = Date.now();
    hang();
    const row = await waitFor(async () => {
      const r = await nodeRow(admin, id);
      return r.state === 'down' ? r : null;
    }, BOUND_MS + SLACK_MS, `${id} ejected`);
    const took = Date.now() - t;
    assert.match(row.reason, /health check failed/);
    assert.ok(took <= BOUND_MS + SLACK_MS, `${what} ejected after ${took} ms (bound ${BOUND_MS} ms)`);
    return took;
  };
  const tookReplica = await ejectedWithinBound('n4', 'replica', () => relays[3]!.set('blackhole'));
  assert.equal((await psql.run('SELECT count(*) FROM acct;')).out, String(ACCOUNTS));
  await sleep(2000);

  // The main node freezes (SIGSTOP of its postmaster and every backend).
  const committedBefore = w.stats.committed;
  frozen = livePostmaster(cluster.nodes[0]!.dataDir)!;
  const tookMain = await ejectedWithinBound('n1', 'main', () => signalTree(frozen!, 'SIGSTOP'));
  assert.equal((await nodeRow(admin, 'n2')).role, 'main');
  await waitFor(() => w.stats.committed > committedBefore + 20, 30_000, 'the workload to go on with the new main node');
  // the psql session from the start still works, writes included
  assert.equal((await psql.run('UPDATE acct SET bal = bal WHERE id = 1;')).err, '');

  const stats = await w.stop();
  process.stdout.write(
    `# ha-hang: replica ejected after ${tookReplica} ms, main after ${tookMain} ms (bound ${BOUND_MS} ms); ` +
      `${stats.committed} committed, retries ${JSON.stringify(stats.retries)}, max latency ${stats.maxLatencyMs} ms\n`,
  );
  assert.deepEqual(stats.failures, [], 'only 40001/40P01 (retried) are allowed');
  assert.ok(stats.committed > 0);

  // Survivors n2, n3, n5: identical, and hold exactly what committed.
  const survivors = [1, 2, 4];
  for (const i of survivors) {
    const [h, sum] = cluster.psqlNode(i, 'SELECT (SELECT count(*) FROM hist), (SELECT sum(bal) - (SELECT coalesce(sum(delta), 0) FROM hist) FROM acct)').split('|');
    assert.equal(Number(h), stats.committed, `node ${i + 1}: ${h} history rows, ${stats.committed} committed`);
    assert.equal(sum, '0', `node ${i + 1}: balances do not match the history`);
  }
  const sums = await Promise.all(survivors.map((i) => tableChecksums(cluster, i)));
  for (const s of sums.slice(1)) assert.deepEqual(s, sums[0]);
});

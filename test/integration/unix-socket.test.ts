// Nodes reached over Unix-domain sockets (docs/config.md `nodes[].host`): a
// host that starts with '/' is the directory of the node's socket, as in
// libpq. Here n1 and n2 are reached through their data directories (where
// the harness's nodes put their sockets) and n3 over TCP, on 3 real nodes:
// the coordinator's own connections to n1 and n2 are socket connections on
// the nodes themselves; writes commit on all three with two-phase commit;
// keyed reads (shared connections included) and a CancelRequest work over
// the socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertNodesIdentical, sendCancel, useClusterWithCoordinator } from '../helpers/coordinator.js';
import { showNodes } from '../helpers/ha.js';

const fx = useClusterWithCoordinator({
  nodes: 3,
  edit: (c) => {
    c.nodes[0].host = fx.cluster.nodes[0].dataDir;
    c.nodes[1].host = fx.cluster.nodes[1].dataDir;
  },
  setup: async () => {
    const c = await fx.coord.client();
    await c.query('CREATE TABLE us (id int PRIMARY KEY, v int NOT NULL)');
    await c.end();
  },
});

/** Ports of the coordinator's backends on node i: -1 for a Unix-domain socket (this check itself comes over TCP). */
async function coordinatorPorts(i: number): Promise<number[]> {
  const rows = await fx.cluster.queryNode<{ client_port: number }>(
    i,
    `SELECT client_port FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND datname = current_database()`,
  );
  return rows.map((r) => r.client_port);
}

test('n1 and n2 are reached through their socket directories, n3 over TCP; all are up', async () => {
  const c = await fx.coord.client();
  const nodes = await showNodes(c);
  await c.end();
  assert.deepEqual(
    nodes.map((n) => [n.id, n.host, n.state]),
    [
      ['n1', fx.cluster.nodes[0].dataDir, 'up'],
      ['n2', fx.cluster.nodes[1].dataDir, 'up'],
      ['n3', '127.0.0.1', 'up'],
    ],
  );
});

test('writes commit on every node with 2PC and keyed reads answer, over sockets and TCP alike', async () => {
  const clients = await Promise.all(Array.from({ length: 4 }, () => fx.coord.client()));
  await Promise.all(
    clients.map(async (c, k) => {
      for (let i = 0; i < 25; i++) {
        const id = k * 100 + i;
        await c.query('BEGIN');
        await c.query(`INSERT INTO us VALUES (${id}, ${id * 2})`);
        await c.query(`UPDATE us SET v = v + 1 WHERE id = ${id}`);
        await c.query('COMMIT');
        const r = await c.query(`SELECT v FROM us WHERE id = ${id}`);
        assert.deepEqual(r.rows, [{ v: id * 2 + 1 }]);
      }
    }),
  );
  // Prepared statements (Bind/Execute/Sync; may go over the shared read connections).
  for (let i = 0; i < 30; i++) {
    const r = await clients[0].query({ name: 'us_get', text: 'SELECT v FROM us WHERE id = $1', values: [i % 25] });
    assert.deepEqual(r.rows, [{ v: (i % 25) * 2 + 1 }]);
  }
  await Promise.all(clients.map((c) => c.end()));

  for (let i = 0; i < 3; i++) {
    const rows = await fx.cluster.queryNode<{ n: string }>(i, 'SELECT count(*) AS n FROM us');
    assert.equal(rows[0].n, '100', `node ${i + 1} has every row`);
    assert.deepEqual(await fx.cluster.queryNode(i, 'SELECT gid FROM pg_prepared_xacts'), [], `nothing left prepared on node ${i + 1}`);
  }
  await assertNodesIdentical(fx.cluster, [0, 1, 2]);

  // The coordinator's connections: sockets on n1 and n2, TCP on n3.
  for (const i of [0, 1]) {
    const ports = await coordinatorPorts(i);
    assert.ok(ports.length > 0, `the coordinator is connected to node ${i + 1}`);
    assert.deepEqual([...new Set(ports)], [-1], `every connection to node ${i + 1} is a Unix-domain socket`);
  }
  const tcp = await coordinatorPorts(2);
  assert.ok(tcp.length > 0 && tcp.every((p) => p > 0), `every connection to n3 is TCP: ${tcp.join(', ')}`);
});

test('a CancelRequest reaches a statement running on a node reached over a socket', async () => {
  const c = await fx.coord.client();
  // A write runs on every node, n1 (the main node, a socket) first.
  const slow = c.query('UPDATE us SET v = v WHERE id = 0 AND pg_sleep(30) IS NOT NULL').then(
    () => null,
    (e: { code?: string }) => e,
  );
  const sleeping = async (): Promise<boolean> =>
    (await fx.cluster.queryNode(0, "SELECT 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep'")).length > 0;
  for (let i = 0; !(await sleeping()); i++) {
    assert.ok(i < 100, 'the statement reached n1');
    await new Promise((r) => setTimeout(r, 50));
  }
  await sendCancel(fx.coord.port, c);
  const err = await slow;
  assert.equal(err?.code, '57014', 'the statement was cancelled');
  assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1, 'the session goes on');
  await c.end();
  assert.ok(!(await sleeping()), 'nothing sleeps on n1 any more');
});

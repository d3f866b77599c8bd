// Integration tests of the local-cluster tooling on real PostgreSQL 15:
// createNodes/startNodes/stopNodes, the test harness, and the `pgquorum dev`
// and `start` command lines (usage and config errors, exit codes).

import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createNodes, nodeStatus, probe, readCluster, startNodes, stopNodes, killNodesSync } from '../../src/devcluster/index.js';
import { freeConsecutivePorts, freePort, freePorts, startTestCluster } from '../helpers/cluster.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

/** PIDs of running processes whose working directory is inside `dir` (postgres children chdir to the data dir). */
function processesUnder(dir: string): number[] {
  const real = fs.realpathSync(dir);
  const pids: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cwd = fs.readlinkSync(`/proc/${e}/cwd`);
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const zombie = stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
      if (!zombie && (cwd === real || cwd.startsWith(real + '/'))) pids.push(Number(e));
    } catch {
      /* gone or not ours */
    }
  }
  return pids;
}

describe('createNodes / startNodes / stopNodes', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgquorum-devcluster-test-'));
  after(() => {
    killNodesSync(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('two nodes: create, start, connect with the password, settings, stop', async () => {
    const ports = await freePorts(2);
    const password = 'pw-with-\'quote';
    const cluster = createNodes({ count: 2, basePort: 0, ports, dir, password, fsync: false });
    assert.deepEqual(cluster.nodes.map((n) => [n.id, n.port]), [['n1', ports[0]], ['n2', ports[1]]]);
    assert.equal(readCluster(dir).password, password);
    assert.equal(fs.statSync(path.join(dir, 'devcluster.json')).mode & 0o777, 0o600);
    assert.throws(() => createNodes({ count: 1, basePort: 0, ports, dir, password }), /already holds a dev cluster/);

    await startNodes(dir, { timeoutMs: 60_000 });
    const status = await nodeStatus(dir);
    assert.ok(status.every((s) => s.running && s.accepting && s.pid !== null), JSON.stringify(status));

    for (const node of cluster.nodes) {
      const client = new pg.Client({ host: '127.0.0.1', port: node.port, user: 'postgres', password, database: 'postgres' });
      await client.connect();
      try {
        const show = async (name: string): Promise<string> => (await client.query(`SHOW ${name}`)).rows[0][name];
        assert.equal(await show('max_prepared_transactions'), '300');
        assert.equal(await show('max_connections'), '300');
        assert.equal(await show('wal_level'), 'logical');
        assert.equal(await show('fsync'), 'off');
        assert.equal(await show('listen_addresses'), '127.0.0.1');
        assert.equal(await show('server_encoding'), 'UTF8');
        assert.equal(await show('lc_collate'), 'C');
        assert.equal(await show('shared_preload_libraries'), 'pg_stat_statements');
        assert.match(await show('server_version'), /^15\./);
      } finally {
        await client.end();
      }
      // A wrong password is refused: TCP uses SCRAM.
      const bad = new pg.Client({ host: '127.0.0.1', port: node.port, user: 'postgres', password: 'wrong', database: 'postgres' });
      await assert.rejects(bad.connect(), /password authentication failed/);
      await bad.end().catch(() => {});
    }

    // Starting again is a no-op while they run.
    const pidsBefore = (await nodeStatus(dir)).map((s) => s.pid);
    await startNodes(dir);
    assert.deepEqual((await nodeStatus(dir)).map((s) => s.pid), pidsBefore);

    await stopNodes(dir);
    const after = await nodeStatus(dir);
    assert.ok(after.every((s) => !s.running && !s.accepting), JSON.stringify(after));
    assert.deepEqual(processesUnder(dir), []);
    for (const node of cluster.nodes) assert.equal(await probe('127.0.0.1', node.port), 'down');

    // And they start again from the same data; the synchronous emergency stop also leaves nothing.
    await startNodes(dir);
    assert.ok((await nodeStatus(dir)).every((s) => s.accepting));
    killNodesSync(dir);
    assert.deepEqual(processesUnder(dir), []);
    assert.ok((await nodeStatus(dir)).every((s) => !s.running));
  });

  test('a node that cannot start fails with the end of its log', async () => {
    const d2 = fs.mkdtempSync(path.join(os.tmpdir(), 'pgquorum-devcluster-test-'));
    // Someone else holds the port: postgres cannot bind it and exits.
    const squatter = net.createServer((sock) => sock.destroy());
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', () => r()));
    const port = (squatter.address() as net.AddressInfo).port;
    try {
      createNodes({ count: 1, basePort: 0, ports: [port], dir: d2, password: 'x', fsync: false });
      await assert.rejects(startNodes(d2, { timeoutMs: 20_000 }), (err: Error) => {
        assert.match(err.message, /node n1 .* while starting; end of .*postgres\.log:/s);
        assert.match(err.message, /Address already in use/);
        return true;
      });
    } finally {
      squatter.close();
      killNodesSync(d2);
      fs.rmSync(d2, { recursive: true, force: true });
    }
  });
});

describe('test harness', () => {
  test('startTestCluster gives a config, psql and node-postgres access, and cleans up', async () => {
    const c = await startTestCluster({ nodes: 2 });
    try {
      assert.equal(c.nodes.length, 2);
      assert.equal(c.config.nodes.length, 2);
      assert.equal(c.config.coordinator.port, 0);
      assert.deepEqual(c.config.users, [{ name: 'postgres', password: c.password }]);
      assert.deepEqual(c.config.nodes.map((n) => n.port), c.nodes.map((n) => n.port));
      assert.equal(c.psqlNode(0, 'SELECT 1+1; SELECT 3'), '2\n3');
      assert.equal(c.psqlNode('n2', 'CREATE TABLE t(a int); INSERT INTO t VALUES (7); SELECT a FROM t'), '7');
      assert.throws(() => c.psqlNode(0, 'SELECT nope'), /psql on node n1 failed.*column "nope" does not exist/s);
      const rows = await c.queryNode<{ n: number }>(1, 'SELECT count(*)::int AS n FROM t WHERE a = $1', [7]);
      assert.deepEqual(rows, [{ n: 1 }]);
      assert.equal(typeof (await freePort()), 'number');
    } finally {
      await c.stop();
    }
    assert.equal(fs.existsSync(c.dir), false);
    await c.stop(); // idempotent
  });

  test('a test process that exits without stop() leaves no nodes and no dir behind', () => {
    const helper = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../helpers/cluster.js');
    const script = `import { startTestCluster } from ${JSON.stringify(helper)};
      const c = await startTestCluster({ nodes: 1 });
      process.stdout.write(c.dir + '\\n' + c.nodes[0].dataDir + '\\n');
      process.exit(0);`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const [dir] = r.stdout.trim().split('\n');
    assert.ok(dir && dir.includes('pgquorum-test-'), r.stdout);
    assert.equal(fs.existsSync(dir), false);
    const leftovers = fs.readdirSync('/proc').filter((e) => {
      try {
        return /^\d+$/.test(e) && fs.readlinkSync(`/proc/${e}/cwd`).startsWith(dir);
      } catch {
        return false;
      }
    });
    assert.deepEqual(leftovers, []);
  });
});

describe('pgquorum command line', () => {
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgquorum-cli-test-'));
  after(() => {
    killNodesSync(path.join(dir, 'dev'));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('usage errors exit 2 with usage on stderr; help exits 0', () => {
    for (const args of [[], ['frobnicate'], ['--frob'], ['dev', 'up', '--frob'], ['dev', 'sideways'], ['dev', 'up', '--nodes', 'x'], ['start'], ['start', 'extra']]) {
      const r = run(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /Usage: pgquorum/, args.join(' '));
      assert.equal(r.stdout, '');
    }
    for (const args of [['--help'], ['help'], ['help', 'dev', 'up'], ['dev', 'down', '--help'], ['start', '-h']]) {
      const r = run(args);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /Usage: pgquorum/);
    }
  });

  test('start refuses a bad config with the ConfigError message, exit 1', () => {
    const file = path.join(dir, 'bad.json');
    fs.writeFileSync(file, JSON.stringify({ nodes: [{ port: 5433 }, { port: 'abc' }], users: [{ name: 'u', password: 'p' }] }));
    const r = run(['start', '--config', file]);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr.trim(), 'pgquorum: config: nodes[1].port: must be an integer from 1 to 65535, got "abc"');
    const m = run(['start', '--config', path.join(dir, 'missing.json')]);
    assert.equal(m.status, 1);
    assert.match(m.stderr, /cannot read the config file: no such file/);
  });

  test('dev up writes a config and leaves the nodes running; dev down stops them', async () => {
    const devDir = path.join(dir, 'dev');
    const port = await freeConsecutivePorts(2);
    const up = run(['dev', 'up', '--nodes', '1', '--port', String(port), '--dir', devDir, '--no-fsync']);
    try {
      assert.equal(up.status, 0, up.stderr);
      const configFile = path.join(devDir, 'pgquorum.json');
      assert.equal(up.stdout.trim(), configFile);
      assert.equal(fs.statSync(configFile).mode & 0o777, 0o600);
      const cfg = JSON.parse(fs.readFileSync(configFile, 'utf8'));
      assert.equal(cfg.coordinator.port, port);
      // The coordinator reaches the node over its Unix-domain socket, in the node's data directory.
      assert.deepEqual(cfg.nodes, [{ id: 'n1', host: path.join(devDir, 'node1'), port: port + 1 }]);
      assert.ok(fs.statSync(path.join(devDir, 'node1', `.s.PGSQL.${port + 1}`)).isSocket());
      assert.equal(cfg.users[0].name, 'postgres');
      // Nodes without fsync: the coordinator's state is not synced either (docs/state-store.md).
      assert.deepEqual(cfg.state, { dir: 'state', fsync: false });
      // The nodes outlive the command, and the generated password works.
      const client = new pg.Client({ host: '127.0.0.1', port: port + 1, user: 'postgres', password: cfg.users[0].password, database: 'postgres' });
      await client.connect();
      assert.equal((await client.query('SELECT 1 AS x')).rows[0].x, 1);
      await client.end();
      // Asking for another shape of the existing cluster is refused.
      const again = run(['dev', 'up', '--nodes', '2', '--dir', devDir]);
      assert.equal(again.status, 1);
      assert.match(again.stderr, /already holds 1 node, not 2/);
      const st = run(['dev', 'status', '--dir', devDir]);
      assert.equal(st.status, 0, st.stderr);
      assert.match(st.stdout, /n1 .* accepting connections/);
    } finally {
      const down = run(['dev', 'down', '--dir', devDir]);
      assert.equal(down.status, 0, down.stderr);
    }
    assert.deepEqual(processesUnder(devDir), []);
    const st = run(['dev', 'status', '--dir', devDir]);
    assert.equal(st.status, 3);
    assert.match(st.stdout, /n1 .* stopped/);
    const none = run(['dev', 'down', '--dir', path.join(dir, 'nothing')]);
    assert.equal(none.status, 1);
    assert.match(none.stderr, /no dev cluster in/);
  });
});

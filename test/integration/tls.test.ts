// TLS for clients: with a certificate configured, SSLRequest is answered 'S'
// and the session runs encrypted; hostssl rules refuse plain connections.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import pg from 'pg';
import { startTestCluster, type TestCluster } from '../helpers/cluster.js';
import { startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';

let cluster: TestCluster;
let coord: TestCoordinator;

before(async () => {
  cluster = await startTestCluster({ nodes: 2 });
  const cert = path.join(cluster.dir, 'cert.pem');
  const key = path.join(cluster.dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost'], {
    stdio: 'ignore',
  });
  coord = await startTestCoordinator(cluster, (c) => {
    c.coordinator.tls = { cert, key };
    c.hba = [
      { type: 'hostssl', database: 'all', user: 'all', address: 'all', method: 'scram-sha-256' },
      { type: 'host', database: 'all', user: 'all', address: 'all', method: 'reject' },
    ];
  });
});
after(async () => {
  await coord?.stop();
  await cluster?.stop();
});

test('a TLS client gets an encrypted session', async () => {
  const c = new pg.Client({
    host: '127.0.0.1',
    port: coord.port,
    user: 'postgres',
    password: cluster.password,
    database: 'postgres',
    ssl: { rejectUnauthorized: false },
  });
  await c.connect();
  try {
    const stream = (c as unknown as { connection: { stream: { encrypted?: boolean } } }).connection.stream;
    assert.equal(stream.encrypted, true);
    assert.equal((await c.query('SELECT 41 + 1 AS x')).rows[0].x, 42);
    await c.query('CREATE TABLE tls_t (a int)');
    await c.query('INSERT INTO tls_t VALUES (1)');
  } finally {
    await c.end();
  }
  for (const i of [0, 1]) assert.equal(cluster.psqlNode(i, 'SELECT count(*) FROM tls_t'), '1');
});

// The coordinator runs in this process: child processes must be awaited, never run synchronously.
const run = promisify(execFile);

test('psql with sslmode=require works; a plain connection is refused by the hostssl rule', async () => {
  const env = coord.env();
  const out = await run('psql', ['-X', '-At', '-c', 'SELECT 7', `sslmode=require host=127.0.0.1 port=${coord.port}`], { env });
  assert.equal(out.stdout.trim(), '7');
  let stderr = '';
  try {
    await run('psql', ['-X', '-At', '-c', 'SELECT 7', `sslmode=disable host=127.0.0.1 port=${coord.port}`], { env });
  } catch (e) {
    stderr = String((e as { stderr?: string }).stderr);
  }
  assert.match(stderr, /no pgquorum hba entry/);
});

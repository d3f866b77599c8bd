// `pgquorum status` and `pgquorum node attach|detach` (docs/cli.md) against a
// real 3-node cluster and an in-process coordinator: status prints every
// node as a table or as JSON; an unknown user, a wrong password and an
// unreachable coordinator exit 1 with a message; node attach exits 0 or 1
// (never a usage error); bad subcommands and bad ids exit 2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { useClusterWithCoordinator } from '../helpers/coordinator.js';
import { freePort } from '../helpers/cluster.js';
import { writeConfig } from '../helpers/child-coordinator.js';
import { alignedTable } from '../../src/cli/status.js';
import type { Config } from '../../src/config/types.js';
import { runCli, type Run } from '../helpers/cli.js';
import type { FieldDescription } from '../../src/protocol/backend.js';

const fx = useClusterWithCoordinator({ nodes: 3, setup });
let configFile = '';
let badPasswordFile = '';
let unreachableFile = '';

async function setup(): Promise<void> {
  // Config files for the CLI, pointing at the in-process coordinator's port.
  const c: Config = structuredClone(fx.coord.coordinator.ctx.config);
  c.coordinator.port = fx.coord.port;
  configFile = path.join(fx.cluster.dir, 'cli-status.json');
  writeConfig(c, configFile);
  const bad = structuredClone(c);
  bad.users[0]!.password = `${bad.users[0]!.password}-wrong`;
  badPasswordFile = path.join(fx.cluster.dir, 'cli-status-badpw.json');
  writeConfig(bad, badPasswordFile);
  const gone = structuredClone(c);
  gone.coordinator.port = await freePort();
  gone.backend.connect_timeout = 5;
  unreachableFile = path.join(fx.cluster.dir, 'cli-status-gone.json');
  writeConfig(gone, unreachableFile);
}

/** The CLI in a child process, without the env overrides of the coordinator's address. */
function cli(args: string[], useBin = false): Promise<Run> {
  const env = { ...process.env };
  delete env.PGQUORUM_HOST; // would override the config's coordinator address
  delete env.PGQUORUM_PORT;
  return runCli(args, { useBin, env });
}

const ids = (): string[] => fx.cluster.nodes.map((n) => n.id);

test('status prints an aligned table with every node and the main one', async () => {
  const r = await cli(['status', '--config', configFile], true);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^\s*id\s*\|\s*host\s*\|\s*port\s*\|\s*state\s*\|/, r.stdout);
  assert.match(lines[1]!, /^-+(\+-+)+$/, r.stdout);
  assert.equal(lines.at(-1), '(3 rows)');
  assert.equal(lines.length, 2 + 3 + 1, r.stdout);
  // Every row has its separators where the header has them.
  const bars = (l: string): number[] => [...l].flatMap((ch, i) => (ch === '|' ? [i] : []));
  for (const l of lines.slice(2, 5)) assert.deepEqual(bars(l), bars(lines[0]!), r.stdout);
  for (const id of ids()) assert.match(r.stdout, new RegExp(`^ ${id} +\\|`, 'm'), r.stdout);
  assert.match(r.stdout, /\bmain\b/);
  assert.match(r.stdout, /\bup\b/);
});

test('status --json: one object per node, keyed by the column names', async () => {
  const r = await cli(['status', '--config', configFile, '--json', '--dbname', 'postgres']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const rows = JSON.parse(r.stdout) as Array<Record<string, string | null>>;
  assert.ok(Array.isArray(rows));
  assert.equal(rows.length, 3);
  assert.deepEqual(rows.map((x) => x['id']), ids());
  for (const x of rows) assert.equal(x['state'], 'up', r.stdout);
  assert.equal(rows.filter((x) => x['role'] === 'main').length, 1, r.stdout);
  assert.ok('port' in rows[0]! && 'host' in rows[0]!, r.stdout);
});

test('status: an unknown user, a wrong password, an unreachable coordinator exit 1 with a message', async () => {
  const u = await cli(['status', '--config', configFile, '--user', 'nosuchuser']);
  assert.equal(u.code, 1, u.stdout + u.stderr);
  assert.match(u.stderr, /^pgquorum: .*nosuchuser/);
  assert.equal(u.stdout, '');

  const pw = await cli(['status', '--config', badPasswordFile]);
  assert.equal(pw.code, 1, pw.stdout + pw.stderr);
  assert.match(pw.stderr, /^pgquorum: .+ \(SQLSTATE 28\w{3}\)$/m);

  const gone = await cli(['status', '--config', unreachableFile]);
  assert.equal(gone.code, 1, gone.stdout + gone.stderr);
  assert.match(gone.stderr, /^pgquorum: cannot reach the coordinator at 127\.0\.0\.1:\d+: .+ \(SQLSTATE 08\w{3}\)$/m);
});

test('usage errors exit 2', async () => {
  const noConfig = await cli(['status']);
  assert.equal(noConfig.code, 2, noConfig.stdout + noConfig.stderr);
  assert.match(noConfig.stderr, /--config FILE is required/);

  const frob = await cli(['node', 'frobnicate', 'n1', '--config', configFile]);
  assert.equal(frob.code, 2, frob.stdout + frob.stderr);
  assert.match(frob.stderr, /attach/);
  assert.match(frob.stderr, /detach/);

  const bare = await cli(['node']);
  assert.equal(bare.code, 2, bare.stdout + bare.stderr);
  assert.match(bare.stderr, /attach or detach/);

  const badId = await cli(['node', 'detach', 'bad id!', '--config', configFile]);
  assert.equal(badId.code, 2, badId.stdout + badId.stderr);
  assert.match(badId.stderr, /invalid node ID "bad id!"/);

  const noId = await cli(['node', 'attach', '--config', configFile]);
  assert.equal(noId.code, 2, noId.stdout + noId.stderr);

  const twoIds = await cli(['node', 'attach', 'n1', 'n2', '--config', configFile]);
  assert.equal(twoIds.code, 2, twoIds.stdout + twoIds.stderr);
});

test('node detach n3 / node attach n3: exit 0 with the coordinator\'s answer; status shows the change; attach after a write is refused (exit 1, needs recovery)', async () => {
  const up = await cli(['node', 'attach', 'n1', '--config', configFile]);
  assert.equal(up.code, 0, up.stdout + up.stderr);
  assert.match(up.stdout, /node n1 is already up/);
  const d = await cli(['node', 'detach', 'n3', '--config', configFile]);
  assert.equal(d.code, 0, d.stdout + d.stderr);
  assert.match(d.stdout, /node n3 detached/);
  let s = await cli(['status', '--config', configFile, '--json']);
  let rows = JSON.parse(s.stdout) as { id: string; state: string; detached: string }[];
  assert.deepEqual(rows.map((r) => [r.id, r.state]), [['n1', 'up'], ['n2', 'up'], ['n3', 'down']]);
  const a = await cli(['node', 'attach', 'n3', '--config', configFile]);
  assert.equal(a.code, 0, a.stdout + a.stderr);
  assert.match(a.stdout, /node n3 attached/);
  s = await cli(['status', '--config', configFile, '--json']);
  rows = JSON.parse(s.stdout) as { id: string; state: string; detached: string }[];
  assert.deepEqual(rows.map((r) => r.state), ['up', 'up', 'up']);
  // with a write in between, attach is refused
  assert.equal((await cli(['node', 'detach', 'n3', '--config', configFile])).code, 0);
  const c = await fx.coord.client();
  await c.query('CREATE TABLE cli_written (id int)');
  const refused = await cli(['node', 'attach', 'n3', '--config', configFile]);
  assert.equal(refused.code, 1, refused.stdout + refused.stderr);
  assert.match(refused.stderr, /^pgquorum: node n3 cannot be attached: writes were committed without it.*needs recovery \(SQLSTATE 55000\)/m);
  assert.match(refused.stderr, /hint: /);
});

test('alignedTable: psql aligned format', () => {
  const f = (name: string, typeOid = 25): FieldDescription => ({ name, tableOid: 0, columnAttr: 0, typeOid, typeSize: -1, typeModifier: -1, format: 0 });
  assert.deepEqual(alignedTable([f('id'), f('n', 23), f('note')], [['n1', '5', 'x'], ['node22', '123', null], ['a', null, 'two\nlines']]), [
    '   id   |  n  |    note',
    '--------+-----+------------',
    ' n1     |   5 | x',
    ' node22 | 123 |',
    ' a      |     | two\\nlines',
    '(3 rows)',
  ]);
  assert.deepEqual(alignedTable([f('a')], [['x']]), [' a', '---', ' x', '(1 row)']);
  assert.deepEqual(alignedTable([], []), ['(0 rows)']);
});

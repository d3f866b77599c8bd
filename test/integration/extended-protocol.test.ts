// The extended protocol through pgquorum with hand-made messages: pipelined
// batches, portal suspension with row limits (Sync and Flush), Close and
// re-Parse of a name on every node, errors in the middle of a pipeline, and
// writes whose time values the coordinator fills in as extra parameters.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { tableChecksums, useClusterWithCoordinator } from '../helpers/coordinator.js';
import { RawClient, query, type Msg } from '../helpers/raw-client.js';
import { encodeBind, encodeClose, encodeDescribe, encodeExecute, encodeParse, FLUSH, SYNC } from '../../src/protocol/frontend.js';
import { decodeCommandComplete, decodeDataRow, decodeErrorFields, decodeParameterDescription } from '../../src/protocol/backend.js';

let r: RawClient;
const fx = useClusterWithCoordinator({
  nodes: 3,
  setup: async () => {
    r = await RawClient.connect(fx.coord.port);
    await r.login('postgres', fx.cluster.password);
    await simple('CREATE TABLE ext (id int PRIMARY KEY, v text, at timestamptz)');
  },
});
after(() => {
  r?.destroy();
});

async function simple(sql: string): Promise<Msg[]> {
  await r.write(query(sql));
  return r.until('Z');
}
const types = (ms: Msg[]): string => ms.map((m) => m.type).join('');
const rows = (ms: Msg[]): string[] => ms.filter((m) => m.type === 'D').map((m) => decodeDataRow(m.payload)[0]!.toString());
const tags = (ms: Msg[]): string[] => ms.filter((m) => m.type === 'C').map((m) => decodeCommandComplete(m.payload));
const bind = (portal: string, statement: string, params: (string | null)[] = []) =>
  encodeBind({ portal, statement, paramFormats: [], params: params.map((p) => (p === null ? null : Buffer.from(p))), resultFormats: [] });

test('a pipeline of several statements before one Sync', async () => {
  await r.write(
    Buffer.concat([
      encodeParse({ name: 'ins', sql: 'INSERT INTO ext (id, v) VALUES ($1, $2)', paramTypes: [] }),
      bind('', 'ins', ['1', 'one']),
      encodeExecute({ portal: '', maxRows: 0 }),
      bind('', 'ins', ['2', 'two']),
      encodeExecute({ portal: '', maxRows: 0 }),
      encodeParse({ name: '', sql: 'SELECT v FROM ext ORDER BY id', paramTypes: [] }),
      bind('', ''),
      encodeExecute({ portal: '', maxRows: 0 }),
      SYNC,
    ]),
  );
  const ms = await r.until('Z');
  assert.equal(types(ms), '12C2C12DDCZ');
  assert.deepEqual(rows(ms), ['one', 'two']);
  for (const i of [0, 1, 2]) assert.equal(fx.cluster.psqlNode(i, 'SELECT count(*) FROM ext'), '2');
});

test('portal suspension with row limits, across Syncs inside a transaction', async () => {
  await simple('BEGIN');
  await r.write(
    Buffer.concat([
      encodeParse({ name: 'gen', sql: 'SELECT g FROM generate_series(1, 5) g', paramTypes: [] }),
      bind('p1', 'gen'),
      encodeExecute({ portal: 'p1', maxRows: 2 }),
      SYNC,
    ]),
  );
  let ms = await r.until('Z');
  assert.deepEqual(rows(ms), ['1', '2']);
  assert.ok(ms.some((m) => m.type === 's'), 'PortalSuspended');
  await r.write(Buffer.concat([encodeExecute({ portal: 'p1', maxRows: 2 }), SYNC]));
  ms = await r.until('Z');
  assert.deepEqual(rows(ms), ['3', '4']);
  await r.write(Buffer.concat([encodeExecute({ portal: 'p1', maxRows: 0 }), SYNC]));
  ms = await r.until('Z');
  assert.deepEqual(rows(ms), ['5']);
  assert.deepEqual(tags(ms), ['SELECT 1']);
  await simple('COMMIT');
});

test('Flush: replies come without ReadyForQuery; the portal goes on after it', async () => {
  await r.write(
    Buffer.concat([
      encodeParse({ name: 'f1', sql: 'SELECT g FROM generate_series(1, 3) g', paramTypes: [] }),
      bind('', 'f1'),
      encodeDescribe({ kind: 'P', name: '' }),
      encodeExecute({ portal: '', maxRows: 1 }),
      FLUSH,
    ]),
  );
  const ms = await r.until('s');
  assert.equal(types(ms), '12TDs');
  await r.write(Buffer.concat([encodeExecute({ portal: '', maxRows: 0 }), SYNC]));
  const rest = await r.until('Z');
  assert.deepEqual(rows(rest), ['2', '3']);
});

test('Close and Parse again under the same name reaches every node', async () => {
  for (let round = 0; round < 4; round++) {
    const sql = round % 2 === 0 ? 'SELECT $1::int + 1' : 'SELECT $1::int * 10';
    await r.write(
      Buffer.concat([encodeClose({ kind: 'S', name: 'reuse' }), encodeParse({ name: 'reuse', sql, paramTypes: [] }), SYNC]),
    );
    assert.equal(types(await r.until('Z')), '31Z');
    // Several executions so that the reads visit every node.
    for (let i = 0; i < 6; i++) {
      await r.write(Buffer.concat([bind('', 'reuse', ['7']), encodeExecute({ portal: '', maxRows: 0 }), SYNC]));
      assert.deepEqual(rows(await r.until('Z')), [round % 2 === 0 ? '8' : '70']);
    }
  }
});

test('an error in the middle of a pipeline skips to Sync; the next batch works', async () => {
  await r.write(
    Buffer.concat([
      encodeParse({ name: '', sql: 'SELECT g / 0 FROM generate_series(1, 1) g', paramTypes: [] }),
      bind('', ''),
      encodeExecute({ portal: '', maxRows: 0 }),
      encodeParse({ name: '', sql: 'SELECT 2', paramTypes: [] }),
      bind('', ''),
      encodeExecute({ portal: '', maxRows: 0 }),
      SYNC,
    ]),
  );
  const ms = await r.until('Z');
  assert.equal(types(ms), '12EZ');
  assert.equal(decodeErrorFields(ms.find((m) => m.type === 'E')!.payload)['C'], '22012');
  await r.write(Buffer.concat([encodeParse({ name: '', sql: 'SELECT 3', paramTypes: [] }), bind('', ''), encodeExecute({ portal: '', maxRows: 0 }), SYNC]));
  assert.deepEqual(rows(await r.until('Z')), ['3']);
});

test('a prepared write with now(): the added parameter is hidden from Describe and every node stores the same time', async () => {
  await r.write(
    Buffer.concat([
      encodeParse({ name: 'ins_at', sql: 'INSERT INTO ext (id, v, at) VALUES ($1, $2, now())', paramTypes: [] }),
      encodeDescribe({ kind: 'S', name: 'ins_at' }),
      SYNC,
    ]),
  );
  const ms = await r.until('Z');
  const pd = ms.find((m) => m.type === 't')!;
  assert.equal(decodeParameterDescription(pd.payload).length, 2, 'the client sees its own 2 parameters');
  for (let i = 10; i < 20; i++) {
    await r.write(Buffer.concat([bind('', 'ins_at', [String(i), `v${i}`]), encodeExecute({ portal: '', maxRows: 0 }), SYNC]));
    assert.deepEqual(tags(await r.until('Z')), ['INSERT 0 1']);
  }
  const sums = await Promise.all([0, 1, 2].map((i) => tableChecksums(fx.cluster, i)));
  assert.deepEqual(sums[1], sums[0]);
  assert.deepEqual(sums[2], sums[0]);
  assert.equal(fx.cluster.psqlNode(0, 'SELECT count(DISTINCT at) > 1 FROM ext WHERE id >= 10'), 't', 'fresh time at each execution');
});

test("the coordinator's own statement names (pgquorum_<n>): Parse is refused with 42P05, Bind and Describe with 26000, Close does nothing; its statements keep working", async () => {
  // A keyed read sent as a Query makes a coordinator statement on the node connections (docs/routing.md).
  await simple("INSERT INTO ext (id, v) VALUES (41, 'own')");
  const keyed = async (): Promise<void> => assert.deepEqual(rows(await simple('SELECT v FROM ext WHERE id = 41')), ['own']);
  await keyed();
  const own = rows(await simple("SELECT name FROM pg_prepared_statements WHERE name ~ '^pgquorum_[0-9]+$' ORDER BY name"));
  assert.ok(own.length > 0, 'the session connection holds a coordinator statement');
  const name = own[0]!;
  const errorOf = (ms: Msg[]): Record<string, string> => decodeErrorFields(ms.find((m) => m.type === 'E')!.payload);

  await r.write(Buffer.concat([encodeParse({ name, sql: 'SELECT 1', paramTypes: [] }), bind('', name), encodeExecute({ portal: '', maxRows: 0 }), SYNC]));
  let ms = await r.until('Z');
  assert.equal(types(ms), 'EZ');
  assert.equal(errorOf(ms)['C'], '42P05');
  assert.equal(errorOf(ms)['M'], `prepared statement "${name}" already exists`);

  // Binding it would run the coordinator's statement with the client's values: the client has no such statement.
  await r.write(Buffer.concat([bind('', name, ['41']), encodeExecute({ portal: '', maxRows: 0 }), SYNC]));
  ms = await r.until('Z');
  assert.equal(types(ms), 'EZ');
  assert.equal(errorOf(ms)['C'], '26000');
  assert.equal(errorOf(ms)['M'], `prepared statement "${name}" does not exist`);
  await r.write(Buffer.concat([encodeDescribe({ kind: 'S', name }), SYNC]));
  ms = await r.until('Z');
  assert.equal(errorOf(ms)['C'], '26000');

  // Closing a statement one does not have is no error in PostgreSQL; the coordinator's copy stays.
  await r.write(Buffer.concat([encodeClose({ kind: 'S', name }), SYNC]));
  ms = await r.until('Z');
  assert.equal(types(ms), '3Z');
  assert.ok(rows(await simple('SELECT name FROM pg_prepared_statements ORDER BY name')).includes(name), 'the coordinator statement is still there');
  await keyed();
  await simple('BEGIN');
  await simple("UPDATE ext SET v = 'own2' WHERE id = 41");
  await simple('COMMIT');
  assert.deepEqual(rows(await simple('SELECT v FROM ext WHERE id = 41')), ['own2']);
  for (const i of [0, 1, 2]) assert.equal(fx.cluster.psqlNode(i, 'SELECT v FROM ext WHERE id = 41'), 'own2');
});

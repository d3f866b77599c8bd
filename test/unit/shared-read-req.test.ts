// A client's prepared keyed read on a shared read connection
// (src/txn/prepared-write.ts ownStatementReq / renameBind, docs/routing.md
// "Shared connections for keyed reads"): the Bind is renamed to the
// coordinator's statement with every other byte as the client sent it, the
// statement is Parsed once per connection (also when several reads are
// pipelined before the first answer), and a failure makes the next request
// Parse it again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ownStatementReq, renameBind } from '../../src/txn/prepared-write.js';
import { BIND_COMPLETE } from '../../src/protocol/backend.js';
import { nodeStatement, type NodeStatement } from '../../src/sql/parameterize.js';
import { decodeBind, decodeParse, encodeBind, encodeDescribe, encodeExecute, SYNC } from '../../src/protocol/frontend.js';
import { FE } from '../../src/protocol/constants.js';
import { UNKNOWN_STATEMENT, type ExchangeResult, type NodeConnection } from '../../src/backend/node-connection.js';

test('renameBind replaces the statement name only: portal, formats, values (NULL, binary, multibyte) stay as sent', () => {
  const b = {
    portal: 'pörtal',
    statement: 'P_0',
    paramFormats: [0, 1],
    params: [Buffer.from('ä42'), null, Buffer.from([0, 0, 0, 7])],
    resultFormats: [1],
  };
  for (const name of ['pgquorum_1', 'pgquorum_123456789', 'x']) {
    const raw = encodeBind(b);
    const out = renameBind(raw, name);
    assert.equal(out[0], FE.Bind);
    assert.equal(out.readInt32BE(1), out.length - 1, 'the length is the new one');
    assert.deepEqual(decodeBind(out.subarray(5)), { ...b, statement: name });
    assert.deepEqual(out, encodeBind({ ...b, statement: name }));
  }
  // an unnamed client statement
  const unnamed = encodeBind({ portal: '', statement: '', paramFormats: [], params: [Buffer.from('1')], resultFormats: [] });
  assert.deepEqual(decodeBind(renameBind(unnamed, 'pgquorum_9').subarray(5)).statement, 'pgquorum_9');
});

function fakeConn(shared: boolean): NodeConnection {
  return { prepared: new Map<string, string>(), ownStatements: new Set<string>(), shared } as unknown as NodeConnection;
}

function result(c: NodeConnection, error: ExchangeResult['error']): ExchangeResult {
  return { node: c, status: 'I', tags: [], error, frames: [], lost: null, terminals: 0 };
}

/** The request Router.sharedBatch() makes: the client's own BindComplete is owed to it. */
const sharedReadReq = (text: string, stmt: NodeStatement, msgs: Buffer[]) => ownStatementReq(text, stmt, msgs, BIND_COMPLETE);

const types = (bufs: Buffer[]): string[] => bufs.map((b) => String.fromCharCode(b[0]!));

test('sharedReadReq: the Parse goes once per connection; reads pipelined behind it do not repeat it on a shared connection', () => {
  const stmt = nodeStatement('SELECT v FROM t WHERE id = $1', [23]);
  assert.equal(decodeParse(stmt.parse.subarray(5)).sql, 'SELECT v FROM t WHERE id = $1');
  const bind = renameBind(encodeBind({ portal: '', statement: 'P_0', paramFormats: [], params: [Buffer.from('1')], resultFormats: [] }), stmt.name);
  const msgs = [bind, encodeDescribe({ kind: 'P', name: '' }), encodeExecute({ portal: '', maxRows: 0 }), SYNC];
  const c = fakeConn(true);
  const first = sharedReadReq('q', stmt, msgs).forNode(c);
  assert.deepEqual(types(first.bufs), ['P', 'B', 'D', 'E', 'S']);
  assert.equal(first.skip, 2, 'ParseComplete and BindComplete are swallowed');
  // Sent before the first answer came back: no second Parse (it would fail with 42P05).
  const second = sharedReadReq('q', stmt, msgs).forNode(c);
  assert.deepEqual(types(second.bufs), ['B', 'D', 'E', 'S']);
  assert.equal(second.skip, 1);
  // On a session's own connection (nothing pipelined) the statement counts only once its Parse succeeded.
  const own = fakeConn(false);
  const r = sharedReadReq('q', stmt, msgs);
  assert.deepEqual(types(r.forNode(own).bufs), ['P', 'B', 'D', 'E', 'S']);
  assert.equal(own.prepared.get(stmt.name), undefined);
  r.after!(own, result(own, null), true);
  assert.equal(own.prepared.get(stmt.name), stmt.sql);
  assert.deepEqual(types(sharedReadReq('q', stmt, msgs).forNode(own).bufs), ['B', 'D', 'E', 'S']);
});

test('sharedReadReq: a failed request makes the next one Close and Parse the statement again', () => {
  const stmt = nodeStatement('SELECT w FROM t2 WHERE k = $1', [25]);
  const msgs = [renameBind(encodeBind({ portal: '', statement: 's', paramFormats: [], params: [Buffer.from('a')], resultFormats: [] }), stmt.name), encodeExecute({ portal: '', maxRows: 0 }), SYNC];
  const c = fakeConn(true);
  const r = sharedReadReq('q', stmt, msgs);
  r.forNode(c);
  r.after!(c, result(c, { S: 'ERROR', C: '26000', M: 'refused' }), false);
  assert.equal(c.prepared.get(stmt.name), UNKNOWN_STATEMENT);
  const again = sharedReadReq('q', stmt, msgs).forNode(c);
  assert.deepEqual(types(again.bufs), ['C', 'P', 'B', 'E', 'S']);
  assert.equal(again.skip, 3);
});

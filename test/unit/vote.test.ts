// The vote over node outcomes and the node state machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { vote, outcomeKey } from '../../src/txn/vote.js';
import { Cluster } from '../../src/cluster/cluster.js';
import type { ExchangeResult, NodeConnection } from '../../src/backend/node-connection.js';
import { PgqError } from '../../src/errors.js';

function res(id: string, o: { tags?: string[]; error?: string; lost?: boolean }): ExchangeResult {
  return {
    node: { node: { id } } as unknown as NodeConnection,
    status: 'I',
    tags: o.tags ?? [],
    error: o.error ? { C: o.error, M: 'x' } : null,
    frames: [],
    lost: o.lost ? new PgqError('ERR_NODE_LOST', 'gone') : null,
    terminals: 0,
  };
}

test('outcome keys: tags with row counts, or the SQLSTATE of an error', () => {
  assert.equal(outcomeKey(res('a', { tags: ['UPDATE 1'] })), 'OK:UPDATE 1');
  assert.equal(outcomeKey(res('a', { tags: ['UPDATE 1'], error: '23505' })), 'E:23505');
});

test('unanimous outcome wins; nobody is outvoted', () => {
  const v = vote([res('a', { tags: ['INSERT 0 1'] }), res('b', { tags: ['INSERT 0 1'] }), res('c', { tags: ['INSERT 0 1'] })], 2);
  assert.equal(v.winner?.node.node.id, 'a');
  assert.deepEqual(v.outvoted, []);
});

test('a minority with another row count is outvoted', () => {
  const a = res('a', { tags: ['UPDATE 2'] });
  const v = vote([a, res('b', { tags: ['UPDATE 1'] }), res('c', { tags: ['UPDATE 1'] })], 2);
  assert.equal(v.winner?.node.node.id, 'b');
  assert.deepEqual(v.outvoted, [a]);
});

test('errors vote too: the main node alone succeeding is outvoted by two errors', () => {
  const a = res('a', { tags: ['INSERT 0 1'] });
  const v = vote([a, res('b', { error: '23505' }), res('c', { error: '23505' })], 2);
  assert.equal(v.winner?.error?.['C'], '23505');
  assert.deepEqual(v.outvoted, [a]);
});

test('lost nodes do not vote; the rest still reach quorum', () => {
  const v = vote([res('a', { tags: ['DELETE 3'] }), res('b', { lost: true }), res('c', { tags: ['DELETE 3'] })], 2);
  assert.equal(v.winner?.node.node.id, 'a');
  assert.equal(v.lost.length, 1);
});

test('three different outcomes: no winner', () => {
  const v = vote([res('a', { tags: ['UPDATE 1'] }), res('b', { tags: ['UPDATE 2'] }), res('c', { error: '40001' })], 2);
  assert.equal(v.winner, null);
  assert.equal(v.counts.size, 3);
});

test('two nodes that disagree with quorum 2: no winner', () => {
  const v = vote([res('a', { tags: ['UPDATE 1'] }), res('b', { tags: ['UPDATE 2'] })], 2);
  assert.equal(v.winner, null);
});

test('node states: legal moves bump the epoch and notify; illegal moves throw', () => {
  const c = new Cluster(
    [
      { id: 'n1', host: 'h', port: 1, weight: 1 },
      { id: 'n2', host: 'h', port: 2, weight: 1 },
      { id: 'n3', host: 'h', port: 3, weight: 0 },
    ],
    pino({ level: 'silent' }),
  );
  const seen: string[] = [];
  c.on('change', (ch: { node: { id: string }; to: string }) => seen.push(`${ch.node.id}:${ch.to}`));
  assert.equal(c.main().id, 'n1');
  assert.equal(c.quorum, 2);
  const e0 = c.epoch;
  assert.equal(c.setState(c.nodes[0]!, 'down', 'test'), true);
  assert.equal(c.epoch, e0 + 1);
  assert.equal(c.main().id, 'n2', 'the next up node becomes main');
  assert.equal(c.setState(c.nodes[0]!, 'down', 'again'), false, 'no change, no epoch bump');
  assert.throws(() => c.setState(c.nodes[2]!, 'recovering', 'x'), (e: PgqError) => e.code === 'ERR_ILLEGAL_STATE_CHANGE');
  c.setState(c.nodes[1]!, 'diverged', 'outvoted');
  assert.throws(() => c.setState(c.nodes[1]!, 'up', 'x'), (e: PgqError) => e.code === 'ERR_ILLEGAL_STATE_CHANGE');
  assert.deepEqual(seen, ['n1:down', 'n2:diverged']);
  assert.equal(c.main().id, 'n3');
});

test('read balancing follows weights; weight 0 never reads', () => {
  const c = new Cluster(
    [
      { id: 'n1', host: 'h', port: 1, weight: 1 },
      { id: 'n2', host: 'h', port: 2, weight: 3 },
      { id: 'n3', host: 'h', port: 3, weight: 0 },
    ],
    pino({ level: 'silent' }),
  );
  const counts: Record<string, number> = { n1: 0, n2: 0, n3: 0 };
  for (let i = 0; i < 20000; i++) counts[c.pickReadNode(c.nodes)!.id]!++;
  assert.equal(counts.n3, 0);
  const share = counts.n2! / 20000;
  assert.ok(share > 0.7 && share < 0.95, `n2 share ${share}`);
});

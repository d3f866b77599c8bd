// The two-phase commit state machine: legal paths and illegal moves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { advance, type CommitPhase } from '../../src/txn/commit.js';
import { PgqError } from '../../src/errors.js';

const t = (phase: CommitPhase) => ({ gid: 'pgq_c1_1', phase });

test('commit path: preparing -> deciding -> committing -> committed', () => {
  const x = t('preparing');
  for (const p of ['deciding', 'committing', 'committed'] as const) advance(x, p);
  assert.equal(x.phase, 'committed');
});

test('abort path: preparing -> aborting -> aborted', () => {
  const x = t('preparing');
  advance(x, 'aborting');
  advance(x, 'aborted');
  assert.equal(x.phase, 'aborted');
});

test('illegal moves throw and change nothing', () => {
  const bad: Array<[CommitPhase, CommitPhase]> = [
    ['preparing', 'committing'], // COMMIT PREPARED before the decision is durable
    ['preparing', 'committed'],
    ['deciding', 'aborting'], // a recorded decision can no longer be undone
    ['committing', 'aborting'],
    ['committed', 'aborting'],
    ['aborted', 'deciding'],
    ['aborting', 'committing'],
  ];
  for (const [from, to] of bad) {
    const x = t(from);
    assert.throws(() => advance(x, to), (e: PgqError) => e.code === 'ERR_ILLEGAL_COMMIT_PHASE', `${from} -> ${to}`);
    assert.equal(x.phase, from);
  }
});

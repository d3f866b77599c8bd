// Two-phase commit of one transaction over the nodes that took part in it
// (DESIGN.md "The write path" step 4, invariants 1-4). Presumed abort: a
// prepared transaction without a recorded commit decision is rolled back.
//
// What happens if the coordinator dies at each step (the resolver,
// src/txn/resolver.ts, finishes the work on the next start, within seconds):
//   1. before PREPARE      nothing is prepared; the nodes roll back the open
//                          transactions when the connections drop.
//   2. during/after the    some or all nodes hold the prepared transaction;
//      PREPAREs            no decision is recorded -> ROLLBACK PREPARED.
//   3. after the decision  the commit record is durable (fsync) -> the
//      is recorded         resolver runs COMMIT PREPARED wherever it remains.
//   4. during the COMMIT   as 3: nodes that have not committed yet are
//      PREPAREDs           committed by the resolver.
// The client is answered only after step 4 finished on every `up` node; a
// node that failed a step is made not-`up` in the cluster first (invariant 1).
import type { Logger } from 'pino';
import { PgqError, SqlState } from '../errors.js';
import type { Cluster } from '../cluster/cluster.js';
import type { ExchangeOptions, ExchangeResult, NodeConnection } from '../backend/node-connection.js';
import { encodeQuery } from '../protocol/frontend.js';
import type { StateStore } from '../state/store.js';
import type { GxidAllocator } from './gtm.js';
import { failpoint } from './failpoints.js';
import type { CommitBarrier } from './barrier.js';

export type CommitPhase = 'preparing' | 'deciding' | 'committing' | 'aborting' | 'committed' | 'aborted';

/** Legal moves of a transaction through two-phase commit. */
const NEXT: Record<CommitPhase, readonly CommitPhase[]> = {
  preparing: ['deciding', 'aborting'],
  deciding: ['committing'],
  committing: ['committed'],
  aborting: ['aborted'],
  committed: [],
  aborted: [],
};

/** Move `t` to phase `to`; an illegal move is a bug and throws. */
export function advance(t: { gid: string; phase: CommitPhase }, to: CommitPhase): void {
  if (!NEXT[t.phase].includes(to)) {
    throw new PgqError('ERR_ILLEGAL_COMMIT_PHASE', `transaction ${t.gid}: illegal two-phase commit step ${t.phase} -> ${to}`);
  }
  t.phase = to;
}

export interface InflightTxn {
  gid: string;
  gxid: bigint;
  session: number;
  phase: CommitPhase;
  startedAt: Date;
  nodes: string[];
}

export interface CommitDeps {
  cluster: Cluster;
  store: StateStore;
  gxids: GxidAllocator;
  log: Logger;
  /** Transactions between PREPARE and the end of COMMIT/ROLLBACK PREPARED; the resolver leaves them alone. */
  inflight: Map<string, InflightTxn>;
  /** Every commit runs inside this gate (src/txn/barrier.ts). */
  barrier?: CommitBarrier;
}

export type CommitOutcome = { ok: true; gid: string } | { ok: false; error: PgqError };

/**
 * Writes the main node ran and the others have not yet (src/txn/executor.ts,
 * "held writes"): each other node gets them in the same socket write as its
 * PREPARE TRANSACTION, and their vote comes before the commit decision.
 */
export interface HeldCommit {
  /** The requests node `c` runs before its PREPARE (one answer each). */
  before(c: NodeConnection): { msgs: Buffer[]; opts: ExchangeOptions }[];
  /**
   * The vote on their answers. `error`: the transaction must roll back;
   * `out`: nodes lost (already ejected) or outvoted, which take no further
   * part; eject() makes the outvoted `diverged` (after what they prepared
   * was rolled back on their connections, which close when they leave `up`).
   */
  settle(answers: Map<NodeConnection, ExchangeResult[]>): HeldVote;
}

/** The vote on held writes (Executor.settleHeld()). */
export interface HeldVote {
  error: PgqError | null;
  out: Set<NodeConnection>;
  eject(): Promise<void>;
}

/** Quote a GID as an SQL literal (GIDs are ours: letters, digits, '_'). */
function lit(gid: string): string {
  return `'${gid}'`;
}

export class TwoPhaseCommit {
  private readonly d: CommitDeps;

  constructor(deps: CommitDeps) {
    this.d = deps;
  }

  /**
   * Commit the open transaction on `conns` (all in a transaction block).
   * `plain` is a node that did something PostgreSQL cannot prepare
   * (temporary objects, LISTEN/NOTIFY: always the main node): it gets a plain
   * COMMIT after the decision is recorded.
   */
  async commit(conns: NodeConnection[], session: number, plain: NodeConnection | null, held?: HeldCommit): Promise<CommitOutcome> {
    // The whole sequence, PREPARE to the last COMMIT/ROLLBACK PREPARED, is inside the commit barrier.
    const barrier = this.d.barrier;
    if (barrier) {
      const wait = barrier.enter();
      if (wait) await wait;
    }
    try {
      return await this.commitInGate(conns, session, plain, held);
    } finally {
      barrier?.exit();
    }
  }

  private async commitInGate(conns: NodeConnection[], session: number, plain: NodeConnection | null, held: HeldCommit | undefined): Promise<CommitOutcome> {
    const { cluster, store, gxids, log, inflight } = this.d;
    const gxid = await gxids.next();
    const gid = gxids.gid(gxid);
    const preparable = conns.filter((c) => c !== plain);
    const entry: InflightTxn = {
      gid,
      gxid,
      session,
      phase: 'preparing',
      startedAt: new Date(),
      nodes: conns.map((c) => c.node.id),
    };
    inflight.set(gid, entry);
    try {
      failpoint('before-prepare');
      // Phase 1: PREPARE TRANSACTION everywhere, in parallel.
      const prepareMsg = encodeQuery(`PREPARE TRANSACTION ${lit(gid)}`);
      const heldAnswers = new Map<NodeConnection, ExchangeResult[]>();
      let firstDone = false;
      const answered = await Promise.all(
        preparable.map(async (c) => {
          const before = held?.before(c) ?? [];
          let r: ExchangeResult;
          if (before.length === 0) r = await c.exchange(prepareMsg);
          else {
            const rs = await c.exchangeMany([...before, { msgs: [prepareMsg], opts: {} }]);
            r = rs.pop()!;
            heldAnswers.set(c, rs);
          }
          if (!firstDone) {
            firstDone = true;
            failpoint('after-some-prepares');
          }
          return r;
        }),
      );
      failpoint('after-all-prepares');
      // PREPARE of a failed transaction answers ROLLBACK (tag) without an error.
      const ok = (r: ExchangeResult): boolean => !r.lost && !r.error && r.tags[0] === 'PREPARE TRANSACTION';
      const rollbackPrepared = (rs: ExchangeResult[]): Promise<unknown> =>
        Promise.all(rs.filter(ok).map((r) => r.node.exchange(encodeQuery(`ROLLBACK PREPARED ${lit(gid)}`))));
      // The held writes' vote: nodes it put out (lost, outvoted) take no further part.
      const check = held ? held.settle(heldAnswers) : null;
      const results = check ? answered.filter((r) => !check.out.has(r.node)) : answered;
      const prepared = results.filter(ok);
      const failed = results.filter((r) => !prepared.includes(r));
      const votes = prepared.length + (plain && !plain.closed ? 1 : 0);
      if (check?.error || votes < cluster.quorum || (failed.length > 0 && prepared.length === 0)) {
        advance(entry, 'aborting');
        await Promise.all([rollbackPrepared(answered), plain && !plain.closed ? plain.exchange(encodeQuery('ROLLBACK')) : null]);
        await check?.eject();
        for (const r of failed) if (r.lost) this.eject(r, 'down', 'lost during PREPARE TRANSACTION');
        advance(entry, 'aborted');
        log.debug({ gid, session }, 'transaction rolled back');
        return { ok: false, error: check?.error ?? this.prepareFailure(failed, votes) };
      }
      // Nodes outvoted on a held write prepared a transaction that differs: theirs is rolled back.
      if (check) {
        await rollbackPrepared(answered.filter((r) => check.out.has(r.node)));
        await check.eject();
      }
      // Enough votes: nodes that could not prepare leave service before the client hears anything,
      // marked as having missed this commit (whoever ejected them first).
      for (const r of failed) this.eject(r, r.lost ? 'down' : 'diverged', `PREPARE TRANSACTION failed: ${why(r)}`);
      cluster.markMissed(failed.map((r) => r.node.node));
      await cluster.persisted();
      // The decision, durable before any COMMIT PREPARED.
      advance(entry, 'deciding');
      await store.recordCommit(gid);
      failpoint('after-decision');
      // Phase 2: COMMIT PREPARED everywhere (and the plain COMMIT), in parallel.
      advance(entry, 'committing');
      const commitMsg = encodeQuery(`COMMIT PREPARED ${lit(gid)}`);
      let firstCommit = false;
      const done = await Promise.all([
        ...prepared.map(async (r) => {
          const x = await r.node.exchange(commitMsg);
          if (!firstCommit) {
            firstCommit = true;
            failpoint('after-some-commits');
          }
          return x;
        }),
        ...(plain && !plain.closed ? [plain.exchange(encodeQuery('COMMIT'))] : []),
      ]);
      let all = true;
      for (const x of done) {
        if (!x.lost && !x.error) continue;
        all = false;
        // The decision stands; the resolver commits it when the node is back.
        this.eject(x, x.lost ? 'down' : 'diverged', `COMMIT PREPARED failed: ${why(x)}`);
      }
      await cluster.persisted(); // nodes that missed the commit are out of service, durably, first
      advance(entry, 'committed');
      log.debug({ gid, session }, 'transaction committed');
      if (all) store.forgetCommits([gid]);
      else log.warn({ gid }, 'transaction committed, but not on every node; the resolver will finish it');
      return { ok: true, gid };
    } finally {
      inflight.delete(gid);
    }
  }

  private eject(r: ExchangeResult, to: 'down' | 'diverged', reason: string): void {
    const node = r.node.node;
    if (node.state === 'up') this.d.cluster.setState(node, to, reason);
  }

  private prepareFailure(failed: ExchangeResult[], votes: number): PgqError {
    const err = failed.find((r) => r.error)?.error;
    if (err && failed.every((r) => r.error?.['C'] === err['C'])) {
      // Every node refused the same way (e.g. a serialization failure): PostgreSQL's own error.
      return new PgqError('ERR_PREPARE_FAILED', err['M'] ?? 'PREPARE TRANSACTION failed', {
        sqlstate: err['C'] ?? SqlState.SERIALIZATION_FAILURE,
        detail: err['D'],
        hint: err['H'],
      });
    }
    return new PgqError(
      'ERR_NO_COMMIT_QUORUM',
      `the transaction was rolled back: only ${votes} of ${this.d.cluster.configuredCount} nodes could prepare it, ${this.d.cluster.quorum} are needed`,
      { sqlstate: SqlState.SERIALIZATION_FAILURE, hint: 'Retry the transaction.' },
    );
  }
}

function why(r: ExchangeResult): string {
  if (r.lost) return r.lost.message;
  if (r.error) return `${r.error['C']} ${r.error['M']}`;
  return `unexpected reply ${r.tags.join(', ') || '(none)'}`;
}

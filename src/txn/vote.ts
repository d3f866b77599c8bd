// The vote over node outcomes (DESIGN.md "The write path", step 3): each
// node's outcome of the same request is reduced to a key (error SQLSTATE, or
// the command tags with their row counts); the key held by a majority of the
// configured nodes wins and nodes with another key are outvoted.
import { createHash } from 'node:crypto';
import type { ExchangeResult } from '../backend/node-connection.js';
import { BE } from '../protocol/constants.js';

/**
 * The rows a node returned (RETURNING, or a SELECT that had to run on every
 * node), as an order-independent digest: each DataRow is hashed on its own
 * and the hashes are sorted, because an UPDATE ... RETURNING visits rows in
 * each node's physical order. '' when there are none.
 */
export function rowsDigest(frames: readonly Buffer[]): string {
  let hashes: string[] | null = null;
  for (const f of frames) {
    if (f[0] !== BE.DataRow) continue;
    (hashes ??= []).push(createHash('sha1').update(f).digest('base64'));
  }
  if (hashes === null) return '';
  if (hashes.length === 1) return hashes[0]!;
  hashes.sort();
  return createHash('sha1').update(hashes.join('')).digest('base64');
}

/** The comparable part of an outcome: the SQLSTATE, or the command tags and a digest of the rows. */
export function outcomeKey(r: ExchangeResult): string {
  if (r.error) return `E:${r.error['C'] ?? '?'}`;
  const rows = rowsDigest(r.frames);
  return rows === '' ? `OK:${r.tags.join('|')}` : `OK:${r.tags.join('|')}#${rows}`;
}

export interface Verdict {
  /** The winning result (one of the inputs), or null when no key reached `quorum`. */
  winner: ExchangeResult | null;
  /** Results whose key differs from the winner's (to be marked diverged). */
  outvoted: ExchangeResult[];
  /** Results lost to a broken connection (not counted). */
  lost: ExchangeResult[];
  /** Votes per key, for logs and errors. */
  counts: Map<string, number>;
}

/**
 * Count the outcomes. `quorum` is the number of votes a key needs (a majority
 * of the configured nodes). `preferred` (the main node's result) wins ties
 * when everything that answered agrees but fewer than `quorum` nodes answered:
 * refusing such writes is the atomic-commit layer's job, not the vote's.
 */
export function vote(results: readonly ExchangeResult[], quorum: number): Verdict {
  const counts = new Map<string, number>();
  const lost: ExchangeResult[] = [];
  const live: ExchangeResult[] = [];
  const keys: string[] = [];
  for (const r of results) {
    if (r.lost) {
      lost.push(r);
      continue;
    }
    live.push(r);
    const k = outcomeKey(r);
    keys.push(k);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  let winKey: string | null = null;
  for (const [k, n] of counts) if (n >= quorum) winKey = k;
  if (winKey === null && counts.size === 1) winKey = counts.keys().next().value as string;
  if (winKey === null) return { winner: null, outvoted: [], lost, counts };
  let winner: ExchangeResult | null = null;
  const outvoted: ExchangeResult[] = [];
  live.forEach((r, i) => {
    if (keys[i] === winKey) winner ??= r;
    else outvoted.push(r);
  });
  return { winner, outvoted, lost, counts };
}

// Time values the coordinator fixes for a statement so that every node
// stores the same now()/CURRENT_TIMESTAMP (DESIGN.md "Determinism").
// Microsecond precision: Date has milliseconds, so the sub-millisecond part
// comes from the monotonic clock.
import type { TimeValues } from '../sql/rewrite.js';

const originMs = Date.now();
const originHr = process.hrtime.bigint();

/** Wall-clock time in microseconds since the epoch. */
export function nowMicros(): bigint {
  return BigInt(originMs) * 1000n + (process.hrtime.bigint() - originHr) / 1000n;
}

export function microsToDate(us: bigint): { date: Date; micros: number } {
  const ms = us / 1000n;
  return { date: new Date(Number(ms)), micros: Number(us % 1000n) };
}

export function timeValues(txnStartMicros: bigint): TimeValues {
  const stmt = microsToDate(nowMicros()).date;
  return { transaction: microsToDate(txnStartMicros).date, statement: stmt, clock: stmt };
}

// Failpoints for crash tests only: PGQUORUM_FAILPOINT=<name>[:<n>] in the
// coordinator's environment makes the process SIGKILL itself the n-th time
// (default 1st) it reaches the named step of two-phase commit. Nothing a
// client sends can turn one on; unset (the default), a check costs one
// comparison. Names: docs/two-phase-commit.md.
export const FAILPOINTS = [
  'before-prepare',
  'after-some-prepares',
  'after-all-prepares',
  'after-decision',
  'after-some-commits',
] as const;
export type Failpoint = (typeof FAILPOINTS)[number];

const spec = process.env.PGQUORUM_FAILPOINT ?? '';
const [armedName, countText] = spec.split(':');
const armed: string | null = spec === '' ? null : armedName!;
let remaining = Number(countText ?? '1') || 1;

if (armed !== null && !(FAILPOINTS as readonly string[]).includes(armed)) {
  throw new Error(`PGQUORUM_FAILPOINT: unknown failpoint "${armed}"; known: ${FAILPOINTS.join(', ')}`);
}

/** Die here if this failpoint is armed (tests only). */
export function failpoint(name: Failpoint): void {
  if (armed !== name) return;
  if (--remaining > 0) return;
  process.stderr.write(`pgquorum: failpoint ${name} reached: SIGKILL\n`);
  process.kill(process.pid, 'SIGKILL');
}

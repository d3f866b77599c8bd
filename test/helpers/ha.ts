// Test harness for high availability: the coordinator's node table, waiting
// for a condition, a psql session kept open across failures, and a small
// transactional workload (node-postgres clients with a retry loop) that
// counts what committed, what was retried and what failed.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import pg from 'pg';

export interface NodeRow {
  id: string;
  state: string;
  role: string | null;
  reason: string;
  missed_writes: string;
  detached: string;
  [k: string]: string | null;
}

/** SHOW pgquorum.nodes as objects. */
export async function showNodes(c: pg.Client): Promise<NodeRow[]> {
  const r = await c.query<NodeRow>('SHOW pgquorum.nodes');
  return r.rows;
}

export async function nodeRow(c: pg.Client, id: string): Promise<NodeRow> {
  const row = (await showNodes(c)).find((r) => r.id === id);
  if (!row) throw new Error(`no node ${id} in SHOW pgquorum.nodes`);
  return row;
}

/** Poll `fn` every `everyMs` until it returns a truthy value; throws after `timeoutMs` naming `what`. */
export async function waitFor<T>(fn: () => Promise<T> | T, timeoutMs: number, what: string, everyMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** An interactive psql kept open: run() sends SQL and returns what psql printed for it. */
export class PsqlSession {
  private readonly p: ChildProcessWithoutNullStreams;
  private out = '';
  private err = '';
  private seq = 0;
  exited = false;

  constructor(env: NodeJS.ProcessEnv) {
    this.p = spawn('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=0'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.p.stdout.setEncoding('utf8');
    this.p.stderr.setEncoding('utf8');
    this.p.stdout.on('data', (d: string) => (this.out += d));
    this.p.stderr.on('data', (d: string) => (this.err += d));
    this.p.on('exit', () => (this.exited = true));
    this.p.stdin.on('error', () => {});
  }

  /** Run `sql` (one or more statements); resolves with { out, err } printed for it. */
  async run(sql: string, timeoutMs = 30_000): Promise<{ out: string; err: string }> {
    const marker = `__pgq_done_${++this.seq}__`;
    const start = this.out.length;
    const errStart = this.err.length;
    this.p.stdin.write(`${sql}\n\\echo ${marker}\n`);
    await waitFor(() => this.out.includes(marker) || this.exited, timeoutMs, `psql to answer ${JSON.stringify(sql)}`, 20);
    if (!this.out.includes(marker)) throw new Error(`psql exited: ${this.err.slice(errStart)}`);
    const out = this.out.slice(start, this.out.indexOf(marker, start)).trim();
    return { out, err: this.err.slice(errStart).trim() };
  }

  close(): void {
    if (!this.exited) {
      this.p.stdin.end('\\q\n');
      setTimeout(() => this.p.kill('SIGKILL'), 2000).unref();
    }
  }
}

export interface WorkloadStats {
  committed: number;
  /** Retries by SQLSTATE (40001, 40P01). */
  retries: Record<string, number>;
  /** Errors other than 40001/40P01. */
  failures: { code: string; message: string }[];
  maxLatencyMs: number;
}

/**
 * `clients` sessions running a bank-like transaction (UPDATE acct, INSERT
 * hist, COMMIT) until stop() resolves; a 40001 or 40P01 anywhere rolls back
 * and retries the transaction. Tables: acct(id int primary key, bal int),
 * hist(client int, n int, delta int).
 */
export function runWorkload(
  connect: () => Promise<pg.Client>,
  opts: { clients: number; accounts: number },
): { stop: () => Promise<WorkloadStats>; stats: WorkloadStats } {
  const stats: WorkloadStats = { committed: 0, retries: {}, failures: [], maxLatencyMs: 0 };
  let stopping = false;
  const loops: Promise<void>[] = [];
  for (let i = 0; i < opts.clients; i++) {
    loops.push(
      (async () => {
        const c = await connect();
        let n = 0;
        try {
          while (!stopping) {
            const id = 1 + Math.floor(Math.random() * opts.accounts);
            const delta = Math.floor(Math.random() * 200) - 100;
            const t0 = Date.now();
            for (;;) {
              try {
                await c.query('BEGIN');
                await c.query('UPDATE acct SET bal = bal + $1 WHERE id = $2', [delta, id]);
                await c.query('INSERT INTO hist VALUES ($1, $2, $3)', [i, n, delta]);
                await c.query('COMMIT');
                stats.committed++;
                n++;
                break;
              } catch (e) {
                const code = (e as { code?: string }).code ?? '?';
                await c.query('ROLLBACK').catch(() => {});
                if (code === '40001' || code === '40P01') {
                  stats.retries[code] = (stats.retries[code] ?? 0) + 1;
                  if (stopping) break;
                  continue;
                }
                stats.failures.push({ code, message: (e as Error).message });
                await new Promise((r) => setTimeout(r, 100));
                break;
              }
            }
            stats.maxLatencyMs = Math.max(stats.maxLatencyMs, Date.now() - t0);
          }
        } finally {
          await c.end().catch(() => {});
        }
      })().catch((e: unknown) => {
        stats.failures.push({ code: 'client', message: (e as Error).message });
      }),
    );
  }
  return {
    stats,
    async stop() {
      stopping = true;
      await Promise.all(loops);
      return stats;
    },
  };
}

// SET/RESET pgquorum.* answered by the coordinator itself (never sent to the
// nodes). One setting so far:
//
//   SET pgquorum.commit_barrier = on    waits until the commits in flight have
//                                        finished and keeps new ones waiting
//                                        (src/txn/barrier.ts) for this session
//   SET pgquorum.commit_barrier = off   releases it (also RESET, and the end
//                                        of the session); a NOTICE says how
//                                        long it was held
//
// Only superusers may turn it on (it stalls every commit of the cluster).
// `pgquorum verify` uses it to take its snapshots on every node at one
// consistent cut. A hold ends by itself after the barrier's maximum
// (5000 ms by default) with a WARNING at the next `off`.
import { PgqError, SqlState } from '../errors.js';
import type { CoordinatorContext } from '../context.js';
import type { Session } from '../frontend/session.js';
import type { StatementInfo } from '../sql/types.js';
import type { BarrierHold } from '../txn/barrier.js';
import { encodeCommandComplete, encodeNoticeResponse, encodeReadyForQuery } from '../protocol/backend.js';
import { requireSuperuser } from './node-command.js';

/** How long `SET pgquorum.commit_barrier = on` waits for the commits in flight. */
export const BARRIER_DRAIN_MS = 2000;

interface SessionHold {
  hold: BarrierHold;
  onClose: () => void;
}

const holds = new WeakMap<Session, SessionHold>();

/** True for the statements this module answers: SET/RESET of a `pgquorum.*` setting. */
export function isPgquorumSetting(s: StatementInfo): boolean {
  return s.kind === 'session' && s.name !== undefined && s.name.toLowerCase().startsWith('pgquorum.');
}

/**
 * Answer SET/RESET pgquorum.<name> for session `sess` (CommandComplete and
 * ReadyForQuery), or throw a PgqError that the session reports.
 */
export async function pgquorumSetting(s: StatementInfo, simple: boolean, ctx: CoordinatorContext, sess: Session): Promise<void> {
  const name = s.name!.toLowerCase();
  if (name !== 'pgquorum.commit_barrier') {
    throw new PgqError('ERR_UNKNOWN_SETTING', `unrecognized configuration parameter "${s.name}"`, {
      sqlstate: '42704',
      hint: 'The coordinator knows pgquorum.commit_barrier.',
    });
  }
  if (!simple) {
    throw new PgqError('ERR_BARRIER_PROTOCOL', 'pgquorum.commit_barrier can only be set with a simple query', {
      sqlstate: SqlState.FEATURE_NOT_SUPPORTED,
    });
  }
  if (s.setLocal) {
    throw new PgqError('ERR_BARRIER_LOCAL', 'pgquorum.commit_barrier cannot be set with SET LOCAL', {
      sqlstate: SqlState.FEATURE_NOT_SUPPORTED,
    });
  }
  const reset = /^\s*RESET\b/i.test(s.text);
  const on = reset ? false : barrierValue(s.text);
  const notices: Buffer[] = [];
  if (on) {
    if (sess.status !== 'I') {
      throw new PgqError('ERR_BARRIER_IN_TXN', 'pgquorum.commit_barrier cannot be turned on inside a transaction block', {
        sqlstate: '25001',
      });
    }
    if (!holds.has(sess)) {
      await requireSuperuser(sess, 'SET pgquorum.commit_barrier = on'); // it stalls every commit of the cluster
      let hold: BarrierHold;
      try {
        hold = await ctx.barrier.hold(BARRIER_DRAIN_MS);
      } catch (e) {
        throw new PgqError('ERR_BARRIER_DRAIN', `could not take the commit barrier: ${(e as Error).message}`, {
          sqlstate: '55P03',
          hint: 'Retry; a commit that does not finish usually means a node does not answer.',
        });
      }
      if (sess.closed || sess.client.closed) {
        hold.release();
        return;
      }
      const onClose = (): void => {
        release(sess);
      };
      holds.set(sess, { hold, onClose });
      sess.client.socket.once('close', onClose);
      sess.log.info('commit barrier held by this session');
    }
  } else {
    const r = release(sess);
    if (r) {
      const ms = (Math.round(r.heldMs * 10) / 10).toFixed(1);
      notices.push(
        r.autoReleased
          ? encodeNoticeResponse({
              S: 'WARNING',
              V: 'WARNING',
              C: '01000',
              M: `commit barrier was released automatically after ${ms} ms`,
              H: `A hold lasts at most ${ctx.barrier.maxHoldMs} ms.`,
            })
          : encodeNoticeResponse({ S: 'NOTICE', V: 'NOTICE', C: '00000', M: `commit barrier released after ${ms} ms` }),
      );
    }
  }
  for (const n of notices) sess.client.send(n);
  sess.client.send(encodeCommandComplete(reset ? 'RESET' : 'SET'));
  sess.client.send(encodeReadyForQuery(sess.status));
}

/** End the session's hold, if it has one. */
function release(sess: Session): BarrierHold | null {
  const h = holds.get(sess);
  if (!h) return null;
  holds.delete(sess);
  sess.client.socket.off('close', h.onClose);
  h.hold.release();
  return h.hold;
}

/** on/off from `SET pgquorum.commit_barrier = <value>` (PostgreSQL's boolean spellings; DEFAULT = off). */
function barrierValue(text: string): boolean {
  const m = /commit_barrier"?\s*(?:=|\bTO\b)\s*(.*?)\s*;?\s*$/is.exec(text);
  const raw = (m?.[1] ?? '').replace(/^'(.*)'$/s, '$1').trim().toLowerCase();
  if (['on', 'true', 'yes', '1', 't', 'y'].includes(raw)) return true;
  if (['off', 'false', 'no', '0', 'f', 'n', 'default'].includes(raw)) return false;
  throw new PgqError('ERR_BARRIER_VALUE', `parameter "pgquorum.commit_barrier" requires a Boolean value`, {
    sqlstate: SqlState.INVALID_PARAMETER_VALUE,
  });
}

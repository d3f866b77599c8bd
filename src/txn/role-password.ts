// The routing side of deterministic role passwords (src/sql/role-password.ts):
// before CREATE/ALTER ROLE ... PASSWORD 'plain' fans out, ask the main node
// how the session would hash it (password_encryption and the settings that
// change how the text reads), compute the verifier once, and send every node
// the statement with the verifier in place of the password. The extended
// protocol is refused: the literal sits in a Parse that nodes may get at
// different times, and a client using it can send a simple query instead.
import { PgqError, SqlState } from '../errors.js';
import { firstRowText } from '../protocol/backend.js';
import { encodeQuery } from '../protocol/frontend.js';
import { classify, type StatementInfo } from '../sql/classify.js';
import { rewriteSimple } from '../sql/rewrite.js';
import { isRolePasswordStatement, rewriteRolePassword, type RolePasswordOptions } from '../sql/role-password.js';
import type { Executor, Req } from './executor.js';

export { isRolePasswordStatement };

const Q_SETTINGS = encodeQuery(
  "SELECT pg_catalog.current_setting('password_encryption'), pg_catalog.current_setting('standard_conforming_strings')," +
    " pg_catalog.current_setting('server_encoding'), pg_catalog.current_setting('client_encoding'), current_user, session_user",
);

interface SessionSettings extends RolePasswordOptions {
  encryption: string;
}

/** The session's settings, read on the main node (SET reaches every node of the session). */
async function readSettings(exec: Executor): Promise<SessionSettings | null> {
  const main = exec.mainConn();
  const r = await main.exchange(Q_SETTINGS, { buffer: true });
  if (r.lost) {
    exec.nodeLost(main, r.lost);
    throw new PgqError('ERR_NODE_LOST_IN_REQUEST', `${r.lost.message}; the statement was not run, retry it`, {
      sqlstate: SqlState.SERIALIZATION_FAILURE,
      cause: r.lost,
    });
  }
  if (r.error) {
    if (main.txnStatus === 'E') return null; // an aborted transaction: the nodes refuse the statement themselves
    throw new PgqError('ERR_ROLE_PASSWORD_SETTINGS', `could not read password_encryption: ${r.error['M'] ?? 'error'}`, {
      sqlstate: r.error['C'] ?? SqlState.INTERNAL_ERROR,
    });
  }
  const v = firstRowText(r.frames)?.map((x) => x ?? undefined);
  if (v) {
    return {
      encryption: v[0] ?? '',
      standardConformingStrings: v[1] !== 'off',
      serverEncoding: v[2],
      clientEncoding: v[3],
      currentUser: v[4],
      sessionUser: v[5],
    };
  }
  throw new PgqError('ERR_ROLE_PASSWORD_SETTINGS', 'could not read password_encryption: no row', { sqlstate: SqlState.INTERNAL_ERROR });
}

/**
 * The request that runs `sql` (a simple-protocol query string holding a
 * statement for which isRolePasswordStatement() is true) with the plain-text
 * passwords replaced by verifiers, time values fixed as rewritten() does;
 * `fallback()` when there is nothing to replace.
 */
export async function rolePasswordReq(exec: Executor, sql: string, fallback: () => Req): Promise<Req> {
  const st = classify(sql).statements;
  if (st.length > 1 && st.some((s) => s.kind === 'session')) {
    // The settings are read before the string runs; a SET inside it would come too late.
    throw new PgqError('ERR_ROLE_PASSWORD', 'a plain-text role password cannot be sent in a query string that also changes session settings', {
      sqlstate: SqlState.FEATURE_NOT_SUPPORTED,
      hint: 'Send the SET and the CREATE/ALTER ROLE as separate queries.',
    });
  }
  const s = await readSettings(exec);
  if (!s) return fallback();
  if (s.encryption !== 'scram-sha-256' && s.encryption !== 'md5') {
    throw new PgqError('ERR_ROLE_PASSWORD', `cannot compute the password verifier: password_encryption is "${s.encryption}"`, {
      sqlstate: SqlState.FEATURE_NOT_SUPPORTED,
      hint: "SET password_encryption to 'scram-sha-256' or 'md5'.",
    });
  }
  const text = rewriteRolePassword(sql, s.encryption, s);
  if (text === null) return fallback();
  const out = rewriteSimple(text, exec.times()) ?? text;
  const msg = encodeQuery(out);
  return { forNode: () => ({ bufs: [msg], skip: 0 }), text: out };
}

/** Extended protocol: a Parse of CREATE/ALTER ROLE with a plain-text password is refused. */
export function refuseExtendedRolePassword(info: StatementInfo | null): void {
  if (!isRolePasswordStatement(info)) return;
  throw new PgqError(
    'ERR_ROLE_PASSWORD_EXTENDED',
    'CREATE ROLE / ALTER ROLE with a plain-text PASSWORD is not supported in the extended query protocol',
    {
      sqlstate: SqlState.FEATURE_NOT_SUPPORTED,
      detail: 'pgquorum computes the password verifier itself so that every node stores the same one; it does so for simple queries only.',
      hint: "Send the statement as a simple query (no parameters, no prepared statement), or send a verifier (SCRAM-SHA-256$... or md5...) instead of the password.",
    },
  );
}

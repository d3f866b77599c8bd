// Makes CREATE ROLE / ALTER ROLE ... PASSWORD deterministic across nodes.
//
// PostgreSQL hashes a plain-text password with a random salt (SCRAM-SHA-256),
// so the same statement run on three nodes would store three different
// verifiers. The coordinator therefore computes the verifier once, exactly as
// PostgreSQL 15 would (SASLprep, 16-byte random salt, 4096 iterations; or
// 'md5' + md5(password || rolename) when the session's password_encryption is
// md5), and sends every node the statement with the literal replaced by that
// verifier. PostgreSQL stores a verifier as is.
//
// The literal is found with PostgreSQL's own parser (libpg_query): the
// DefElem 'password' gives the decoded value and the location of the option
// (PASSWORD or ENCRYPTED PASSWORD); the project's lexer turns that location
// into the byte span of the literal token ('..', E'..', U&'..' [UESCAPE],
// $tag$..$tag$, and '..' continued on the next line).
//
// Left alone: PASSWORD NULL, the empty string (PostgreSQL clears the
// password with a notice, on every node alike) and literals that already are
// verifiers ('SCRAM-SHA-256$...' that parses, 'md5' + 32 lowercase hex digits;
// psql's \password and pg_dumpall send those).

import { PgqError, SqlState } from '../errors.js';
import { formatScramVerifier, makeScramVerifier, parseScramVerifier } from '../frontend/auth/scram.js';
import { md5PasswordHash } from '../frontend/auth/md5.js';
import { nextToken, tokenIs } from './lexer.js';
import { parseSql, type RawStmt } from './parser.js';
import type { StatementInfo } from './types.js';

export type PasswordEncryption = 'scram-sha-256' | 'md5';

/** Whom the password is for: a role name, or CURRENT_USER / CURRENT_ROLE / SESSION_USER. */
export type RoleRef = { name: string } | { special: 'current_user' | 'session_user' };

export interface RolePasswordLiteral {
  /** byte offsets (UTF-8) of the literal token in the text, end exclusive */
  start: number;
  end: number;
  /** the value as PostgreSQL decodes it (with standard_conforming_strings = on) */
  password: string;
  role: RoleRef;
  /**
   * plain: a password PostgreSQL would hash; verifier: stored as is; empty:
   * PostgreSQL clears the password; bad-verifier: starts like a SCRAM
   * verifier but is not one pgquorum can check (refused).
   */
  kind: 'plain' | 'verifier' | 'empty' | 'bad-verifier';
  /** the token as written: '..', E'..', U&'..' or $tag$..$tag$ */
  quoting: 'plain' | 'escape' | 'unicode' | 'dollar';
}

/** What the session's settings say about how to build and send the verifier. */
export interface RolePasswordOptions {
  /** current_user of the session (for md5 with CURRENT_USER / CURRENT_ROLE) */
  currentUser?: string;
  /** session_user of the session (for md5 with SESSION_USER) */
  sessionUser?: string;
  /** the session's standard_conforming_strings (default on) */
  standardConformingStrings?: boolean;
  /** the nodes' server_encoding (default UTF8) */
  serverEncoding?: string;
  /** the session's client_encoding (default UTF8) */
  clientEncoding?: string;
  /** salt source (tests); 16 random bytes otherwise */
  salt?: () => Buffer;
}

const MD5_VERIFIER = /^md5[0-9a-f]{32}$/;

/** Whether PostgreSQL would store `s` as is (get_password_type() is not PLAINTEXT). */
export function isPasswordVerifier(s: string): boolean {
  return MD5_VERIFIER.test(s) || parseScramVerifier(s) !== null;
}

function classifyPassword(s: string): RolePasswordLiteral['kind'] {
  if (s === '') return 'empty';
  if (isPasswordVerifier(s)) return 'verifier';
  if (s.startsWith('SCRAM-SHA-256$')) return 'bad-verifier';
  return 'plain';
}

type Obj = Record<string, unknown>;

function roleOf(kind: 'CreateRoleStmt' | 'AlterRoleStmt', body: Obj): RoleRef | null {
  if (kind === 'CreateRoleStmt') return typeof body.role === 'string' ? { name: body.role } : null;
  const spec = body.role as Obj | undefined;
  switch (spec?.roletype) {
    case 'ROLESPEC_CSTRING':
      return typeof spec.rolename === 'string' ? { name: spec.rolename } : null;
    case 'ROLESPEC_CURRENT_USER':
    case 'ROLESPEC_CURRENT_ROLE':
      return { special: 'current_user' };
    case 'ROLESPEC_SESSION_USER':
      return { special: 'session_user' };
    default:
      return null; // PUBLIC: PostgreSQL refuses it
  }
}

function quotingOf(b: Uint8Array, start: number): RolePasswordLiteral['quoting'] {
  const c = b[start];
  if (c === 36) return 'dollar';
  if (c === 101 || c === 69) return 'escape';
  if (c === 117 || c === 85) return 'unicode';
  return 'plain';
}

function unparsable(what: string): PgqError {
  return new PgqError('ERR_ROLE_PASSWORD_SPAN', `could not locate the ${what} of a PASSWORD option`, {
    sqlstate: SqlState.INTERNAL_ERROR,
    hint: 'Send a SCRAM-SHA-256 or md5 verifier instead of the plain-text password.',
  });
}

/** The password literals of one raw statement (CREATE ROLE/USER/GROUP, ALTER ROLE/USER). */
function literalsOf(raw: RawStmt, b: Uint8Array, out: RolePasswordLiteral[]): void {
  const stmt = raw.stmt;
  const kind = 'CreateRoleStmt' in stmt ? 'CreateRoleStmt' : 'AlterRoleStmt' in stmt ? 'AlterRoleStmt' : null;
  if (!kind) return;
  const body = stmt[kind] as Obj;
  const options = Array.isArray(body.options) ? (body.options as Obj[]) : [];
  for (const o of options) {
    const d = o.DefElem as Obj | undefined;
    if (!d || d.defname !== 'password') continue;
    const arg = d.arg as Obj | undefined;
    const str = arg?.String as Obj | undefined;
    if (!str) continue; // PASSWORD NULL
    const password = typeof str.sval === 'string' ? str.sval : '';
    if (typeof d.location !== 'number' || d.location < 0) throw unparsable('location');
    // The option starts at PASSWORD or ENCRYPTED PASSWORD.
    let t = nextToken(b, d.location);
    if (t.type === 'ident' && tokenIs(b, t, 'encrypted')) t = nextToken(b, t.end);
    if (!(t.type === 'ident' && tokenIs(b, t, 'password'))) throw unparsable('PASSWORD keyword');
    const lit = nextToken(b, t.end);
    if (lit.type !== 'string') throw unparsable('literal');
    const role = roleOf(kind, body);
    if (!role) continue; // PostgreSQL refuses the statement itself
    out.push({ start: lit.start, end: lit.end, password, role, kind: classifyPassword(password), quoting: quotingOf(b, lit.start) });
  }
}

/**
 * Every password literal of CREATE ROLE/USER/GROUP and ALTER ROLE/USER in
 * `sql` (one or more statements), in text order. Empty when the text has
 * none or does not parse (PostgreSQL then reports the syntax error itself).
 */
export function findRolePasswords(sql: string): RolePasswordLiteral[] {
  if (!/password/i.test(sql)) return [];
  let tree;
  try {
    tree = parseSql(sql);
  } catch (err) {
    if (err instanceof PgqError) throw err; // parser not ready
    return [];
  }
  const b = Buffer.from(sql, 'utf8');
  const out: RolePasswordLiteral[] = [];
  for (const raw of tree.stmts) literalsOf(raw, b, out);
  return out.sort((x, y) => x.start - y.start);
}

/** A literal the coordinator must replace (or refuse). */
function needsRewrite(l: RolePasswordLiteral): boolean {
  return l.kind === 'plain' || l.kind === 'bad-verifier';
}

/**
 * Whether this statement is CREATE/ALTER ROLE with a plain-text password that
 * the coordinator must turn into a verifier (see rewriteRolePassword()).
 */
export function isRolePasswordStatement(info: Pick<StatementInfo, 'tag' | 'text'> | null | undefined): boolean {
  if (!info || (info.tag !== 'CREATE ROLE' && info.tag !== 'ALTER ROLE')) return false;
  return findRolePasswords(info.text).some(needsRewrite);
}

function refuse(message: string, detail: string, hint: string): PgqError {
  return new PgqError('ERR_ROLE_PASSWORD', message, { sqlstate: SqlState.FEATURE_NOT_SUPPORTED, detail, hint });
}

const isUtf8 = (enc: string | undefined): boolean => enc === undefined || /^utf-?8$/i.test(enc) || enc === 'UNICODE';
const isAscii = (s: string): boolean => /^[\x00-\x7f]*$/.test(s);

/** The session settings under which the coordinator cannot reproduce what PostgreSQL would store. */
function checkSettings(sql: string, b: Uint8Array, lits: RolePasswordLiteral[], encryption: PasswordEncryption, o: RolePasswordOptions): void {
  if (!isUtf8(o.clientEncoding) && !isAscii(sql)) {
    throw refuse(
      'cannot compute the password verifier: client_encoding is not UTF8',
      `client_encoding is ${o.clientEncoding}; pgquorum reads query text as UTF-8.`,
      'SET client_encoding = UTF8, or send a SCRAM-SHA-256 verifier instead of the password.',
    );
  }
  if (o.standardConformingStrings === false) {
    for (const l of lits) {
      const body = Buffer.from(b.subarray(l.start, l.end));
      if ((l.quoting === 'plain' && body.includes(92)) || l.quoting === 'unicode') {
        throw refuse(
          'cannot compute the password verifier: standard_conforming_strings is off',
          'With standard_conforming_strings off, backslashes in the password literal mean something else to PostgreSQL.',
          "Write the password as E'...', or SET standard_conforming_strings = on.",
        );
      }
    }
  }
  if (!isUtf8(o.serverEncoding)) {
    for (const l of lits) {
      const role = 'name' in l.role ? l.role.name : '';
      if (!isAscii(l.password) || (encryption === 'md5' && !isAscii(role))) {
        throw refuse(
          'cannot compute the password verifier: server_encoding is not UTF8',
          `The nodes' server_encoding is ${o.serverEncoding}, and the password (or role name) has non-ASCII characters.`,
          'Send a verifier computed for that encoding instead of the password.',
        );
      }
    }
  }
}

/** The verifier PostgreSQL 15 would store for this literal. */
function verifierFor(l: RolePasswordLiteral, encryption: PasswordEncryption, o: RolePasswordOptions): string {
  if (encryption === 'md5') {
    const role = 'name' in l.role ? l.role.name : l.role.special === 'current_user' ? o.currentUser : o.sessionUser;
    if (role === undefined) {
      throw new PgqError('ERR_ROLE_PASSWORD_ROLE', 'cannot compute an md5 password without the role name', {
        sqlstate: SqlState.INTERNAL_ERROR,
      });
    }
    return md5PasswordHash(role, l.password);
  }
  return formatScramVerifier(makeScramVerifier(l.password, o.salt?.()));
}

/**
 * `sql` (one or more statements) with every plain-text password of CREATE
 * ROLE/USER/GROUP and ALTER ROLE/USER replaced by the verifier PostgreSQL
 * would compute under `encryption`; null when there is nothing to replace.
 * Throws a PgqError (0A000) when the session's settings keep the coordinator
 * from computing what PostgreSQL would, or when a literal starts like a SCRAM
 * verifier but is not a valid one.
 */
export function rewriteRolePassword(sql: string, encryption: PasswordEncryption, opts: RolePasswordOptions = {}): string | null {
  const lits = findRolePasswords(sql).filter(needsRewrite);
  if (lits.length === 0) return null;
  if (lits.some((l) => l.kind === 'bad-verifier')) {
    throw refuse(
      'the password looks like a SCRAM-SHA-256 verifier but is not a valid one',
      'PostgreSQL would store it as a plain-text password hashed with a random salt on each node.',
      "Send a complete verifier ('SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>') or a plain-text password.",
    );
  }
  const b = Buffer.from(sql, 'utf8');
  checkSettings(sql, b, lits, encryption, opts);
  const parts: Buffer[] = [];
  let pos = 0;
  for (const l of lits) {
    parts.push(b.subarray(pos, l.start), Buffer.from(`'${verifierFor(l, encryption, opts)}'`, 'utf8'));
    pos = l.end;
  }
  parts.push(b.subarray(pos));
  return Buffer.concat(parts).toString('utf8');
}

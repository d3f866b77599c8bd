// Deterministic role passwords (src/sql/role-password.ts): the literal of
// CREATE/ALTER ROLE ... PASSWORD is found in every spelling and replaced by the
// verifier PostgreSQL would store; verifiers, NULL and '' are left alone; the
// produced SCRAM verifier lets the password log in with the project's SCRAM
// server and client; md5 mode uses the role name.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { initParser, parseSql } from '../../src/sql/parser.js';
import { classify } from '../../src/sql/classify.js';
import { PgqError } from '../../src/errors.js';
import {
  findRolePasswords,
  isPasswordVerifier,
  isRolePasswordStatement,
  rewriteRolePassword,
  type RolePasswordOptions,
} from '../../src/sql/role-password.js';
import { ScramServer, formatScramVerifier, makeScramVerifier, parseScramVerifier } from '../../src/frontend/auth/scram.js';
import { ScramClient } from '../../src/backend/auth.js';
import { refuseExtendedRolePassword } from '../../src/txn/role-password.js';

before(async () => {
  await initParser();
});

const SALT = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
const fixed: RolePasswordOptions = { salt: () => SALT };

/** The verifier for an ASCII password, computed here from RFC 5802 directly (no project code). */
function independentVerifier(password: string, salt: Buffer): string {
  const salted = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, 4096, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$4096:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

const md5 = (s: string): string => 'md5' + createHash('md5').update(s, 'utf8').digest('hex');

/** A whole SCRAM exchange with the project's server and client. */
function scramLogin(verifier: string, password: string): boolean {
  const v = parseScramVerifier(verifier);
  assert.ok(v, `not a verifier: ${verifier}`);
  const server = new ScramServer(v, { user: 'u' });
  const client = new ScramClient('u', password);
  try {
    const first = server.clientFirst(server.mechanisms[0]!, client.clientFirst());
    client.serverFinal(server.clientFinal(client.serverFirst(first)));
    return client.succeeded && server.succeeded;
  } catch (e) {
    if (e instanceof PgqError && e.code === 'ERR_AUTH_FAILED') return false;
    throw e;
  }
}

/** The single password value of the (rewritten) statement, as the parser reads it. */
function storedValue(sql: string): string {
  const l = findRolePasswords(sql);
  assert.equal(l.length, 1, sql);
  return l[0]!.password;
}

function refused(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof PgqError && e.sqlstate === '0A000' && re.test(e.message));
}

describe('finding the literal', () => {
  it('plain, ENCRYPTED, WITH, comments, several options', () => {
    const sql = "CREATE ROLE r1 WITH LOGIN ENCRYPTED PASSWORD /* the password */ 'p1' VALID UNTIL 'infinity'";
    const [l] = findRolePasswords(sql);
    assert.ok(l);
    assert.equal(Buffer.from(sql).subarray(l.start, l.end).toString(), "'p1'");
    assert.equal(l.password, 'p1');
    assert.deepEqual(l.role, { name: 'r1' });
    assert.equal(l.kind, 'plain');
  });

  it('every spelling of a string is decoded and spanned as a whole', () => {
    const cases: [string, string, string][] = [
      ["ALTER ROLE r1 PASSWORD E'it\\'s\\x41\\n'", "E'it\\'s\\x41\\n'", "it'sA\n"],
      ["ALTER ROLE r1 PASSWORD e'a''b'", "e'a''b'", "a'b"],
      ['ALTER ROLE r1 PASSWORD $pw$a\'b$$c$pw$', "$pw$a'b$$c$pw$", "a'b$$c"],
      ['ALTER ROLE r1 PASSWORD $$x$$ LOGIN', '$$x$$', 'x'],
      ["ALTER ROLE r1 PASSWORD U&'d\\0061t\\+000061'", "U&'d\\0061t\\+000061'", 'data'],
      ["ALTER ROLE r1 PASSWORD U&'d!0061ta' UESCAPE '!' LOGIN", "U&'d!0061ta' UESCAPE '!'", 'data'],
      ["ALTER ROLE r1 PASSWORD 'ab'\n  'cd' LOGIN", "'ab'\n  'cd'", 'abcd'],
      ["ALTER USER r1 PASSWORD 'it''s'", "'it''s'", "it's"],
    ];
    for (const [sql, span, value] of cases) {
      const [l] = findRolePasswords(sql);
      assert.ok(l, sql);
      assert.equal(Buffer.from(sql).subarray(l.start, l.end).toString(), span, sql);
      assert.equal(l.password, value, sql);
    }
  });

  it('byte offsets with multibyte role names and passwords', () => {
    const sql = 'CREATE USER "rôle_ü" PASSWORD \'pässwörd€\' CONNECTION LIMIT 3';
    const out = rewriteRolePassword(sql, 'scram-sha-256', fixed)!;
    const v = formatScramVerifier(makeScramVerifier('pässwörd€', SALT));
    assert.equal(out, `CREATE USER "rôle_ü" PASSWORD '${v}' CONNECTION LIMIT 3`);
    assert.ok(scramLogin(storedValue(out), 'pässwörd€'));
    assert.ok(!scramLogin(storedValue(out), 'passwörd€'));
  });

  it('NULL, empty strings and verifiers are left alone', () => {
    const scram = independentVerifier('x', SALT);
    const m = md5('xr1');
    for (const sql of [
      'ALTER ROLE r1 PASSWORD NULL',
      "ALTER ROLE r1 PASSWORD ''",
      'ALTER ROLE r1 PASSWORD $$$$',
      `ALTER ROLE r1 PASSWORD '${scram}'`,
      `CREATE ROLE r1 LOGIN ENCRYPTED PASSWORD '${m}'`,
      `ALTER ROLE r1 PASSWORD $q$${scram}$q$`,
      'CREATE ROLE r1 LOGIN',
      "ALTER ROLE r1 SET search_path = 'password'",
      'ALTER ROLE r1 RENAME TO r2',
      "CREATE TABLE password (password text DEFAULT 'password')",
      "ALTER ROLE r1 PASSWORD 'x' 'y'", // syntax error: PostgreSQL reports it
    ]) {
      assert.equal(rewriteRolePassword(sql, 'scram-sha-256', fixed), null, sql);
      assert.equal(rewriteRolePassword(sql, 'md5', fixed), null, sql);
    }
    assert.ok(isPasswordVerifier(scram));
    assert.ok(isPasswordVerifier(m));
    assert.ok(!isPasswordVerifier(m.toUpperCase().replace('MD5', 'md5')), 'uppercase hex is plain text to PostgreSQL');
    assert.ok(!isPasswordVerifier('md5' + 'a'.repeat(31)));
  });

  it('a broken SCRAM verifier is refused rather than hashed', () => {
    refused(() => rewriteRolePassword("ALTER ROLE r1 PASSWORD 'SCRAM-SHA-256$4096:abc'", 'scram-sha-256'), /not a valid one/);
  });
});

describe('SCRAM-SHA-256 rewriting', () => {
  it('produces exactly PostgreSQL\'s format (checked without project code)', () => {
    const out = rewriteRolePassword("CREATE ROLE r1 LOGIN PASSWORD 'p1'", 'scram-sha-256', fixed);
    assert.equal(out, `CREATE ROLE r1 LOGIN PASSWORD '${independentVerifier('p1', SALT)}'`);
  });

  it('uses 16 random bytes of salt and 4096 iterations by default; the verifier logs in', () => {
    const a = storedValue(rewriteRolePassword("ALTER ROLE r1 PASSWORD 'p2'", 'scram-sha-256')!);
    const b = storedValue(rewriteRolePassword("ALTER ROLE r1 PASSWORD 'p2'", 'scram-sha-256')!);
    assert.notEqual(a, b, 'a fresh salt each time');
    const v = parseScramVerifier(a)!;
    assert.equal(v.iterations, 4096);
    assert.equal(v.salt.length, 16);
    assert.ok(scramLogin(a, 'p2'));
    assert.ok(scramLogin(b, 'p2'));
    assert.ok(!scramLogin(a, 'p1'));
  });

  it('SASLprep as PostgreSQL: compatibility characters are normalised, non-ASCII spaces mapped', () => {
    // U+FB01 LATIN SMALL LIGATURE FI becomes "fi"; U+00A0 NO-BREAK SPACE becomes ' '.
    const v = storedValue(rewriteRolePassword("ALTER ROLE r1 PASSWORD '\uFB01x\u00A0y'", 'scram-sha-256', fixed)!);
    assert.equal(v, independentVerifier('fix y', SALT));
    assert.ok(scramLogin(v, '\uFB01x\u00A0y'));
  });

  it('the decoded value is what gets hashed (E strings, dollar quotes)', () => {
    const e = storedValue(rewriteRolePassword("ALTER ROLE r1 PASSWORD E'a\\\\b\\tc'", 'scram-sha-256', fixed)!);
    assert.equal(e, independentVerifier('a\\b\tc', SALT));
    const d = storedValue(rewriteRolePassword("ALTER ROLE r1 PASSWORD $x$it's$x$", 'scram-sha-256', fixed)!);
    assert.equal(d, independentVerifier("it's", SALT));
  });

  it('several statements and several roles in one string', () => {
    const sql = "CREATE ROLE a PASSWORD 'pa'; SELECT 'PASSWORD ''x'''; ALTER USER b WITH ENCRYPTED PASSWORD 'pb' VALID UNTIL 'infinity';";
    const out = rewriteRolePassword(sql, 'scram-sha-256', fixed)!;
    assert.equal(
      out,
      `CREATE ROLE a PASSWORD '${independentVerifier('pa', SALT)}'; SELECT 'PASSWORD ''x'''; ` +
        `ALTER USER b WITH ENCRYPTED PASSWORD '${independentVerifier('pb', SALT)}' VALID UNTIL 'infinity';`,
    );
    assert.equal(parseSql(out).stmts.length, 3);
  });
});

describe('md5 rewriting', () => {
  it("'md5' + md5(password || rolename), with the role name as PostgreSQL folds it", () => {
    assert.equal(rewriteRolePassword("CREATE ROLE Bob PASSWORD 'x'", 'md5'), `CREATE ROLE Bob PASSWORD '${md5('xbob')}'`);
    assert.equal(rewriteRolePassword('CREATE GROUP "Bob" PASSWORD \'x\'', 'md5'), `CREATE GROUP "Bob" PASSWORD '${md5('xBob')}'`);
    assert.equal(rewriteRolePassword("ALTER USER \"ü\" PASSWORD 'é'", 'md5'), `ALTER USER "ü" PASSWORD '${md5('éü')}'`);
    const long = 'a'.repeat(70);
    assert.equal(rewriteRolePassword(`CREATE ROLE ${long} PASSWORD 'x'`, 'md5'), `CREATE ROLE ${long} PASSWORD '${md5('x' + 'a'.repeat(63))}'`);
  });

  it('CURRENT_USER, CURRENT_ROLE and SESSION_USER take the session\'s names', () => {
    const o = { currentUser: 'alice', sessionUser: 'admin' };
    assert.equal(rewriteRolePassword("ALTER ROLE CURRENT_USER PASSWORD 'x'", 'md5', o), `ALTER ROLE CURRENT_USER PASSWORD '${md5('xalice')}'`);
    assert.equal(rewriteRolePassword("ALTER ROLE current_role PASSWORD 'x'", 'md5', o), `ALTER ROLE current_role PASSWORD '${md5('xalice')}'`);
    assert.equal(rewriteRolePassword("ALTER USER SESSION_USER PASSWORD 'x'", 'md5', o), `ALTER USER SESSION_USER PASSWORD '${md5('xadmin')}'`);
    assert.throws(() => rewriteRolePassword("ALTER ROLE CURRENT_USER PASSWORD 'x'", 'md5'));
    // SCRAM does not need the name.
    assert.ok(rewriteRolePassword("ALTER ROLE CURRENT_USER PASSWORD 'x'", 'scram-sha-256'));
  });
});

describe('settings the coordinator cannot reproduce are refused', () => {
  it('standard_conforming_strings off with a backslash in a plain literal, or a U& literal', () => {
    const off = { standardConformingStrings: false };
    refused(() => rewriteRolePassword("ALTER ROLE r1 PASSWORD 'a\\b'", 'scram-sha-256', off), /standard_conforming_strings/);
    refused(() => rewriteRolePassword("ALTER ROLE r1 PASSWORD U&'a'", 'scram-sha-256', off), /standard_conforming_strings/);
    assert.ok(rewriteRolePassword("ALTER ROLE r1 PASSWORD E'a\\\\b'", 'scram-sha-256', off));
    assert.ok(rewriteRolePassword("ALTER ROLE r1 PASSWORD 'ab'", 'scram-sha-256', off));
  });

  it('non-UTF8 encodings with non-ASCII text', () => {
    refused(() => rewriteRolePassword("ALTER ROLE r1 PASSWORD 'é'", 'scram-sha-256', { clientEncoding: 'LATIN1' }), /client_encoding/);
    refused(() => rewriteRolePassword("ALTER ROLE r1 PASSWORD 'é'", 'scram-sha-256', { serverEncoding: 'LATIN1' }), /server_encoding/);
    refused(() => rewriteRolePassword("ALTER ROLE \"ü\" PASSWORD 'e'", 'md5', { serverEncoding: 'LATIN1' }), /server_encoding/);
    assert.ok(rewriteRolePassword("ALTER ROLE \"ü\" PASSWORD 'e'", 'scram-sha-256', { serverEncoding: 'LATIN1' }));
    assert.ok(rewriteRolePassword("ALTER ROLE r1 PASSWORD 'e'", 'scram-sha-256', { clientEncoding: 'LATIN1', serverEncoding: 'LATIN1' }));
  });
});

describe('statements that need the rewrite', () => {
  const first = (sql: string) => classify(sql).statements[0]!;
  it('isRolePasswordStatement', () => {
    assert.ok(isRolePasswordStatement(first("CREATE ROLE r1 LOGIN PASSWORD 'p1'")));
    assert.ok(isRolePasswordStatement(first("create user u encrypted password 'p'")));
    assert.ok(isRolePasswordStatement(first("CREATE GROUP g PASSWORD 'p'")));
    assert.ok(isRolePasswordStatement(first("ALTER USER u WITH PASSWORD $$p$$")));
    assert.ok(!isRolePasswordStatement(first('ALTER ROLE r1 PASSWORD NULL')));
    assert.ok(!isRolePasswordStatement(first(`ALTER ROLE r1 PASSWORD '${md5('x')}'`)));
    assert.ok(!isRolePasswordStatement(first('ALTER ROLE r1 NOLOGIN')));
    assert.ok(!isRolePasswordStatement(first("INSERT INTO t (password) VALUES ('PASSWORD')")));
    assert.ok(!isRolePasswordStatement(null));
  });

  it('the extended protocol is refused with 0A000 and a hint', () => {
    assert.throws(
      () => refuseExtendedRolePassword(first("ALTER ROLE r1 PASSWORD 'p'")),
      (e: unknown) => e instanceof PgqError && e.sqlstate === '0A000' && /simple query/.test(e.hint ?? '') && !/'p'/.test(e.message),
    );
    refuseExtendedRolePassword(first('ALTER ROLE r1 PASSWORD NULL'));
    refuseExtendedRolePassword(first('SELECT 1'));
    refuseExtendedRolePassword(null);
  });
});

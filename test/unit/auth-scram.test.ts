// Unit tests for SCRAM-SHA-256: RFC 7677's test vector on both sides, round
// trips, failures (wrong password, unknown user, malformed messages), the
// pg_authid verifier format and PostgreSQL-style SASLprep.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PgqError } from '../../src/errors.js';
import {
  ScramServer,
  formatScramVerifier,
  makeScramVerifier,
  parseScramVerifier,
  type ScramVerifier,
} from '../../src/frontend/auth/scram.js';
import { SASLPREP_TABLES, saslprep } from '../../src/frontend/auth/saslprep.js';
import { ScramClient, chooseSaslMechanism } from '../../src/backend/auth.js';

// RFC 7677 section 3.
const RFC = {
  user: 'user',
  password: 'pencil',
  clientNonce: 'rOprNGfwEbeRWgbNEkqO',
  serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  salt: Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'),
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal:
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

const rfcVerifier = (): ScramVerifier => makeScramVerifier(RFC.password, RFC.salt, 4096);
const buf = (s: string): Buffer => Buffer.from(s, 'utf8');

function rejects(fn: () => unknown, code: string, sqlstate: string, message?: RegExp): PgqError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof PgqError, `expected a PgqError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.sqlstate, sqlstate, caught.message);
  if (message) assert.match(`${caught.message} ${caught.detail ?? ''}`, message);
  return caught;
}

/** Runs a whole exchange; returns the server once the client has checked it. */
function login(verifier: ScramVerifier | null, user: string, password: string): ScramServer {
  const server = new ScramServer(verifier, { user });
  const client = new ScramClient(user, password);
  const first = server.clientFirst(server.mechanisms[0]!, client.clientFirst());
  const final = server.clientFinal(client.serverFirst(first));
  client.serverFinal(final);
  assert.equal(client.succeeded, true);
  return server;
}

test('RFC 7677 vector: server side', () => {
  const server = new ScramServer(rfcVerifier(), { serverNonce: RFC.serverNonce });
  assert.deepEqual(server.mechanisms, ['SCRAM-SHA-256']);
  assert.equal(server.clientFirst('SCRAM-SHA-256', buf(RFC.clientFirst)).toString(), RFC.serverFirst);
  assert.equal(server.clientFinal(buf(RFC.clientFinal)).toString(), RFC.serverFinal);
  assert.equal(server.succeeded, true);
});

test('RFC 7677 vector: client side', () => {
  const client = new ScramClient(RFC.user, RFC.password, { nonce: RFC.clientNonce });
  assert.equal(client.clientFirst().toString(), RFC.clientFirst);
  assert.equal(client.serverFirst(buf(RFC.serverFirst)).toString(), RFC.clientFinal);
  client.serverFinal(buf(RFC.serverFinal));
  assert.equal(client.succeeded, true);
});

test('RFC 7677 vector: client rejects a wrong server signature', () => {
  const client = new ScramClient(RFC.user, RFC.password, { nonce: RFC.clientNonce });
  client.clientFirst();
  client.serverFirst(buf(RFC.serverFirst));
  const bad = 'v=' + Buffer.alloc(32, 7).toString('base64');
  rejects(() => client.serverFinal(buf(bad)), 'ERR_AUTH_SERVER_SIGNATURE', '28000');
  assert.equal(client.succeeded, false);
});

test('client rejects a bad server-first-message', () => {
  const mk = () => {
    const c = new ScramClient('u', 'p', { nonce: 'abc' });
    c.clientFirst();
    return c;
  };
  rejects(() => mk().serverFirst(buf('r=xyzdef,s=QUJD,i=4096')), 'ERR_AUTH_PROTOCOL', '08P01', /nonce/);
  rejects(() => mk().serverFirst(buf('r=abc,s=QUJD,i=4096')), 'ERR_AUTH_PROTOCOL', '08P01', /nonce/);
  rejects(() => mk().serverFirst(buf('r=abcdef,s=!!,i=4096')), 'ERR_AUTH_PROTOCOL', '08P01', /salt/);
  rejects(() => mk().serverFirst(buf('r=abcdef,s=QUJD,i=0')), 'ERR_AUTH_PROTOCOL', '08P01', /iteration/);
  rejects(() => mk().serverFirst(buf('r=abcdef,s=QUJD,i=99999999999')), 'ERR_AUTH_PROTOCOL', '08P01');
  rejects(() => mk().serverFirst(buf('r=abcdef,s=QUJD')), 'ERR_AUTH_PROTOCOL', '08P01', /"i"/);
  rejects(() => mk().serverFirst(buf('s=QUJD,r=abcdef,i=1')), 'ERR_AUTH_PROTOCOL', '08P01', /"r"/);
  const c = mk();
  c.serverFirst(buf('r=abcdef,s=QUJD,i=1'));
  rejects(() => c.serverFinal(buf('e=invalid-proof')), 'ERR_AUTH_FAILED', '28P01', /invalid-proof/);
});

test('client steps out of order fail', () => {
  const c = new ScramClient('u', 'p');
  rejects(() => c.serverFirst(buf('r=x,s=QUJD,i=1')), 'ERR_AUTH_PROTOCOL', '08P01');
  assert.equal(chooseSaslMechanism(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']), 'SCRAM-SHA-256');
  rejects(() => chooseSaslMechanism(['SCRAM-SHA-256-PLUS']), 'ERR_AUTH_PROTOCOL', '08P01');
});

test('round trip with random nonces and salt', () => {
  const server = login(makeScramVerifier('s3cret'), 'alice', 's3cret');
  assert.equal(server.succeeded, true);
});

test('round trip with a non-ASCII password goes through SASLprep on both sides', () => {
  // U+00A0 maps to a space and the ligature normalises to "fi".
  login(makeScramVerifier('\u00a0ﬁsh'), 'bob', ' fish');
  login(makeScramVerifier('caf\u0065\u0301'), 'bob', 'caf\u00e9');
});

test("gs2 header 'y,,' is accepted and must be echoed in c=", () => {
  const server = new ScramServer(makeScramVerifier('pw'));
  const client = new ScramClient('u', 'pw', { gs2Flag: 'y' });
  const first = client.clientFirst();
  assert.ok(first.toString().startsWith('y,,'));
  const clientFinal = client.serverFirst(server.clientFirst('SCRAM-SHA-256', first));
  assert.match(clientFinal.toString(), /^c=eSws,/);
  client.serverFinal(server.clientFinal(clientFinal));
});

test('the user name in client-first-message is ignored', () => {
  const server = new ScramServer(makeScramVerifier('pw'), { user: 'real' });
  const client = new ScramClient('someone-else', 'pw');
  client.serverFinal(server.clientFinal(client.serverFirst(server.clientFirst('SCRAM-SHA-256', client.clientFirst()))));
  assert.equal(server.succeeded, true);
});

test('wrong password fails with 28P01 and does not leak the password', () => {
  const server = new ScramServer(makeScramVerifier('right-password'), { user: 'alice' });
  const client = new ScramClient('alice', 'wrong-password');
  const clientFinal = client.serverFirst(server.clientFirst('SCRAM-SHA-256', client.clientFirst()));
  const err = rejects(() => server.clientFinal(clientFinal), 'ERR_AUTH_FAILED', '28P01');
  assert.equal(err.message, 'password authentication failed for user "alice"');
  assert.equal(err.severity, 'FATAL');
  const shown = JSON.stringify({ ...err, message: err.message, detail: err.detail, stack: err.stack });
  assert.doesNotMatch(shown, /right-password|wrong-password/);
  assert.equal(server.succeeded, false);
  // The exchange is over: a retry on the same object is a protocol error.
  rejects(() => server.clientFinal(clientFinal), 'ERR_AUTH_PROTOCOL', '08P01');
});

test('unknown user (null verifier) fails exactly like a wrong password', () => {
  const server = new ScramServer(null, { user: 'ghost' });
  const client = new ScramClient('ghost', 'anything');
  const serverFirst = server.clientFirst('SCRAM-SHA-256', client.clientFirst());
  assert.match(serverFirst.toString(), /^r=[^,]+,s=[A-Za-z0-9+/]{22}==,i=4096$/);
  const err = rejects(() => server.clientFinal(client.serverFirst(serverFirst)), 'ERR_AUTH_FAILED', '28P01');
  assert.equal(err.message, 'password authentication failed for user "ghost"');
  // The fake salt is stable per user, like a real user's, so probing twice reveals nothing.
  const salt = (s: ScramServer) =>
    /,s=([^,]+),/.exec(s.clientFirst('SCRAM-SHA-256', buf('n,,n=,r=abc')).toString())![1];
  assert.equal(salt(new ScramServer(null, { user: 'ghost' })), salt(new ScramServer(null, { user: 'ghost' })));
  assert.notEqual(salt(new ScramServer(null, { user: 'ghost' })), salt(new ScramServer(null, { user: 'ghost2' })));
});

test('malformed client-first-message fails with 08P01', () => {
  const first = (data: string, mech = 'SCRAM-SHA-256') => () => new ScramServer(rfcVerifier()).clientFirst(mech, buf(data));
  const P = 'ERR_AUTH_PROTOCOL';
  rejects(first(''), P, '08P01', /empty/);
  rejects(first('n,,n=user'), P, '08P01', /"r"/); // missing nonce
  rejects(first('n,,r=abc'), P, '08P01', /"n"/); // missing user name
  rejects(first('x,,n=user,r=abc'), P, '08P01', /channel-binding flag/);
  rejects(first('n,n=user,r=abc'), P, '08P01');
  rejects(first('nn=user,r=abc'), P, '08P01', /Comma expected/);
  rejects(first('n,,n=user,r='), P, '08P01', /nonce/);
  rejects(first('n,,n=user,r=ab\x01c'), P, '08P01', /non-printable/);
  rejects(first('n,,n=user,r=abc,1=x'), P, '08P01', /Attribute expected/);
  rejects(first('n,,n=user,r=abc\0'), P, '08P01', /NUL/);
  rejects(first(RFC.clientFirst, 'SCRAM-SHA-256-PLUS'), P, '08P01', /mechanism/);
  rejects(first(RFC.clientFirst, 'PLAIN'), P, '08P01', /mechanism/);
  // Channel binding requested: refused with a clear message.
  rejects(first('p=tls-server-end-point,,n=user,r=abc'), P, '08P01', /channel binding is not supported/);
  // Features PostgreSQL refuses as unsupported rather than malformed.
  rejects(first('n,a=admin,n=user,r=abc'), P, '0A000', /authorization identity/);
  rejects(first('n,,m=ext,n=user,r=abc'), P, '0A000', /extension/);
  // Extensions after the nonce are ignored.
  new ScramServer(rfcVerifier()).clientFirst('SCRAM-SHA-256', buf('n,,n=user,r=abc,x=whatever'));
});

test('malformed client-final-message fails with 08P01', () => {
  const nonce = RFC.clientNonce + RFC.serverNonce;
  const proof = 'dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=';
  const final = (data: string, gs2 = 'n,,') => () => {
    const s = new ScramServer(rfcVerifier(), { serverNonce: RFC.serverNonce });
    s.clientFirst('SCRAM-SHA-256', buf(gs2 + 'n=user,r=' + RFC.clientNonce));
    return s.clientFinal(buf(data));
  };
  const P = 'ERR_AUTH_PROTOCOL';
  rejects(final(`r=${nonce},p=${proof}`), P, '08P01', /"c"/); // missing channel binding
  rejects(final(`c=biws,p=${proof}`), P, '08P01', /"r"/); // missing nonce
  rejects(final(`c=biws,r=${nonce}`), P, '08P01', /"p"/); // missing proof
  rejects(final(`c=bi!s,r=${nonce},p=${proof}`), P, '08P01', /base64/);
  rejects(final(`c=eSws,r=${nonce},p=${proof}`), P, '08P01', /channel-binding/); // 'y,,' but we got 'n,,'
  rejects(final(`c=biws,r=${nonce},p=${proof}`, 'y,,'), P, '08P01', /channel-binding/);
  rejects(final(`c=biws,r=${nonce}X,p=${proof}`), P, '08P01', /Nonce does not match/);
  rejects(final(`c=biws,r=${RFC.clientNonce},p=${proof}`), P, '08P01', /Nonce does not match/);
  rejects(final(`c=biws,r=${nonce},p=not*base64`), P, '08P01', /proof/);
  rejects(final(`c=biws,r=${nonce},p=${proof.slice(0, -4)}`), P, '08P01', /proof/); // not 32 bytes
  rejects(final(`c=biws,r=${nonce},p=${proof},x=1`), P, '08P01', /Garbage/);
  rejects(final(`c=biws,r=${nonce},p=${proof},`), P, '08P01', /Garbage/);
  // Sanity: the untouched message passes, and extensions before p= are ignored-but-hashed.
  assert.equal(final(RFC.clientFinal)().toString(), RFC.serverFinal);
  rejects(final(`c=biws,r=${nonce},x=ext,p=${proof}`), 'ERR_AUTH_FAILED', '28P01');
  // Out of order.
  rejects(() => new ScramServer(rfcVerifier()).clientFinal(buf(RFC.clientFinal)), P, '08P01');
});

test('pg_authid verifier format', () => {
  const v = rfcVerifier();
  const s = formatScramVerifier(v);
  assert.match(s, /^SCRAM-SHA-256\$4096:W22ZaJ0SNY7soEsUEjb6gQ==\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$/);
  assert.deepEqual(parseScramVerifier(s), v);
  assert.equal(v.salt.length, 16);
  assert.equal(makeScramVerifier('x').salt.length, 16);
  assert.equal(makeScramVerifier('x').iterations, 4096);
  assert.notDeepEqual(makeScramVerifier('x').salt, makeScramVerifier('x').salt);
  const [, iter, keys] = s.split('$') as [string, string, string];
  for (const bad of [
    '',
    'md5' + '0'.repeat(32),
    s.replace('SCRAM-SHA-256', 'SCRAM-SHA-1'),
    `SCRAM-SHA-256$x4096:${iter.split(':')[1]}$${keys}`,
    `SCRAM-SHA-256$0:${iter.split(':')[1]}$${keys}`,
    `SCRAM-SHA-256$${iter}$${keys.split(':')[0]}`,
    `SCRAM-SHA-256$4096:!!!$${keys}`,
    `SCRAM-SHA-256$${iter}$${keys.slice(4)}`,
    s + '$extra',
  ]) {
    assert.equal(parseScramVerifier(bad), null, bad);
  }
  assert.throws(() => makeScramVerifier('x', Buffer.alloc(16), 0), RangeError);
});

test('SASLprep follows PostgreSQL', () => {
  assert.equal(saslprep('plain ascii\x07'), 'plain ascii\x07'); // pure ASCII: untouched
  assert.equal(saslprep('a\u00a0b'), 'a b'); // non-ASCII space -> space
  assert.equal(saslprep('a\u00adb\u200cc'), 'abc'); // mapped to nothing
  assert.equal(saslprep('\u00e9\u200b'), '\u00e9 '); // in both tables: PostgreSQL maps it to a space
  assert.equal(saslprep('\u2168\ufb01'), 'IXfi'); // NFKC
  assert.equal(saslprep('e\u0301'), '\u00e9');
  assert.equal(saslprep('\u00ad'), null); // empty after mapping
  assert.equal(saslprep('\u00e9\u0007'), null); // control character with non-ASCII
  assert.equal(saslprep('xa\u0340'), null); // prohibited before normalisation (PostgreSQL's order)
  assert.equal(saslprep('\u00e9\u{1f600}'), null); // unassigned in Unicode 3.2
  assert.equal(saslprep('\ud800x\u00e9'), null); // lone surrogate
  assert.equal(saslprep('\u05d0\u05d1'), '\u05d0\u05d1'); // RandAL only
  assert.equal(saslprep('\u05d0a\u05d1'), null); // RandAL mixed with L
  assert.equal(saslprep('\u05d01'), null); // RandAL not last
  for (const [name, t] of Object.entries(SASLPREP_TABLES)) {
    for (let i = 0; i < t.length; i += 2) {
      assert.ok(t[i]! <= t[i + 1]!, `${name} range ${i / 2}`);
      if (i > 0) assert.ok(t[i]! > t[i - 1]!, `${name} sorted at ${i / 2}`);
    }
  }
});

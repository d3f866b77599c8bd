// PostgreSQL's md5 password method, server side: the 4-byte salt sent in
// AuthenticationMD5Password and the check of the client's answer
// ('md5' + md5(md5(password + user) + salt), lowercase hex). The client-side
// answer (backend/auth.ts) is built from the same helpers.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A fresh 4-byte salt for AuthenticationMD5Password. */
export function md5Salt(): Buffer {
  return randomBytes(4);
}

/** What PostgreSQL stores in pg_authid for md5: 'md5' + md5(password + user). */
export function md5PasswordHash(user: string, password: string): string {
  return 'md5' + createHash('md5').update(password + user, 'utf8').digest('hex');
}

/** The PasswordMessage a client sends: 'md5' + md5(md5(password + user) + salt). */
export function md5SaltedResponse(user: string, password: string, salt: Buffer): string {
  const inner = md5PasswordHash(user, password).slice(3);
  return 'md5' + createHash('md5').update(inner, 'latin1').update(salt).digest('hex');
}

/** Checks a client's md5 answer in constant time. */
export function md5Verify(user: string, password: string, salt: Buffer, response: string): boolean {
  const expected = Buffer.from(md5SaltedResponse(user, password, salt), 'latin1');
  const got = Buffer.from(response, 'utf8');
  if (got.length !== expected.length) {
    timingSafeEqual(expected, expected);
    return false;
  }
  return timingSafeEqual(expected, got);
}

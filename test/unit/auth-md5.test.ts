// Unit tests for the md5 password method: stored-hash and salted-response
// vectors (computed independently), constant-time verification, and the
// client-side answer used to log in to nodes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { md5PasswordHash, md5Salt, md5Verify } from '../../src/frontend/auth/md5.js';
import { md5Response } from '../../src/backend/auth.js';
import { PgqError } from '../../src/errors.js';

test('md5 stored hash matches PostgreSQL: md5(password + user)', () => {
  assert.equal(md5PasswordHash('postgres', 'postgres'), 'md53175bce1d3201d16594cebf9d7eb3f9d');
  assert.equal(md5PasswordHash('user', 'pencil'), 'md520c46e3762c864548e296b33c3406aa9');
});

test('md5 salted response vectors', () => {
  const salt = Buffer.from([1, 2, 3, 4]);
  assert.equal(md5Response('user', 'pencil', salt), 'md54376eb6913b38f9aaff38dc7cf19ca76');
  // Non-ASCII user and password are hashed as UTF-8.
  assert.equal(md5Response('jörg', 'pässwörd', Buffer.from('deadbeef', 'hex')), 'md5829262743943524d49aade5fb7d42859');
});

test('md5Verify accepts the right answer and rejects others', () => {
  const salt = md5Salt();
  assert.equal(salt.length, 4);
  assert.notDeepEqual(md5Salt(), md5Salt());
  const good = md5Response('alice', 'secret', salt);
  assert.match(good, /^md5[0-9a-f]{32}$/);
  assert.equal(md5Verify('alice', 'secret', salt, good), true);
  assert.equal(md5Verify('alice', 'Secret', salt, good), false);
  assert.equal(md5Verify('bob', 'secret', salt, good), false);
  assert.equal(md5Verify('alice', 'secret', Buffer.from([9, 9, 9, 9]), good), false);
  assert.equal(md5Verify('alice', 'secret', salt, good.toUpperCase()), false);
  assert.equal(md5Verify('alice', 'secret', salt, good.slice(0, -1)), false);
  assert.equal(md5Verify('alice', 'secret', salt, ''), false);
  assert.equal(md5Verify('alice', 'secret', salt, good + '\0'), false);
});

test('md5Response refuses a salt that is not 4 bytes', () => {
  assert.throws(() => md5Response('a', 'b', Buffer.alloc(3)), (e: unknown) => e instanceof PgqError && e.sqlstate === '08P01');
});

// Unit tests for host-based authentication rules: CIDR parsing and errors,
// IPv4 / IPv6 / IPv4-mapped matching, 'all', ssl rule types and first-match.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HbaRule } from '../../src/config/types.js';
import { matchHba, parseCidr, parseIp } from '../../src/frontend/auth/hba.js';

const rule = (address: string, method: HbaRule['method'] = 'scram-sha-256', extra: Partial<HbaRule> = {}): HbaRule => ({
  type: 'host',
  database: 'all',
  user: 'all',
  address,
  method,
  ...extra,
});
const client = (address: string, extra: Partial<{ user: string; database: string; ssl: boolean }> = {}) => ({
  user: 'alice',
  database: 'app',
  ssl: false,
  address,
  ...extra,
});

test('parseCidr accepts IPv4, IPv6, mapped and all', () => {
  assert.deepEqual(parseCidr('all'), { kind: 'all' });
  assert.deepEqual(parseCidr('10.1.2.3/8'), { kind: 'cidr', family: 4, bytes: Uint8Array.from([10, 1, 2, 3]), prefix: 8 });
  assert.deepEqual(parseCidr('0.0.0.0/0'), { kind: 'cidr', family: 4, bytes: new Uint8Array(4), prefix: 0 });
  const v6 = parseCidr('2001:db8::/32');
  assert.ok(v6.kind === 'cidr' && v6.family === 6 && v6.prefix === 32);
  assert.deepEqual(Array.from(v6.bytes.slice(0, 4)), [0x20, 0x01, 0x0d, 0xb8]);
  assert.deepEqual(parseCidr('::ffff:10.0.0.0/104'), { kind: 'cidr', family: 4, bytes: Uint8Array.from([10, 0, 0, 0]), prefix: 8 });
  assert.equal((parseCidr('::/0') as { family: number }).family, 6);
});

test('parseCidr explains what is wrong', () => {
  const bad: Array<[string, RegExp]> = [
    ['', /empty/],
    ['127.0.0.1', /no prefix length.*127\.0\.0\.1\/32/],
    ['::1', /::1\/128/],
    ['10.0.0.0/33', /0 to 32/],
    ['::/129', /0 to 128/],
    ['10.0.0.0/-1', /prefix length/],
    ['10.0.0.0/', /prefix length/],
    ['10.0.0.256/8', /not a valid IPv4 or IPv6 address/],
    ['db.example.com', /host names are not supported/],
    ['samenet', /not supported/],
    ['fe80::1%eth0/64', /zone/],
  ];
  for (const [text, reason] of bad) {
    assert.throws(() => parseCidr(text), (e: unknown) => e instanceof Error && e.constructor === Error && reason.test(e.message), text);
  }
});

test('parseIp normalises IPv4-mapped IPv6 and zone ids', () => {
  assert.deepEqual(parseIp('::ffff:127.0.0.1'), { family: 4, bytes: Uint8Array.from([127, 0, 0, 1]) });
  assert.deepEqual(parseIp('::FFFF:7f00:1'), { family: 4, bytes: Uint8Array.from([127, 0, 0, 1]) });
  assert.equal(parseIp('fe80::1%eth0')?.family, 6);
  assert.equal(parseIp('not-an-ip'), null);
  assert.equal(parseIp('/tmp/.s.PGSQL.5432'), null);
});

test('IPv4 matching', () => {
  const rules = [rule('192.168.1.0/24', 'trust'), rule('10.0.0.0/8', 'md5'), rule('127.0.0.1/32', 'scram-sha-256')];
  assert.equal(matchHba(rules, client('192.168.1.77'))?.method, 'trust');
  assert.equal(matchHba(rules, client('192.168.2.1')), null);
  assert.equal(matchHba(rules, client('10.255.0.1'))?.method, 'md5');
  assert.equal(matchHba(rules, client('127.0.0.1'))?.method, 'scram-sha-256');
  assert.equal(matchHba(rules, client('127.0.0.2')), null);
  // Host bits in the rule are ignored below the prefix.
  assert.equal(matchHba([rule('10.9.9.9/8')], client('10.1.1.1'))?.address, '10.9.9.9/8');
  // Odd prefix lengths.
  assert.ok(matchHba([rule('172.16.0.0/12')], client('172.31.255.255')));
  assert.equal(matchHba([rule('172.16.0.0/12')], client('172.32.0.0')), null);
});

test('IPv6 matching', () => {
  const rules = [rule('::1/128', 'trust'), rule('2001:db8::/32', 'md5')];
  assert.equal(matchHba(rules, client('::1'))?.method, 'trust');
  assert.equal(matchHba(rules, client('0:0:0:0:0:0:0:1'))?.method, 'trust');
  assert.equal(matchHba(rules, client('2001:db8:abcd::42'))?.method, 'md5');
  assert.equal(matchHba(rules, client('2001:db9::1')), null);
  assert.equal(matchHba(rules, client('127.0.0.1')), null); // IPv4 never matches IPv6 rules
  assert.equal(matchHba([rule('::/0')], client('fe80::1%eth0'))?.address, '::/0');
});

test('IPv4-mapped client addresses match IPv4 rules', () => {
  const rules = [rule('127.0.0.1/32', 'trust'), rule('10.0.0.0/8', 'md5')];
  assert.equal(matchHba(rules, client('::ffff:127.0.0.1'))?.method, 'trust');
  assert.equal(matchHba(rules, client('::ffff:10.2.3.4'))?.method, 'md5');
  assert.equal(matchHba(rules, client('::ffff:11.2.3.4')), null);
  // ...and not the all-IPv6 rule, as in PostgreSQL.
  assert.equal(matchHba([rule('::/0')], client('::ffff:127.0.0.1')), null);
  // A rule written in mapped form is an IPv4 rule.
  assert.ok(matchHba([rule('::ffff:127.0.0.0/104')], client('127.1.2.3')));
});

test("'all' for address, database and user", () => {
  const r = rule('all');
  for (const a of ['1.2.3.4', '::1', '::ffff:1.2.3.4', 'garbage']) assert.equal(matchHba([r], client(a)), r);
  const byDb = [rule('all', 'reject', { database: 'secret' }), rule('all', 'md5')];
  assert.equal(matchHba(byDb, client('1.1.1.1', { database: 'secret' }))?.method, 'reject');
  assert.equal(matchHba(byDb, client('1.1.1.1', { database: 'app' }))?.method, 'md5');
  const byUser = [rule('all', 'trust', { user: 'admin' }), rule('all', 'scram-sha-256')];
  assert.equal(matchHba(byUser, client('1.1.1.1', { user: 'admin' }))?.method, 'trust');
  assert.equal(matchHba(byUser, client('1.1.1.1', { user: 'Admin' }))?.method, 'scram-sha-256'); // case-sensitive
  // A database literally named like the user is not 'all'.
  assert.equal(matchHba([rule('all', 'trust', { database: 'alice' })], client('1.1.1.1')), null);
});

test('first match wins, even when a later rule would be more permissive', () => {
  const rules = [rule('10.0.0.0/8', 'reject'), rule('10.1.0.0/16', 'trust'), rule('all', 'md5')];
  assert.equal(matchHba(rules, client('10.1.2.3'))?.method, 'reject');
  assert.equal(matchHba(rules, client('11.1.2.3'))?.method, 'md5');
  assert.equal(matchHba([], client('10.1.2.3')), null);
});

test('ssl rule types', () => {
  const rules: HbaRule[] = [
    rule('all', 'trust', { type: 'hostssl' }),
    rule('all', 'md5', { type: 'hostnossl' }),
  ];
  assert.equal(matchHba(rules, client('1.2.3.4', { ssl: true }))?.method, 'trust');
  assert.equal(matchHba(rules, client('1.2.3.4', { ssl: false }))?.method, 'md5');
  assert.equal(matchHba([rule('all', 'trust', { type: 'hostssl' })], client('1.2.3.4')), null);
  assert.equal(matchHba([rule('all', 'trust', { type: 'hostnossl' })], client('1.2.3.4', { ssl: true })), null);
  for (const ssl of [true, false]) assert.ok(matchHba([rule('all')], client('1.2.3.4', { ssl })));
});

test('a rule whose address does not parse never matches', () => {
  const rules = [rule('bogus'), rule('all', 'md5')];
  assert.equal(matchHba(rules, client('1.2.3.4'))?.method, 'md5');
});

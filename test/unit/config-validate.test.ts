// Unit tests of validateConfig: defaults are filled in, and every kind of bad
// key is refused with a ConfigError naming that key.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { cidrProblem, validateConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

function minimal(): Record<string, any> {
  return {
    nodes: [{ port: 5433 }, { port: 5434 }],
    users: [{ name: 'postgres', password: 'secret' }],
  };
}

/** Assert that validating `raw` fails on `key`, with a message matching `re`. */
function refuses(raw: unknown, key: string, re?: RegExp): void {
  assert.throws(
    () => validateConfig(raw),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
      assert.equal(err.key, key, `wrong key in: ${err.message}`);
      assert.ok(err.message.startsWith(`config: ${key}: `), err.message);
      if (re) assert.match(err.message, re);
      assert.equal(err.code, 'ERR_CONFIG');
      return true;
    },
  );
}

function edit(f: (c: Record<string, any>) => void): Record<string, any> {
  const c = minimal();
  f(c);
  return c;
}

test('minimal config gets every default', () => {
  const c = validateConfig(minimal());
  assert.equal(c.path, '');
  assert.deepEqual(c.coordinator, {
    id: 'c1',
    host: '127.0.0.1',
    port: 6432,
    max_client_connections: 1000,
    max_message_size: 256 * 1024 * 1024,
    authentication_timeout: 60,
    tls: null,
  });
  assert.deepEqual(c.nodes, [
    { id: 'n1', host: '127.0.0.1', port: 5433, weight: 1 },
    { id: 'n2', host: '127.0.0.1', port: 5434, weight: 1 },
  ]);
  assert.deepEqual(c.users, [{ name: 'postgres', password: 'secret' }]);
  assert.deepEqual(
    c.hba.map((r) => `${r.type} ${r.database} ${r.user} ${r.address} ${r.method}`),
    ['host all all 0.0.0.0/0 scram-sha-256', 'host all all ::/0 scram-sha-256'],
  );
  assert.deepEqual(c.backend, { connect_timeout: 10 });
  assert.deepEqual(c.log, { level: 'info' });
  assert.deepEqual(c.writes, { replicate: 'at_commit', prepare: 'keyed' });
  assert.equal(c.state.dir, path.resolve('pgquorum-state'));
});

test('writes.replicate: at_commit or per_statement', () => {
  assert.equal(validateConfig(edit((c) => (c.writes = { replicate: 'per_statement' }))).writes.replicate, 'per_statement');
  refuses(edit((c) => (c.writes = { replicate: 'never' })), 'writes.replicate');
  refuses(edit((c) => (c.writes = { hold: true })), 'writes.hold');
  refuses(edit((c) => (c.writes = 'at_commit')), 'writes');
});

test('writes.prepare: keyed or off', () => {
  assert.equal(validateConfig(edit((c) => (c.writes = { prepare: 'off' }))).writes.prepare, 'off');
  assert.equal(validateConfig(edit((c) => (c.writes = { replicate: 'per_statement' }))).writes.prepare, 'keyed');
  refuses(edit((c) => (c.writes = { prepare: true })), 'writes.prepare');
  refuses(edit((c) => (c.writes = { prepare: 'all' })), 'writes.prepare');
});

test('reads.shared_connections: 1 by default, 0 to 16', () => {
  assert.equal(validateConfig(edit(() => undefined)).reads.shared_connections, 1);
  assert.equal(validateConfig(edit((c) => (c.reads = { shared_connections: 0 }))).reads.shared_connections, 0);
  assert.equal(validateConfig(edit((c) => (c.reads = { shared_connections: 16 }))).reads.shared_connections, 16);
  refuses(edit((c) => (c.reads = { shared_connections: 17 })), 'reads.shared_connections');
  refuses(edit((c) => (c.reads = { shared_connections: 1.5 })), 'reads.shared_connections');
  refuses(edit((c) => (c.reads = { shared_connections: '1' })), 'reads.shared_connections');
});

test('state.fsync: on unless turned off, a boolean', () => {
  assert.equal(validateConfig(edit(() => undefined)).state.fsync, true);
  assert.equal(validateConfig(edit((c) => (c.state = { fsync: false }))).state.fsync, false);
  refuses(edit((c) => (c.state = { fsync: 'off' })), 'state.fsync');
  refuses(edit((c) => (c.state = { sync: false })), 'state.sync');
});

test('validating a validated config gives the same config', () => {
  const once = validateConfig(edit((c) => (c.hba = ['host all all 127.0.0.1/32 md5'])), '/etc/pgq/x.json');
  assert.equal(once.state.dir, '/etc/pgq/pgquorum-state');
  const twice = validateConfig(JSON.parse(JSON.stringify(once)));
  assert.deepEqual(twice, once);
});

test('explicit values are kept; sizes accept units', () => {
  const c = validateConfig(
    edit((c) => {
      c.coordinator = { id: 'coord-2', host: '0.0.0.0', port: 0, max_client_connections: 5, max_message_size: '16MB', authentication_timeout: 2.5 };
      c.nodes[0].weight = 0;
      c.nodes[1].id = 'b';
      c.log = { level: 'debug' };
      c.backend = { connect_timeout: 3 };
      c.state = { dir: '/var/lib/pgq' };
    }),
  );
  assert.equal(c.coordinator.port, 0);
  assert.equal(c.coordinator.max_message_size, 16 * 1024 * 1024);
  assert.equal(c.coordinator.authentication_timeout, 2.5);
  assert.equal(c.nodes[0]!.weight, 0);
  assert.equal(c.nodes[1]!.id, 'b');
  assert.equal(c.state.dir, '/var/lib/pgq');
  assert.equal(validateConfig(edit((c) => (c.coordinator = { max_message_size: '2 kB' }))).coordinator.max_message_size, 2048);
});

test('the top level must be an object', () => {
  refuses([], '(top level)', /must be an object, got a list/);
  refuses(null, '(top level)', /got null/);
  refuses('x', '(top level)');
});

test('unknown keys are refused at every level, with a suggestion', () => {
  refuses(edit((c) => (c.nodess = [])), 'nodess', /unknown key \(did you mean "nodes"\?\)/);
  refuses(edit((c) => (c.coordinator = { prot: 1 })), 'coordinator.prot', /did you mean "port"/);
  refuses(edit((c) => (c.nodes[1].wieght = 1)), 'nodes[1].wieght', /did you mean "weight"/);
  refuses(edit((c) => (c.users[0].role = 'x')), 'users[0].role', /unknown key/);
  refuses(edit((c) => (c.hba = [{ type: 'host', database: 'all', user: 'all', address: 'all', method: 'md5', x: 1 }])), 'hba[0].x');
  refuses(edit((c) => (c.log = { levl: 'info' })), 'log.levl');
  refuses(edit((c) => (c.backend = { zzz: 1 })), 'backend.zzz', /known keys here: connect_timeout/);
  refuses(edit((c) => (c.state = { path: 'x' })), 'state.path');
  refuses(edit((c) => (c.coordinator = { tls: { cert: 'a', key: 'b', ca: 'c' } })), 'coordinator.tls.ca');
});

test('ports: integers from 1 to 65535 (coordinator also 0)', () => {
  refuses(edit((c) => (c.nodes[1].port = 'abc')), 'nodes[1].port', /^config: nodes\[1\]\.port: must be an integer from 1 to 65535, got "abc"$/);
  refuses(edit((c) => (c.nodes[0].port = 0)), 'nodes[0].port', /got 0/);
  refuses(edit((c) => (c.nodes[0].port = 65536)), 'nodes[0].port');
  refuses(edit((c) => (c.nodes[0].port = 5432.5)), 'nodes[0].port');
  refuses(edit((c) => delete c.nodes[0].port), 'nodes[0].port', /required/);
  refuses(edit((c) => (c.coordinator = { port: -1 })), 'coordinator.port', /from 0 to 65535/);
  refuses(edit((c) => (c.coordinator = { port: '6432' })), 'coordinator.port', /got "6432"/);
});

test('nodes: at least one, unique ids, unique addresses, valid ids and hosts', () => {
  refuses(edit((c) => delete c.nodes), 'nodes', /required/);
  refuses(edit((c) => (c.nodes = [])), 'nodes', /at least one node/);
  refuses(edit((c) => (c.nodes = {})), 'nodes', /must be a list, got an object/);
  refuses(edit((c) => (c.nodes[1] = 5)), 'nodes[1]', /must be an object, got 5/);
  refuses(edit((c) => ((c.nodes[0].id = 'a'), (c.nodes[1].id = 'a'))), 'nodes[1].id', /duplicate node id "a" \(also nodes\[0\]\)/);
  refuses(edit((c) => (c.nodes[1].id = 'n1')), 'nodes[1].id', /duplicate/);
  refuses(edit((c) => (c.nodes[1].port = 5433)), 'nodes[1]', /same host and port \(127\.0\.0\.1:5433\) as nodes\[0\]/);
  refuses(edit((c) => (c.nodes[0].id = 'has_underscore')), 'nodes[0].id', /letters, digits or '-'/);
  refuses(edit((c) => (c.nodes[0].id = '')), 'nodes[0].id', /must not be empty/);
  refuses(edit((c) => (c.nodes[0].id = 7)), 'nodes[0].id', /must be a string, got 7/);
  refuses(edit((c) => (c.nodes[0].host = 'bad host')), 'nodes[0].host', /host name, an IP address, or the absolute path/);
  refuses(edit((c) => (c.nodes[0].host = 'run/postgresql')), 'nodes[0].host', /absolute path of the directory/);
  refuses(edit((c) => (c.nodes[0].weight = -1)), 'nodes[0].weight', /must be a number at least 0/);
  refuses(edit((c) => (c.nodes[0].weight = '1')), 'nodes[0].weight');
});

test('nodes: a host starting with / is the directory of the node\'s Unix-domain socket', () => {
  const c = validateConfig(edit((c) => ((c.nodes[0].host = '/var/run/postgresql/'), (c.nodes[1].host = '/'))));
  assert.equal(c.nodes[0].host, '/var/run/postgresql', 'a trailing slash is dropped');
  assert.equal(c.nodes[1].host, '/');
  // Two nodes on one socket file are one node; the same port in two directories is not.
  refuses(
    edit((c) => ((c.nodes[0].host = '/run/pg'), (c.nodes[1].host = '/run/pg/'), (c.nodes[1].port = 5433))),
    'nodes[1]',
    /same host and port \(\/run\/pg\/\.s\.PGSQL\.5433\) as nodes\[0\]/,
  );
  validateConfig(edit((c) => ((c.nodes[0].host = '/run/pg'), (c.nodes[1].host = '/run/pg2'), (c.nodes[1].port = 5433))));
  // Linux allows 107 bytes: '/' + 'd' x 93 + '/.s.PGSQL.5433' is 108.
  refuses(edit((c) => (c.nodes[0].host = '/' + 'd'.repeat(93))), 'nodes[0].host', /longer than the 107 bytes/);
  validateConfig(edit((c) => (c.nodes[0].host = '/' + 'd'.repeat(92))));
  refuses(edit((c) => (c.nodes[0].host = '/run/\0x')), 'nodes[0].host', /NUL/);
});

test('coordinator: id, limits, sizes, timeouts, tls', () => {
  refuses(edit((c) => (c.coordinator = 'x')), 'coordinator', /must be an object/);
  refuses(edit((c) => (c.coordinator = { id: 'c 1' })), 'coordinator.id');
  refuses(edit((c) => (c.coordinator = { host: '' })), 'coordinator.host', /must not be empty/);
  refuses(edit((c) => (c.coordinator = { max_client_connections: 0 })), 'coordinator.max_client_connections', /from 1 to 1000000/);
  refuses(edit((c) => (c.coordinator = { max_message_size: 10 })), 'coordinator.max_message_size', /from 1024 bytes to 1GB/);
  refuses(edit((c) => (c.coordinator = { max_message_size: '2TB' })), 'coordinator.max_message_size', /got "2TB"/);
  refuses(edit((c) => (c.coordinator = { max_message_size: '2GB' })), 'coordinator.max_message_size');
  refuses(edit((c) => (c.coordinator = { authentication_timeout: 0 })), 'coordinator.authentication_timeout', /greater than 0 and at most 600 \(seconds\)/);
  refuses(edit((c) => (c.coordinator = { authentication_timeout: 'NaN' })), 'coordinator.authentication_timeout');
  refuses(edit((c) => (c.coordinator = { tls: true })), 'coordinator.tls', /or null/);
  refuses(edit((c) => (c.coordinator = { tls: { cert: '/nonexistent/cert.pem', key: '/nonexistent/key.pem' } })), 'coordinator.tls.cert', /cannot read file/);
  refuses(edit((c) => (c.coordinator = { tls: { cert: '/etc/hostname' } })), 'coordinator.tls.key', /required/);
});

test('users: at least one, names unique, passwords present', () => {
  refuses(edit((c) => delete c.users), 'users', /required/);
  refuses(edit((c) => (c.users = [])), 'users', /at least one user/);
  refuses(edit((c) => c.users.push({ name: 'postgres', password: 'y' })), 'users[1].name', /duplicate user "postgres" \(also users\[0\]\)/);
  refuses(edit((c) => delete c.users[0].password), 'users[0].password', /required/);
  refuses(edit((c) => (c.users[0].password = '')), 'users[0].password', /must not be empty/);
  refuses(edit((c) => (c.users[0].name = 'x'.repeat(64))), 'users[0].name', /63 bytes/);
  refuses(edit((c) => (c.users[0] = 'postgres')), 'users[0]', /must be an object/);
});

test('hba: objects or pg_hba.conf-style strings, valid types, CIDRs and methods', () => {
  const c = validateConfig(edit((c) => (c.hba = ['hostnossl  mydb  bob  10.0.0.0/8  md5', { type: 'host', database: 'all', user: 'all', address: 'all', method: 'reject' }])));
  assert.deepEqual(c.hba[0], { type: 'hostnossl', database: 'mydb', user: 'bob', address: '10.0.0.0/8', method: 'md5' });
  assert.equal(c.hba[1]!.method, 'reject');
  refuses(edit((c) => (c.hba = [])), 'hba', /at least one rule/);
  refuses(edit((c) => (c.hba = 'host all all all md5')), 'hba', /must be a list/);
  refuses(edit((c) => (c.hba = ['host all all md5'])), 'hba[0]', /5 fields/);
  refuses(edit((c) => (c.hba = ['local all all all trust'])), 'hba[0].type', /must be one of "host", "hostssl", "hostnossl", got "local"/);
  refuses(edit((c) => (c.hba = ['hostssl all all all trust'])), 'hba[0].type', /need coordinator\.tls/);
  refuses(edit((c) => (c.hba = ['host all all all password'])), 'hba[0].method', /"scram-sha-256", "md5", "trust", "reject", got "password"/);
  refuses(edit((c) => (c.hba = ['host all all 10.0.0.1 md5'])), 'hba[0].address', /prefix length/);
  refuses(edit((c) => (c.hba = ['host all all 10.0.0.256/8 md5'])), 'hba[0].address', /not an IPv4 or IPv6 address/);
  refuses(edit((c) => (c.hba = ['host all all 10.0.0.0/33 md5'])), 'hba[0].address', /from 0 to 32/);
  refuses(edit((c) => (c.hba = ['host all all ::1/129 md5'])), 'hba[0].address', /from 0 to 128/);
  refuses(edit((c) => (c.hba = [{ type: 'host', database: 'all', user: 'all', method: 'md5' }])), 'hba[0].address', /required/);
  refuses(edit((c) => (c.hba = [{ type: 'host', database: 'a b', user: 'all', address: 'all', method: 'md5' }])), 'hba[0].database', /white space/);
});

test('cidrProblem accepts IPv4 and IPv6 CIDRs only', () => {
  for (const ok of ['0.0.0.0/0', '127.0.0.1/32', '10.1.2.3/8', '::/0', '::1/128', 'fe80::/10', '::ffff:10.0.0.1/128', '2001:db8::/32']) {
    assert.equal(cidrProblem(ok), null, ok);
  }
  for (const bad of ['', '/8', '10.0.0.0', '10.0.0/8', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/8/8', '1.2.3.4/ 8', 'fe80::1%eth0/64', 'localhost/32', '::1/0129', 'gggg::/16']) {
    assert.notEqual(cidrProblem(bad), null, bad);
  }
});

test('log level and backend timeout', () => {
  refuses(edit((c) => (c.log = { level: 'verbose' })), 'log.level', /"trace", "debug", "info", "warn", "error", "fatal", got "verbose"/);
  refuses(edit((c) => (c.log = [])), 'log', /must be an object, got a list/);
  refuses(edit((c) => (c.backend = { connect_timeout: 0 })), 'backend.connect_timeout');
  refuses(edit((c) => (c.backend = { connect_timeout: 99999 })), 'backend.connect_timeout', /at most 3600/);
  refuses(edit((c) => (c.state = { dir: '' })), 'state.dir', /must not be empty/);
});

test('write_quorum: default null (majority); below a majority or above the node count is refused', () => {
  assert.equal(validateConfig(minimal()).write_quorum, null);
  const three = (q: unknown) => edit((c) => {
    c.nodes = [{ port: 5433 }, { port: 5434 }, { port: 5435 }];
    c.write_quorum = q;
  });
  assert.equal(validateConfig(three(3)).write_quorum, 3);
  assert.equal(validateConfig(three(2)).write_quorum, 2);
  refuses(three(1), 'write_quorum');
  refuses(three(4), 'write_quorum');
  refuses(three('2'), 'write_quorum');
});

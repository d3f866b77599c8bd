// Unit tests of loadConfig: reading the file, JSON errors with a position,
// relative paths resolved against the file, and the PGQUORUM_* overrides.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgquorum-config-test-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const base = { nodes: [{ id: 'n1', port: 5433 }], users: [{ name: 'postgres', password: 'pw' }] };

function write(name: string, content: unknown): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return file;
}

function refuses(f: () => unknown, key: string, re: RegExp): void {
  assert.throws(f, (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.key, key, err.message);
    assert.match(err.message, re);
    return true;
  });
}

test('loads a file, records its path, resolves relative paths against its directory', () => {
  fs.mkdirSync(path.join(dir, 'tls'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'tls', 'c.pem'), 'x');
  fs.writeFileSync(path.join(dir, 'tls', 'k.pem'), 'x');
  const file = write('a.json', { ...base, state: { dir: 'st' }, coordinator: { tls: { cert: 'tls/c.pem', key: 'tls/k.pem' } } });
  const cwd = process.cwd();
  process.chdir(os.tmpdir());
  try {
    const c = loadConfig(path.relative(os.tmpdir(), file), {});
    assert.equal(c.path, file);
    assert.equal(c.state.dir, path.join(dir, 'st'));
    assert.deepEqual(c.coordinator.tls, { cert: path.join(dir, 'tls', 'c.pem'), key: path.join(dir, 'tls', 'k.pem') });
  } finally {
    process.chdir(cwd);
  }
  const d = loadConfig(write('b.json', base), {});
  assert.equal(d.state.dir, path.join(dir, 'pgquorum-state'));
});

test('a missing or unreadable file names the file', () => {
  const missing = path.join(dir, 'nope.json');
  refuses(() => loadConfig(missing, {}), missing, /cannot read the config file: no such file/);
  refuses(() => loadConfig(dir, {}), dir, /is a directory/);
});

test('invalid JSON is reported with line and column', () => {
  const file = write('bad.json', '{\n  "nodes": [\n    {"port": 5433},\n  ]\n}\n');
  refuses(() => loadConfig(file, {}), file, /^config: .*bad\.json: not valid JSON: line 4, column 3: unexpected "\]"$/);
});

test('keys are validated as in validateConfig, and "path" is not a file key', () => {
  refuses(() => loadConfig(write('c.json', { ...base, nodes: [{ port: 'abc' }] }), {}), 'nodes[0].port', /got "abc"/);
  refuses(() => loadConfig(write('d.json', { ...base, path: '/x' }), {}), 'path', /unknown key/);
});

test('PGQUORUM_PORT, PGQUORUM_HOST and PGQUORUM_LOG_LEVEL override the file', () => {
  const file = write('e.json', { ...base, coordinator: { port: 7000, host: '127.0.0.1' }, log: { level: 'info' } });
  const c = loadConfig(file, { PGQUORUM_PORT: '7100', PGQUORUM_HOST: '0.0.0.0', PGQUORUM_LOG_LEVEL: 'debug' });
  assert.equal(c.coordinator.port, 7100);
  assert.equal(c.coordinator.host, '0.0.0.0');
  assert.equal(c.log.level, 'debug');
  // Sections absent from the file are created; empty variables are ignored.
  const d = loadConfig(write('f.json', base), { PGQUORUM_PORT: '0', PGQUORUM_LOG_LEVEL: '' });
  assert.equal(d.coordinator.port, 0);
  assert.equal(d.log.level, 'info');
  // An empty env overrides nothing.
  assert.equal(loadConfig(file, {}).coordinator.port, 7000);
});

test('bad override values name the variable', () => {
  const file = write('g.json', base);
  refuses(() => loadConfig(file, { PGQUORUM_PORT: 'x' }), 'PGQUORUM_PORT', /must be an integer from 0 to 65535 \(overrides coordinator\.port\), got "x"/);
  refuses(() => loadConfig(file, { PGQUORUM_PORT: '70000' }), 'PGQUORUM_PORT', /got 70000/);
  refuses(() => loadConfig(file, { PGQUORUM_LOG_LEVEL: 'loud' }), 'PGQUORUM_LOG_LEVEL', /must be one of/);
  refuses(() => loadConfig(file, { PGQUORUM_HOST: 'a b' }), 'PGQUORUM_HOST', /host name or IP/);
});

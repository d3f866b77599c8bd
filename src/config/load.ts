// Reads a JSON config file, applies environment overrides, fills defaults and
// validates every key; any problem is a ConfigError naming the dotted key.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { ConfigError } from '../errors.js';
import { isSocketDir, nodeAddress, UNIX_PATH_MAX } from './node-address.js';
import type { AuthMethod, Config, HbaRule, NodeConfig, TlsConfig, UserConfig } from './types.js';
import {
  AUTH_METHODS,
  DEFAULTS,
  ENV_OVERRIDES,
  HBA_TYPES,
  ID_PATTERN,
  ID_RULE,
  LIMITS,
  LOG_LEVELS,
  defaultHba,
} from './defaults.js';

type Obj = Record<string, unknown>;

/** Load, override from `env` (default process.env; pass {} for none), and validate the config file at `file`. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = fs.readFileSync(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : String(err);
    throw new ConfigError(abs, `cannot read the config file: ${why}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new ConfigError(abs, `not valid JSON: ${jsonErrorWhere(text, err as Error)}`);
  }
  if (isObject(raw) && 'path' in raw) throw unknownKey('path', raw, TOP_KEYS);
  applyEnv(raw, env);
  return validateConfig(raw, abs);
}

/**
 * Check `raw` (parsed JSON) and return a full Config with defaults filled in.
 * Relative file paths (state.dir, tls.cert, tls.key) are resolved against the
 * directory of `file` (or the current directory when there is none).
 * Accepts an already validated Config (its `path` key is then kept).
 */
export function validateConfig(raw: unknown, file?: string): Config {
  const root = expectObject(raw, '(top level)');
  let cfgPath = file ?? '';
  if (file === undefined && 'path' in root) cfgPath = str(root.path, 'path', { allowEmpty: true });
  refuseUnknown(root, '', [...TOP_KEYS, ...(file === undefined ? ['path'] : [])]);
  const baseDir = cfgPath ? path.dirname(path.resolve(cfgPath)) : process.cwd();

  const coordinator = validateCoordinator(root.coordinator, baseDir);
  const nodes = validateNodes(root.nodes);
  const users = validateUsers(root.users);
  const hba = validateHba(root.hba, coordinator.tls !== null);

  const b = optObject(root.backend, 'backend');
  refuseUnknown(b, 'backend', ['connect_timeout']);
  const backend = {
    connect_timeout: num(b.connect_timeout ?? DEFAULTS.backend.connect_timeout, 'backend.connect_timeout', LIMITS.connect_timeout, 'seconds'),
  };

  const h = optObject(root.health, 'health');
  refuseUnknown(h, 'health', ['period', 'connect_timeout', 'query_timeout', 'retries', 'auto_attach']);
  const H = DEFAULTS.health;
  const health = {
    period: num(h.period ?? H.period, 'health.period', LIMITS.health_seconds, 'seconds'),
    connect_timeout: num(h.connect_timeout ?? H.connect_timeout, 'health.connect_timeout', LIMITS.health_seconds, 'seconds'),
    query_timeout: num(h.query_timeout ?? H.query_timeout, 'health.query_timeout', LIMITS.health_seconds, 'seconds'),
    retries: int(h.retries ?? H.retries, 'health.retries', 0, 100),
    auto_attach: bool(h.auto_attach ?? H.auto_attach, 'health.auto_attach'),
  };

  const r = optObject(root.reads, 'reads');
  refuseUnknown(r, 'reads', ['balance', 'prepare', 'shared_connections']);
  const reads = {
    balance: oneOf(r.balance ?? DEFAULTS.reads.balance, 'reads.balance', ['session', 'statement'] as const),
    prepare: oneOf(r.prepare ?? DEFAULTS.reads.prepare, 'reads.prepare', ['keyed', 'off'] as const),
    shared_connections: int(r.shared_connections ?? DEFAULTS.reads.shared_connections, 'reads.shared_connections', 0, 16),
  };

  const w = optObject(root.writes, 'writes');
  refuseUnknown(w, 'writes', ['replicate', 'prepare']);
  const writes = {
    replicate: oneOf(w.replicate ?? DEFAULTS.writes.replicate, 'writes.replicate', ['at_commit', 'per_statement'] as const),
    prepare: oneOf(w.prepare ?? DEFAULTS.writes.prepare, 'writes.prepare', ['keyed', 'off'] as const),
  };

  const l = optObject(root.log, 'log');
  refuseUnknown(l, 'log', ['level']);
  const log = { level: oneOf(l.level ?? DEFAULTS.log.level, 'log.level', LOG_LEVELS) };

  const s = optObject(root.state, 'state');
  refuseUnknown(s, 'state', ['dir', 'fsync']);
  const state = {
    dir: path.resolve(baseDir, str(s.dir ?? DEFAULTS.state.dir, 'state.dir')),
    fsync: bool(s.fsync ?? DEFAULTS.state.fsync, 'state.fsync'),
  };

  // write_quorum: null = a majority of the configured nodes. Less than a
  // majority would let two halves of a split cluster both accept writes.
  const majority = Math.floor(nodes.length / 2) + 1;
  let write_quorum: number | null = null;
  if (root.write_quorum !== undefined && root.write_quorum !== null) {
    write_quorum = int(root.write_quorum, 'write_quorum', majority, nodes.length);
  }

  const d = optObject(root.determinism, 'determinism');
  refuseUnknown(d, 'determinism', ['function_bodies', 'read_only_functions']);
  const roList = d.read_only_functions ?? [];
  if (!Array.isArray(roList) || roList.some((x) => typeof x !== 'string' || x.trim() === '')) {
    throw new ConfigError('determinism.read_only_functions', 'must be a list of function names ("fn" or "schema.fn")');
  }
  const determinism = {
    function_bodies: oneOf(d.function_bodies ?? 'refuse', 'determinism.function_bodies', ['refuse', 'warn', 'allow'] as const),
    read_only_functions: roList as string[],
  };

  return { path: cfgPath, coordinator, nodes, users, hba, backend, health, reads, writes, log, state, write_quorum, determinism };
}

const TOP_KEYS = ['coordinator', 'nodes', 'users', 'hba', 'backend', 'health', 'reads', 'writes', 'log', 'state', 'write_quorum', 'determinism'];

function validateCoordinator(v: unknown, baseDir: string): Config['coordinator'] {
  const c = optObject(v, 'coordinator');
  const d = DEFAULTS.coordinator;
  refuseUnknown(c, 'coordinator', ['id', 'host', 'port', 'max_client_connections', 'max_message_size', 'authentication_timeout', 'tls']);
  return {
    id: id(c.id ?? d.id, 'coordinator.id'),
    host: host(c.host ?? d.host, 'coordinator.host'),
    // 0 lets the operating system pick a free port (tests use it).
    port: int(c.port ?? d.port, 'coordinator.port', 0, 65535),
    max_client_connections: int(
      c.max_client_connections ?? d.max_client_connections,
      'coordinator.max_client_connections',
      LIMITS.max_client_connections.min,
      LIMITS.max_client_connections.max,
    ),
    max_message_size: size(c.max_message_size ?? d.max_message_size, 'coordinator.max_message_size'),
    authentication_timeout: num(
      c.authentication_timeout ?? d.authentication_timeout,
      'coordinator.authentication_timeout',
      LIMITS.authentication_timeout,
      'seconds',
    ),
    tls: validateTls(c.tls ?? null, baseDir),
  };
}

function validateTls(v: unknown, baseDir: string): TlsConfig | null {
  if (v === null) return null;
  const t = expectObject(v, 'coordinator.tls', 'an object with "cert" and "key", or null');
  refuseUnknown(t, 'coordinator.tls', ['cert', 'key']);
  const out: TlsConfig = { cert: '', key: '' };
  for (const k of ['cert', 'key'] as const) {
    const key = `coordinator.tls.${k}`;
    if (t[k] === undefined) throw new ConfigError(key, 'required: path to a PEM file');
    const p = path.resolve(baseDir, str(t[k], key));
    try {
      fs.accessSync(p, fs.constants.R_OK);
    } catch {
      throw new ConfigError(key, `cannot read file ${JSON.stringify(p)}`);
    }
    out[k] = p;
  }
  return out;
}

function validateNodes(v: unknown): NodeConfig[] {
  if (v === undefined) throw new ConfigError('nodes', 'required: a list of at least one node, e.g. [{"id": "n1", "port": 5432}]');
  const list = expectArray(v, 'nodes');
  if (list.length === 0) throw new ConfigError('nodes', 'must list at least one node');
  const seenId = new Map<string, number>();
  const seenAddr = new Map<string, number>();
  return list.map((item, i) => {
    const key = `nodes[${i}]`;
    const n = expectObject(item, key);
    refuseUnknown(n, key, ['id', 'host', 'port', 'weight']);
    const nodeId = id(n.id ?? `n${i + 1}`, `${key}.id`);
    if (seenId.has(nodeId)) throw new ConfigError(`${key}.id`, `duplicate node id ${JSON.stringify(nodeId)} (also nodes[${seenId.get(nodeId)}])`);
    seenId.set(nodeId, i);
    if (n.port === undefined) throw new ConfigError(`${key}.port`, 'required: an integer from 1 to 65535');
    const node: NodeConfig = {
      id: nodeId,
      host: nodeHost(n.host ?? DEFAULTS.node.host, `${key}.host`),
      port: int(n.port, `${key}.port`, 1, 65535),
      weight: num(n.weight ?? DEFAULTS.node.weight, `${key}.weight`, LIMITS.weight),
    };
    const addr = nodeAddress(node.host, node.port);
    if (isSocketDir(node.host) && Buffer.byteLength(addr) > UNIX_PATH_MAX) {
      throw new ConfigError(`${key}.host`, `the socket path ${addr} is longer than the ${UNIX_PATH_MAX} bytes a Unix-domain socket path may have`);
    }
    if (seenAddr.has(addr)) throw new ConfigError(key, `same host and port (${addr}) as nodes[${seenAddr.get(addr)}]`);
    seenAddr.set(addr, i);
    return node;
  });
}

function validateUsers(v: unknown): UserConfig[] {
  if (v === undefined) {
    throw new ConfigError('users', 'required: a list of at least one user, e.g. [{"name": "postgres", "password": "..."}]');
  }
  const list = expectArray(v, 'users');
  if (list.length === 0) throw new ConfigError('users', 'must list at least one user');
  const seen = new Map<string, number>();
  return list.map((item, i) => {
    const key = `users[${i}]`;
    const u = expectObject(item, key);
    refuseUnknown(u, key, ['name', 'password']);
    if (u.name === undefined) throw new ConfigError(`${key}.name`, 'required: the role name');
    if (u.password === undefined) throw new ConfigError(`${key}.password`, 'required: the plain password');
    const name = str(u.name, `${key}.name`);
    if (name.length > 63) throw new ConfigError(`${key}.name`, 'must be at most 63 bytes (PostgreSQL NAMEDATALEN)');
    if (seen.has(name)) throw new ConfigError(`${key}.name`, `duplicate user ${JSON.stringify(name)} (also users[${seen.get(name)}])`);
    seen.set(name, i);
    return { name, password: str(u.password, `${key}.password`) };
  });
}

function validateHba(v: unknown, haveTls: boolean): HbaRule[] {
  if (v === undefined) return defaultHba();
  const list = expectArray(v, 'hba');
  if (list.length === 0) throw new ConfigError('hba', 'must list at least one rule (an empty list would refuse every client)');
  return list.map((item, i) => {
    const key = `hba[${i}]`;
    let r: Obj;
    if (typeof item === 'string') {
      // pg_hba.conf style: "host all all 0.0.0.0/0 scram-sha-256"
      const f = item.trim().split(/\s+/);
      if (f.length !== 5) throw new ConfigError(key, `a rule string needs 5 fields "TYPE DATABASE USER ADDRESS METHOD", got ${JSON.stringify(item)}`);
      r = { type: f[0], database: f[1], user: f[2], address: f[3], method: f[4] };
    } else {
      r = expectObject(item, key, 'an object {type, database, user, address, method} or a string "host all all 0.0.0.0/0 scram-sha-256"');
      refuseUnknown(r, key, ['type', 'database', 'user', 'address', 'method']);
    }
    for (const k of ['type', 'database', 'user', 'address', 'method']) {
      if (r[k] === undefined) throw new ConfigError(`${key}.${k}`, 'required');
    }
    const type = oneOf(r.type, `${key}.type`, HBA_TYPES);
    if (type === 'hostssl' && !haveTls) throw new ConfigError(`${key}.type`, 'hostssl rules need coordinator.tls (without TLS they never match)');
    const database = word(r.database, `${key}.database`);
    const user = word(r.user, `${key}.user`);
    const address = str(r.address, `${key}.address`);
    if (address !== 'all') {
      const problem = cidrProblem(address);
      if (problem) throw new ConfigError(`${key}.address`, `${problem}, got ${JSON.stringify(address)}`);
    }
    const method: AuthMethod = oneOf(r.method, `${key}.method`, AUTH_METHODS);
    return { type, database, user, address, method };
  });
}

/**
 * Why `s` is not a CIDR ("10.0.0.0/8", "::1/128"), or null when it is one.
 * Host bits may be set (they are masked off when matching, as PostgreSQL does).
 */
export function cidrProblem(s: string): string | null {
  const slash = s.indexOf('/');
  if (slash < 0) return 'must be a CIDR address with a prefix length such as 10.0.0.0/8, 127.0.0.1/32 or ::1/128, or "all"';
  const ip = s.slice(0, slash);
  const bits = s.slice(slash + 1);
  let max: number;
  if (net.isIPv4(ip)) max = 32;
  else if (net.isIPv6(ip) && !ip.includes('%')) max = 128;
  else return `"${ip}" is not an IPv4 or IPv6 address`;
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return `prefix length must be an integer from 0 to ${max}`;
  return null;
}

// ---- environment overrides --------------------------------------------------

function applyEnv(raw: unknown, env: NodeJS.ProcessEnv): void {
  if (!isObject(raw)) return; // validateConfig reports it
  for (const o of ENV_OVERRIDES) {
    const value = env[o.env];
    if (value === undefined || value === '') continue;
    const [section, k] = o.key.split('.') as [string, string];
    if (raw[section] === undefined) raw[section] = {};
    const target = raw[section];
    if (!isObject(target)) continue; // validateConfig reports the section
    // Check here too so the error names the variable, not only the key.
    if (o.kind === 'integer') {
      if (!/^\s*\d+\s*$/.test(value)) throw new ConfigError(o.env, `must be an integer from 0 to 65535 (overrides ${o.key}), got ${JSON.stringify(value)}`);
      target[k] = int(Number(value), o.env, 0, 65535);
    } else if (o.key === 'log.level') {
      target[k] = oneOf(value, o.env, LOG_LEVELS);
    } else {
      target[k] = host(value, o.env);
    }
  }
}

// ---- value checkers -----------------------------------------------------------

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** How a bad value is shown after "got": JSON for scalars, a word for the rest. */
function got(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (isObject(v)) return 'an object';
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  return JSON.stringify(v) ?? String(v);
}

function expectObject(v: unknown, key: string, what = 'an object'): Obj {
  if (!isObject(v)) throw new ConfigError(key, `must be ${what}, got ${got(v)}`);
  return v;
}

function optObject(v: unknown, key: string): Obj {
  return v === undefined ? {} : expectObject(v, key);
}

function expectArray(v: unknown, key: string): unknown[] {
  if (!Array.isArray(v)) throw new ConfigError(key, `must be a list, got ${got(v)}`);
  return v;
}

function refuseUnknown(obj: Obj, prefix: string, allowed: readonly string[]): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw unknownKey(prefix ? `${prefix}.${k}` : k, obj, allowed);
  }
}

function unknownKey(key: string, _obj: Obj, allowed: readonly string[]): ConfigError {
  const last = key.slice(key.lastIndexOf('.') + 1);
  const near = allowed.filter((a) => editDistance(a, last) <= Math.max(1, Math.floor(a.length / 4)));
  const hint = near.length ? ` (did you mean "${near[0]}"?)` : ` (known keys here: ${allowed.join(', ')})`;
  return new ConfigError(key, `unknown key${hint}`);
}

/** Edit distance counting a swap of neighbours as one edit. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

function int(v: unknown, key: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(key, `must be an integer from ${min} to ${max}, got ${got(v)}`);
  }
  return v;
}

function num(v: unknown, key: string, r: { min: number; max: number }, unit = ''): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < r.min || v > r.max) {
    const lo = r.min > 0 && r.min < 1 ? 'greater than 0' : `at least ${r.min}`;
    throw new ConfigError(key, `must be a number ${lo} and at most ${r.max}${unit ? ` (${unit})` : ''}, got ${got(v)}`);
  }
  return v;
}

function bool(v: unknown, key: string): boolean {
  if (typeof v !== 'boolean') throw new ConfigError(key, `must be true or false, got ${got(v)}`);
  return v;
}

function str(v: unknown, key: string, opts: { allowEmpty?: boolean } = {}): string {
  if (typeof v !== 'string') throw new ConfigError(key, `must be a string, got ${got(v)}`);
  if (!opts.allowEmpty && v.length === 0) throw new ConfigError(key, 'must not be empty');
  return v;
}

function oneOf<T extends string>(v: unknown, key: string, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new ConfigError(key, `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${got(v)}`);
  }
  return v as T;
}

function id(v: unknown, key: string): string {
  const s = str(v, key);
  if (!ID_PATTERN.test(s)) throw new ConfigError(key, `must be ${ID_RULE}, got ${got(v)}`);
  return s;
}

function host(v: unknown, key: string): string {
  const s = str(v, key);
  if (s.length > 255 || /[\s/]/.test(s)) throw new ConfigError(key, `must be a host name or IP address, got ${got(v)}`);
  return s;
}

/**
 * A node's host: a host name or IP address, or (as libpq's `host`) the
 * absolute path of the directory holding the node's Unix-domain socket.
 */
function nodeHost(v: unknown, key: string): string {
  const s = str(v, key);
  if (!isSocketDir(s)) {
    if (s.length > 255 || /[\s/]/.test(s)) {
      throw new ConfigError(key, `must be a host name, an IP address, or the absolute path of the directory holding the node's Unix-domain socket, got ${got(v)}`);
    }
    return s;
  }
  if (s.includes('\0')) throw new ConfigError(key, `must not contain a NUL byte, got ${got(v)}`);
  return s.length > 1 ? s.replace(/\/+$/, '') || '/' : s;
}

/** A database or user name in an hba rule: no white space. */
function word(v: unknown, key: string): string {
  const s = str(v, key);
  if (/\s/.test(s)) throw new ConfigError(key, `must not contain white space, got ${got(v)}`);
  return s;
}

const SIZE_UNITS: Record<string, number> = { '': 1, B: 1, kB: 1024, KB: 1024, KiB: 1024, MB: 1024 ** 2, MiB: 1024 ** 2, GB: 1024 ** 3, GiB: 1024 ** 3 };

/** A byte count: an integer, or a string such as "256MB" (PostgreSQL units, 1 kB = 1024 B). */
function size(v: unknown, key: string): number {
  const { min, max } = LIMITS.max_message_size;
  const rule = `must be a size from ${min} bytes to 1GB: an integer (bytes) or a string such as "256MB"`;
  let bytes: number;
  if (typeof v === 'number') bytes = v;
  else if (typeof v === 'string') {
    const m = /^\s*(\d+)\s*([A-Za-z]*)\s*$/.exec(v);
    const unit = m ? SIZE_UNITS[m[2]!] : undefined;
    if (!m || unit === undefined) throw new ConfigError(key, `${rule}, got ${got(v)}`);
    bytes = Number(m[1]) * unit;
  } else throw new ConfigError(key, `${rule}, got ${got(v)}`);
  if (!Number.isInteger(bytes) || bytes < min || bytes > max) throw new ConfigError(key, `${rule}, got ${got(v)}`);
  return bytes;
}

/** "line 4, column 3: unexpected "]"": where JSON.parse failed (V8's messages do not always say). */
function jsonErrorWhere(text: string, err: Error): string {
  const pos = jsonErrorOffset(text);
  if (pos < 0) return err.message;
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const col = pos - before.lastIndexOf('\n');
  const what = pos >= text.length ? 'unexpected end of file' : `unexpected ${JSON.stringify(text[pos])}`;
  return `line ${line}, column ${col}: ${what}`;
}

/** Offset of the first JSON syntax error in `t`, or -1 (a minimal recursive-descent checker). */
function jsonErrorOffset(t: string): number {
  let i = 0;
  const scalar = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;
  const fail = (): never => {
    throw i;
  };
  const ws = (): void => {
    while (i < t.length && ' \t\n\r'.includes(t[i]!)) i++;
  };
  const string = (): void => {
    i++;
    while (i < t.length) {
      const c = t[i]!;
      if (c === '"') return void i++;
      if (c < ' ') fail();
      if (c === '\\') {
        i++;
        if (!'"\\/bfnrtu'.includes(t[i] ?? 'x')) fail();
        if (t[i] === 'u' && !/^[0-9a-fA-F]{4}$/.test(t.slice(i + 1, i + 5))) fail();
        if (t[i] === 'u') i += 4;
      }
      i++;
    }
    fail();
  };
  const value = (): void => {
    ws();
    const open = t[i];
    if (open === '{' || open === '[') {
      const close = open === '{' ? '}' : ']';
      i++;
      ws();
      if (t[i] === close) return void i++;
      for (;;) {
        if (open === '{') {
          ws();
          if (t[i] !== '"') fail();
          string();
          ws();
          if (t[i] !== ':') fail();
          i++;
        }
        value();
        ws();
        if (t[i] === ',') i++;
        else if (t[i] === close) return void i++;
        else fail();
      }
    }
    if (open === '"') return string();
    scalar.lastIndex = i;
    if (!scalar.test(t)) fail();
    i = scalar.lastIndex;
  };
  try {
    value();
    ws();
    if (i < t.length) fail();
    return -1;
  } catch (e) {
    if (typeof e === 'number') return e;
    throw e;
  }
}

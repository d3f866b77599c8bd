// Host-based authentication: picks the rule that decides how a client must
// authenticate, with pg_hba.conf semantics (rules are tried in order and the
// first one whose type, database, user and address all match wins; there is
// no fall-through to later rules when authentication then fails). Also
// parses and validates the rules' CIDR addresses for the config loader.

import { isIPv4, isIPv6 } from 'node:net';
import type { HbaRule } from '../../config/types.js';

/** A rule's parsed address column. IPv4-mapped IPv6 rules are stored as IPv4. */
export type HbaAddress =
  | { kind: 'all' }
  | { kind: 'cidr'; family: 4 | 6; bytes: Uint8Array; prefix: number };

export interface HbaClient {
  user: string;
  database: string;
  /** IPv4, IPv6, or IPv4-mapped IPv6 such as '::ffff:127.0.0.1' (a zone id is ignored). */
  address: string;
  ssl: boolean;
}

/**
 * Parses an address column: 'all' or a CIDR like '10.0.0.0/8', '::1/128'.
 * Host bits set below the prefix are allowed and ignored, like PostgreSQL.
 * Throws a plain Error with a readable reason when `s` is not valid.
 */
export function parseCidr(s: string): HbaAddress {
  const text = s.trim();
  if (text === '') throw new Error('empty address: expected a CIDR such as 10.0.0.0/8 or ::1/128, or "all"');
  if (text === 'all') return { kind: 'all' };
  if (text === 'samehost' || text === 'samenet') {
    throw new Error(`"${text}" is not supported: write the network as a CIDR such as 10.0.0.0/8`);
  }
  const slash = text.indexOf('/');
  if (slash < 0) {
    const ip = parseIp(text);
    if (ip) {
      const full = ip.family === 4 ? 32 : 128;
      throw new Error(`"${text}" has no prefix length: write ${text}/${full} for a single address`);
    }
    throw new Error(`"${text}" is not a CIDR (expected an address and a prefix length, such as 10.0.0.0/8; host names are not supported)`);
  }
  const addrText = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  if (addrText.includes('%')) throw new Error(`"${text}": IPv6 zone ids are not supported in rules`);
  const ip = parseIpExact(addrText);
  if (!ip) throw new Error(`"${text}": "${addrText}" is not a valid IPv4 or IPv6 address`);
  const max = ip.family === 4 ? 32 : 128;
  if (!/^[0-9]{1,3}$/.test(prefixText) || Number(prefixText) > max) {
    throw new Error(`"${text}": the prefix length must be a number from 0 to ${max} for IPv${ip.family}`);
  }
  let prefix = Number(prefixText);
  let { family, bytes } = ip;
  // '::ffff:10.0.0.0/104' means the IPv4 network 10.0.0.0/8.
  if (family === 6 && prefix >= 96 && isMapped(bytes)) {
    family = 4;
    bytes = bytes.slice(12);
    prefix -= 96;
  }
  return { kind: 'cidr', family, bytes, prefix };
}

/**
 * Parses an IP address. IPv4-mapped IPv6 addresses come back as IPv4; a
 * zone id ('fe80::1%eth0') is dropped. Returns null for anything else.
 */
export function parseIp(s: string): { family: 4 | 6; bytes: Uint8Array } | null {
  const ip = parseIpExact(s.split('%')[0]!);
  if (ip && ip.family === 6 && isMapped(ip.bytes)) return { family: 4, bytes: ip.bytes.slice(12) };
  return ip;
}

/** Parses an IP address as written (no zone id, no mapped-address folding). */
function parseIpExact(s: string): { family: 4 | 6; bytes: Uint8Array } | null {
  if (isIPv4(s)) return { family: 4, bytes: Uint8Array.from(s.split('.').map(Number)) };
  if (!isIPv6(s)) return null;
  const bytes = parseIPv6(s);
  return bytes ? { family: 6, bytes } : null;
}

/** Does `address` (already parsed by parseIp) fall in the rule's network? */
export function addressMatches(rule: HbaAddress, ip: { family: 4 | 6; bytes: Uint8Array } | null): boolean {
  if (rule.kind === 'all') return true;
  if (!ip || ip.family !== rule.family) return false;
  let bits = rule.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((ip.bytes[i]! & mask) !== (rule.bytes[i]! & mask)) return false;
  }
  return true;
}

/**
 * The rule that applies to a client, or null when none does (the client must
 * then be refused, like PostgreSQL's "no pg_hba.conf entry").
 */
export function matchHba(rules: HbaRule[], c: HbaClient): HbaRule | null {
  const ip = parseIp(c.address);
  for (const rule of rules) {
    if (rule.type === 'hostssl' && !c.ssl) continue;
    if (rule.type === 'hostnossl' && c.ssl) continue;
    if (rule.database !== 'all' && rule.database !== c.database) continue;
    if (rule.user !== 'all' && rule.user !== c.user) continue;
    const addr = cachedAddress(rule.address);
    if (addr === null || !addressMatches(addr, ip)) continue;
    return rule;
  }
  return null;
}

// Rules are few and fixed per config; parse each address text once.
const addressCache = new Map<string, HbaAddress | null>();

function cachedAddress(text: string): HbaAddress | null {
  let a = addressCache.get(text);
  if (a === undefined) {
    try {
      a = parseCidr(text);
    } catch {
      a = null; // the config loader rejects these; never match if one slips through
    }
    if (addressCache.size >= 1024) addressCache.clear();
    addressCache.set(text, a);
  }
  return a;
}

function isMapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** Expands a (validated) textual IPv6 address into 16 bytes. */
function parseIPv6(text: string): Uint8Array | null {
  const groups = (part: string): number[] | null => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        if (!isIPv4(g)) return null;
        const [a, b, c, d] = g.split('.').map(Number) as [number, number, number, number];
        out.push((a << 8) | b, (c << 8) | d);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return bytes;
}

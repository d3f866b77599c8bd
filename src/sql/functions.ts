// Decides what calling a function does to the cluster: nothing (read), a
// write, a session change (set_config), a notification (pg_notify), or
// unknown. Combines the static builtin lists with the configured names.

import { NOTIFY_BUILTINS, SAFE_BUILTINS, SESSION_BUILTINS, WRITE_BUILTINS } from './builtins.js';

export type FunctionEffect = 'read' | 'write' | 'session' | 'notify' | 'unknown';

interface NameSet {
  /** names as configured: 'fn' or 'schema.fn' */
  full: Set<string>;
  /** the last part of every configured name */
  bare: Set<string>;
}

function makeSet(names: Iterable<string>): NameSet {
  const full = new Set<string>();
  const bare = new Set<string>();
  for (const raw of names) {
    const n = raw.trim();
    if (n === '') continue;
    full.add(n);
    bare.add(n.slice(n.lastIndexOf('.') + 1));
  }
  return { full, bare };
}

let configuredWrite: NameSet = makeSet([]);
let configuredReadOnly: NameSet = makeSet([]);
let generation = 0;

/** Bumped whenever configuration changes, so caches keyed on it can be dropped. */
export function functionConfigGeneration(): number {
  return generation;
}

export function setWriteFunctionNames(names: Iterable<string>): void {
  configuredWrite = makeSet(names);
  generation++;
}

export function setReadOnlyFunctionNames(names: Iterable<string>): void {
  configuredReadOnly = makeSet(names);
  generation++;
}

function configured(set: NameSet, schema: string | undefined, bare: string): boolean {
  if (schema === undefined) return set.bare.has(bare);
  return set.full.has(`${schema}.${bare}`) || set.full.has(bare);
}

/**
 * Effect of calling `schema.bare` (schema undefined when unqualified).
 * Order: configured write > builtin write/session/notify > configured
 * read-only > builtin safe list > unknown.
 */
export function functionEffect(schema: string | undefined, bare: string): FunctionEffect {
  if (configured(configuredWrite, schema, bare)) return 'write';
  const builtin = schema === undefined || schema === 'pg_catalog';
  if (builtin) {
    if (WRITE_BUILTINS.has(bare)) return 'write';
    if (SESSION_BUILTINS.has(bare)) return 'session';
    if (NOTIFY_BUILTINS.has(bare)) return 'notify';
  }
  if (configured(configuredReadOnly, schema, bare)) return 'read';
  if (builtin && SAFE_BUILTINS.has(bare)) return 'read';
  return 'unknown';
}

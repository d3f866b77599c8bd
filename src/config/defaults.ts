// Default values for every optional config key, the environment variables
// that override keys, and the limits validation enforces (see docs/config.md).

import type { HbaRule } from './types.js';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export const DEFAULTS = {
  coordinator: {
    id: 'c1',
    host: '127.0.0.1',
    port: 6432,
    max_client_connections: 1000,
    max_message_size: 256 * MiB,
    authentication_timeout: 60,
    tls: null,
  },
  node: {
    host: '127.0.0.1',
    weight: 1,
  },
  backend: {
    connect_timeout: 10,
  },
  health: {
    period: 2,
    connect_timeout: 2,
    query_timeout: 2,
    retries: 1,
    auto_attach: true,
  },
  reads: {
    balance: 'session',
    prepare: 'keyed',
    shared_connections: 1,
  },
  writes: {
    replicate: 'at_commit',
    prepare: 'keyed',
  },
  log: {
    level: 'info',
  },
  state: {
    /** Relative paths are resolved against the config file's directory. */
    dir: 'pgquorum-state',
    /** Sync the decision log and the state files to disk (turn off only where the nodes run with fsync = off). */
    fsync: true,
  },
} as const;

/** Default client authentication: SCRAM from anywhere, IPv4 and IPv6. */
export function defaultHba(): HbaRule[] {
  return [
    { type: 'host', database: 'all', user: 'all', address: '0.0.0.0/0', method: 'scram-sha-256' },
    { type: 'host', database: 'all', user: 'all', address: '::/0', method: 'scram-sha-256' },
  ];
}

/** Environment variables that override a key of the file (applied before validation). */
export const ENV_OVERRIDES = [
  { env: 'PGQUORUM_HOST', key: 'coordinator.host', kind: 'string' },
  { env: 'PGQUORUM_PORT', key: 'coordinator.port', kind: 'integer' },
  { env: 'PGQUORUM_LOG_LEVEL', key: 'log.level', kind: 'string' },
] as const;

export const LIMITS = {
  max_client_connections: { min: 1, max: 1_000_000 },
  max_message_size: { min: 1024, max: GiB },
  authentication_timeout: { min: 0.001, max: 600 },
  connect_timeout: { min: 0.001, max: 3600 },
  weight: { min: 0, max: 1_000_000 },
  health_seconds: { min: 0.01, max: 3600 },
} as const;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export const AUTH_METHODS = ['scram-sha-256', 'md5', 'trust', 'reject'] as const;
export const HBA_TYPES = ['host', 'hostssl', 'hostnossl'] as const;

/**
 * Coordinator and node ids: letters, digits and '-', 1 to 32 characters,
 * starting with a letter or digit. No '_' so ids can be embedded in GIDs
 * with '_' as the separator.
 */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9-]{0,31}$/;
export const ID_RULE = "1 to 32 letters, digits or '-', starting with a letter or digit";

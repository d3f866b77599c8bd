// One error base for the whole coordinator: a stable `code` for logs and
// tests, a SQLSTATE for clients, and the context (session, node) it involved.

/** SQLSTATEs the coordinator itself sends (PostgreSQL's own names). */
export const SqlState = {
  SUCCESSFUL_COMPLETION: '00000',
  CONNECTION_EXCEPTION: '08000',
  CONNECTION_FAILURE: '08006',
  PROTOCOL_VIOLATION: '08P01',
  FEATURE_NOT_SUPPORTED: '0A000',
  INVALID_AUTHORIZATION_SPECIFICATION: '28000',
  INVALID_PASSWORD: '28P01',
  INVALID_TRANSACTION_STATE: '25000',
  IN_FAILED_SQL_TRANSACTION: '25P02',
  /** Also: pgquorum refuses writes while fewer than a quorum of nodes is up. */
  READ_ONLY_SQL_TRANSACTION: '25006',
  SERIALIZATION_FAILURE: '40001',
  SYNTAX_ERROR: '42601',
  ACTIVE_SQL_TRANSACTION: '25001',
  INSUFFICIENT_PRIVILEGE: '42501',
  UNDEFINED_OBJECT: '42704',
  INVALID_SQL_STATEMENT_NAME: '26000',
  DUPLICATE_PREPARED_STATEMENT: '42P05',
  /** pgquorum: a node is not in a state that allows the command (e.g. it needs recovery). */
  OBJECT_NOT_IN_PREREQUISITE_STATE: '55000',
  LOCK_NOT_AVAILABLE: '55P03',
  INVALID_PARAMETER_VALUE: '22023',
  PROGRAM_LIMIT_EXCEEDED: '54000',
  TOO_MANY_CONNECTIONS: '53300',
  QUERY_CANCELED: '57014',
  ADMIN_SHUTDOWN: '57P01',
  CANNOT_CONNECT_NOW: '57P03',
  INTERNAL_ERROR: 'XX000',
  /** pgquorum: no node of the cluster could serve the request. */
  NO_NODE_AVAILABLE: '08006',
} as const;
export type SqlStateCode = (typeof SqlState)[keyof typeof SqlState];

export interface ErrorContext {
  session?: number;
  node?: string;
  [key: string]: unknown;
}

export class PgqError extends Error {
  /** Stable machine-readable code, e.g. 'ERR_PROTOCOL_TOO_LARGE'. */
  readonly code: string;
  /** SQLSTATE sent to the client when this error reaches one. */
  readonly sqlstate: string;
  readonly severity: 'ERROR' | 'FATAL';
  readonly detail?: string;
  readonly hint?: string;
  readonly context: ErrorContext;

  constructor(
    code: string,
    message: string,
    opts: {
      sqlstate?: string;
      severity?: 'ERROR' | 'FATAL';
      detail?: string;
      hint?: string;
      context?: ErrorContext;
      cause?: unknown;
    } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'PgqError';
    this.code = code;
    this.sqlstate = opts.sqlstate ?? SqlState.INTERNAL_ERROR;
    this.severity = opts.severity ?? 'ERROR';
    this.detail = opts.detail;
    this.hint = opts.hint;
    this.context = opts.context ?? {};
  }
}

/** A configuration problem: names the key and what is wrong with it. */
export class ConfigError extends PgqError {
  readonly key: string;
  constructor(key: string, problem: string) {
    super('ERR_CONFIG', `config: ${key}: ${problem}`);
    this.name = 'ConfigError';
    this.key = key;
  }
}

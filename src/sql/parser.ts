// Owns the libpg_query WASM module: loads it once and parses SQL text into
// PostgreSQL's raw parse tree (JSON form), counting parses for tests.

import { loadModule, parseSync } from 'libpg-query';
import { PgqError, SqlState } from '../errors.js';

/** One raw statement as libpg_query returns it (byte offsets into UTF-8). */
export interface RawStmt {
  stmt: Record<string, unknown>;
  stmt_location?: number;
  stmt_len?: number;
}

export interface ParseTree {
  version: number;
  stmts: RawStmt[];
}

let ready = false;
let loading: Promise<void> | null = null;
let parses = 0;

/** Loads the WASM parser once; later calls return the same promise. */
export async function initParser(): Promise<void> {
  if (ready) return;
  if (!loading) {
    loading = loadModule().then(
      () => {
        ready = true;
      },
      (err: unknown) => {
        loading = null;
        throw new PgqError('ERR_SQL_PARSER_LOAD', 'could not load the SQL parser (libpg_query WASM)', {
          sqlstate: SqlState.INTERNAL_ERROR,
          cause: err,
        });
      },
    );
  }
  return loading;
}

export function parserReady(): boolean {
  return ready;
}

/** How many times the real parser ran (the classification cache test uses it). */
export function parseCount(): number {
  return parses;
}

/**
 * Parses `sql`; throws the parser's SqlError on a syntax error and a PgqError
 * when initParser() has not finished. Whitespace-only text has no statements.
 */
export function parseSql(sql: string): ParseTree {
  if (!ready) {
    throw new PgqError('ERR_SQL_PARSER_NOT_READY', 'SQL parser used before initParser() finished', {
      sqlstate: SqlState.INTERNAL_ERROR,
    });
  }
  if (sql.trim() === '') return { version: 0, stmts: [] };
  parses++;
  return parseSync(sql) as ParseTree;
}

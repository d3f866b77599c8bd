// The command tag PostgreSQL sends for a raw statement (CommandComplete),
// following tcop/utility.c CreateCommandTag, without row counts. Where the
// wire tag differs from CreateCommandTag (CREATE TABLE AS, SELECT INTO and
// CREATE MATERIALIZED VIEW complete with "SELECT n") the wire tag wins.

import type { Obj } from './ast.js';

const SIMPLE: Record<string, string> = {
  InsertStmt: 'INSERT',
  DeleteStmt: 'DELETE',
  UpdateStmt: 'UPDATE',
  MergeStmt: 'MERGE',
  SelectStmt: 'SELECT',
  PLAssignStmt: 'SELECT',
  DeclareCursorStmt: 'DECLARE CURSOR',
  CreateDomainStmt: 'CREATE DOMAIN',
  CreateSchemaStmt: 'CREATE SCHEMA',
  CreateStmt: 'CREATE TABLE',
  CreateTableSpaceStmt: 'CREATE TABLESPACE',
  DropTableSpaceStmt: 'DROP TABLESPACE',
  AlterTableSpaceOptionsStmt: 'ALTER TABLESPACE',
  CreateExtensionStmt: 'CREATE EXTENSION',
  AlterExtensionStmt: 'ALTER EXTENSION',
  AlterExtensionContentsStmt: 'ALTER EXTENSION',
  CreateFdwStmt: 'CREATE FOREIGN DATA WRAPPER',
  AlterFdwStmt: 'ALTER FOREIGN DATA WRAPPER',
  CreateForeignServerStmt: 'CREATE SERVER',
  AlterForeignServerStmt: 'ALTER SERVER',
  CreateUserMappingStmt: 'CREATE USER MAPPING',
  AlterUserMappingStmt: 'ALTER USER MAPPING',
  DropUserMappingStmt: 'DROP USER MAPPING',
  CreateForeignTableStmt: 'CREATE FOREIGN TABLE',
  ImportForeignSchemaStmt: 'IMPORT FOREIGN SCHEMA',
  TruncateStmt: 'TRUNCATE TABLE',
  CommentStmt: 'COMMENT',
  SecLabelStmt: 'SECURITY LABEL',
  CopyStmt: 'COPY',
  AlterDomainStmt: 'ALTER DOMAIN',
  AlterDefaultPrivilegesStmt: 'ALTER DEFAULT PRIVILEGES',
  CompositeTypeStmt: 'CREATE TYPE',
  CreateEnumStmt: 'CREATE TYPE',
  CreateRangeStmt: 'CREATE TYPE',
  AlterEnumStmt: 'ALTER TYPE',
  ViewStmt: 'CREATE VIEW',
  IndexStmt: 'CREATE INDEX',
  RuleStmt: 'CREATE RULE',
  CreateSeqStmt: 'CREATE SEQUENCE',
  AlterSeqStmt: 'ALTER SEQUENCE',
  DoStmt: 'DO',
  CreatedbStmt: 'CREATE DATABASE',
  AlterDatabaseStmt: 'ALTER DATABASE',
  AlterDatabaseRefreshCollStmt: 'ALTER DATABASE',
  AlterDatabaseSetStmt: 'ALTER DATABASE',
  DropdbStmt: 'DROP DATABASE',
  NotifyStmt: 'NOTIFY',
  ListenStmt: 'LISTEN',
  UnlistenStmt: 'UNLISTEN',
  LoadStmt: 'LOAD',
  CallStmt: 'CALL',
  ClusterStmt: 'CLUSTER',
  ExplainStmt: 'EXPLAIN',
  RefreshMatViewStmt: 'REFRESH MATERIALIZED VIEW',
  AlterSystemStmt: 'ALTER SYSTEM',
  VariableShowStmt: 'SHOW',
  CreateTransformStmt: 'CREATE TRANSFORM',
  CreateTrigStmt: 'CREATE TRIGGER',
  CreateEventTrigStmt: 'CREATE EVENT TRIGGER',
  AlterEventTrigStmt: 'ALTER EVENT TRIGGER',
  CreatePLangStmt: 'CREATE LANGUAGE',
  CreateRoleStmt: 'CREATE ROLE',
  AlterRoleStmt: 'ALTER ROLE',
  AlterRoleSetStmt: 'ALTER ROLE',
  DropRoleStmt: 'DROP ROLE',
  DropOwnedStmt: 'DROP OWNED',
  ReassignOwnedStmt: 'REASSIGN OWNED',
  LockStmt: 'LOCK TABLE',
  ConstraintsSetStmt: 'SET CONSTRAINTS',
  CheckPointStmt: 'CHECKPOINT',
  ReindexStmt: 'REINDEX',
  CreateConversionStmt: 'CREATE CONVERSION',
  CreateCastStmt: 'CREATE CAST',
  CreateOpClassStmt: 'CREATE OPERATOR CLASS',
  CreateOpFamilyStmt: 'CREATE OPERATOR FAMILY',
  AlterOpFamilyStmt: 'ALTER OPERATOR FAMILY',
  AlterOperatorStmt: 'ALTER OPERATOR',
  AlterTypeStmt: 'ALTER TYPE',
  AlterTSDictionaryStmt: 'ALTER TEXT SEARCH DICTIONARY',
  AlterTSConfigurationStmt: 'ALTER TEXT SEARCH CONFIGURATION',
  CreatePolicyStmt: 'CREATE POLICY',
  AlterPolicyStmt: 'ALTER POLICY',
  CreateAmStmt: 'CREATE ACCESS METHOD',
  CreatePublicationStmt: 'CREATE PUBLICATION',
  AlterPublicationStmt: 'ALTER PUBLICATION',
  CreateSubscriptionStmt: 'CREATE SUBSCRIPTION',
  AlterSubscriptionStmt: 'ALTER SUBSCRIPTION',
  DropSubscriptionStmt: 'DROP SUBSCRIPTION',
  AlterCollationStmt: 'ALTER COLLATION',
  PrepareStmt: 'PREPARE',
  ExecuteStmt: 'EXECUTE',
  CreateStatsStmt: 'CREATE STATISTICS',
  AlterStatsStmt: 'ALTER STATISTICS',
};

/** OBJECT_* -> the word after ALTER / DROP. */
const OBJECT_WORD: Record<string, string> = {
  OBJECT_ACCESS_METHOD: 'ACCESS METHOD',
  OBJECT_AGGREGATE: 'AGGREGATE',
  OBJECT_ATTRIBUTE: 'TYPE',
  OBJECT_CAST: 'CAST',
  OBJECT_COLLATION: 'COLLATION',
  OBJECT_COLUMN: 'TABLE',
  OBJECT_CONVERSION: 'CONVERSION',
  OBJECT_DATABASE: 'DATABASE',
  OBJECT_DOMAIN: 'DOMAIN',
  OBJECT_DOMCONSTRAINT: 'DOMAIN',
  OBJECT_EXTENSION: 'EXTENSION',
  OBJECT_FDW: 'FOREIGN DATA WRAPPER',
  OBJECT_FOREIGN_SERVER: 'SERVER',
  OBJECT_FOREIGN_TABLE: 'FOREIGN TABLE',
  OBJECT_FUNCTION: 'FUNCTION',
  OBJECT_INDEX: 'INDEX',
  OBJECT_LANGUAGE: 'LANGUAGE',
  OBJECT_LARGEOBJECT: 'LARGE OBJECT',
  OBJECT_OPCLASS: 'OPERATOR CLASS',
  OBJECT_OPERATOR: 'OPERATOR',
  OBJECT_OPFAMILY: 'OPERATOR FAMILY',
  OBJECT_POLICY: 'POLICY',
  OBJECT_PROCEDURE: 'PROCEDURE',
  OBJECT_PUBLICATION: 'PUBLICATION',
  OBJECT_ROLE: 'ROLE',
  OBJECT_ROUTINE: 'ROUTINE',
  OBJECT_RULE: 'RULE',
  OBJECT_SCHEMA: 'SCHEMA',
  OBJECT_SEQUENCE: 'SEQUENCE',
  OBJECT_SUBSCRIPTION: 'SUBSCRIPTION',
  OBJECT_STATISTIC_EXT: 'STATISTICS',
  OBJECT_TABCONSTRAINT: 'TABLE',
  OBJECT_TABLE: 'TABLE',
  OBJECT_TABLESPACE: 'TABLESPACE',
  OBJECT_TRANSFORM: 'TRANSFORM',
  OBJECT_TRIGGER: 'TRIGGER',
  OBJECT_EVENT_TRIGGER: 'EVENT TRIGGER',
  OBJECT_TSCONFIGURATION: 'TEXT SEARCH CONFIGURATION',
  OBJECT_TSDICTIONARY: 'TEXT SEARCH DICTIONARY',
  OBJECT_TSPARSER: 'TEXT SEARCH PARSER',
  OBJECT_TSTEMPLATE: 'TEXT SEARCH TEMPLATE',
  OBJECT_TYPE: 'TYPE',
  OBJECT_VIEW: 'VIEW',
  OBJECT_MATVIEW: 'MATERIALIZED VIEW',
};

/** ALTER tags PostgreSQL does not have (DROP-only objects) come out as '???' like CMDTAG_UNKNOWN. */
const NO_ALTER = new Set(['OBJECT_ACCESS_METHOD', 'OBJECT_TRANSFORM']);

function alterTag(objtype: unknown): string {
  const o = String(objtype);
  const w = OBJECT_WORD[o];
  return w && !NO_ALTER.has(o) ? `ALTER ${w}` : '???';
}

const TRANSACTION: Record<string, string> = {
  TRANS_STMT_BEGIN: 'BEGIN',
  TRANS_STMT_START: 'START TRANSACTION',
  TRANS_STMT_COMMIT: 'COMMIT',
  TRANS_STMT_ROLLBACK: 'ROLLBACK',
  TRANS_STMT_ROLLBACK_TO: 'ROLLBACK',
  TRANS_STMT_SAVEPOINT: 'SAVEPOINT',
  TRANS_STMT_RELEASE: 'RELEASE',
  TRANS_STMT_PREPARE: 'PREPARE TRANSACTION',
  TRANS_STMT_COMMIT_PREPARED: 'COMMIT PREPARED',
  TRANS_STMT_ROLLBACK_PREPARED: 'ROLLBACK PREPARED',
};

const DEFINE: Record<string, string> = {
  OBJECT_AGGREGATE: 'CREATE AGGREGATE',
  OBJECT_OPERATOR: 'CREATE OPERATOR',
  OBJECT_TYPE: 'CREATE TYPE',
  OBJECT_TSPARSER: 'CREATE TEXT SEARCH PARSER',
  OBJECT_TSDICTIONARY: 'CREATE TEXT SEARCH DICTIONARY',
  OBJECT_TSTEMPLATE: 'CREATE TEXT SEARCH TEMPLATE',
  OBJECT_TSCONFIGURATION: 'CREATE TEXT SEARCH CONFIGURATION',
  OBJECT_COLLATION: 'CREATE COLLATION',
  OBJECT_ACCESS_METHOD: 'CREATE ACCESS METHOD',
};

export function commandTag(type: string, body: Obj): string {
  const simple = SIMPLE[type];
  if (simple) return simple;
  switch (type) {
    case 'TransactionStmt':
      return TRANSACTION[String(body.kind)] ?? '???';
    case 'ClosePortalStmt':
      return body.portalname ? 'CLOSE CURSOR' : 'CLOSE CURSOR ALL';
    case 'FetchStmt':
      return body.ismove ? 'MOVE' : 'FETCH';
    case 'DropStmt': {
      const w = OBJECT_WORD[String(body.removeType)];
      return w && body.removeType !== 'OBJECT_LARGEOBJECT' && body.removeType !== 'OBJECT_ROLE' ? `DROP ${w}` : '???';
    }
    case 'RenameStmt':
      return alterTag(body.renameType === 'OBJECT_COLUMN' ? body.relationType : body.renameType);
    case 'AlterObjectDependsStmt':
    case 'AlterObjectSchemaStmt':
    case 'AlterOwnerStmt':
      return alterTag(body.objectType);
    case 'AlterTableMoveAllStmt':
    case 'AlterTableStmt':
      return alterTag(body.objtype);
    case 'AlterFunctionStmt':
      return alterTag(body.objtype ?? 'OBJECT_FUNCTION');
    case 'GrantStmt':
      return body.is_grant ? 'GRANT' : 'REVOKE';
    case 'GrantRoleStmt':
      return body.is_grant ? 'GRANT ROLE' : 'REVOKE ROLE';
    case 'DefineStmt':
      return DEFINE[String(body.kind)] ?? '???';
    case 'CreateFunctionStmt':
      return body.is_procedure ? 'CREATE PROCEDURE' : 'CREATE FUNCTION';
    case 'VacuumStmt':
      return body.is_vacuumcmd ? 'VACUUM' : 'ANALYZE';
    case 'CreateTableAsStmt':
      // CreateCommandTag says CREATE TABLE AS / SELECT INTO / CREATE MATERIALIZED VIEW,
      // but the completion PostgreSQL sends is "SELECT n" (or "CREATE TABLE AS" when skipped).
      return 'SELECT';
    case 'VariableSetStmt':
      return body.kind === 'VAR_RESET' || body.kind === 'VAR_RESET_ALL' ? 'RESET' : 'SET';
    case 'DiscardStmt':
      return `DISCARD ${String(body.target ?? '').replace(/^DISCARD_/, '')}`;
    case 'DeallocateStmt':
      return body.name ? 'DEALLOCATE' : 'DEALLOCATE ALL';
    default:
      return '???';
  }
}

// The shape of a loaded, validated configuration (all defaults filled in).
// The file format is JSON with the same keys; see docs/config.md.

export type AuthMethod = 'scram-sha-256' | 'md5' | 'trust' | 'reject';

export interface HbaRule {
  /** 'host' matches any TCP client; 'hostssl' only TLS; 'hostnossl' only plain. */
  type: 'host' | 'hostssl' | 'hostnossl';
  /** Database name, or 'all'. */
  database: string;
  /** User name, or 'all'. */
  user: string;
  /** CIDR such as '127.0.0.1/32', '::1/128', '0.0.0.0/0', or 'all'. */
  address: string;
  method: AuthMethod;
}

export interface UserConfig {
  name: string;
  /** Plain password: verifies clients (SCRAM/md5) and logs in to the nodes. */
  password: string;
}

export interface NodeConfig {
  /** Stable id, e.g. 'n1'. Rank (main node choice) is the order in the list. */
  id: string;
  host: string;
  port: number;
  /** Relative share of autocommit reads; 0 = never used for reads. */
  weight: number;
}

export interface TlsConfig {
  cert: string; // path to PEM certificate
  key: string; // path to PEM key
}

export interface Config {
  /** Path the config was loaded from ('' when built in memory). */
  path: string;
  coordinator: {
    id: string;
    host: string;
    port: number;
    max_client_connections: number;
    /** Largest message a client may send, in bytes. */
    max_message_size: number;
    /** Seconds a client has to finish startup + authentication. */
    authentication_timeout: number;
    tls: TlsConfig | null;
  };
  nodes: NodeConfig[];
  users: UserConfig[];
  hba: HbaRule[];
  backend: {
    /** Seconds to wait for a node connection to be established. */
    connect_timeout: number;
  };
  /** Health checks of the nodes (src/cluster/health.ts, docs/config.md). */
  health: {
    /** Seconds between two checks of a node. */
    period: number;
    /** Seconds a check has to connect and log in. */
    connect_timeout: number;
    /** Seconds the check query has to answer. */
    query_timeout: number;
    /** Failed attempts retried at once (new connection) before the node is ejected. */
    retries: number;
    /** A node lost while nothing was written, and that answers again, is put back by itself. */
    auto_attach: boolean;
  };
  /** Where autocommit reads go (docs/config.md `reads`). */
  reads: {
    /** 'session': each session reads from one node, chosen when it first reads; 'statement': each read chooses. */
    balance: 'session' | 'statement';
    /** 'keyed': a SELECT of one row by a unique key sent by the simple protocol runs on its node as a prepared statement; 'off': as sent. */
    prepare: 'keyed' | 'off';
    /** Connections per node (and login) that sessions share for keyed autocommit reads; 0: none (docs/routing.md). */
    shared_connections: number;
  };
  /** When the other nodes run a transaction's writes (docs/config.md `writes`). */
  writes: {
    /** 'at_commit': keyed writes in a transaction block reach them at COMMIT; 'per_statement': every write right after the main node. */
    replicate: 'at_commit' | 'per_statement';
    /** 'keyed': keyed writes sent by the simple protocol run on the nodes as prepared statements; 'off': as sent. */
    prepare: 'keyed' | 'off';
  };
  log: {
    level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  };
  /**
   * Nodes that must prepare a write for it to commit, and that must be `up`
   * for writes to be accepted. null = a majority of the configured nodes
   * (the only values allowed are from that majority up to all nodes).
   */
  write_quorum: number | null;
  /** How statements that could make nodes differ are handled (docs/determinism.md). */
  determinism: {
    /** CREATE FUNCTION / DO whose body calls now(), random(), nextval(), ...: refuse (default), warn, allow */
    function_bodies: 'refuse' | 'warn' | 'allow';
    /** user functions a SELECT may call and still be a read (answered by one node) */
    read_only_functions: string[];
  };
  /** Where the embedded state store keeps its file. */
  state: {
    dir: string;
    /** false: state writes are not synced (only where the nodes run with fsync = off; docs/state-store.md). */
    fsync: boolean;
  };
}

/**
 * Where a node listens. A node's `host` is, as libpq's, either a host name or
 * IP address (TCP) or, when it starts with '/', the directory holding the
 * node's Unix-domain socket, named `.s.PGSQL.<port>` there.
 */

/** Longest Unix-domain socket path on Linux, in bytes (108 with the closing NUL). */
export const UNIX_PATH_MAX = 107;

/** True when `host` names a socket directory rather than a TCP host. */
export function isSocketDir(host: string): boolean {
  return host.startsWith('/');
}

/** The node's socket file in the socket directory `dir`. */
export function unixSocketPath(dir: string, port: number): string {
  return `${dir === '/' ? '' : dir}/.s.PGSQL.${port}`;
}

/** `net.connect` options for a node at `host` and `port`. */
export function connectTarget(host: string, port: number): { path: string } | { host: string; port: number } {
  return isSocketDir(host) ? { path: unixSocketPath(host, port) } : { host, port };
}

/** How messages name the node's address: `host:port`, or the socket file. */
export function nodeAddress(host: string, port: number): string {
  return isSocketDir(host) ? unixSocketPath(host, port) : `${host}:${port}`;
}

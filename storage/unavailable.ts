/**
 * Whether an error says a backend cannot be reached or take writes right now (Redis away,
 * loading, out of memory, a failover under way; Deno KV on a full disk): a request that met it
 * is answered 503, to be tried again, rather than 500, which says the server has a bug.
 */

// node-redis's errors for a connection that is closed, offline, timed out or given up on.
const CONNECTION_ERRORS = new Set([
  "ClientClosedError",
  "ClientOfflineError",
  "ConnectionTimeoutError",
  "SocketClosedUnexpectedlyError",
  "SocketTimeoutError",
  "ReconnectStrategyError",
]);
// The socket's own errors (Node's `code`), as node-redis passes them on.
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);
// Redis's answers that mean "not now": loading, out of memory, a read-only replica, a Cluster
// or a Sentinel's master in change.
const BUSY_REPLY = /^(LOADING|OOM|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY)\b/;

/** True when `error`, or an error it was caused by, says a backend is unavailable now. */
export function isBackendUnavailable(error: unknown): boolean {
  let current = error;
  for (let depth = 0; current instanceof Error && depth < 5; depth++) {
    // node-redis names its errors by their class alone (`name` stays "Error").
    const kind = current.constructor?.name ?? current.name;
    if (CONNECTION_ERRORS.has(kind) || CONNECTION_ERRORS.has(current.name)) return true;
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && NETWORK_CODES.has(code)) return true;
    if (kind === "ErrorReply" && BUSY_REPLY.test(current.message)) return true;
    if (current.message.includes("database or disk is full")) return true;
    current = current.cause;
  }
  return false;
}

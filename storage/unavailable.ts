/**
 * Whether an error says a backend cannot be reached or take writes right now (Redis away,
 * loading, out of memory, a failover under way; Deno KV on a full disk or a read-only file): a
 * request that met it
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
  // The streams' own Redis connection (`layers/_resp_connection.ts`): down, or lost with a
  // command written and unanswered.
  "RedisConnectionLostError",
  "UnansweredError",
  // A command bounded in time (`with_timeout.ts`) that got no answer.
  "NoAnswerInTimeError",
  // A Sentinel script never written: no master took it in time (`_sentinel_sender.ts`).
  "NotSentError",
  // node-redis's, for the commands in flight on a socket the connection's machine restarted
  // (`restart()`: a "ready" socket that answered no PING).
  "DisconnectsClientError",
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
    // node-redis names its errors by their class alone (`name` stays "Error"), and a reply's
    // error is of a subclass of `ErrorReply` (`SimpleError`, `BlobError`).
    const kinds = classNames(current);
    if (kinds.some((kind) => CONNECTION_ERRORS.has(kind))) return true;
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && NETWORK_CODES.has(code)) return true;
    if (kinds.includes("ErrorReply") && BUSY_REPLY.test(current.message)) return true;
    if (current.message.includes("database or disk is full")) return true;
    // Deno KV on a file this process may not write (its mode or owner changed while it ran).
    if (/read-?only database/i.test(current.message)) return true;
    current = current.cause;
  }
  return false;
}

// The names of `error`'s classes, its own first, up to `Error`.
function classNames(error: Error): string[] {
  const names = [error.name];
  for (
    let prototype = Object.getPrototypeOf(error);
    prototype !== null && prototype !== Error.prototype;
    prototype = Object.getPrototypeOf(prototype)
  ) {
    names.push(prototype.constructor?.name ?? "");
  }
  return names;
}

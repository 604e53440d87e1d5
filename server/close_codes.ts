/**
 * WebSocket close codes, in one place. 1000-1015 are RFC 6455's; 4000-4999 are the
 * application's own.
 */
export const CloseCode = {
  /** The conversation is over. */
  NORMAL: 1000,
  /** The server is shutting down (or the page is navigating away). */
  GOING_AWAY: 1001,
  /** The server cannot accept this kind of data (a binary frame to a text protocol). */
  UNSUPPORTED_DATA: 1003,
  /** The data was not what the protocol says (bad JSON, a missing field). */
  INVALID_PAYLOAD: 1007,
  /** The client broke a rule (a flood, a forbidden action). */
  POLICY_VIOLATION: 1008,
  /** A message was larger than the limit. */
  MESSAGE_TOO_BIG: 1009,
  /** The server failed while handling this connection. */
  INTERNAL_ERROR: 1011,
  /** The server is overloaded for this connection (it could not keep up): retry later. */
  TRY_AGAIN_LATER: 1013,
  /** The user logged out in another tab; the socket required a login. */
  LOGGED_OUT: 4001,
} as const;

/** The name of a close code for logs, e.g. `1009 (MESSAGE_TOO_BIG)`. */
export function describeCloseCode(code: number): string {
  const name = Object.entries(CloseCode).find(([, value]) => value === code)?.[0];
  return name ? `${code} (${name})` : String(code);
}

/**
 * A client's mistake, thrown from a consumer hook: the client gets
 * `{"type": "error", "error": message}`, and the socket is closed when `code` is given.
 */
export class ProtocolError extends Error {
  /** The close code when the error ends the connection; `undefined` keeps it open. */
  readonly code: number | undefined;
  /** `message` is what the client is told; a `code` also closes its socket. */
  constructor(message: string, code?: number) {
    super(message);
    this.name = "ProtocolError";
    this.code = code;
  }
}

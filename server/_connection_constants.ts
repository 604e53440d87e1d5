/**
 * The framework's own frames and events on every socket, and a connection's time limits:
 * shared by the connection runtime (`_connection.ts`), the routes and the tests.
 */

/**
 * The event type the framework handles itself: `{type: "connection.close", code, reason}`
 * sent to a connection's channel or group closes the socket.
 */
export const CLOSE_EVENT = "connection.close";

/**
 * The other event type the framework handles itself: `{type: "session.recheck", reason}` sent
 * to a group has each signed-in socket in it check again what signed it in, as after a layer
 * gap. For Django's password change, which ends the user's sessions without a log-out: a
 * socket whose Django session no longer names its user closes with 4002 and `reason`, to
 * reconnect with the cookie its browser has now (see `_external_session_socket.ts`).
 */
export const RECHECK_EVENT = "session.recheck";

/** The reason a handshake is refused with when the socket was closed during `connect`. */
export function closedInConnect(reason: string): string {
  return `Refused by the consumer: it closed the socket in connect${reason ? ` (${reason})` : ""}`;
}

/**
 * The client module's heartbeat (`client/live_socket.js`): a socket that heard nothing for a
 * while sends this exact frame, and the framework answers {@linkcode PONG_FRAME} itself, on
 * every route, so a client can tell a connection that died without a close from a quiet one.
 * Counted against the rate limit like any frame.
 */
export const PING_FRAME = '{"type":"channels.ping"}';
/** The framework's answer to {@linkcode PING_FRAME}. */
export const PONG_FRAME = '{"type":"channels.pong"}';

/**
 * How long an upgraded socket may take to open before it is given up: Deno never opens nor
 * closes the socket of a client that left during the handshake.
 */
export const OPEN_TIMEOUT_MS = 5000;

/** The log line's reason for a socket that never opened. */
export const NEVER_OPENED_REASON =
  `not opened ${OPEN_TIMEOUT_MS / 1000} s after its 101: the client ` +
  "left during the upgrade, and Deno keeps its descriptor until the process exits";

/** How long a closing socket waits for its client's close frame before it is let go. */
export const CLOSE_TIMEOUT_MS = 5000;

/**
 * How long a closed socket waits for the hook that runs (and what waits behind it) before its
 * groups are left and `disconnect` runs.
 */
export const HOOKS_AFTER_CLOSE_MS = 3000;

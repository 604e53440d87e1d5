/**
 * The bits of a connection's `#state` (held in `_connection_traffic.ts`, read by every step of
 * `_connection.ts`), and the socket `readyState` values it reads: shared by the connection and
 * the helpers that close its socket.
 */

/** `readyState` of a socket whose handshake has not completed yet. */
export const CONNECTING = 0;
/** `readyState` of an open socket. */
export const OPEN = 1;
/** `readyState` of a socket whose closing handshake has begun and not finished. */
export const SOCKET_CLOSING = 2;

// A connection's flags (its `#state`).
/** The socket closed (or never opened): nothing more is sent or handled. */
export const FINISHED = 2;
/** `close` was called; the socket closes a macrotask later (see `close`). */
export const CLOSING = 4;
/** Too much waits unsent: deliveries are dropped until the socket catches up. */
export const CONGESTED = 8;
/** A refused frame will close the socket once the frames accepted before it are handled. */
export const CLOSE_QUEUED = 16;
/** The socket has closed and `disconnect` has run. */
export const DONE = 32;
/** An event's handler runs now: what it sends is that delivery's, bounded by it. */
export const DELIVERING = 64;
/** A hook failed (1011): frames that still arrive before the close are not handled. */
export const FAILED = 128;
/** Events were dropped for a slow reader: the `drained` hook runs once it has caught up. */
export const DRAIN_WATCHED = 256;
/** A look found room in the socket since the drain watch last asked (the client reads). */
export const ROOM_SEEN = 512;
/** `close` was called before the socket opened: it closes once it opens (see `close`). */
export const CLOSE_AT_OPEN = 1024;
/** The layer may have lost events to this socket: its re-check and `drained` wait their turn. */
export const GAP_PENDING = 2048;
/** The socket was upgraded but never opened: its client left during the upgrade. */
export const NEVER_OPENED = 4096;
/** The server's close frame went: the client did not close first. */
export const CLOSE_SENT = 8192;
/** The `connect` hook runs: a failure now refuses the handshake (500), no socket to close. */
export const IN_CONNECT = 16384;
/** A `session.recheck`'s re-check waits in the hook queue: one waiting serves every event. */
export const RECHECK_PENDING = 32768;

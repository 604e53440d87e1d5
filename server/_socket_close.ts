/**
 * Closing a connection's socket (`_connection.ts`) around two of Deno's traps: a close frame
 * lost when frames still wait to be dispatched, and a closed socket kept alive by its handlers.
 */
import type { Scope } from "./consumer.ts";
import { log } from "../telemetry/log.ts";
import type { SocketLike } from "./_socket.ts";
import { CONNECTING, OPEN } from "./_connection_flags.ts";

/** Closes `socket` one macrotask from now, unless it is closing or closed by then. */
export function closeOnNextTurn(
  socket: SocketLike,
  code: number,
  reason: string,
  scope: Scope,
): void {
  // Deno loses the close frame (the client sees 1006) when a socket is closed while frames
  // it has already read still wait to be dispatched, e.g. from inside a flood's `message`
  // event; one macrotask later they have been dispatched.
  setTimeout(() => {
    if (socket.readyState !== OPEN && socket.readyState !== CONNECTING) return;
    try {
      socket.close(code, reason);
    } catch (error) {
      // Nothing here may throw: a timer's exception would end the whole process.
      log.error(`Could not close ${scope.path} [${scope.client}]`, error);
    }
  }, 0);
}

/** Unsets a closed socket's handlers, so it no longer holds its connection. */
export function detachHandlers(socket: SocketLike): void {
  // Deno keeps a closed socket (and so its handlers and this connection) until its ping
  // timer fires, up to 15 s later; letting go of the handlers frees this connection now.
  socket.onopen =
    socket.onmessage =
    socket.onclose =
    socket.onerror =
      null;
}

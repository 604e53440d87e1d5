/**
 * Closing a connection's socket (`_connection.ts`) around two of Deno's traps: a close frame
 * lost when frames still wait to be dispatched, and a closed socket kept alive by its handlers.
 */
import { shownClient } from "./_shown_client.ts";
import type { Scope } from "./consumer.ts";
import { log } from "../telemetry/log.ts";
import type { SocketLike } from "./_socket.ts";
import { CONNECTING, OPEN } from "./_connection_flags.ts";

/** How long a client whose frame was refused must send nothing before its close goes. */
export const QUIET_BEFORE_CLOSE_MS = 50;
/** The longest a close waits for that: a client that never stops is closed all the same. */
export const QUIET_WAIT_AT_MOST_MS = 1000;

/** A close to send: its code and reason, the socket's scope (for the log), and who to tell. */
export interface PendingClose {
  code: number;
  reason: string;
  scope: Scope;
  /** Called once the close frame went: not when the client closed first. */
  sent: () => void;
}

// The timer of each close that waits, by socket: no field on every idle socket for it.
const pendingCloses = new WeakMap<SocketLike, ReturnType<typeof setTimeout>>();

/**
 * Closes `socket` one macrotask from now, unless it is closing or closed by then; with
 * `whenQuiet`, once the client has sent nothing for {@linkcode QUIET_BEFORE_CLOSE_MS}.
 */
export function closeOnNextTurn(socket: SocketLike, close: PendingClose, whenQuiet = false): void {
  // Deno loses the close frame (the client sees 1006) when a socket is closed while frames
  // it has already read still wait to be dispatched, e.g. from inside a flood's `message`
  // event; one macrotask later they have been dispatched.
  if (!whenQuiet) {
    pendingCloses.set(socket, setTimeout(() => closeNow(socket, close), 0));
    return;
  }
  // And a client that still sends after the close frame went (a page's burst of queued
  // sends) makes Deno drop the connection with those frames unread: the kernel then resets
  // it, and the close frame and the refusals before it are lost. So the close waits until the
  // client stops; its frames meanwhile are only counted (the refused socket handles none).
  // Durations by the monotonic clock: a wall clock stepped back would hold the close off.
  const since = performance.now();
  let heard = since;
  socket.onmessage = () => {
    heard = performance.now();
  };
  // When the check is due: one that runs late found this process busy, not the client quiet,
  // and the frames the client sent meanwhile still wait unread behind it; the quiet is then
  // counted again from now.
  let due = since;
  const check = () => {
    const now = performance.now();
    if (now - due > QUIET_BEFORE_CLOSE_MS / 2) heard = Math.max(heard, now);
    if (now - heard >= QUIET_BEFORE_CLOSE_MS || now - since >= QUIET_WAIT_AT_MOST_MS) {
      closeNow(socket, close);
      return;
    }
    const wait = QUIET_BEFORE_CLOSE_MS - (now - heard);
    due = now + wait;
    pendingCloses.set(socket, setTimeout(check, wait));
  };
  pendingCloses.set(socket, setTimeout(check, 0));
}

/**
 * Forgets the close `closeOnNextTurn` still holds for `socket`, which ended meanwhile (its
 * client closed first): no timer outlives the socket (a test's sanitizer counts it as a leak).
 */
export function cancelPendingClose(socket: SocketLike): void {
  clearTimeout(pendingCloses.get(socket));
  pendingCloses.delete(socket);
}

// A socket the client closed meanwhile is not closed again: its close frame went first, and
// Deno answered it with the client's own code.
function closeNow(socket: SocketLike, close: PendingClose): void {
  pendingCloses.delete(socket);
  if (socket.readyState !== OPEN && socket.readyState !== CONNECTING) return;
  try {
    socket.close(close.code, close.reason);
    close.sent();
  } catch (error) {
    // Nothing here may throw: a timer's exception would end the whole process.
    log.error(
      `Could not close ${close.scope.path} [${shownClient(close.scope.client, close.scope.peer)}]`,
      error,
    );
  }
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

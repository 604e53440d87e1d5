/**
 * An anonymous socket, told when its browser signs in. A socket is signed in at its handshake,
 * as Django's are: a chat page left open while its user signs in in another tab would go on
 * writing as anonymous until it is reloaded. So an anonymous socket that follows offsets joins
 * its browser's group (`auth/browser_group.ts`) before its upgrade, and a log-in in that browser
 * closes it with 4002 "Logged in": the page reconnects with the cookie the browser has now,
 * signed in. Only one that follows offsets: the client module's, which reconnects by itself and
 * recovers what it missed, so the close loses nothing; a client that does not reconnect (the
 * Channels tutorial's) is left as it is, anonymous.
 *
 * A log-in that runs between the handshake's read of the cookies and the join is not heard:
 * that page stays anonymous until its next reconnect, as every page did before. So is one
 * whose answer reached the browser later than its pages reconnected (at least 0.25 s): they
 * came back with the old cookies. A log-in handler returns the cookies `logIn` gave at once.
 */
import type { RequestContext } from "./context.ts";
import type { WebSocketConnection } from "./_connection.ts";
import { type BindingRefusal, joinGroups } from "./_bound_socket.ts";
import { CLOSE_EVENT } from "./_connection_constants.ts";
import { CloseCode } from "./close_codes.ts";
import { followsOffsets } from "./_stream_entry.ts";
import { browserGroup } from "../auth/browser_group.ts";
import { csrfCookieSecret } from "../auth/csrf.ts";
import { log } from "../telemetry/log.ts";

/** The reason a log-in closes its browser's anonymous sockets with (4002), to reconnect. */
export const LOGGED_IN = "Logged in";

/**
 * Joins an accepted anonymous connection to its browser's group when it follows offsets and
 * the request has a CSRF cookie. Resolves `null`, or how the handshake is refused when the
 * layer could not add it.
 */
export async function joinBrowserGroup(
  connection: WebSocketConnection,
  request: Request,
): Promise<BindingRefusal | null> {
  // A client that left during the handshake is not upgraded (`upgradeAccepted`): no group.
  if (request.signal.aborted || !followsOffsets(connection.scope.query)) return null;
  const group = await browserGroupOf(request);
  if (group === null) return null;
  // Nothing to read again once in the group, as a session's socket does: no record says a
  // browser signed in (see the race above).
  return await joinGroups(connection, [group], "browser");
}

/**
 * At a log-in: the anonymous sockets of the request's browser reconnect (4002, "Logged in"),
 * signed in, on every server the layer reaches. Before the CSRF cookie is set anew: the
 * group is named by the one they were opened with.
 */
export async function reconnectBrowserSockets(
  request: Request,
  context: RequestContext,
): Promise<void> {
  const group = await browserGroupOf(request);
  if (group === null) return;
  const close = { type: CLOSE_EVENT, code: CloseCode.SESSION_RENEWED, reason: LOGGED_IN };
  // Logged: the log-in stands all the same, and its pages are signed in at their next reconnect.
  await context.services.layer.groupSend(group, close).catch((error) =>
    log.warn("Could not tell the browser's anonymous sockets of its log-in", error)
  );
}

// The group of the browser behind `request`: `null` without a CSRF cookie, which every page
// with a form sets.
async function browserGroupOf(request: Request): Promise<string | null> {
  const secret = csrfCookieSecret(request);
  return secret === null ? null : await browserGroup(secret);
}

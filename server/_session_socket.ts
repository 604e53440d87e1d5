/**
 * A socket opened with a session, bound to it: it joins the session's group (a log-out sends
 * `connection.close` there), and is checked again whenever a log-out's close may have missed
 * it (during its handshake, or when the layer lost events to it).
 */
import type { Services } from "./context.ts";
import type { WebSocketConnection } from "./_connection.ts";
import { sessionGroup } from "../auth/sessions.ts";
import { log } from "../telemetry/log.ts";
import { CloseCode } from "./close_codes.ts";
import type { RefusalReason } from "./server_metrics.ts";
import { throughOutage } from "./_through_outage.ts";

/**
 * Joins an accepted connection's session group, before its upgrade. Resolves `null`, or how the
 * handshake is refused (status, reason counted, reason given) once the connection was ended.
 */
export async function joinSessionGroup(
  connection: WebSocketConnection,
  services: Services,
  sessionId: string,
  path: string,
): Promise<[number, RefusalReason, string] | null> {
  try {
    // Logging out sends `connection.close` to this group (the accounts app does): every
    // socket whose user came from that session closes, login required or not, so none
    // goes on acting as a user who has logged out.
    await connection.groupAdd(await sessionGroup(sessionId));
  } catch (error) {
    // The layer is away: nothing may stay behind (groups, presence, a cap's place).
    log.warn(`Could not join the session group for ${path}`, error);
    await connection.abort(CloseCode.TRY_AGAIN_LATER);
    const busy = "Server busy: the session's group could not be joined; retry later";
    return [503, "unavailable", busy];
  }
  // A log-out that ran while this socket connected deleted the session, then told its
  // group, maybe before the socket was in it: it would act on as the user. Read again now
  // that it is in the group, a session gone means the log-out's close missed it.
  if (await loggedOutMeanwhile(services, sessionId, path)) {
    await connection.abort(CloseCode.LOGGED_OUT);
    return [403, "login_required", "Logged out while the socket connected"];
  }
  return null;
}

// By services: one function for all the sockets of an app, not a closure per socket.
const sessionRechecks = new WeakMap<Services, (conn: WebSocketConnection) => Promise<void>>();

/**
 * What a socket with a session does when the layer may have lost events to it (its Redis
 * subscription was down): a log-out's close may have been one of them, so the session is read
 * again, and the socket of a session gone closes as the log-out would have closed it.
 */
export function sessionRecheck(services: Services): (conn: WebSocketConnection) => Promise<void> {
  let recheck = sessionRechecks.get(services);
  if (recheck === undefined) {
    recheck = async (conn) => {
      const sessionId = conn.scope.sessionId;
      if (sessionId === null) return;
      // Given up, it closes: unchecked, it may be a logged-out user's (its handshake checks).
      await throughOutage(conn, async () => {
        if (await services.sessions.get(sessionId) === null) {
          conn.close(CloseCode.LOGGED_OUT, "Logged out");
        }
      }, {
        log: `Could not read the session again for ${conn.scope.path}; closing it`,
        reason: "Could not check the session: reconnect",
      });
    };
    sessionRechecks.set(services, recheck);
  }
  return recheck;
}

// True when the session is gone; a store that cannot say is taken as "not gone" (the socket
// was accepted on that session a moment ago, and a log-out's close still reaches it).
async function loggedOutMeanwhile(
  services: Services,
  sessionId: string,
  path: string,
): Promise<boolean> {
  try {
    return await services.sessions.get(sessionId) === null;
  } catch (error) {
    log.warn(`Could not read the session again for ${path}`, error);
    return false;
  }
}

/**
 * A socket opened with a session another server keeps (Django's, `auth/django_session.ts`),
 * bound to it as ours are to theirs (`_bound_socket.ts`): it joins the session's group before
 * its upgrade (Django's `user_logged_out` sends `connection.close` there), and asks that server
 * again wherever the close may have missed it: during its handshake, and when the layer lost
 * events to it. There is no store stamp to watch: a log-out elsewhere reaches the group only
 * through a layer both servers share (channels_redis).
 *
 * A password change in Django ends the user's sessions with no log-out to tell: the changing
 * browser's under a new key, the others for good. So the socket also joins its user's group,
 * where Django's app sends `session.recheck`, and asks again then. Its old key cannot say which
 * of the two it was, so a socket whose session Django no longer names closes with 4002, to
 * reconnect: the changing browser's cookie signs it in again, the others' are anonymous.
 */
import type { Recheck, WebSocketConnection } from "./_connection.ts";
import type { ExternalSession } from "../auth/identify.ts";
import {
  type BindingRefusal,
  type BindingState,
  joinBindingGroup,
  recheckBinding,
} from "./_bound_socket.ts";
import { CloseCode } from "./close_codes.ts";

/**
 * The reason a `session.recheck` without one closes a socket Django no longer names with (4002):
 * its session ended in Django, or took a new key.
 */
export const SESSION_CHANGED = "Session changed: reconnect";

/**
 * Joins an accepted connection's external session group, before its upgrade. Resolves `null`,
 * or how the handshake is refused once the connection was ended.
 */
export async function joinExternalSession(
  connection: WebSocketConnection,
  session: ExternalSession,
): Promise<BindingRefusal | null> {
  return await joinBindingGroup(connection, {
    kind: session.kind,
    group: session.group,
    otherGroups: session.userGroup === undefined ? undefined : [session.userGroup],
    read: () => stateOf(session),
    endedMeanwhile: [403, "login_required", "Logged out while the socket connected"],
  });
}

/**
 * What a socket with an external session does when the layer may have lost events to it (a
 * log-out's close may have been one of them), or a `session.recheck` (`asked`) says its session
 * may have ended: its server is asked again. Ended, it closes with 4001 "Logged out" after a
 * gap, with 4002 and the event's reason when asked.
 */
export function externalSessionRecheck(session: ExternalSession): Recheck {
  return (conn, asked) => {
    const read = () => unlessClosed(conn, stateOf(session, true));
    const closing = asked === undefined ? undefined : renewedClose(asked.reason);
    return recheckBinding(conn, { kind: session.kind, read }, "Logged out", closing);
  };
}

// A `session.recheck`'s close: 4002, which pages take as "reconnect", not "logged out" (the
// browser that changed the password is still signed in), with the event's reason.
function renewedClose(reason: unknown): [number, string] {
  const given = typeof reason === "string" && reason !== "" ? reason : SESSION_CHANGED;
  return [CloseCode.SESSION_RENEWED, given];
}

// How often a recheck under way looks whether its socket closed.
const CLOSED_LOOK_MS = 25;

// `reading`, or "live" once the socket closed first: a recheck's question may wait (spread, see
// `django_session.ts`), and holds what is queued behind it (its frames, its `disconnect`); a
// socket closed meanwhile has nothing left to close.
async function unlessClosed(
  conn: WebSocketConnection,
  reading: Promise<BindingState>,
): Promise<BindingState> {
  let settled = false;
  const done = reading.finally(() => settled = true);
  done.catch(() => {}); // answered after the close: nobody waits for it
  while (!settled && !conn.closed) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const look = new Promise<void>((resolve) => timer = setTimeout(resolve, CLOSED_LOOK_MS));
    await Promise.race([done.then(() => {}, () => {}), look]);
    clearTimeout(timer);
  }
  return settled ? await reading : "live";
}

// An external session is live or ended: its server renews no id of ours. `shared`: a recheck,
// which may share a question under way (see `django_session.ts`).
async function stateOf(session: ExternalSession, shared = false): Promise<BindingState> {
  return await session.isLive({ shared }) ? "live" : "ended";
}

/**
 * A socket opened with a session another server keeps (Django's, `auth/django_session.ts`),
 * bound to it as ours are to theirs (`_bound_socket.ts`): it joins the session's group before
 * its upgrade (Django's `user_logged_out` sends `connection.close` there), and asks that server
 * again wherever the close may have missed it: during its handshake, and when the layer lost
 * events to it. There is no store stamp to watch: a log-out elsewhere reaches the group only
 * through a layer both servers share (channels_redis).
 */
import type { WebSocketConnection } from "./_connection.ts";
import type { ExternalSession } from "../auth/identify.ts";
import {
  type BindingRefusal,
  type BindingState,
  joinBindingGroup,
  recheckBinding,
} from "./_bound_socket.ts";

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
    read: () => stateOf(session),
    endedMeanwhile: [403, "login_required", "Logged out while the socket connected"],
  });
}

/**
 * What a socket with an external session does when the layer may have lost events to it: a
 * log-out's close may have been one of them, so its server is asked again.
 */
export function externalSessionRecheck(
  session: ExternalSession,
): (conn: WebSocketConnection) => Promise<void> {
  return (conn) => {
    const read = () => unlessClosed(conn, stateOf(session, true));
    return recheckBinding(conn, { kind: session.kind, read }, "Logged out");
  };
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

/**
 * A socket opened with a session, bound to it (`_bound_socket.ts`): it joins the session's group
 * (a log-out sends `connection.close` there), and is checked again whenever a log-out's close
 * may have missed it (during its handshake, or when the layer lost events to it). On a layer
 * that lives inside the server (`memory`, `broadcast`), a password change from another process
 * (`deno task changepassword`) cannot reach the group: the server watches the store's
 * password-change stamp (`_stamp_watch.ts`), and when it changed, reads again the session of
 * each of its sockets opened with one.
 */
import type { Services } from "./context.ts";
import type { WebSocketConnection } from "./_connection.ts";
import { sessionGroup, type SessionStore } from "../auth/sessions.ts";
import { layerCrossesProcesses } from "./backends.ts";
import {
  latestPasswordChange,
  PASSWORD_CHANGE_CHECK_MS,
  PASSWORD_CHANGED,
} from "./password_change.ts";
import { StampWatch } from "./_stamp_watch.ts";
import {
  type Binding,
  type BindingRefusal,
  type BindingState,
  joinBindingGroup,
  recheckBinding,
} from "./_bound_socket.ts";

/** Logging out sends `connection.close` to the group of the session behind `sessionId`. */
async function sessionBinding(services: Services, sessionId: string): Promise<Binding> {
  return {
    kind: "session",
    group: await sessionGroup(sessionId),
    read: () => readSession(services.sessions, sessionId),
    endedMeanwhile: [403, "login_required", "Logged out while the socket connected"],
  };
}

// The session, then whether it was renewed: a renewal marks it so before deleting it, so a
// session found gone by a read made just as it was renewed is found renewed.
async function readSession(sessions: SessionStore, sessionId: string): Promise<BindingState> {
  if (await sessions.get(sessionId) !== null) return "live";
  return await sessions.wasRenewed(sessionId) ? "renewed" : "ended";
}

/**
 * Joins an accepted connection's session group, before its upgrade: every socket whose user
 * came from that session closes at its log-out, login required or not, so none goes on acting
 * as a user who has logged out. Resolves `null`, or how the handshake is refused (status,
 * reason counted, reason given) once the connection was ended.
 */
export async function joinSessionGroup(
  connection: WebSocketConnection,
  services: Services,
  sessionId: string,
): Promise<BindingRefusal | null> {
  const binding = await sessionBinding(services, sessionId);
  const watch = passwordChanges(services);
  // Watched once in the group, before the re-read: the store's checks cover what comes after.
  return await joinBindingGroup(
    connection,
    binding,
    watch === null ? undefined : {
      joined: () => watch.add(connection, sessionId, binding),
      unchecked: () => watch.readAllNextCheck(),
    },
  );
}

// By services: one watch for all the session sockets of an app, whichever route opened them;
// `null` over Redis, where the change's close reaches every server.
const watches = new WeakMap<Services, StampWatch<Binding> | null>();

function passwordChanges(services: Services): StampWatch<Binding> | null {
  let watch = watches.get(services);
  if (watch === undefined) {
    watch = layerCrossesProcesses(services.config) ? null : new StampWatch<Binding>({
      readStamp: () => latestPasswordChange(services.store),
      read: (binding) => binding.read(),
      checkEveryMs: PASSWORD_CHANGE_CHECK_MS,
      reason: PASSWORD_CHANGED,
      what: "the password changes",
    });
    watches.set(services, watch);
  }
  return watch;
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
      await recheckBinding(conn, await sessionBinding(services, sessionId), "Logged out");
    };
    sessionRechecks.set(services, recheck);
  }
  return recheck;
}

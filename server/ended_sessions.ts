/**
 * Ending a session, and what is left of one ended elsewhere: its sockets close (4001) on every
 * server the layer reaches, as a log-out closes them, and its presence goes, tabs in their grace
 * period included. For a log-out, and for the sessions a password change ends.
 *
 * @example
 * ```ts
 * import { endSession, type Services } from "@channels/deno";
 *
 * declare const services: Services;
 * declare const sessionId: string;
 * const ended = await endSession(services, sessionId); // its record, or null
 * ```
 */
import type { Services } from "./context.ts";
import { sessionGroup, type SessionRecord } from "../auth/sessions.ts";
import { CLOSE_EVENT } from "./_connection_constants.ts";
import { CloseCode } from "./close_codes.ts";
import { log } from "../telemetry/log.ts";

/** The reason a log-out closes its session's sockets with. */
export const LOGGED_OUT = "Logged out";

/**
 * The reason the sockets of a renewed session close with (4002): its user signed in again in
 * that browser (a password change on its page, a log-in again), under a new id.
 */
export const SESSION_RENEWED = "Session renewed";

/**
 * Ends the session `sessionId` and closes what is left of it (see
 * {@linkcode closeEndedSession}); resolves with the record it removed, `null` when none.
 */
export async function endSession(
  services: Services,
  sessionId: string,
  reason: string = LOGGED_OUT,
): Promise<SessionRecord | null> {
  const record = await services.sessions.delete(sessionId);
  await closeEndedSession(services, await sessionGroup(sessionId), reason);
  return record;
}

/**
 * Closes the sockets of the ended session whose group is `group` (4001, `reason`) and ends its
 * presence. A layer or presence that fails is logged: the session is ended all the same.
 */
export async function closeEndedSession(
  services: Services,
  group: string,
  reason: string,
): Promise<void> {
  await closeSessionSockets(services, group, CloseCode.LOGGED_OUT, reason);
  // Its tabs in their grace period go too, even when none of its sockets is open to say so.
  await services.presence.untrackSession(group).catch((error) =>
    log.warn("Could not end an ended session's presence", error)
  );
}

/**
 * Closes the sockets in the session group `group` with `code` and `reason`, on every server the
 * layer reaches; a layer that fails is logged. Their presence is left to the close code (4002
 * keeps its grace); {@linkcode closeEndedSession} ends it for a session that ended.
 */
export async function closeSessionSockets(
  services: Services,
  group: string,
  code: number,
  reason: string,
): Promise<void> {
  await services.layer.groupSend(group, { type: CLOSE_EVENT, code, reason }).catch((error) =>
    log.warn(`Could not close the sockets of a session (${code} ${reason})`, error)
  );
}

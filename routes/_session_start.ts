/**
 * Starting a session under a new id, as a log-in and a password change do: the browser's
 * previous session ends and its sockets close, and the session and CSRF cookies are set anew.
 */
import {
  CLOSE_EVENT,
  CloseCode,
  isSecureRequest,
  log,
  LOGGED_OUT,
  newCsrfSecret,
  readCookies,
  type RequestContext,
  SESSION_COOKIE,
  SESSION_RENEWED,
  sessionGroup,
  setCsrfCookie,
  setSessionCookie,
  type UserRecord,
} from "../mod.ts";
import { redirect } from "./_forms.ts";

/**
 * Starts `user`'s session in place of the browser's previous one; a redirect to `location`.
 * `user` as read with the password just checked: its `passwordChangedAt` goes in the session,
 * which a change of password after it then ends (see `SessionRecord.passwordSince`).
 */
export async function startSession(
  request: Request,
  context: RequestContext,
  user: Pick<UserRecord, "username" | "passwordChangedAt">,
  location: string,
): Promise<Response> {
  const previous = readCookies(request.headers)[SESSION_COOKIE];
  const { sessions } = context.services;
  const passwordSince = user.passwordChangedAt ?? 0;
  let id: string;
  let renewed = false;
  try {
    const made = await sessions.create(user.username, { replacing: previous, passwordSince });
    id = made.id;
    renewed = made.replaced?.username === user.username;
  } finally {
    // Its id died with this login (even one that failed after deleting it). Its sockets are
    // closed once it is gone, as on a log-out: one whose handshake read the session before
    // then has joined the session's group by now. The same user still signed in (a password
    // change, a log-in again) is told to reconnect: no log-out, no leave in presence.
    if (previous) await closeSessionSockets(context, previous, renewed);
  }
  const response = redirect(location);
  const isSecure = secure(request, context);
  setSessionCookie(response.headers, id, {
    maxAgeSeconds: sessions.maxAgeSeconds,
    secure: isSecure,
  });
  // A token an attacker planted before the login must not be valid after it (Django rotates).
  setCsrfCookie(response.headers, newCsrfSecret(), { secure: isSecure });
  return response;
}

/**
 * Closes the login-required sockets of the session `sessionId`: 4001 "Logged out", or, when
 * its user is signed in under a new id, 4002 "Session renewed", for them to reconnect.
 */
export async function closeSessionSockets(
  context: RequestContext,
  sessionId: string,
  renewed = false,
): Promise<void> {
  const event = renewed
    ? { type: CLOSE_EVENT, code: CloseCode.SESSION_RENEWED, reason: SESSION_RENEWED }
    : { type: CLOSE_EVENT, code: CloseCode.LOGGED_OUT, reason: LOGGED_OUT };
  await context.services.layer.groupSend(await sessionGroup(sessionId), event).catch((error) =>
    log.warn("Could not close the sockets of an ended session", error)
  );
}

/** Whether the request came over https (directly or through a trusted proxy). */
export function secure(request: Request, context: RequestContext): boolean {
  return isSecureRequest(request, context.services.config.trustProxy);
}

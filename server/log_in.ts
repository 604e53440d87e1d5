/**
 * Signing a browser in, Django's `login()`: the user gets a new session in place of the
 * request's (a new id, against session fixation), the session and CSRF cookies are set anew, and
 * the previous session's sockets close. When the same user signed in again (a log-in again, a
 * password change on its page) they close with 4002 "Session renewed", for the pages to
 * reconnect under the new id with no leave in presence; otherwise with 4001 "Logged out". The
 * browser's anonymous sockets that follow offsets close with 4002 "Logged in", to reconnect
 * signed in (`_browser_socket.ts`).
 *
 * @example
 * ```ts
 * import { logIn, type RequestContext, type UserRecord } from "@channels/deno";
 *
 * declare const request: Request;
 * declare const context: RequestContext;
 * declare const user: UserRecord; // as `services.users.verifyCredentials` returned it
 *
 * const cookies = await logIn(request, context, user);
 * cookies.set("location", "/");
 * const response = new Response(null, { status: 302, headers: cookies });
 * ```
 */
import type { RequestContext } from "./context.ts";
import type { UserRecord } from "../auth/users.ts";
import { sessionGroup } from "../auth/sessions.ts";
import { isSecureRequest, readCookies, SESSION_COOKIE } from "../auth/cookies.ts";
import { setCsrfCookie, setSessionCookie } from "../auth/cookies.ts";
import { newCsrfSecret } from "../auth/csrf.ts";
import { CloseCode } from "./close_codes.ts";
import { reconnectBrowserSockets } from "./_browser_socket.ts";
import {
  closeEndedSession,
  closeSessionSockets,
  LOGGED_OUT,
  SESSION_RENEWED,
} from "./ended_sessions.ts";

/**
 * Starts `user`'s session in place of the request's; resolves with the headers that set its
 * cookies, for the response. `user` as read with the password just checked: its
 * `passwordChangedAt` goes in the session, which a later change of password then ends.
 */
export async function logIn(
  request: Request,
  context: RequestContext,
  user: Pick<UserRecord, "username" | "passwordChangedAt">,
): Promise<Headers> {
  const previous = readCookies(request.headers)[SESSION_COOKIE];
  const { sessions } = context.services;
  let id: string;
  let ended: "renewed" | "replaced" | "nothing" = "nothing";
  try {
    const made = await sessions.create(user.username, {
      replacing: previous,
      passwordSince: user.passwordChangedAt ?? 0,
    });
    id = made.id;
    const replaced = made.replaced?.username;
    ended = replaced === undefined
      ? "nothing"
      : replaced === user.username
      ? "renewed"
      : "replaced";
  } finally {
    // Its id died with this log-in (even one that failed after deleting it). Its sockets close
    // once it is gone, as on a log-out: one whose handshake read the session before then has
    // joined the session's group by now.
    if (previous) await closePrevious(context, previous, ended);
  }
  // Pages this browser has open anonymously reconnect as the user now signed in.
  await reconnectBrowserSockets(request, context);
  const headers = new Headers();
  const secure = isSecureRequest(request, context.services.config.trustProxy);
  setSessionCookie(headers, id, { maxAgeSeconds: sessions.maxAgeSeconds, secure });
  // A token an attacker planted before the log-in must not be valid after it (Django rotates).
  setCsrfCookie(headers, newCsrfSecret(), { secure });
  return headers;
}

// The previous session's sockets: told to reconnect when its user is still signed in; closed as
// a log-out closes them, presence included, when this log-in ended another user's session. When
// it ended none (gone already: a form sent twice, after the first one's renewal; or `create`
// failed first) they are only closed: tabs of a renewal in their grace keep it.
async function closePrevious(
  context: RequestContext,
  sessionId: string,
  ended: "renewed" | "replaced" | "nothing",
): Promise<void> {
  const { services } = context;
  const group = await sessionGroup(sessionId);
  if (ended === "replaced") return await closeEndedSession(services, group, LOGGED_OUT);
  if (ended === "renewed") {
    return await closeSessionSockets(services, group, CloseCode.SESSION_RENEWED, SESSION_RENEWED);
  }
  await closeSessionSockets(services, group, CloseCode.LOGGED_OUT, LOGGED_OUT);
}

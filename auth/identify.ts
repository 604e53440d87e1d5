/**
 * Channels' `AuthMiddlewareStack` for this server: the session cookie of a request (a page or
 * a WebSocket upgrade) names the user, or the request is anonymous.
 */
import type { Identity } from "../server/context.ts";
import type { SessionStore } from "./sessions.ts";
import type { UserDirectory } from "./users.ts";
import { ANONYMOUS } from "../server/consumer.ts";
import { readCookies, SESSION_COOKIE } from "./cookies.ts";
import { log } from "../server/log.ts";

const NOBODY: Identity = Object.freeze({ user: ANONYMOUS, sessionId: null });

/** Who sent `request`: the session's user while the session and the user both exist. */
export async function identifyRequest(
  request: Request,
  accounts: { sessions: SessionStore; users: UserDirectory },
): Promise<Identity> {
  const sessionId = readCookies(request.headers)[SESSION_COOKIE];
  if (!sessionId) return NOBODY;
  let session, user;
  try {
    session = await accounts.sessions.get(sessionId);
    user = session && await accounts.users.find(session.username);
  } catch (error) {
    // The store is away (a Redis restart): pages keep working, as anonymous, until it is back.
    log.warn("Session lookup failed; treating the request as anonymous", error);
    return NOBODY;
  }
  if (!session || !user) return NOBODY;
  return {
    user: Object.freeze({ username: user.username, isAuthenticated: true }),
    sessionId,
  };
}

/**
 * One socket's share of the site-wide presence list: what every consumer that keeps its user
 * online does (the project's presence socket, the RealPython list, the presence indicator).
 */
import {
  CloseCode,
  type Connection,
  log,
  PRESENCE_GROUP,
  type PresenceMeta,
  type PresenceTracker,
  sessionGroup,
} from "../mod.ts";

/** What a tutorial socket that keeps its user online needs from the server's services. */
export interface SitePresenceServices {
  readonly presence: PresenceTracker;
  /**
   * Whether a session still exists (a log-out deletes it before closing its sockets), and
   * whether one gone was renewed (its user signed in again in that browser).
   */
  readonly sessions: {
    get(id: string): Promise<unknown | null>;
    wasRenewed(id: string): Promise<boolean>;
  };
}

/** One socket's share of the site-wide presence list. */
export interface SitePresence {
  /**
   * Joins {@linkcode PRESENCE_GROUP} (unless told not to listen), reads who is online, then
   * tracks this socket's user; resolves with the users online before it counted (a diff brings
   * the user's own join only when they were not among them).
   */
  track(): Promise<string[]>;
  /** Untracks the socket: at once after a log-out, else after the grace period. */
  untrack(code: number): Promise<void>;
}

const MAX_DEVICE = 80;

/**
 * Keeps `conn`'s user online on the site-wide presence list while the socket is open, as the
 * project's own presence socket does (`consumers/presence.ts`).
 */
export function sitePresence(
  conn: Connection,
  services: SitePresenceServices,
  options: { listen?: boolean } = {},
): SitePresence {
  const { presence } = services;
  const username = conn.scope.user.username;
  const sessionId = conn.scope.sessionId;
  let session: string | null = null;
  let tracked = false;
  return {
    async track() {
      if (username === null) throw new Error("Presence needs a signed-in user");
      if (sessionId !== null) session = await sessionGroup(sessionId);
      // Group first, state second: every diff published after the state was read arrives.
      if (options.listen !== false) await conn.groupAdd(PRESENCE_GROUP);
      const { online } = await presence.state();
      await presence.track(username, conn.channelName, presenceMeta(conn.scope.headers, session));
      tracked = true;
      return online;
    },
    async untrack(code) {
      if (!tracked) return;
      // A log-out deletes the session, then closes its sockets with 4001; a tab that is just
      // closing still has its session and gets the grace period (a reload does not flicker).
      // The session store may be away (Redis restarting): the socket is untracked all the same,
      // with the grace of a tab that closed, or its user would stay online for good.
      // A renewed session (a password change, a log-in again) is the same user in the same
      // tab, about to reconnect under the new id: a tab's grace, though the old id is gone.
      const loggedOut = code !== CloseCode.SESSION_RENEWED &&
        (code === CloseCode.LOGGED_OUT ||
          (sessionId !== null && await sessionEnded(services, sessionId)));
      try {
        if (loggedOut && session !== null) await presence.untrackSession(session);
      } finally {
        await presence.untrack(conn.channelName, { grace: !loggedOut });
      }
    },
  };
}

/** What a presence connection tells about itself: never secret (a session hash, not its id). */
export function presenceMeta(headers: Headers, session: string | null): PresenceMeta {
  const device = (headers.get("user-agent") ?? "").slice(0, MAX_DEVICE);
  return { session, device, joinedAt: new Date().toISOString() };
}

// Whether the session is gone (a log-out elsewhere); false when the store cannot say, and for
// one renewed (a tab closing just after its browser's password change: the user is still in).
async function sessionEnded(services: SitePresenceServices, sessionId: string): Promise<boolean> {
  const { sessions } = services;
  try {
    return await sessions.get(sessionId) === null && !await sessions.wasRenewed(sessionId);
  } catch (error) {
    log.warn("Presence: the session store did not answer; the socket leaves with its grace", error);
    return false;
  }
}

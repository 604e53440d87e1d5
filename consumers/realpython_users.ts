/**
 * `WS /users/` (login required): RealPython's "Getting Started with Django Channels" user
 * list, on the site's presence tracker. Every member receives, as JSON text frames:
 *
 * - `{"username": "<name>", "is_logged_in": true}` when a user comes online (their first
 *   presence-tracked socket opens: this one, the indicator's, or any signed-in site page's);
 * - `{"username": "<name>", "is_logged_in": false}` when a user goes offline (logs out, or
 *   their last socket closes and its grace period ends).
 *
 * The tutorial (Channels 1) sent these from `ws_connect` / `ws_disconnect` for every socket;
 * here they come from presence diffs, so a second tab or a reload changes nothing for the
 * others, as the list means "who is online". The connecting socket gets its own `true` too,
 * as the tutorial's did. The client sends nothing; whatever it sends is ignored.
 */
import {
  CloseCode,
  type Connection,
  type Consumer,
  type LayerEvent,
  PRESENCE_DIFF,
  PRESENCE_GROUP,
  type PresenceMeta,
  type PresenceTracker,
  sessionGroup,
} from "../mod.ts";

/** What a tutorial socket that keeps its user online needs from the server's services. */
export interface SitePresenceServices {
  readonly presence: PresenceTracker;
  /** Whether a session still exists (a log-out deletes it before closing its sockets). */
  readonly sessions: { get(id: string): Promise<unknown | null> };
}

/** One socket's share of the site-wide presence list. */
export interface SitePresence {
  /**
   * Joins {@linkcode PRESENCE_GROUP}, reads who is online, then tracks this socket's user;
   * resolves with the users online before it counted (a diff brings the user's own join only
   * when they were not among them).
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
export function sitePresence(conn: Connection, services: SitePresenceServices): SitePresence {
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
      await conn.groupAdd(PRESENCE_GROUP);
      const { online } = await presence.state();
      await presence.track(username, conn.channelName, meta(conn.scope.headers, session));
      tracked = true;
      return online;
    },
    async untrack(code) {
      if (!tracked) return;
      // A log-out deletes the session, then closes its sockets with 4001; a tab that is just
      // closing still has its session and gets the grace period (a reload does not flicker).
      const loggedOut = code === CloseCode.LOGGED_OUT ||
        (sessionId !== null && await services.sessions.get(sessionId) === null);
      if (loggedOut && session !== null) await presence.untrackSession(session);
      await presence.untrack(conn.channelName, { grace: !loggedOut });
    },
  };
}

function meta(headers: Headers, session: string | null): PresenceMeta {
  const device = (headers.get("user-agent") ?? "").slice(0, MAX_DEVICE);
  return { session, device, joinedAt: new Date().toISOString() };
}

/** The tutorial's frame: exactly these two keys. */
export interface LoggedInFrame {
  username: string;
  is_logged_in: boolean;
}

/** The frames one presence diff turns into. */
export function loggedInFrames(event: LayerEvent): LoggedInFrame[] {
  const names = (value: unknown): string[] =>
    Array.isArray(value) ? value.filter((name) => typeof name === "string") : [];
  return [
    ...names(event.joins).map((username) => ({ username, is_logged_in: true })),
    ...names(event.leaves).map((username) => ({ username, is_logged_in: false })),
  ];
}

/** Builds the `/users/` consumer over `services`. */
export function realpythonUsersConsumer(services: SitePresenceServices): Consumer {
  return (conn) => {
    const online = sitePresence(conn, services);
    return {
      async connect() {
        const username = conn.scope.user.username;
        if (username === null) return false;
        const before = await online.track();
        // Already online (another tab): no diff will come, so this socket hears it here.
        if (before.includes(username)) conn.sendJson({ username, is_logged_in: true });
      },
      events: {
        [PRESENCE_DIFF]: (event) => {
          for (const frame of loggedInFrames(event)) conn.sendJson(frame);
        },
      },
      disconnect: (code) => online.untrack(code),
    };
  };
}

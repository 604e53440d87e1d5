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
import { type Consumer, type LayerEvent, PRESENCE_DIFF } from "../mod.ts";
import { sitePresence, type SitePresenceServices } from "./site_presence.ts";

export type { SitePresenceServices } from "./site_presence.ts";

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

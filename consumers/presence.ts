/**
 * `WS /ws/presence/state/` (login required): keeps the user online while the socket is open and
 * keeps their page's list of users live. Protocol (server to client only):
 *
 * - `{"type": "presence.state", "users": [{"username", "online"}], "online_count", "recent",
 *   "you"}` once, right after the socket opens: every registered user with their status, the
 *   latest "connected" / "disconnected" events, and whom this socket is signed in as (a page
 *   that reconnects after a log-in as someone else in another tab learns it from `you`).
 * - `{"type": "presence.diff", "joins": [...], "leaves": [...], "time"}` for every change
 *   after that; a diff is absolute ("now online"), so applying one twice is harmless.
 * - `{"type": "presence.user_added", "username"}` when someone signs up.
 *
 * `?list=0` tracks the user without sending any of that (a page that shows no list).
 */
import {
  ACCOUNT_EVENTS_GROUP,
  type Consumer,
  type LayerEvent,
  log,
  PRESENCE_DIFF,
  type PresenceTracker,
} from "../mod.ts";
import { presenceSnapshot, type PresenceUser } from "./presence_snapshot.ts";
import { sitePresence, type SitePresenceServices } from "./site_presence.ts";

export type { PresenceUser } from "./presence_snapshot.ts";

/** The frame a client gets when a user signs up. */
export const USER_ADDED = "presence.user_added";
/** The first frame a client gets. */
export const PRESENCE_STATE = "presence.state";

/** What the presence consumer needs from the server's services. */
export interface PresenceServices {
  readonly presence: PresenceTracker;
  /** Every registered username, in display order. */
  readonly users: { usernames(): Promise<string[]> };
  /** Whether a session still exists, or was renewed (see `SitePresenceServices`). */
  readonly sessions: SitePresenceServices["sessions"];
}

/** Builds the presence consumer over `services`. */
export function presenceConsumer(services: PresenceServices): Consumer {
  const { presence } = services;
  return (conn) => {
    const username = conn.scope.user.username;
    const listing = conn.scope.query.get("list") !== "0";
    const online = sitePresence(conn, services, { listen: listing });
    // Diffs that arrive before the state frame went out wait for it: sent first, they would
    // be overwritten by an older state.
    let early: LayerEvent[] | null = [];
    const forward = (event: LayerEvent, frame: unknown = event) => {
      if (early !== null) early.push(event);
      else conn.sendJson(frame);
    };
    return {
      async connect() {
        if (username === null) return false;
        if (listing) await conn.groupAdd(ACCOUNT_EVENTS_GROUP);
        await online.track();
        try {
          if (listing) conn.sendJson(await stateFrame(services, username));
        } catch (error) {
          // A refused socket never runs `disconnect`: untrack here, or the user is a ghost.
          await presence.untrack(conn.channelName);
          throw error;
        }
        const waiting = early ?? [];
        early = null;
        for (const event of waiting) conn.sendJson(frameOf(event));
      },
      events: {
        // The layer's event object is the frame: one serialisation serves every socket.
        [PRESENCE_DIFF]: (event) => forward(event),
        "account.created": (event) => forward(event, frameOf(event)),
      },
      // Diffs were dropped while the client read too slowly: the list it holds may be wrong
      // for good (a leave it never got), so it gets the whole list again once it caught up;
      // the page replaces its list on a state frame.
      async drained() {
        if (!listing) return;
        try {
          conn.sendJson(await stateFrame(services, username!));
        } catch (error) {
          // The store away (a Redis restore in progress): the socket stays, with its list.
          log.warn(`The presence list could not be sent again to ${username}`, error);
        }
      },
      // A log-out ends the user's presence at once; a closing tab gets the grace period.
      disconnect: (code) => online.untrack(code),
    };
  };
}

function frameOf(event: LayerEvent): unknown {
  if (event.type === "account.created") return { type: USER_ADDED, username: event.username };
  return event;
}

async function stateFrame(services: PresenceServices, me: string): Promise<unknown> {
  const [registered, state] = await Promise.all([
    services.users.usernames(),
    services.presence.state(),
  ]);
  const users: PresenceUser[] = presenceSnapshot(registered, state.online, me);
  return {
    type: PRESENCE_STATE,
    users,
    online_count: users.filter((user) => user.online).length,
    recent: state.recent,
    you: me,
  };
}

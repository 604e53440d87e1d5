/**
 * `WS /ws/presence/` (login required): the "Online Presence Indicator" tutorial's socket, on
 * the site's presence tracker. On every change every member receives one JSON text frame:
 *
 * ```json
 * {"msg": "ada Connected", "online": 2, "users": ["ada", "bob"]}
 * ```
 *
 * `msg` is `"<username> Connected"` or `"<username> Disconnected"`; `users` is who is online
 * now, each user once however many tabs they have, and `online` is how many they are. A new
 * socket hears of its own user too: through the diff that brings them online, or at once when
 * they were online already (another tab), so its page never stays at 0.
 *
 * Where this differs from the tutorial's consumer (a class-level list of sockets in one
 * process): users, not sockets, are listed and counted, across every process; a "change" is
 * a user coming or going, not a tab; `online` is a number, not a string; anonymous visitors
 * are refused (403) instead of listed as "AnonymousUser", since the list is of users.
 */
import { type Consumer, type LayerEvent, PRESENCE_DIFF } from "../mod.ts";
import { sitePresence, type SitePresenceServices } from "./site_presence.ts";

/** The tutorial's frame. */
export interface IndicatorFrame {
  msg: string;
  online: number;
  users: string[];
}

/** Builds the `/ws/presence/` consumer over `services`. */
export function presenceIndicatorConsumer(services: SitePresenceServices): Consumer {
  return (conn) => {
    const presence = sitePresence(conn, services);
    // Who is online, as this socket knows it; `null` until the state was read.
    let users: Set<string> | null = null;
    // Diffs that arrive while the state is being read wait for it.
    const early: LayerEvent[] = [];
    const frame = (msg: string): IndicatorFrame => {
      const list = [...users!];
      return { msg, online: list.length, users: list };
    };
    // One frame per user whose status changed; a diff already in the state read changes nothing.
    const apply = (event: LayerEvent): void => {
      for (const name of names(event.leaves)) {
        if (users!.delete(name)) conn.sendJson(frame(`${name} Disconnected`));
      }
      for (const name of names(event.joins)) {
        if (users!.has(name)) continue;
        users!.add(name);
        conn.sendJson(frame(`${name} Connected`));
      }
    };
    return {
      async connect() {
        const username = conn.scope.user.username;
        if (username === null) return false;
        users = new Set(await presence.track());
        const wasOnline = users.has(username);
        for (const event of early.splice(0)) apply(event);
        // Online already (another tab): no diff will bring their join, so it is told here.
        if (wasOnline && users.has(username)) conn.sendJson(frame(`${username} Connected`));
      },
      events: {
        [PRESENCE_DIFF]: (event) => {
          if (users === null) early.push(event);
          else apply(event);
        },
      },
      disconnect: (code) => presence.untrack(code),
    };
  };
}

function names(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((name) => typeof name === "string") : [];
}

/**
 * Presence: who is online, kept as state plus diffs, the way Phoenix Presence does it.
 *
 * Semantics every implementation keeps (the suite in `tests/layers/presence/conformance.ts`
 * checks each point, and runs unchanged against every implementation):
 *
 * - **Connections, not users, are tracked.** Each presence socket is tracked under its own
 *   `connectionId` with a small JSON `meta` (its device, when it joined): several tabs and
 *   devices of one user are several connections.
 * - **A user is online while at least one of their connections is tracked anywhere**, in any
 *   process. Never a ghost: once every connection is untracked (or expired) the user goes
 *   offline for everyone.
 * - **Grace.** `untrack(id, { grace: true })` keeps the connection for `graceMs` before it
 *   goes, so a page reload or a navigation between pages does not flicker the user to offline:
 *   when the same user tracks a new connection in the meantime, the leaving one is replaced at
 *   once and nobody sees a change. `untrack(id)` without grace (log out, server shutdown) takes
 *   effect at once, as does {@linkcode PresenceTracker.untrackSession} for a log-out.
 * - **Diffs.** Changes are published as {@linkcode PresenceDiff} events to the group
 *   {@linkcode PRESENCE_GROUP} of the group layer, so a cross-process layer carries them to
 *   every process; subscribe by joining that group. Changes are coalesced for a short window
 *   (`coalesceMs`, 50 ms by default): a join and a leave of one user inside one window cancel
 *   out, and one diff carries every user that changed. A diff is absolute, not relative: a
 *   join means "now online", so applying one twice is harmless.
 * - **State.** {@linkcode PresenceTracker.state} is the state the published diffs describe
 *   (not changes still inside the coalescing window), so a subscriber that joins the group
 *   first and then reads the state, and applies every later diff on top, is always right.
 * - **Topics.** Presence is kept per topic (a group of users: a chat room, say). Every call takes
 *   an optional `topic`; without one it is {@linkcode SITE_TOPIC}, the site-wide list. A user is
 *   online in a topic while at least one of their connections is tracked in that topic. A
 *   connection is in one topic at a time (tracking its id in another topic moves it), so
 *   `untrack(id)` needs no topic, and `untrackSession` ends a session in every topic. Diffs of
 *   the site topic go to {@linkcode PRESENCE_GROUP} as they always did; diffs of another topic
 *   go to {@linkcode presenceGroup}`(topic)` and carry `topic`.
 * - **Crashes** (cross-process implementations): connections of a process that dies without
 *   untracking expire after at most 30 s (a heartbeat refreshes the live ones), and their users
 *   go offline for everyone. The in-process implementation dies together with its sockets.
 *
 * @example
 * ```ts
 * import {
 *   type Connection, type GroupLayer, PRESENCE_GROUP, type PresenceTracker,
 * } from "@channels/deno";
 *
 * declare const layer: GroupLayer;
 * declare const channel: string; // from layer.newChannel
 * declare const presence: PresenceTracker;
 * declare const conn: Connection; // the presence socket of one of ada's tabs
 * await layer.groupAdd(PRESENCE_GROUP, channel); // diffs arrive as "presence.diff" events
 * await presence.track("ada", conn.channelName, { device: "Firefox" });
 * const { online } = await presence.state(); // ["ada"] once the diff was published
 * await presence.untrack(conn.channelName, { grace: true }); // tab closed: ada stays a moment
 * ```
 */
import type { LayerEvent } from "../layer.ts";

/** The layer group every presence diff is published to. */
export const PRESENCE_GROUP = "presence";

/** The site-wide topic: the one a call without a `topic` is about. */
export const SITE_TOPIC = "site";

/** Longest topic name, in characters, so that its group name stays within 200. */
export const MAX_TOPIC_LENGTH = 190;

// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * The layer group a topic's diffs are published to: {@linkcode PRESENCE_GROUP} for the site
 * topic, `presence.<topic>` for any other (a dot, so a Channels-style layer accepts it too). Throws for a topic that is empty, longer than
 * 190 characters (`MAX_TOPIC_LENGTH`) or has control characters.
 *
 * @example
 * ```ts
 * import { type GroupLayer, presenceGroup } from "@channels/deno";
 *
 * declare const layer: GroupLayer;
 * declare const channel: string; // from layer.newChannel
 * await layer.groupAdd(presenceGroup("chat.lobby"), channel); // "presence.chat.lobby"
 * ```
 */
export function presenceGroup(topic: string): string {
  if (topic === SITE_TOPIC) return PRESENCE_GROUP;
  // Characters, as group names count them: an emoji is one, though two UTF-16 units.
  const tooLong = topic.length > MAX_TOPIC_LENGTH && [...topic].length > MAX_TOPIC_LENGTH;
  if (topic.length === 0 || tooLong || CONTROL.test(topic)) {
    throw new TypeError(`Invalid presence topic "${[...topic].slice(0, 40).join("")}"`);
  }
  return `${PRESENCE_GROUP}.${topic}`;
}

/** The `type` of a {@linkcode PresenceDiff}. */
export const PRESENCE_DIFF = "presence.diff";

/** The `type` of the event that ends a session's connections in every process. */
export const PRESENCE_END_SESSION = "presence.end_session";

/** The event by which a draining process hands its connections to the other processes. */
export const PRESENCE_HANDOVER = "presence.handover";

/**
 * The events trackers send one another over `PRESENCE_GROUP`: the sockets in that group get
 * them too, and leave them alone (no handler is expected for them).
 */
export const TRACKER_EVENTS: ReadonlySet<string> = new Set([
  PRESENCE_END_SESSION,
  PRESENCE_HANDOVER,
]);

/**
 * What is known about one connection: small, JSON-serialisable, never secret. The field
 * `session` (a hash, not the session id) is what {@linkcode PresenceTracker.untrackSession}
 * matches.
 */
export type PresenceMeta = Readonly<Record<string, string | number | boolean | null>>;

/** Users who came online (`joins`) and went offline (`leaves`) since the previous diff. */
export interface PresenceDiff extends LayerEvent {
  /** Always {@linkcode PRESENCE_DIFF}. */
  type: typeof PRESENCE_DIFF;
  /** Users now online. */
  joins: string[];
  /** Users now offline. */
  leaves: string[];
  /** When the diff was published, as an ISO time. */
  time: string;
  /** The topic, on every diff but the site topic's (whose shape predates topics). */
  topic?: string;
}

/** One line of the "X connected / X disconnected" feed. */
export interface PresenceEvent {
  /** Who connected or disconnected. */
  username: string;
  /** What happened. */
  status: "connected" | "disconnected";
  /** ISO time. */
  time: string;
}

/** The published presence state. */
export interface PresenceState {
  /** Every online user, sorted. */
  online: string[];
  /** The most recent changes, oldest first. */
  recent: PresenceEvent[];
}

/** Options of {@linkcode PresenceTracker.untrack}. */
export interface UntrackOptions {
  /** Keep the connection for the grace period first (a closed tab, not a log-out). */
  grace?: boolean;
}

/** Tracks presence connections and publishes who is online (semantics: see the module doc). */
export interface PresenceTracker {
  /**
   * Tracks one connection of `username` in `topic` (default {@linkcode SITE_TOPIC}); tracking
   * an id again only refreshes its meta (or moves it, for another user or topic).
   */
  track(
    username: string,
    connectionId: string,
    meta?: PresenceMeta,
    topic?: string,
  ): Promise<void>;
  /** Stops tracking a connection, after the grace period if asked; an unknown id is a no-op. */
  untrack(connectionId: string, options?: UntrackOptions): Promise<void>;
  /**
   * Untracks at once, in every process, each connection whose meta `session` equals `session`
   * (a log-out: that session's tabs still in their grace period go too).
   */
  untrackSession(session: string): Promise<void>;
  /** The published state of `topic` (default {@linkcode SITE_TOPIC}). */
  state(topic?: string): Promise<PresenceState>;
  /** The metas of every connection tracked in `topic`, by user (those in grace included). */
  list(topic?: string): Promise<Record<string, PresenceMeta[]>>;
  /** Publishes pending changes now instead of at the end of the coalescing window. */
  flush(): Promise<void>;
  /**
   * Untracks this process's connections without grace, publishes that, and stops. With
   * `handOver` (a drain on deploy), the other processes keep each of them for the rest of its
   * grace period instead, so users who reconnect elsewhere in time do not flap to offline.
   * Resolves false when the backend could not take those last changes (logged): the other
   * processes were not told, and this process's entries expire there instead.
   */
  close(options?: { handOver?: boolean }): Promise<boolean>;
}

/** The timer seam: tests pass a fake clock so grace periods pass without sleeping. */
export interface PresenceClock {
  /** The time in milliseconds since the epoch. */
  now(): number;
  /** Schedules `callback`; the handle is opaque to the caller. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a callback `setTimeout` scheduled; an old handle is a no-op. */
  clearTimeout(handle: unknown): void;
}

/** The real clock. */
export const SYSTEM_CLOCK: PresenceClock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as number),
};

/** Settings shared by every implementation. */
export interface PresenceOptions {
  /** How long a connection closed with grace still counts, in milliseconds. */
  graceMs: number;
  /** How long changes are collected before one diff goes out (default 50 ms). */
  coalesceMs?: number;
  /** How many feed events {@linkcode PresenceState.recent} keeps (default 20). */
  recentLimit?: number;
  /**
   * Re-checks every known user this often, in milliseconds (off when omitted). Trackers over a
   * backend that several processes share set it, because diffs of two processes about one
   * user can cross on the way.
   */
  reconcileEveryMs?: number;
  /** The timers; tests pass a fake one. */
  clock?: PresenceClock;
}

/** A connection as the backends store it. */
export interface TrackedConnection {
  /** Whose connection it is. */
  username: string;
  /** The connection's id, unique across processes (a channel name). */
  connectionId: string;
  /** What is known about the connection. */
  meta: PresenceMeta;
  /** The topic it is tracked in; omitted: {@linkcode SITE_TOPIC}. */
  topic?: string;
}

/**
 * Where the tracked connections live: the one part that differs per implementation (this
 * process's memory, or Redis shared by every process). Grace periods, coalescing and the
 * published state are the shared `PresenceCore`'s job. Every call but `watch` is made only
 * for connections of this process, so a backend knows which ones to keep alive.
 */
export interface PresenceBackend {
  /** Records a connection (again: refreshes its meta). */
  add(connection: TrackedConnection): Promise<void>;
  /** Forgets connections; unknown ones are ignored. */
  remove(connections: readonly TrackedConnection[]): Promise<void>;
  /** Which of `usernames` have at least one connection in `topic` in any process. */
  onlineAmong(usernames: readonly string[], topic?: string): Promise<Set<string>>;
  /** Every user with at least one connection in `topic` in any process. */
  online(topic?: string): Promise<string[]>;
  /** Every connection in `topic` in any process. */
  list(topic?: string): Promise<TrackedConnection[]>;
  /**
   * Registers who hears of users changed by others (another process's crash expiring), once
   * per topic; `topic` is {@linkcode SITE_TOPIC} for the site-wide list.
   */
  watch?(changed: (usernames: string[], topic: string) => void): void;
  /** Releases what the backend holds; safe to call twice. */
  close(): Promise<void>;
}

/**
 * The part of every presence tracker that does not depend on where connections are stored:
 * grace periods, coalescing changes into diffs, the published state of each topic with its
 * feed, and (as an option) a periodic re-check. An implementation is this core plus a
 * {@linkcode PresenceBackend} (memory, Deno KV, Redis).
 */
import type { GroupLayer, LayerEvent } from "../layer.ts";
import {
  PRESENCE_DIFF,
  PRESENCE_END_SESSION,
  PRESENCE_GROUP,
  type PresenceBackend,
  type PresenceClock,
  type PresenceDiff,
  type PresenceEvent,
  presenceGroup,
  type PresenceMeta,
  type PresenceOptions,
  type PresenceState,
  type PresenceTracker,
  SITE_TOPIC,
  SYSTEM_CLOCK,
  type TrackedConnection,
  type UntrackOptions,
} from "./contract.ts";
import { log } from "../../telemetry/log.ts";

/** How long changes are collected into one diff by default, in milliseconds. */
export const DEFAULT_COALESCE_MS = 50;
const DEFAULT_RECENT_LIMIT = 20;
// A diff that could not be published is retried this much later (the broker may be away).
const RETRY_MS = 1000;
/** The event by which a draining process hands its connections to the other processes. */
const PRESENCE_HANDOVER = "presence.handover";
// Connections per handover event, so that one event stays small whatever the process held.
const HANDOVER_CHUNK = 100;

interface LocalConnection {
  connection: TrackedConnection & { topic: string };
  /** Set while the connection is in its grace period. */
  graceTimer: unknown;
  /** When the grace period ends (clock time), while there is one. */
  graceEndsAt?: number;
}

/** A connection as a handover event carries it: what is left of its grace period, in ms. */
type HandedOver = TrackedConnection & { topic: string; graceMs: number };

/**
 * One topic this process listens to: what its subscribers were told, and the feed. The site
 * topic is always here; another topic from its first use until this process has no
 * connection left in it (then its group is left, and a later use reads the backend afresh).
 */
interface Topic {
  /** Who is online according to the diffs published so far. */
  view: Set<string>;
  recent: PresenceEvent[];
  /** Subscribed to the topic's group, and the view read from the backend. */
  ready: Promise<void>;
}

/** A {@linkcode PresenceTracker} over any {@linkcode PresenceBackend}. */
export class PresenceCore implements PresenceTracker {
  #layer: GroupLayer;
  #backend: PresenceBackend;
  #graceMs: number;
  #coalesceMs: number;
  #recentLimit: number;
  #clock: PresenceClock;
  #channel: string;
  #ready: Promise<void>;
  #local = new Map<string, LocalConnection>();
  /** Connection ids by topic, then by user. */
  #byTopic = new Map<string, Map<string, Set<string>>>();
  #topics = new Map<string, Topic>();
  /** Topics whose group is being left: joining one again waits for that. */
  #leaving = new Map<string, Promise<void>>();
  /** Users to re-check, by topic. */
  #dirty = new Map<string, Set<string>>();
  #flushTimer: unknown = null;
  #reconcileTimer: unknown = null;
  #flushing: Promise<void> = Promise.resolve();
  /** Removals started by a timer or an event, still under way. */
  #removing = new Set<Promise<void>>();
  #closing: Promise<void> | null = null;
  #stopped = false;

  /** Starts tracking over `backend`, publishing diffs through `layer`. */
  constructor(layer: GroupLayer, backend: PresenceBackend, options: PresenceOptions) {
    this.#layer = layer;
    this.#backend = backend;
    this.#graceMs = options.graceMs;
    this.#coalesceMs = options.coalesceMs ?? DEFAULT_COALESCE_MS;
    this.#recentLimit = options.recentLimit ?? DEFAULT_RECENT_LIMIT;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    // The core hears its own diffs like every subscriber: with a cross-process layer that is
    // how it learns what the other processes published.
    this.#channel = layer.newChannel((event) => this.#receive(event));
    backend.watch?.((usernames, topic = SITE_TOPIC) => {
      for (const username of usernames) this.#markDirty(topic, username);
    });
    this.#ready = this.#topic(SITE_TOPIC).ready;
    this.#ready.catch((error) => log.error("Presence could not start", error));
    if (options.reconcileEveryMs) this.#scheduleReconcile(options.reconcileEveryMs);
  }

  /** Tracks one connection (see {@linkcode PresenceTracker.track}). */
  async track(
    username: string,
    connectionId: string,
    meta: PresenceMeta = {},
    topic: string = SITE_TOPIC,
  ): Promise<void> {
    presenceGroup(topic); // throws for an invalid topic
    await this.#ready;
    if (this.#closing) throw new Error("Presence tracker is closed");
    const existing = this.#local.get(connectionId);
    const moved = existing?.connection.username !== username ||
      existing?.connection.topic !== topic;
    if (existing && moved) await this.untrack(connectionId);
    const connection = { username, connectionId, meta, topic };
    this.#clearGrace(existing);
    this.#remember({ connection, graceTimer: null });
    await this.#topic(topic).ready;
    // Added before the leaving ones are removed, so the user never has zero connections.
    await this.#backend.add(connection);
    const replaced = [...this.#idsOf(topic, username)]
      .map((id) => this.#local.get(id)!)
      .filter((entry) => entry.graceTimer !== null);
    if (replaced.length > 0) await this.#drop(replaced);
    this.#markDirty(topic, username);
  }

  /** Stops tracking a connection, whatever its topic (see {@linkcode PresenceTracker.untrack}). */
  async untrack(connectionId: string, options: UntrackOptions = {}): Promise<void> {
    await this.#ready;
    const entry = this.#local.get(connectionId);
    if (entry === undefined) return;
    if (options.grace && this.#graceMs > 0) {
      if (entry.graceTimer !== null) return;
      entry.graceTimer = this.#clock.setTimeout(() => this.#expire(entry), this.#graceMs);
      entry.graceEndsAt = this.#clock.now() + this.#graceMs;
      return;
    }
    await this.#drop([entry]);
  }

  /** Untracks a session's connections in every topic and process. */
  async untrackSession(session: string): Promise<void> {
    await this.#ready;
    await this.#endSession(session);
    await this.#layer.groupSend(PRESENCE_GROUP, { type: PRESENCE_END_SESSION, session });
  }

  /** The published state of `topic`. */
  async state(topic: string = SITE_TOPIC): Promise<PresenceState> {
    presenceGroup(topic);
    await this.#ready;
    const entry = this.#topic(topic);
    await entry.ready;
    const state = { online: [...entry.view].sort(), recent: [...entry.recent] };
    this.#releaseIfUnused(topic);
    return state;
  }

  /** The metas of every connection in `topic`, by user. */
  async list(topic: string = SITE_TOPIC): Promise<Record<string, PresenceMeta[]>> {
    await this.#ready;
    const byUser: Record<string, PresenceMeta[]> = {};
    for (const { username, meta } of await this.#backend.list(topic)) {
      (byUser[username] ??= []).push(meta);
    }
    return byUser;
  }

  /** Publishes pending changes now. */
  flush(): Promise<void> {
    if (this.#flushTimer !== null) {
      this.#clock.clearTimeout(this.#flushTimer);
      this.#flushTimer = null;
    }
    // One publish at a time, so diffs leave in the order the changes happened; removals
    // already under way belong to this flush.
    const expiring = Promise.all(this.#removing);
    const run = this.#flushing.then(() => expiring).then(() => this.#publish());
    this.#flushing = run.catch(() => {});
    return run;
  }

  /**
   * Re-checks every user the published states or the backend know and publishes any
   * difference: diffs from two processes about one user can cross on the way. Runs every
   * `reconcileEveryMs` when that option is set.
   */
  async reconcile(): Promise<void> {
    await this.#ready;
    for (const [topic, entry] of this.#topics) {
      await entry.ready;
      for (const username of entry.view) this.#dirtyOf(topic).add(username);
      for (const username of await this.#backend.online(topic)) this.#dirtyOf(topic).add(username);
    }
    await this.flush();
  }

  /**
   * Untracks this process's connections, publishes that, and stops. With `handOver` (a drain),
   * the other processes keep each connection for the rest of its grace period instead.
   */
  close(options: { handOver?: boolean } = {}): Promise<void> {
    return this.#closing ??= this.#shutDown(options.handOver === true && this.#graceMs > 0);
  }

  async #shutDown(handOver: boolean): Promise<void> {
    await this.#ready.catch(() => {});
    if (this.#reconcileTimer !== null) this.#clock.clearTimeout(this.#reconcileTimer);
    this.#reconcileTimer = null;
    try {
      if (handOver) await this.#handOver();
      else await this.#drop([...this.#local.values()]);
      await this.flush();
    } catch (error) {
      log.warn("Presence could not publish its last changes", error);
    }
    this.#stopped = true;
    if (this.#flushTimer !== null) this.#clock.clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    for (const topic of this.#topics.keys()) {
      await this.#layer.groupDiscard(presenceGroup(topic), this.#channel).catch(() => {});
    }
    await Promise.all(this.#leaving.values());
    await this.#layer.closeChannel(this.#channel).catch(() => {});
    await this.#backend.close();
  }

  /**
   * A drain: every other process is told to keep each of this process's connections for what
   * is left of its grace period (a whole one for a socket still open), so a user who reconnects
   * elsewhere in time never shows offline. They stay in the backend meanwhile: when no process
   * takes them (this was the last one), a shared backend expires them as after a crash.
   */
  async #handOver(): Promise<void> {
    const now = this.#clock.now();
    const entries = [...this.#local.values()];
    const connections: HandedOver[] = entries.map(({ connection, graceEndsAt }) => ({
      ...connection,
      graceMs: Math.max(0, (graceEndsAt ?? now + this.#graceMs) - now),
    }));
    for (const entry of entries) this.#forget(entry);
    for (let i = 0; i < connections.length; i += HANDOVER_CHUNK) {
      const chunk = connections.slice(i, i + HANDOVER_CHUNK);
      await this.#layer.groupSend(PRESENCE_GROUP, {
        type: PRESENCE_HANDOVER,
        from: this.#channel,
        connections: chunk,
      });
    }
  }

  /** Takes over a draining process's connections until their grace period ends. */
  async #adopt(items: unknown): Promise<void> {
    if (this.#closing || !Array.isArray(items)) return;
    const connections = items.map((item) => handedOver(item, this.#graceMs))
      .filter((item): item is HandedOver => item !== null && !this.#local.has(item.connectionId));
    // In the backend first (this process's heartbeat keeps them from now on), so a grace period
    // that ends here removes what is there.
    await Promise.all(
      connections.map(({ graceMs: _, ...connection }) => this.#backend.add(connection)),
    );
    if (this.#closing) return;
    const now = this.#clock.now();
    for (const { graceMs, ...connection } of connections) {
      if (this.#local.has(connection.connectionId)) continue;
      const entry: LocalConnection = { connection, graceTimer: null, graceEndsAt: now + graceMs };
      entry.graceTimer = this.#clock.setTimeout(() => this.#expire(entry), graceMs);
      this.#remember(entry);
    }
  }

  #scheduleReconcile(everyMs: number): void {
    this.#reconcileTimer = this.#clock.setTimeout(() => {
      if (this.#closing) return;
      this.reconcile().catch(() => {}).finally(() => {
        if (!this.#closing) this.#scheduleReconcile(everyMs);
      });
    }, everyMs);
  }

  /** The topic's entry, joining its group first when this process does not listen yet. */
  #topic(topic: string): Topic {
    let entry = this.#topics.get(topic);
    if (entry) return entry;
    const view = new Set<string>();
    const join = async () => {
      await this.#leaving.get(topic);
      await this.#layer.groupAdd(presenceGroup(topic), this.#channel);
      for (const username of await this.#backend.online(topic)) view.add(username);
    };
    entry = { view, recent: [], ready: join() };
    entry.ready.catch(() => {
      if (this.#topics.get(topic) === entry) this.#topics.delete(topic);
    });
    this.#topics.set(topic, entry);
    return entry;
  }

  /** Leaves a topic's group once nothing here needs it: no connection, no pending change. */
  #releaseIfUnused(topic: string): void {
    if (topic === SITE_TOPIC || this.#byTopic.has(topic) || this.#dirty.has(topic)) return;
    if (!this.#topics.delete(topic)) return;
    const previous = this.#leaving.get(topic) ?? Promise.resolve();
    const leaving: Promise<void> = previous
      .then(() => this.#layer.groupDiscard(presenceGroup(topic), this.#channel))
      .then(() => {}, () => {})
      .finally(() => {
        if (this.#leaving.get(topic) === leaving) this.#leaving.delete(topic);
      });
    this.#leaving.set(topic, leaving);
  }

  #idsOf(topic: string, username: string): Set<string> {
    return this.#byTopic.get(topic)?.get(username) ?? new Set();
  }

  #remember(entry: LocalConnection): void {
    const { username, connectionId, topic } = entry.connection;
    this.#local.set(connectionId, entry);
    let users = this.#byTopic.get(topic);
    if (!users) this.#byTopic.set(topic, users = new Map());
    let ids = users.get(username);
    if (!ids) users.set(username, ids = new Set());
    ids.add(connectionId);
  }

  #forget(entry: LocalConnection): void {
    const { username, connectionId, topic } = entry.connection;
    this.#clearGrace(entry);
    if (this.#local.get(connectionId) === entry) this.#local.delete(connectionId);
    const users = this.#byTopic.get(topic);
    const ids = users?.get(username);
    ids?.delete(connectionId);
    if (ids?.size === 0) users!.delete(username);
    if (users?.size === 0) this.#byTopic.delete(topic);
  }

  #clearGrace(entry: LocalConnection | undefined): void {
    if (entry?.graceTimer == null) return;
    this.#clock.clearTimeout(entry.graceTimer);
    entry.graceTimer = null;
    entry.graceEndsAt = undefined;
  }

  async #drop(entries: LocalConnection[]): Promise<void> {
    if (entries.length === 0) return;
    for (const entry of entries) this.#forget(entry);
    try {
      await this.#backend.remove(entries.map((entry) => entry.connection));
    } finally {
      for (const { connection } of entries) this.#markDirty(connection.topic, connection.username);
    }
  }

  #expire(entry: LocalConnection): void {
    if (this.#local.get(entry.connection.connectionId) !== entry) return;
    entry.graceTimer = null;
    entry.graceEndsAt = undefined;
    void this.#dropInBackground([entry]);
  }

  #endSession(session: string): Promise<void> {
    const entries = [...this.#local.values()].filter((e) => e.connection.meta.session === session);
    return this.#dropInBackground(entries);
  }

  /** Drops connections; `flush` waits for it, and a failure is logged, not thrown. */
  #dropInBackground(entries: LocalConnection[]): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    const dropping: Promise<void> = this.#drop(entries)
      .catch((error) => log.warn("Presence could not remove a connection", error))
      .finally(() => this.#removing.delete(dropping));
    this.#removing.add(dropping);
    return dropping;
  }

  #dirtyOf(topic: string): Set<string> {
    let users = this.#dirty.get(topic);
    if (!users) this.#dirty.set(topic, users = new Set());
    return users;
  }

  #markDirty(topic: string, username: string, delayMs = this.#coalesceMs): void {
    if (this.#stopped) return;
    this.#dirtyOf(topic).add(username);
    if (this.#flushTimer !== null) return;
    this.#flushTimer = this.#clock.setTimeout(() => {
      this.#flushTimer = null;
      this.flush().catch((error) => log.warn("Presence diff not published; will retry", error));
    }, delayMs);
  }

  async #publish(): Promise<void> {
    const dirty = [...this.#dirty];
    this.#dirty.clear();
    const failures: unknown[] = [];
    for (const [topic, users] of dirty) {
      try {
        await this.#publishTopic(topic, [...users]);
      } catch (error) {
        if (!this.#closing) { for (const user of users) this.#markDirty(topic, user, RETRY_MS); }
        failures.push(error);
      }
      this.#releaseIfUnused(topic);
      await this.#leaving.get(topic);
    }
    if (failures.length > 0) throw failures[0];
  }

  async #publishTopic(topic: string, users: string[]): Promise<void> {
    const entry = this.#topics.get(topic);
    await entry?.ready;
    const online = await this.#backend.onlineAmong(users, topic);
    // Compared with what was published, a join and a leave inside one window cancel out. A
    // topic nobody here listens to (a crashed process's, swept here) announces every leave:
    // a diff is absolute, so telling a listener that already knew is harmless.
    const known = (user: string) => entry === undefined || entry.view.has(user);
    const joins = entry === undefined
      ? []
      : users.filter((user) => online.has(user) && !entry.view.has(user)).sort();
    const leaves = users.filter((user) => !online.has(user) && known(user)).sort();
    if (joins.length === 0 && leaves.length === 0) return;
    const time = new Date(this.#clock.now()).toISOString();
    const diff: PresenceDiff = { type: PRESENCE_DIFF, joins, leaves, time };
    if (topic !== SITE_TOPIC) diff.topic = topic;
    await this.#layer.groupSend(presenceGroup(topic), diff);
    // Applied here too: a topic released right after this never hears its own diff.
    if (entry !== undefined) this.#apply(entry, joins, leaves, time);
  }

  #receive(event: LayerEvent): boolean {
    if (event.type === PRESENCE_END_SESSION && typeof event.session === "string") {
      void this.#endSession(event.session);
      return true;
    }
    if (event.type === PRESENCE_HANDOVER && event.from !== this.#channel) {
      this.#adopt(event.connections).catch((error) =>
        log.warn("Presence could not take over a draining process's connections", error)
      );
      return true;
    }
    if (event.type !== PRESENCE_DIFF) return true;
    const topic = typeof event.topic === "string" ? event.topic : SITE_TOPIC;
    const entry = this.#topics.get(topic);
    if (entry === undefined) return true;
    const time = typeof event.time === "string" ? event.time : new Date().toISOString();
    this.#apply(entry, strings(event.joins), strings(event.leaves), time);
    return true;
  }

  #apply(entry: Topic, joins: string[], leaves: string[], time: string): void {
    for (const username of joins) {
      if (entry.view.has(username)) continue;
      entry.view.add(username);
      this.#record(entry, { username, status: "connected", time });
    }
    for (const username of leaves) {
      if (!entry.view.delete(username)) continue;
      this.#record(entry, { username, status: "disconnected", time });
    }
  }

  #record(entry: Topic, event: PresenceEvent): void {
    entry.recent.push(event);
    if (entry.recent.length > this.#recentLimit) entry.recent.shift();
  }
}

/** A connection of a handover event, checked (it came over the layer); null when malformed. */
function handedOver(value: unknown, graceMs: number): HandedOver | null {
  if (typeof value !== "object" || value === null) return null;
  const { username, connectionId, meta, topic, graceMs: left } = value as Record<string, unknown>;
  if (typeof username !== "string" || typeof connectionId !== "string") return null;
  if (typeof topic !== "string" || typeof left !== "number" || !Number.isFinite(left)) return null;
  if (typeof meta !== "object" || meta === null || Array.isArray(meta)) return null;
  // Never longer than this process's own grace period.
  const ms = Math.min(Math.max(0, left), graceMs);
  return { username, connectionId, meta: meta as TrackedConnection["meta"], topic, graceMs: ms };
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item) => typeof item === "string") : [];
}

/**
 * The part of every presence tracker that does not depend on where connections are stored:
 * grace periods, coalescing changes into diffs, and the published state with its feed. An
 * implementation is this core plus a {@linkcode PresenceBackend} (memory, Redis, ...).
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
  type PresenceMeta,
  type PresenceOptions,
  type PresenceState,
  type PresenceTracker,
  SYSTEM_CLOCK,
  type TrackedConnection,
  type UntrackOptions,
} from "./contract.ts";
import { log } from "../../server/log.ts";

/** How long changes are collected into one diff by default, in milliseconds. */
export const DEFAULT_COALESCE_MS = 50;
const DEFAULT_RECENT_LIMIT = 20;
// A diff that could not be published is retried this much later (the broker may be away).
const RETRY_MS = 1000;

interface LocalConnection {
  connection: TrackedConnection;
  /** Set while the connection is in its grace period. */
  graceTimer: unknown;
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
  #byUser = new Map<string, Set<string>>();
  /** Who is online according to the diffs published so far: what subscribers were told. */
  #view = new Set<string>();
  #recent: PresenceEvent[] = [];
  #dirty = new Set<string>();
  #flushTimer: unknown = null;
  #flushing: Promise<void> = Promise.resolve();
  /** Removals started by a timer or an event, still under way. */
  #removing = new Set<Promise<void>>();
  #closing: Promise<void> | null = null;
  #stopped = false;

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
    backend.watch?.((usernames) => usernames.forEach((username) => this.#markDirty(username)));
    this.#ready = this.#start();
    this.#ready.catch((error) => log.error("Presence could not start", error));
  }

  async track(username: string, connectionId: string, meta: PresenceMeta = {}): Promise<void> {
    await this.#ready;
    if (this.#closing) throw new Error("Presence tracker is closed");
    const existing = this.#local.get(connectionId);
    if (existing && existing.connection.username !== username) await this.untrack(connectionId);
    const connection: TrackedConnection = { username, connectionId, meta };
    this.#clearGrace(existing);
    this.#remember({ connection, graceTimer: null });
    // Added before the leaving ones are removed, so the user never has zero connections.
    await this.#backend.add(connection);
    const replaced = [...this.#byUser.get(username) ?? []]
      .map((id) => this.#local.get(id)!)
      .filter((entry) => entry.graceTimer !== null);
    if (replaced.length > 0) await this.#drop(replaced);
    this.#markDirty(username);
  }

  async untrack(connectionId: string, options: UntrackOptions = {}): Promise<void> {
    await this.#ready;
    const entry = this.#local.get(connectionId);
    if (entry === undefined) return;
    if (options.grace && this.#graceMs > 0) {
      entry.graceTimer ??= this.#clock.setTimeout(() => this.#expire(entry), this.#graceMs);
      return;
    }
    await this.#drop([entry]);
  }

  async untrackSession(session: string): Promise<void> {
    await this.#ready;
    await this.#endSession(session);
    await this.#layer.groupSend(PRESENCE_GROUP, { type: PRESENCE_END_SESSION, session });
  }

  async state(): Promise<PresenceState> {
    await this.#ready;
    return { online: [...this.#view].sort(), recent: [...this.#recent] };
  }

  async list(): Promise<Record<string, PresenceMeta[]>> {
    await this.#ready;
    const byUser: Record<string, PresenceMeta[]> = {};
    for (const { username, meta } of await this.#backend.list()) {
      (byUser[username] ??= []).push(meta);
    }
    return byUser;
  }

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
   * Re-checks every user the published state or the backend knows and publishes any
   * difference. A cross-process implementation calls it now and then, because diffs from two
   * processes about one user can cross on the way.
   */
  async reconcile(): Promise<void> {
    await this.#ready;
    for (const username of this.#view) this.#dirty.add(username);
    for (const username of await this.#backend.online()) this.#dirty.add(username);
    await this.flush();
  }

  close(): Promise<void> {
    return this.#closing ??= this.#shutDown();
  }

  async #shutDown(): Promise<void> {
    await this.#ready.catch(() => {});
    try {
      await this.#drop([...this.#local.values()]);
      await this.flush();
    } catch (error) {
      log.warn("Presence could not publish its last changes", error);
    }
    this.#stopped = true;
    if (this.#flushTimer !== null) this.#clock.clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    await this.#layer.groupDiscard(PRESENCE_GROUP, this.#channel).catch(() => {});
    await this.#layer.closeChannel(this.#channel).catch(() => {});
    await this.#backend.close();
  }

  async #start(): Promise<void> {
    await this.#layer.groupAdd(PRESENCE_GROUP, this.#channel);
    for (const username of await this.#backend.online()) this.#view.add(username);
  }

  #remember(entry: LocalConnection): void {
    const { username, connectionId } = entry.connection;
    this.#local.set(connectionId, entry);
    let ids = this.#byUser.get(username);
    if (!ids) this.#byUser.set(username, ids = new Set());
    ids.add(connectionId);
  }

  #forget(entry: LocalConnection): void {
    const { username, connectionId } = entry.connection;
    this.#clearGrace(entry);
    if (this.#local.get(connectionId) === entry) this.#local.delete(connectionId);
    const ids = this.#byUser.get(username);
    ids?.delete(connectionId);
    if (ids?.size === 0) this.#byUser.delete(username);
  }

  #clearGrace(entry: LocalConnection | undefined): void {
    if (entry?.graceTimer == null) return;
    this.#clock.clearTimeout(entry.graceTimer);
    entry.graceTimer = null;
  }

  async #drop(entries: LocalConnection[]): Promise<void> {
    if (entries.length === 0) return;
    for (const entry of entries) this.#forget(entry);
    try {
      await this.#backend.remove(entries.map((entry) => entry.connection));
    } finally {
      for (const entry of entries) this.#markDirty(entry.connection.username);
    }
  }

  #expire(entry: LocalConnection): void {
    if (this.#local.get(entry.connection.connectionId) !== entry) return;
    entry.graceTimer = null;
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

  #markDirty(username: string, delayMs = this.#coalesceMs): void {
    if (this.#stopped) return;
    this.#dirty.add(username);
    if (this.#flushTimer !== null) return;
    this.#flushTimer = this.#clock.setTimeout(() => {
      this.#flushTimer = null;
      this.flush().catch((error) => log.warn("Presence diff not published; will retry", error));
    }, delayMs);
  }

  async #publish(): Promise<void> {
    if (this.#dirty.size === 0) return;
    const users = [...this.#dirty];
    this.#dirty.clear();
    try {
      const online = await this.#backend.onlineAmong(users);
      // Compared with what was published, a join and a leave inside one window cancel out.
      const joins = users.filter((user) => online.has(user) && !this.#view.has(user)).sort();
      const leaves = users.filter((user) => !online.has(user) && this.#view.has(user)).sort();
      if (joins.length === 0 && leaves.length === 0) return;
      const time = new Date(this.#clock.now()).toISOString();
      const diff: PresenceDiff = { type: PRESENCE_DIFF, joins, leaves, time };
      await this.#layer.groupSend(PRESENCE_GROUP, diff);
    } catch (error) {
      if (!this.#closing) { for (const user of users) this.#markDirty(user, RETRY_MS); }
      throw error;
    }
  }

  #receive(event: LayerEvent): boolean {
    if (event.type === PRESENCE_END_SESSION && typeof event.session === "string") {
      void this.#endSession(event.session);
      return true;
    }
    if (event.type !== PRESENCE_DIFF) return true;
    const time = typeof event.time === "string" ? event.time : new Date().toISOString();
    for (const username of strings(event.joins)) {
      if (this.#view.has(username)) continue;
      this.#view.add(username);
      this.#record({ username, status: "connected", time });
    }
    for (const username of strings(event.leaves)) {
      if (!this.#view.delete(username)) continue;
      this.#record({ username, status: "disconnected", time });
    }
    return true;
  }

  #record(event: PresenceEvent): void {
    this.#recent.push(event);
    if (this.#recent.length > this.#recentLimit) this.#recent.shift();
  }
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item) => typeof item === "string") : [];
}

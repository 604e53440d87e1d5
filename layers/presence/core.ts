/**
 * The part of every presence tracker that does not depend on where connections are stored:
 * tracking this process's connections with their grace periods, ending sessions, handing
 * connections over at a drain, and (as an option) a periodic re-check. An implementation is
 * this core plus a {@linkcode PresenceBackend} (memory, Deno KV, Redis). Coalescing changes
 * into diffs is in `_diff_coalescer.ts`, the published state of each topic with its feed in
 * `_published_topics.ts`.
 */
import type { GroupLayer, LayerEvent } from "../layer.ts";
import {
  PRESENCE_DIFF,
  PRESENCE_END_SESSION,
  PRESENCE_GROUP,
  type PresenceBackend,
  type PresenceClock,
  presenceGroup,
  type PresenceMeta,
  type PresenceOptions,
  type PresenceState,
  type PresenceTracker,
  SITE_TOPIC,
  SYSTEM_CLOCK,
  type UntrackOptions,
} from "./contract.ts";
import { DiffCoalescer } from "./_diff_coalescer.ts";
import {
  type HandedOver,
  handedOver,
  HANDOVER_CHUNK,
  PRESENCE_HANDOVER,
  strings,
} from "./_layer_events.ts";
import { type LocalConnection, LocalConnections } from "./_local_connections.ts";
import { PublishedTopics } from "./_published_topics.ts";
import { log } from "../../telemetry/log.ts";
import { QUIET_WARNING_PERIOD_MS, QuietWarning } from "../../telemetry/quiet_warning.ts";

/** How long changes are collected into one diff by default, in milliseconds. */
export const DEFAULT_COALESCE_MS = 50;
const DEFAULT_RECENT_LIMIT = 20;

/** How long a close waits for the takeovers under way before it closes the backend. */
const ADOPTIONS_WAITED_MS = 1000;

/** A {@linkcode PresenceTracker} over any {@linkcode PresenceBackend}. */
export class PresenceCore implements PresenceTracker {
  #layer: GroupLayer;
  #backend: PresenceBackend;
  #graceMs: number;
  #clock: PresenceClock;
  #channel: string;
  #ready: Promise<void>;
  #local: LocalConnections;
  #topics: PublishedTopics;
  #diffs: DiffCoalescer;
  #reconcileTimer: unknown = null;
  #closing: Promise<boolean> | null = null;
  /** Takeovers under way: a close waits for them before it closes the backend they write to. */
  #adopting = new Set<Promise<void>>();
  /** Connections the backend could not remove, told once a minute (see `#dropInBackground`). */
  #dropWarning: QuietWarning;

  /** Starts tracking over `backend`, publishing diffs through `layer`. */
  constructor(layer: GroupLayer, backend: PresenceBackend, options: PresenceOptions) {
    this.#layer = layer;
    this.#backend = backend;
    this.#graceMs = options.graceMs;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#dropWarning = new QuietWarning(QUIET_WARNING_PERIOD_MS, () => this.#clock.now());
    this.#local = new LocalConnections(this.#clock);
    // The core hears its own diffs like every subscriber: with a cross-process layer that is
    // how it learns what the other processes published.
    this.#channel = layer.newChannel((event) => this.#receive(event));
    this.#topics = new PublishedTopics(layer, backend, {
      channel: this.#channel,
      recentLimit: options.recentLimit ?? DEFAULT_RECENT_LIMIT,
    });
    this.#diffs = new DiffCoalescer(layer, backend, {
      topics: this.#topics,
      clock: this.#clock,
      coalesceMs: options.coalesceMs ?? DEFAULT_COALESCE_MS,
      closing: () => this.#closing !== null,
      release: (topic) => this.#releaseIfUnused(topic),
    });
    backend.watch?.((usernames, topic = SITE_TOPIC) => {
      for (const username of usernames) this.#diffs.markDirty(topic, username);
    });
    this.#ready = this.#topics.listen(SITE_TOPIC).ready;
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
    this.#local.clearGrace(existing);
    const entry: LocalConnection = { connection, graceTimer: null };
    this.#local.remember(entry);
    try {
      await this.#topics.listen(topic).ready;
      // Untracked meanwhile (its session ended: a log-out during the socket's `connect`): the
      // untrack came after this track, so it wins, and nothing is added for nobody to remove.
      if (this.#local.get(connectionId) !== entry) return;
      // Added before the leaving ones are removed, so the user never has zero connections.
      await this.#backend.add(connection);
    } catch (error) {
      // The backend away: a refresh of a tracked connection (its meta) keeps it as it was, as
      // its socket is open; a new one is not tracked after all, so nothing stays for a
      // heartbeat to keep alive, a user online for good whose socket was refused.
      if (this.#local.get(connectionId) === entry) {
        if (existing !== undefined && !moved) this.#local.remember(existing);
        else {
          this.#local.forget(entry);
          this.#releaseIfUnused(topic);
        }
      }
      throw error;
    }
    const current = this.#local.get(connectionId);
    if (current !== entry) {
      // Untracked while it was being added: removed again, after the add, whatever the order
      // in which the backend took the two. (Tracked again instead: that track owns it.)
      if (current === undefined) {
        await this.#backend.remove([connection]);
        this.#diffs.markDirty(topic, username);
      }
      return;
    }
    const replaced = [...this.#local.idsOf(topic, username)]
      .map((id) => this.#local.get(id)!)
      .filter((entry) => entry.graceTimer !== null);
    if (replaced.length > 0) await this.#drop(replaced);
    this.#diffs.markDirty(topic, username);
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
    const entry = this.#topics.listen(topic);
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
    return this.#diffs.flush();
  }

  /**
   * Re-checks every user the published states or the backend know and publishes any
   * difference: diffs from two processes about one user can cross on the way. Runs every
   * `reconcileEveryMs` when that option is set.
   */
  async reconcile(): Promise<void> {
    await this.#ready;
    for (const [topic, entry] of this.#topics.entries()) {
      await entry.ready;
      for (const username of entry.view) this.#diffs.dirtyOf(topic).add(username);
      for (const username of await this.#backend.online(topic)) {
        this.#diffs.dirtyOf(topic).add(username);
      }
    }
    await this.flush();
  }

  /**
   * Untracks this process's connections, publishes that, and stops. With `handOver` (a drain),
   * the other processes keep each connection for the rest of its grace period instead.
   */
  close(options: { handOver?: boolean } = {}): Promise<boolean> {
    return this.#closing ??= this.#shutDown(options.handOver === true && this.#graceMs > 0);
  }

  async #shutDown(handOver: boolean): Promise<boolean> {
    await this.#ready.catch(() => {});
    // Another draining process's connections, being taken over as this one closes (`--workers`
    // drain all at once): they are in the backend, and expire there unless someone takes them.
    // Waited for a while only: a backend that stopped answering must not hold up the close.
    await this.#settledWithin([...this.#adopting], ADOPTIONS_WAITED_MS);
    if (this.#reconcileTimer !== null) this.#clock.clearTimeout(this.#reconcileTimer);
    this.#reconcileTimer = null;
    let published = true;
    try {
      if (handOver) await this.#handOver();
      else await this.#drop([...this.#local.values()]);
      await this.flush();
    } catch (error) {
      published = false;
      log.warn("Presence could not publish its last changes", error);
    }
    this.#diffs.stop();
    await this.#topics.leaveAll();
    // `Promise.try`: a layer that throws rather than rejects must not stop the close here.
    await Promise.try(() => this.#layer.closeChannel(this.#channel)).catch(() => {});
    await this.#backend.close();
    return published;
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
    for (const entry of entries) this.#local.forget(entry);
    for (let i = 0; i < connections.length; i += HANDOVER_CHUNK) {
      const chunk = connections.slice(i, i + HANDOVER_CHUNK);
      await this.#layer.groupSend(PRESENCE_GROUP, {
        type: PRESENCE_HANDOVER,
        from: this.#channel,
        connections: chunk,
      });
    }
  }

  // Resolves once `promises` have settled, or after `ms`, whichever comes first.
  #settledWithin(promises: Promise<unknown>[], ms: number): Promise<void> {
    if (promises.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = this.#clock.setTimeout(resolve, ms);
      Promise.allSettled(promises).then(() => {
        this.#clock.clearTimeout(timer);
        resolve();
      });
    });
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
      this.#local.remember(entry);
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

  /** Leaves a topic's group once nothing here needs it: no connection, no pending change. */
  #releaseIfUnused(topic: string): void {
    if (topic === SITE_TOPIC || this.#local.hasTopic(topic) || this.#diffs.isDirty(topic)) return;
    this.#topics.release(topic);
  }

  async #drop(entries: LocalConnection[]): Promise<void> {
    if (entries.length === 0) return;
    for (const entry of entries) this.#local.forget(entry);
    try {
      await this.#backend.remove(entries.map((entry) => entry.connection));
    } finally {
      for (const { connection } of entries) {
        this.#diffs.markDirty(connection.topic, connection.username);
      }
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
    return this.#diffs.waitFor(
      this.#drop(entries).catch((error) => {
        // Every socket that closes while the backend is away fails so: one line a minute.
        const why = error instanceof Error ? error.message : String(error);
        this.#dropWarning.warn(
          why,
          `Presence could not remove a connection: ${why}`,
          (count) => `Presence could not remove ${count} connections within a minute: ${why}`,
        );
      }),
    );
  }

  #receive(event: LayerEvent): boolean {
    if (event.type === PRESENCE_END_SESSION && typeof event.session === "string") {
      void this.#endSession(event.session);
      return true;
    }
    if (event.type === PRESENCE_HANDOVER && event.from !== this.#channel) {
      const adopting = this.#adopt(event.connections).catch((error) =>
        log.warn("Presence could not take over a draining process's connections", error)
      ).finally(() => this.#adopting.delete(adopting));
      this.#adopting.add(adopting);
      return true;
    }
    if (event.type !== PRESENCE_DIFF) return true;
    const topic = typeof event.topic === "string" ? event.topic : SITE_TOPIC;
    const entry = this.#topics.get(topic);
    if (entry === undefined) return true;
    const time = typeof event.time === "string" ? event.time : new Date().toISOString();
    this.#topics.apply(entry, strings(event.joins), strings(event.leaves), time);
    return true;
  }
}

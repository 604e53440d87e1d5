/**
 * The connections this process tracks, by id and by topic then user, each with its grace period
 * while it has one. Only the bookkeeping: when a grace period starts or ends is the core's call.
 */
import type { PresenceClock, TrackedConnection } from "./contract.ts";

/** One connection this process tracks. */
export interface LocalConnection {
  connection: TrackedConnection & { topic: string };
  /** Set while the connection is in its grace period. */
  graceTimer: unknown;
  /** When the grace period ends (clock time), while there is one. */
  graceEndsAt?: number;
}

/** This process's connections, found by id or by topic and user. */
export class LocalConnections {
  #clock: PresenceClock;
  #local = new Map<string, LocalConnection>();
  /** Connection ids by topic, then by user. */
  #byTopic = new Map<string, Map<string, Set<string>>>();

  /** An empty registry; `clock` cancels the grace timers. */
  constructor(clock: PresenceClock) {
    this.#clock = clock;
  }

  /** The connection with this id, if this process tracks it. */
  get(connectionId: string): LocalConnection | undefined {
    return this.#local.get(connectionId);
  }

  /** Whether this process tracks a connection with this id. */
  has(connectionId: string): boolean {
    return this.#local.has(connectionId);
  }

  /** Every connection this process tracks. */
  values(): IterableIterator<LocalConnection> {
    return this.#local.values();
  }

  /** Whether this process tracks any connection in `topic`. */
  hasTopic(topic: string): boolean {
    return this.#byTopic.has(topic);
  }

  /** The ids of `username`'s connections in `topic`. */
  idsOf(topic: string, username: string): Set<string> {
    return this.#byTopic.get(topic)?.get(username) ?? new Set();
  }

  /** Adds (or replaces) a connection. */
  remember(entry: LocalConnection): void {
    const { username, connectionId, topic } = entry.connection;
    this.#local.set(connectionId, entry);
    let users = this.#byTopic.get(topic);
    if (!users) this.#byTopic.set(topic, users = new Map());
    let ids = users.get(username);
    if (!ids) users.set(username, ids = new Set());
    ids.add(connectionId);
  }

  /** Removes a connection, ending its grace period. */
  forget(entry: LocalConnection): void {
    const { username, connectionId, topic } = entry.connection;
    this.clearGrace(entry);
    // One that replaced it under the same id keeps its place.
    if (this.#local.get(connectionId) !== entry) return;
    this.#local.delete(connectionId);
    const users = this.#byTopic.get(topic);
    const ids = users?.get(username);
    ids?.delete(connectionId);
    if (ids?.size === 0) users!.delete(username);
    if (users?.size === 0) this.#byTopic.delete(topic);
  }

  /** Ends a connection's grace period, if it is in one, without removing it. */
  clearGrace(entry: LocalConnection | undefined): void {
    if (entry?.graceTimer == null) return;
    this.#clock.clearTimeout(entry.graceTimer);
    entry.graceTimer = null;
    entry.graceEndsAt = undefined;
  }
}

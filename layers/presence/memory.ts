/**
 * The in-process presence tracker: the shared {@linkcode PresenceCore} over a backend that
 * keeps connections in this process's memory. Right for one process (with any layer, since
 * no other process has connections to count); several processes need a shared backend.
 */
import type { GroupLayer } from "../layer.ts";
import {
  type PresenceBackend,
  type PresenceOptions,
  type PresenceTracker,
  SITE_TOPIC,
  type TrackedConnection,
} from "./contract.ts";
import { PresenceCore } from "./core.ts";

/** Connections in a `Map`, with a count per topic and user so "is anyone of theirs here" is O(1). */
export class MemoryPresenceBackend implements PresenceBackend {
  #connections = new Map<string, TrackedConnection>();
  /** Connections by topic, then by user. */
  #counts = new Map<string, Map<string, number>>();

  /** Records a connection (again: refreshes its meta, or moves it). */
  add(connection: TrackedConnection): Promise<void> {
    const previous = this.#connections.get(connection.connectionId);
    if (previous) this.#count(previous, -1);
    this.#connections.set(connection.connectionId, connection);
    this.#count(connection, +1);
    return Promise.resolve();
  }

  /** Forgets connections; unknown ones are ignored. */
  remove(connections: readonly TrackedConnection[]): Promise<void> {
    for (const { connectionId } of connections) {
      const stored = this.#connections.get(connectionId);
      if (stored === undefined) continue;
      this.#connections.delete(connectionId);
      this.#count(stored, -1);
    }
    return Promise.resolve();
  }

  /** Which of `usernames` have a connection in `topic`. */
  onlineAmong(usernames: readonly string[], topic: string = SITE_TOPIC): Promise<Set<string>> {
    const counts = this.#counts.get(topic);
    return Promise.resolve(new Set(usernames.filter((username) => counts?.has(username))));
  }

  /** Every user with a connection in `topic`. */
  online(topic: string = SITE_TOPIC): Promise<string[]> {
    return Promise.resolve([...this.#counts.get(topic)?.keys() ?? []]);
  }

  /** Every connection in `topic`. */
  list(topic: string = SITE_TOPIC): Promise<TrackedConnection[]> {
    const all = [...this.#connections.values()];
    return Promise.resolve(all.filter((connection) => topicOf(connection) === topic));
  }

  /** Forgets everything. */
  close(): Promise<void> {
    this.#connections.clear();
    this.#counts.clear();
    return Promise.resolve();
  }

  #count(connection: TrackedConnection, delta: number): void {
    const topic = topicOf(connection);
    let counts = this.#counts.get(topic);
    if (!counts) this.#counts.set(topic, counts = new Map());
    const count = (counts.get(connection.username) ?? 0) + delta;
    if (count > 0) counts.set(connection.username, count);
    else counts.delete(connection.username);
    if (counts.size === 0) this.#counts.delete(topic);
  }
}

function topicOf(connection: TrackedConnection): string {
  return connection.topic ?? SITE_TOPIC;
}

/** A presence tracker for one process, publishing its diffs through `layer`. */
export function createLocalPresence(
  layer: GroupLayer,
  options: PresenceOptions,
): PresenceTracker {
  return new PresenceCore(layer, new MemoryPresenceBackend(), options);
}

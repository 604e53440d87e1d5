/**
 * The in-process presence tracker: the shared {@linkcode PresenceCore} over a backend that
 * keeps connections in this process's memory. Right for one process (with any layer, since
 * no other process has connections to count); several processes need a shared backend.
 */
import type { GroupLayer } from "../layer.ts";
import type { PresenceBackend, PresenceOptions, TrackedConnection } from "./contract.ts";
import { PresenceCore } from "./core.ts";

/** Connections in a `Map`, with a count per user so "is anyone of theirs here" is O(1). */
export class MemoryPresenceBackend implements PresenceBackend {
  #connections = new Map<string, TrackedConnection>();
  #counts = new Map<string, number>();

  add(connection: TrackedConnection): Promise<void> {
    const previous = this.#connections.get(connection.connectionId);
    if (previous) this.#count(previous.username, -1);
    this.#connections.set(connection.connectionId, connection);
    this.#count(connection.username, +1);
    return Promise.resolve();
  }

  remove(connections: readonly TrackedConnection[]): Promise<void> {
    for (const { connectionId } of connections) {
      const stored = this.#connections.get(connectionId);
      if (stored === undefined) continue;
      this.#connections.delete(connectionId);
      this.#count(stored.username, -1);
    }
    return Promise.resolve();
  }

  onlineAmong(usernames: readonly string[]): Promise<Set<string>> {
    return Promise.resolve(new Set(usernames.filter((username) => this.#counts.has(username))));
  }

  online(): Promise<string[]> {
    return Promise.resolve([...this.#counts.keys()]);
  }

  list(): Promise<TrackedConnection[]> {
    return Promise.resolve([...this.#connections.values()]);
  }

  close(): Promise<void> {
    this.#connections.clear();
    this.#counts.clear();
    return Promise.resolve();
  }

  #count(username: string, delta: number): void {
    const count = (this.#counts.get(username) ?? 0) + delta;
    if (count > 0) this.#counts.set(username, count);
    else this.#counts.delete(username);
  }
}

/** A presence tracker for one process, publishing its diffs through `layer`. */
export function createLocalPresence(layer: GroupLayer, options: PresenceOptions): PresenceCore {
  return new PresenceCore(layer, new MemoryPresenceBackend(), options);
}

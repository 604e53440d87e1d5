import type { TrackedConnection } from "./contract.ts";
import { log } from "../../telemetry/log.ts";

/**
 * How often a tracker over a backend that several processes (or Workers) share re-checks its
 * state: diffs of two of them about one user can cross on the way.
 */
export const RECONCILE_EVERY_MS = 10_000;

/** Users whose every connection in a topic expired, by topic. */
export type ExpiredUsers = Map<string, string[]>;

/**
 * The connections one process tracks in a shared backend, kept alive by a heartbeat: every
 * `ttlMs / 3` the backend writes them again with a fresh expiry and sweeps the expired ones of
 * processes that died; the users who went offline that way are announced to the watcher.
 */
export class PresenceHeartbeat {
  #mine = new Map<string, TrackedConnection>();
  #timer: ReturnType<typeof setInterval>;
  #beatFn: (mine: TrackedConnection[]) => Promise<ExpiredUsers>;
  #changed: ((usernames: string[], topic: string) => void) | null = null;
  #stopped = false;

  /** Starts beating: `beat` refreshes this process's connections and returns who expired. */
  constructor(ttlMs: number, beat: (mine: TrackedConnection[]) => Promise<ExpiredUsers>) {
    const everyMs = Math.max(100, Math.floor(ttlMs / 3));
    this.#beatFn = beat;
    this.#timer = setInterval(() => void this.#beat(), everyMs);
  }

  /**
   * Beats now, off the timer: when the backend is back after an outage it may have lost every
   * connection (Redis restarted empty), and waiting for the next beat shows users offline.
   */
  beatNow(): Promise<void> {
    return this.#beat();
  }

  /** Keeps `connection` alive from now on. */
  track(connection: TrackedConnection): void {
    this.#mine.set(connection.connectionId, connection);
  }

  /**
   * Keeps `connection` alive while `write` records it; when the write fails, keeps what was
   * kept before (a refresh of a live connection) or nothing (a new one: if written after all, it
   * expires as a crash's would).
   */
  async trackWhile(connection: TrackedConnection, write: () => Promise<void>): Promise<void> {
    const before = this.#mine.get(connection.connectionId);
    this.track(connection);
    try {
      await write();
    } catch (error) {
      if (this.keeps(connection)) {
        if (before === undefined) this.#mine.delete(connection.connectionId);
        else this.#mine.set(connection.connectionId, before);
      }
      throw error;
    }
  }

  /** Whether `connection` is still kept alive (not untracked, nor tracked again since). */
  keeps(connection: TrackedConnection): boolean {
    return this.#mine.get(connection.connectionId) === connection;
  }

  /** Stops keeping `connections` alive. */
  untrack(connections: readonly TrackedConnection[]): void {
    for (const { connectionId } of connections) this.#mine.delete(connectionId);
  }

  /** Who is told about users whose every connection expired. */
  watch(changed: (usernames: string[], topic: string) => void): void {
    this.#changed = changed;
  }

  /** Stops the heartbeat. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }

  async #beat(): Promise<void> {
    if (this.#stopped) return;
    try {
      const gone = await this.#beatFn([...this.#mine.values()]);
      for (const [topic, usernames] of gone) {
        if (usernames.length > 0) this.#changed?.(usernames, topic);
      }
    } catch (error) {
      log.debug(`Presence heartbeat failed: ${(error as Error).message}`);
    }
  }
}

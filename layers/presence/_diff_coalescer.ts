/**
 * Coalescing changes into diffs: the users to re-check by topic, the timer that collects them,
 * and the publishing of each topic's diff (joins and leaves against what was published), one
 * publish at a time and retried when the broker is away.
 */
import type { GroupLayer } from "../layer.ts";
import {
  PRESENCE_DIFF,
  type PresenceBackend,
  type PresenceClock,
  type PresenceDiff,
  presenceGroup,
  SITE_TOPIC,
} from "./contract.ts";
import type { PublishedTopics } from "./_published_topics.ts";
import { log } from "../../telemetry/log.ts";

// A diff that could not be published is retried this much later (the broker may be away).
const RETRY_MS = 1000;

/** What a {@linkcode DiffCoalescer} needs from its tracker besides the layer and the backend. */
export interface DiffCoalescerOptions {
  /** The topics whose views the diffs are compared with and applied to. */
  topics: PublishedTopics;
  clock: PresenceClock;
  /** How long changes are collected into one diff, in milliseconds. */
  coalesceMs: number;
  /** Whether the tracker is closing: a failed diff is not retried then. */
  closing: () => boolean;
  /** Called after each topic's publish, to leave a topic nothing needs any more. */
  release: (topic: string) => void;
}

/** The pending changes of one tracker, published as diffs through the layer. */
export class DiffCoalescer {
  #layer: GroupLayer;
  #backend: PresenceBackend;
  #topics: PublishedTopics;
  #clock: PresenceClock;
  #coalesceMs: number;
  #closing: () => boolean;
  #release: (topic: string) => void;
  /** Users to re-check, by topic. */
  #dirty = new Map<string, Set<string>>();
  #flushTimer: unknown = null;
  #flushing: Promise<void> = Promise.resolve();
  /** Removals started by a timer or an event, still under way. */
  #removing = new Set<Promise<void>>();
  #stopped = false;

  /** Publishes through `layer`, asking `backend` who is online. */
  constructor(layer: GroupLayer, backend: PresenceBackend, options: DiffCoalescerOptions) {
    this.#layer = layer;
    this.#backend = backend;
    this.#topics = options.topics;
    this.#clock = options.clock;
    this.#coalesceMs = options.coalesceMs;
    this.#closing = options.closing;
    this.#release = options.release;
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

  /** Makes every flush wait for `removal` until it settles; answers `removal` settled. */
  waitFor(removal: Promise<void>): Promise<void> {
    const dropping: Promise<void> = removal.finally(() => this.#removing.delete(dropping));
    this.#removing.add(dropping);
    return dropping;
  }

  /** Stops scheduling publishes (at a close, after the last flush). */
  stop(): void {
    this.#stopped = true;
    if (this.#flushTimer !== null) this.#clock.clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
  }

  /** Whether `topic` has changes not published yet. */
  isDirty(topic: string): boolean {
    return this.#dirty.has(topic);
  }

  /** The users of `topic` to re-check at the next flush (adding to it schedules nothing). */
  dirtyOf(topic: string): Set<string> {
    let users = this.#dirty.get(topic);
    if (!users) this.#dirty.set(topic, users = new Set());
    return users;
  }

  /** Re-checks `username` in `topic` at a flush in `delayMs`, or at the one already due. */
  markDirty(topic: string, username: string, delayMs: number = this.#coalesceMs): void {
    if (this.#stopped) return;
    this.dirtyOf(topic).add(username);
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
        if (!this.#closing()) { for (const user of users) this.markDirty(topic, user, RETRY_MS); }
        failures.push(error);
      }
      this.#release(topic);
      await this.#topics.leaving(topic);
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
    if (entry !== undefined) this.#topics.apply(entry, joins, leaves, time);
  }
}

/**
 * The topics this process listens to, each with what its subscribers were told (who is online,
 * the feed of recent events), and the joining and leaving of their groups on the layer.
 */
import type { GroupLayer } from "../layer.ts";
import { type PresenceBackend, type PresenceEvent, presenceGroup } from "./contract.ts";

/**
 * One topic this process listens to: what its subscribers were told, and the feed. The site
 * topic is always here; another topic from its first use until this process has no
 * connection left in it (then its group is left, and a later use reads the backend afresh).
 */
export interface Topic {
  /** Who is online according to the diffs published so far. */
  view: Set<string>;
  recent: PresenceEvent[];
  /** Subscribed to the topic's group, and the view read from the backend. */
  ready: Promise<void>;
}

/** The topics one tracker listens to, through its channel on the layer. */
export class PublishedTopics {
  #layer: GroupLayer;
  #backend: PresenceBackend;
  #channel: string;
  #recentLimit: number;
  #topics = new Map<string, Topic>();
  /** Topics whose group is being left: joining one again waits for that. */
  #leaving = new Map<string, Promise<void>>();

  /** Listens through `channel`; a view starts from what `backend` says is online. */
  constructor(
    layer: GroupLayer,
    backend: PresenceBackend,
    options: { channel: string; recentLimit: number },
  ) {
    this.#layer = layer;
    this.#backend = backend;
    this.#channel = options.channel;
    this.#recentLimit = options.recentLimit;
  }

  /** The topic's entry, when this process listens to it. */
  get(topic: string): Topic | undefined {
    return this.#topics.get(topic);
  }

  /** Every topic this process listens to, with its entry. */
  entries(): IterableIterator<[string, Topic]> {
    return this.#topics.entries();
  }

  /** The leaving of the topic's group, while it is under way. */
  leaving(topic: string): Promise<void> | undefined {
    return this.#leaving.get(topic);
  }

  /** The topic's entry, joining its group first when this process does not listen yet. */
  listen(topic: string): Topic {
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

  /** Stops listening to a topic and leaves its group; a later use joins it afresh. */
  release(topic: string): void {
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

  /** Leaves every topic's group, and waits for the leaving ones (at a close). */
  async leaveAll(): Promise<void> {
    for (const topic of this.#topics.keys()) {
      await Promise.try(() => this.#layer.groupDiscard(presenceGroup(topic), this.#channel))
        .catch(() => {});
    }
    await Promise.all(this.#leaving.values());
  }

  /** Applies a diff to a topic's view, recording each change in its feed. */
  apply(entry: Topic, joins: string[], leaves: string[], time: string): void {
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

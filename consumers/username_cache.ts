/**
 * Every registered username for the presence list, read from the user directory once and
 * then kept current by the sign-up events on the layer: listing every user on each socket's
 * connect (500 sockets in a storm) would cost a full directory scan each.
 */
import { ACCOUNT_EVENTS_GROUP, type GroupLayer, type LayerEvent, usernameKey } from "../mod.ts";

/** Where the names come from. */
export interface UsernameSource {
  usernames(): Promise<string[]>;
}

// A safety net: an event lost while a broker was away is picked up by the next full read.
const MAX_AGE_MS = 60_000;

/** A cached, event-updated list of usernames in the directory's order. */
export class UsernameCache implements UsernameSource {
  #source: UsernameSource;
  #layer: GroupLayer;
  #now: () => number;
  #names: string[] | null = null;
  #loadedAt = 0;
  #loading: Promise<string[]> | null = null;
  #subscribed: Promise<string> | null = null;
  /** Sign-ups heard while a read was under way: the read may or may not include them. */
  #heard: string[] = [];

  constructor(source: UsernameSource, layer: GroupLayer, options: { now?: () => number } = {}) {
    this.#source = source;
    this.#layer = layer;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Every username, sorted as the directory sorts them. */
  usernames(): Promise<string[]> {
    if (this.#names !== null && this.#now() - this.#loadedAt < MAX_AGE_MS) {
      return Promise.resolve([...this.#names]);
    }
    this.#loading ??= this.#load().finally(() => this.#loading = null);
    return this.#loading.then((names) => [...names]);
  }

  async #load(): Promise<string[]> {
    // Listen before reading, so a sign-up during the read is in one or the other.
    const subscribing = this.#subscribed ??= this.#subscribe();
    await subscribing.catch((error) => {
      // Not kept: the next read subscribes again, so the directory works once the layer is back.
      if (this.#subscribed === subscribing) this.#subscribed = null;
      throw error;
    });
    this.#heard = [];
    const names = await this.#source.usernames();
    this.#names = names;
    this.#loadedAt = this.#now();
    for (const name of this.#heard) this.#insert(name);
    this.#heard = [];
    return names;
  }

  async #subscribe(): Promise<string> {
    let channel: string | null = null;
    try {
      channel = this.#layer.newChannel((event) => this.#receive(event));
      await this.#layer.groupAdd(ACCOUNT_EVENTS_GROUP, channel);
      return channel;
    } catch (error) {
      const opened = channel;
      if (opened !== null) {
        await Promise.try(() => this.#layer.closeChannel(opened)).catch(() => {});
      }
      throw error;
    }
  }

  /** Stops listening for sign-ups (the app closes it at shutdown). */
  async close(): Promise<void> {
    const subscribed = this.#subscribed;
    this.#subscribed = null;
    const channel = await subscribed?.catch(() => null); // a failed one has nothing to close
    if (channel) await this.#layer.closeChannel(channel);
  }

  #receive(event: LayerEvent): boolean {
    if (event.type !== "account.created" || typeof event.username !== "string") return true;
    if (this.#loading !== null) this.#heard.push(event.username);
    if (this.#names !== null) this.#insert(event.username);
    return true;
  }

  #insert(name: string): void {
    const names = this.#names!;
    if (names.includes(name)) return;
    const key = usernameKey(name);
    const at = names.findIndex((other) => usernameKey(other) > key);
    names.splice(at < 0 ? names.length : at, 0, name);
  }
}

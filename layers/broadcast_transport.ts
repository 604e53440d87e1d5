/**
 * The BroadcastChannel + Deno KV side of the broadcast layer: one BroadcastChannel per group
 * with local members (opened on the first, closed on the last), one per Worker for channel
 * sends, and a registry in KV of which Workers are alive and which have members of each group,
 * with expiry, refreshed by a heartbeat. BroadcastChannel cannot say who heard a message, so
 * the counts in a send's result are read from that registry. The shared part of the layer is
 * `_process_layer.ts`.
 */
import type { LayerEvent } from "./layer.ts";
import type { NamedSent, Published, Transport, TransportInbox } from "./_transport.ts";
import { log } from "../telemetry/log.ts";
import { retryWhileLocked } from "../storage/kv_retry.ts";

interface GroupMessage {
  origin: string;
  event: LayerEvent;
}

interface ChannelMessage {
  channel: string;
  event: LayerEvent;
}

/**
 * An event for a named channel, sent to the one Worker chosen to take it; that Worker answers
 * with a {@linkcode NamedReply} to the sender's own channel (`from`) under `id`.
 */
interface NamedMessage {
  named: string;
  event: LayerEvent;
  from: string;
  id: number;
}

/** Whether the chosen Worker's listener took a {@linkcode NamedMessage} or refused it (full). */
interface NamedReply {
  namedReply: number;
  taken: boolean;
}

/**
 * How long a sender waits for the chosen Worker to say whether its listener took the event.
 * Past it (that Worker's event loop is blocked, say by a handler that computes for seconds)
 * the send is reported as handed over, as before such answers: it may still be taken. Short,
 * because a sender's hooks wait on it (a chat socket's `/roll`): a busy Worker must not hold
 * the sender's socket for longer than this.
 */
export const NAMED_REPLY_MS = 100;

/** A registry reading, shared by the sends made while it is fresh. */
interface Reading {
  at: number;
  count: Promise<number>;
}

/** How a {@linkcode BroadcastTransport} names its channels and keeps its registry entries. */
export interface BroadcastTransportOptions {
  /** Transports with the same prefix hear each other. */
  prefix: string;
}

/** A registry entry not refreshed for this long is gone. */
const GROUP_EXPIRY_MS = 30_000;

/** How often a Worker refreshes its entries: one lost heartbeat does not make it disappear. */
const HEARTBEAT_MS = GROUP_EXPIRY_MS / 3;

// BroadcastChannel objects kept for groups without local members, at most.
const MAX_CHANNELS = 1000;
const READING_TTL_MS = 1000;
const REFRESH_BATCH = 100;

/** A {@linkcode Transport} on BroadcastChannel, with Deno KV as the registry. */
export class BroadcastTransport implements Transport {
  #kv: Deno.Kv;
  #prefix: string;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #inbox: TransportInbox | null = null;
  /** Groups with local members: listened to, and registered under this Worker. */
  #listening = new Set<string>();
  /** Named channels with local listeners, registered under this Worker. */
  #named = new Set<string>();
  /** This Worker's own BroadcastChannel, for events to its channels. */
  #ownChannel: BroadcastChannel | null = null;
  /** Sends to a named channel waiting for the chosen Worker's answer, by id. */
  #replies = new Map<number, (taken: boolean | null) => void>();
  #nextReplyId = 0;
  /** One BroadcastChannel per group, used to send and (with local members) to listen. */
  #groupChannels = new Map<string, BroadcastChannel>();
  /** Senders to other Workers' inboxes, reused so one sender's events stay in order. */
  #outboxes = new Map<string, BroadcastChannel>();
  /** By group: how many other Workers have members of it. */
  #remoteCounts = new Map<string, Reading>();
  /** By named channel: the reading of its listeners under way. */
  #listenerReadings = new Map<string, Promise<string[]>>();
  /** By Worker: 1 when it is alive, else 0. */
  #liveCounts = new Map<string, Reading>();
  #closed = false;
  #kvClosed = false;

  /** Takes over `kv`, which {@linkcode BroadcastTransport.close} closes. */
  constructor(kv: Deno.Kv, options: BroadcastTransportOptions) {
    this.#kv = kv;
    this.#prefix = options.prefix;
  }

  async listen(inbox: TransportInbox): Promise<void> {
    this.#inbox = inbox;
    this.#ownChannel = new BroadcastChannel(this.#processName(inbox.processId));
    this.#ownChannel.onmessage = (message) => this.#receiveChannel(message.data);
    this.#heartbeat = setInterval(() => void this.#refresh(), HEARTBEAT_MS);
    await this.#register(this.#processKey(inbox.processId));
  }

  async subscribe(group: string): Promise<void> {
    this.#listening.add(group);
    this.#channelFor(group).onmessage = (message: MessageEvent<GroupMessage>) => {
      const { origin, event } = message.data ?? {};
      if (typeof event?.type !== "string") return;
      this.#inbox?.groupEvent(group, event, origin ?? null);
    };
    const processId = this.#inbox?.processId;
    if (processId === undefined) return;
    const key = this.#groupKey(group, processId);
    await this.#register(key);
    // Left while the entry was being written: take it back rather than let it stand until expiry.
    if (!this.#listening.has(group)) await this.#unregister(key);
  }

  unsubscribe(group: string): void {
    this.#listening.delete(group);
    this.#groupChannels.get(group)?.close();
    this.#groupChannels.delete(group);
    const processId = this.#inbox?.processId;
    if (processId !== undefined) void this.#unregister(this.#groupKey(group, processId));
  }

  publishToGroup(group: string, event: LayerEvent, origin: string): Promise<Published> {
    const message: GroupMessage = { origin, event };
    // One object per group keeps one sender's events in order; it never hears itself.
    this.#channelFor(group).postMessage(message);
    const count = () => this.#countRemote(group, origin);
    return Promise.resolve({ remoteProcesses: this.#read(this.#remoteCounts, group, count) });
  }

  async listenNamed(name: string): Promise<void> {
    this.#named.add(name);
    const processId = this.#inbox?.processId;
    if (processId === undefined) return;
    const key = this.#listenerKey(name, processId);
    await this.#register(key);
    if (!this.#named.has(name)) await this.#unregister(key);
  }

  async unlistenNamed(name: string): Promise<void> {
    this.#named.delete(name);
    const processId = this.#inbox?.processId;
    if (processId !== undefined) await this.#unregister(this.#listenerKey(name, processId));
  }

  /**
   * One listener takes each event: the registry's live listeners, sorted, and the sender's
   * id choose it, so one sender's events all go to one Worker (in order) while that Worker
   * lives, and different senders spread over the listeners. Read for each send, not cached
   * (a stale reading would lose events); sends made while a reading is under way share it,
   * which also keeps them in the order they were made.
   */
  async sendToNamed(name: string, event: LayerEvent, origin: string): Promise<NamedSent> {
    let reading = this.#listenerReadings.get(name);
    if (reading === undefined) {
      reading = this.#readListeners(name).finally(() => this.#listenerReadings.delete(name));
      this.#listenerReadings.set(name, reading);
    }
    const listeners = await reading;
    if (listeners.length === 0) return "no-listener";
    const chosen = listeners[hashOf(origin) % listeners.length];
    if (chosen === this.#inbox?.processId) return "local";
    const processId = this.#inbox?.processId;
    if (processId === undefined) return "queued"; // not receiving, so no answer can come
    // A worker that refuses the event (its queue full) says so, and its sender is told.
    const id = this.#nextReplyId++;
    const message: NamedMessage = { named: name, event, from: processId, id };
    const answered = new Promise<boolean | null>((resolve) => this.#replies.set(id, resolve));
    const timer = setTimeout(() => this.#replies.get(id)?.(null), NAMED_REPLY_MS);
    this.#outboxFor(chosen).postMessage(message);
    const taken = await answered;
    clearTimeout(timer);
    this.#replies.delete(id);
    return taken === false ? "refused" : "queued";
  }

  /** The live listeners of a named channel by the registry, sorted. */
  async #readListeners(name: string): Promise<string[]> {
    const now = Date.now();
    const listeners: string[] = [];
    const entries = this.#kv.list<number>({ prefix: [this.#prefix, "listeners", name] });
    for await (const entry of entries) {
      if (entry.value > now) listeners.push(String(entry.key.at(-1)));
    }
    return listeners.sort();
  }

  sendToProcess(processId: string, channel: string, event: LayerEvent): Promise<number> {
    const message: ChannelMessage = { channel, event };
    this.#outboxFor(processId).postMessage(message);
    // BroadcastChannel cannot tell whether anyone heard: the registry says whether that Worker
    // is alive to hear it.
    return this.#read(this.#liveCounts, processId, () => this.#countLive(processId));
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#heartbeat);
    this.#ownChannel?.close();
    for (const resolve of this.#replies.values()) resolve(null);
    for (const channel of this.#groupChannels.values()) channel.close();
    this.#groupChannels.clear();
    for (const channel of this.#outboxes.values()) channel.close();
    this.#outboxes.clear();
    // Leave the registry at once rather than by expiry (best effort: the entries expire anyway).
    await Promise.all(this.#ownKeys().map((key) => this.#unregister(key)));
    this.#listening.clear();
    this.#named.clear();
    this.#kvClosed = true;
    this.#kv.close();
  }

  /**
   * A registry reading, made at most once a second per `name`: the reading itself is shared,
   * so the sends made while it is under way do not each start one.
   */
  #read(cache: Map<string, Reading>, name: string, count: () => Promise<number>): Promise<number> {
    const now = Date.now();
    const cached = cache.get(name);
    if (cached !== undefined && now - cached.at < READING_TTL_MS) return cached.count;
    const reading = count();
    if (cache.size >= MAX_CHANNELS) cache.clear();
    cache.set(name, { at: now, count: reading });
    // A failed reading is not kept: the next send tries again.
    reading.catch(() => {
      if (cache.get(name)?.count === reading) cache.delete(name);
    });
    return reading;
  }

  /** How many Workers other than `self` have members of `group`, by the registry. */
  async #countRemote(group: string, self: string): Promise<number> {
    const now = Date.now();
    let count = 0;
    const entries = this.#kv.list<number>({ prefix: [this.#prefix, "groups", group] });
    for await (const entry of entries) {
      if (entry.value > now && entry.key.at(-1) !== self) count++;
    }
    return count;
  }

  /** 1 when the Worker `processId` is alive by the registry, else 0. */
  async #countLive(processId: string): Promise<number> {
    const entry = await this.#kv.get<number>(this.#processKey(processId));
    return entry.value !== null && entry.value > Date.now() ? 1 : 0;
  }

  async #register(key: Deno.KvKey): Promise<void> {
    if (this.#closed) return;
    const expiry = Date.now() + GROUP_EXPIRY_MS;
    await retryWhileLocked(() => this.#kv.set(key, expiry, { expireIn: GROUP_EXPIRY_MS }))
      .catch((error) => log.debug(`Registry entry ${key.join("/")} not written to KV: ${error}`));
  }

  async #unregister(key: Deno.KvKey): Promise<void> {
    if (this.#kvClosed) return; // the entry expires on its own
    try {
      await retryWhileLocked(() => this.#kv.delete(key));
    } catch {
      // KV closed meanwhile: the entry expires on its own
    }
  }

  /** Writes this Worker's entries again with a fresh expiry: the heartbeat. */
  async #refresh(): Promise<void> {
    const keys = this.#ownKeys();
    // One commit per hundred writes instead of one per entry.
    for (let start = 0; start < keys.length; start += REFRESH_BATCH) {
      if (this.#closed) return; // leaving: a late write would stand until expiry
      const expiry = Date.now() + GROUP_EXPIRY_MS;
      const batch = this.#kv.atomic();
      for (const key of keys.slice(start, start + REFRESH_BATCH)) {
        batch.set(key, expiry, { expireIn: GROUP_EXPIRY_MS });
      }
      await batch.commit().catch(() => {});
    }
  }

  /** This Worker's registry entries: it is alive, and the groups it has members of. */
  #ownKeys(): Deno.KvKey[] {
    const processId = this.#inbox?.processId;
    if (processId === undefined) return [];
    const groups = [...this.#listening].map((group) => this.#groupKey(group, processId));
    const named = [...this.#named].map((name) => this.#listenerKey(name, processId));
    return [this.#processKey(processId), ...groups, ...named];
  }

  #listenerKey(name: string, processId: string): Deno.KvKey {
    return [this.#prefix, "listeners", name, processId];
  }

  #groupKey(group: string, processId: string): Deno.KvKey {
    return [this.#prefix, "groups", group, processId];
  }

  #processKey(processId: string): Deno.KvKey {
    return [this.#prefix, "processes", processId];
  }

  #processName(processId: string): string {
    return `${this.#prefix}:process:${processId}`;
  }

  #channelFor(group: string): BroadcastChannel {
    let channel = this.#groupChannels.get(group);
    if (channel === undefined) {
      this.#evictSendOnlyChannels();
      channel = new BroadcastChannel(`${this.#prefix}:group:${group}`);
      this.#groupChannels.set(group, channel);
    }
    return channel;
  }

  /** Bounds the objects kept only for sending to groups that have no members here. */
  #evictSendOnlyChannels(): void {
    if (this.#groupChannels.size < MAX_CHANNELS) return;
    for (const [group, channel] of this.#groupChannels) {
      if (channel.onmessage !== null) continue;
      channel.close();
      this.#groupChannels.delete(group);
      if (this.#groupChannels.size < MAX_CHANNELS / 2) return;
    }
  }

  #outboxFor(processId: string): BroadcastChannel {
    let outbox = this.#outboxes.get(processId);
    if (outbox === undefined) {
      if (this.#outboxes.size >= MAX_CHANNELS) {
        for (const channel of this.#outboxes.values()) channel.close();
        this.#outboxes.clear();
      }
      outbox = new BroadcastChannel(this.#processName(processId));
      this.#outboxes.set(processId, outbox);
    }
    return outbox;
  }

  #receiveChannel(message: unknown): void {
    const data = message as Partial<ChannelMessage & NamedMessage & NamedReply> | null;
    const event = data?.event;
    if (typeof data?.namedReply === "number") {
      this.#replies.get(data.namedReply)?.(data.taken === true);
    } else if (typeof event?.type === "string" && typeof data?.named === "string") {
      const taken = this.#inbox?.namedEvent(data.named, event) ?? false;
      if (typeof data.from === "string" && typeof data.id === "number") {
        const reply: NamedReply = { namedReply: data.id, taken };
        this.#outboxFor(data.from).postMessage(reply);
      }
    } else if (typeof event?.type === "string" && typeof data?.channel === "string") {
      this.#inbox?.channelEvent(data.channel, event);
    } else {
      log.warn("Ignored a malformed message on this Worker's channel");
    }
  }
}

/** A small stable hash of a process id, to pick a listener. */
function hashOf(text: string): number {
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (hash * 31 + text.charCodeAt(i)) >>> 0;
  return hash;
}

/**
 * The BroadcastChannel + Deno KV side of the broadcast layer: one BroadcastChannel per group
 * with local members (opened on the first, closed on the last), one per Worker for channel
 * sends, and the membership registry as KV entries with expiry. The shared part of the layer
 * is `_process_layer.ts`.
 */
import type { LayerEvent } from "./layer.ts";
import type { Memberships, Published, Transport, TransportInbox } from "./_transport.ts";
import { channelProcess } from "./local_groups.ts";
import { log } from "../server/log.ts";
import { retryWhileLocked } from "../storage/kv_retry.ts";

interface GroupMessage {
  origin: string;
  event: LayerEvent;
}

interface ChannelMessage {
  channel: string;
  event: LayerEvent;
}

// BroadcastChannel objects kept for groups without local members, at most.
const MAX_CHANNELS = 1000;
const REMOTE_COUNT_TTL_MS = 1000;
const REFRESH_BATCH = 100;

/** A {@linkcode Transport} on BroadcastChannel, with Deno KV as the registry. */
export class BroadcastTransport implements Transport {
  #kv: Deno.Kv;
  #prefix: string;
  #expiryMs: number;
  #inbox: TransportInbox | null = null;
  /** This Worker's own BroadcastChannel, for events to its channels. */
  #ownChannel: BroadcastChannel | null = null;
  /** One BroadcastChannel per group, used to send and (with local members) to listen. */
  #groupChannels = new Map<string, BroadcastChannel>();
  /** Senders to other Workers' inboxes, reused so one sender's events stay in order. */
  #outboxes = new Map<string, BroadcastChannel>();
  #remoteCounts = new Map<string, { at: number; count: Promise<number> }>();
  #closed = false;
  #kvClosed = false;

  /** Takes over `kv`, which {@linkcode BroadcastTransport.close} closes. */
  constructor(kv: Deno.Kv, options: { prefix: string; groupExpiryMs: number }) {
    this.#kv = kv;
    this.#prefix = options.prefix;
    this.#expiryMs = options.groupExpiryMs;
  }

  listen(inbox: TransportInbox): Promise<void> {
    this.#inbox = inbox;
    this.#ownChannel = new BroadcastChannel(this.#processName(inbox.processId));
    this.#ownChannel.onmessage = (message) => this.#receiveChannel(message.data);
    return Promise.resolve();
  }

  subscribe(group: string): Promise<void> {
    this.#channelFor(group).onmessage = (message: MessageEvent<GroupMessage>) => {
      const { origin, event } = message.data ?? {};
      if (typeof event?.type !== "string") return;
      this.#inbox?.groupEvent(group, event, origin ?? null);
    };
    return Promise.resolve();
  }

  unsubscribe(group: string): void {
    this.#groupChannels.get(group)?.close();
    this.#groupChannels.delete(group);
  }

  publishToGroup(group: string, event: LayerEvent, origin: string): Promise<Published> {
    const message: GroupMessage = { origin, event };
    // One object per group keeps one sender's events in order; it never hears itself.
    this.#channelFor(group).postMessage(message);
    return Promise.resolve({ remoteProcesses: this.#remoteProcesses(group, origin) });
  }

  sendToProcess(processId: string, channel: string, event: LayerEvent): Promise<number> {
    const message: ChannelMessage = { channel, event };
    this.#outboxFor(processId).postMessage(message);
    // BroadcastChannel cannot tell whether anyone heard: count the one intended receiver.
    return Promise.resolve(1);
  }

  async remember(group: string, channel: string): Promise<void> {
    if (this.#closed) return;
    const expiry = Date.now() + this.#expiryMs;
    const key = this.#memberKey(group, channel);
    const options = { expireIn: this.#expiryMs };
    await retryWhileLocked(() => this.#kv.set(key, expiry, options))
      .catch((error) => log.debug(`Membership of "${group}" not written to KV: ${error}`));
  }

  async forget(group: string, channel: string): Promise<void> {
    if (this.#kvClosed) return; // the entry expires on its own
    try {
      await retryWhileLocked(() => this.#kv.delete(this.#memberKey(group, channel)));
    } catch {
      // KV closed meanwhile: the entry expires on its own
    }
  }

  async refresh(memberships: Memberships): Promise<void> {
    const expiry = Date.now() + this.#expiryMs;
    let batch = this.#kv.atomic();
    let size = 0;
    for (const group of memberships.groups()) {
      for (const channel of memberships.members(group)) {
        batch.set(this.#memberKey(group, channel), expiry, { expireIn: this.#expiryMs });
        // One commit per hundred writes instead of one per membership.
        if (++size % REFRESH_BATCH === 0) {
          await batch.commit().catch(() => {});
          batch = this.#kv.atomic();
        }
      }
    }
    if (size % REFRESH_BATCH !== 0 && !this.#kvClosed) await batch.commit().catch(() => {});
  }

  async members(group: string): Promise<string[]> {
    const now = Date.now();
    const members: string[] = [];
    const entries = this.#kv.list<number>({ prefix: [this.#prefix, "members", group] });
    for await (const entry of entries) {
      if (entry.value > now) members.push(entry.key.at(-1) as string);
    }
    return members;
  }

  async close(memberships: Memberships): Promise<void> {
    this.#closed = true;
    this.#ownChannel?.close();
    for (const channel of this.#groupChannels.values()) channel.close();
    this.#groupChannels.clear();
    for (const channel of this.#outboxes.values()) channel.close();
    this.#outboxes.clear();
    const leaving = memberships.groups().flatMap((group) =>
      memberships.members(group).map((channel) => this.forget(group, channel))
    );
    await Promise.all(leaving);
    this.#kvClosed = true;
    this.#kv.close();
  }

  /**
   * How many other Workers have members of `group`. BroadcastChannel cannot say who heard a
   * message, so this is read from the KV registry, at most once a second per group: the
   * reading itself is shared, so the sends made while it is under way do not each start one.
   */
  #remoteProcesses(group: string, self: string): Promise<number> {
    const now = Date.now();
    const cached = this.#remoteCounts.get(group);
    if (cached !== undefined && now - cached.at < REMOTE_COUNT_TTL_MS) return cached.count;
    const count = this.members(group).then((members) => {
      const owners = new Set(members.map(channelProcess));
      owners.delete(self);
      return owners.size;
    });
    if (this.#remoteCounts.size >= MAX_CHANNELS) this.#remoteCounts.clear();
    this.#remoteCounts.set(group, { at: now, count });
    // A failed reading is not kept: the next send tries again.
    count.catch(() => {
      if (this.#remoteCounts.get(group)?.count === count) this.#remoteCounts.delete(group);
    });
    return count;
  }

  #memberKey(group: string, channel: string): Deno.KvKey {
    return [this.#prefix, "members", group, channel];
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

  #receiveChannel(message: ChannelMessage): void {
    if (typeof message?.channel !== "string" || typeof message.event?.type !== "string") {
      log.warn("Ignored a malformed message on this Worker's channel");
      return;
    }
    this.#inbox?.channelEvent(message.channel, message.event);
  }
}

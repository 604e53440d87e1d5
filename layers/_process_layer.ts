/**
 * The group layer across processes, whatever carries the events between them: local
 * membership in {@linkcode LocalGroups}, the backend behind a {@linkcode Transport}. Phoenix
 * PubSub splits it the same way. Redis and BroadcastChannel layers are this class with their
 * own transport; the in-memory layer stays separate so its sends need no await at all.
 *
 * - A group's transport subscription follows its local members: subscribed with the first,
 *   unsubscribed with the last (channels_redis' pub/sub layer does the same).
 * - "Publish, then deliver locally": a group send hands the event to the transport marked with
 *   this process's id, then delivers to local members directly; the transport's copy coming
 *   back to this process is skipped by that id. Local counts in the result are exact.
 */
import { PublishUnconfirmedError } from "./streams/contract.ts";
import type {
  Deliver,
  GroupLayer,
  GroupSize,
  LayerEvent,
  LayerStats,
  ListenOptions,
  SendResult,
  Unlisten,
} from "./layer.ts";
import {
  isNamedChannel,
  noListenerResult,
  validateEvent,
  validateGroupName,
  validateNamedChannel,
} from "./layer.ts";
import { checkedEventJson } from "./event_json.ts";
import { channelProcess, LocalGroups } from "./local_groups.ts";
import type { Transport, TransportInbox } from "./_transport.ts";
import { log } from "../telemetry/log.ts";

/**
 * A {@linkcode GroupLayer} that reaches other processes through a {@linkcode Transport}. A
 * backend's layer is a subclass that only adds how to open it (e.g. `RedisLayer.open`): it
 * opens the transport, constructs the layer, then awaits {@linkcode ProcessLayer.start}.
 */
export class ProcessLayer implements GroupLayer {
  #local: LocalGroups;
  #transport: Transport;
  /** Group subscriptions in flight, by group. */
  #pending = new Map<string, Promise<void>>();
  /** Named channels' first listens in flight, by name. */
  #pendingListens = new Map<string, Promise<void>>();
  #closed = false;
  #closing: Promise<void> | null = null;

  /** Serves `transport`; receives after {@linkcode ProcessLayer.start}. */
  constructor(transport: Transport) {
    this.#transport = transport;
    this.#local = new LocalGroups({
      firstLocalMember: (group) => this.#subscribe(group),
      lastLocalMemberLeft: (group) => transport.unsubscribe(group),
    });
  }

  /** This process's id: the start of its channel names and the origin of what it publishes. */
  get processId(): string {
    return this.#local.processId;
  }

  newChannel(deliver: Deliver): string {
    return this.#local.newChannel(deliver);
  }

  closeChannel(channel: string): Promise<void> {
    return this.#local.closeChannel(channel);
  }

  async send(channel: string, event: LayerEvent): Promise<SendResult> {
    validateEvent(event);
    checkedEventJson(event); // refused here, before another process or Worker gets it
    this.#checkOpen();
    if (isNamedChannel(channel)) return await this.#sendNamed(channel, event);
    if (this.#local.isLocalChannel(channel)) return this.#local.deliverToChannel(channel, event);
    const owner = channelProcess(channel);
    if (owner === null) return noListenerResult(channel, event);
    const remoteProcesses = await this.#transport.sendToProcess(owner, channel, event);
    if (remoteProcesses === 0) return noListenerResult(channel, event);
    return { delivered: 0, dropped: 0, remoteProcesses };
  }

  async listen(name: string, deliver: Deliver, options: ListenOptions = {}): Promise<Unlisten> {
    validateNamedChannel(name);
    this.#checkOpen();
    if (this.#local.listen(name, deliver, options.ready?.bind(options))) {
      const starting = this.#transport.listenNamed(name).finally(() => {
        if (this.#pendingListens.get(name) === starting) this.#pendingListens.delete(name);
      });
      this.#pendingListens.set(name, starting);
      try {
        await starting;
      } catch (error) {
        this.#local.unlisten(name, deliver);
        throw error;
      }
    } else {
      await this.#pendingListens.get(name);
    }
    let listening = true;
    return async () => {
      if (!listening) return;
      listening = false;
      if (this.#local.unlisten(name, deliver) && !this.#closed) {
        await this.#transport.unlistenNamed(name);
      }
    };
  }

  async groupAdd(group: string, channel: string): Promise<void> {
    validateGroupName(group);
    this.#checkOpen();
    await this.#local.add(group, channel);
    try {
      // A join made while the first member's subscription is in flight must wait for it too:
      // once groupAdd resolves, events sent from any process reach the new member.
      await this.#pending.get(group);
    } catch (error) {
      // Failed with the first member's: undone as its join was, so no member is left in a
      // group nobody subscribed to (the next join subscribes again).
      await this.#local.discard(group, channel).catch(() => {});
      throw error;
    }
  }

  async groupDiscard(group: string, channel: string): Promise<void> {
    validateGroupName(group);
    await this.#local.discard(group, channel);
  }

  async groupSend(group: string, event: LayerEvent): Promise<SendResult> {
    validateGroupName(group);
    validateEvent(event);
    checkedEventJson(event);
    this.#checkOpen();
    // Publish first: when the transport refuses, nobody got the event and the sender can say
    // so. The origin lets this process skip its own copy when the transport echoes it back.
    let published;
    try {
      published = await this.#transport.publishToGroup(group, event, this.processId);
    } catch (error) {
      // Written and unanswered (a paused Redis): Redis publishes it to the others once it
      // answers, and this process skips that echo as its own, so its members get it now.
      if (error instanceof PublishUnconfirmedError) this.#local.deliverToGroup(group, event);
      throw error;
    }
    const local = this.#local.deliverToGroup(group, event);
    return { ...local, remoteProcesses: await published.remoteProcesses };
  }

  /** True when `group` has a member in this process. */
  hasLocalMembers(group: string): boolean {
    return this.#local.hasMembers(group);
  }

  /**
   * Delivers to this process's members a group event that reached the other processes without
   * `groupSend` (a Redis stream's script publishes it, marked with {@linkcode processId}), once
   * that publish is acknowledged: as `groupSend` does, so the transport skips the echo.
   */
  deliverPublished(group: string, event: LayerEvent): SendResult {
    return this.#local.deliverToGroup(group, event);
  }

  stats(): LayerStats {
    return this.#local.stats();
  }

  groupSizes(limit: number, skip?: (group: string) => boolean): GroupSize[] {
    return this.#local.groupSizes(limit, skip);
  }

  close(): Promise<void> {
    return this.#closing ??= this.#shutdown();
  }

  async #sendNamed(name: string, event: LayerEvent): Promise<SendResult> {
    validateNamedChannel(name);
    switch (await this.#transport.sendToNamed(name, event, this.processId)) {
      case "queued":
        return { delivered: 0, dropped: 0, remoteProcesses: 1 };
      case "local":
        return this.#local.deliverToNamed(name, event) ?? noListenerResult(name, event);
      case "full":
        return this.#local.countDropped(event, `channel ${name} (queue full)`);
      case "refused": // counted and logged by the process that refused it
        return { delivered: 0, dropped: 1, remoteProcesses: 1 };
      case "no-listener":
        return noListenerResult(name, event);
    }
  }

  /**
   * Starts the transport receiving for this layer; a subclass's opener awaits it once. On
   * failure the layer is closed and the error rethrown, so a half-open layer never escapes.
   */
  protected async start(): Promise<this> {
    try {
      await this.#transport.listen(this.#inbox());
    } catch (error) {
      await this.close();
      throw error;
    }
    return this;
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    await this.#transport.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error("Layer is closed");
  }

  #subscribe(group: string): Promise<void> {
    const settled = this.#transport.subscribe(group).finally(() => {
      if (this.#pending.get(group) === settled) this.#pending.delete(group);
    });
    this.#pending.set(group, settled);
    return settled;
  }

  #inbox(): TransportInbox {
    const local = this.#local;
    return {
      processId: local.processId,
      groupEvent: (group, event, origin): void => {
        if (origin === local.processId) return; // delivered locally when it was sent
        local.deliverToGroup(group, event);
      },
      groupGap: (group): void => local.signalGap(group),
      channelEvent: (channel, event): void => void local.deliverToChannel(channel, event),
      namedReady: (name) => local.namedReady(name),
      namedEvent: (name, event): boolean => {
        const result = local.deliverToNamed(name, event);
        // Taken from the queue just as the last listener here stopped: lost, but not unseen.
        if (result === null) {
          log.warn(`A "${event.type}" event for channel "${name}" arrived after its listener left`);
        }
        return result !== null && result.dropped === 0;
      },
    };
  }
}

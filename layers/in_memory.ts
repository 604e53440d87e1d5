import type {
  Deliver,
  GroupLayer,
  GroupSize,
  LayerEvent,
  LayerStats,
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
import { LocalGroups } from "./local_groups.ts";

/**
 * The default layer: one process, no broker. Every channel is local, so a send is a direct
 * call to the receiver and `remoteProcesses` is always 0.
 */
export class InMemoryLayer implements GroupLayer {
  #local = new LocalGroups();
  #closed = false;

  newChannel(deliver: Deliver): string {
    return this.#local.newChannel(deliver);
  }

  closeChannel(channel: string): Promise<void> {
    return this.#local.closeChannel(channel);
  }

  send(channel: string, event: LayerEvent): Promise<SendResult> {
    if (this.#closed) return Promise.reject(new Error("Layer is closed"));
    // A bad event rejects like any async failure instead of throwing at the caller.
    try {
      if (isNamedChannel(channel)) {
        validateNamedChannel(channel);
        validateEvent(event);
        return Promise.resolve(
          this.#local.deliverToNamed(channel, event) ?? noListenerResult(channel, event),
        );
      }
      return Promise.resolve(this.#local.deliverToChannel(channel, event));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  listen(name: string, deliver: Deliver): Promise<Unlisten> {
    try {
      validateNamedChannel(name);
    } catch (error) {
      return Promise.reject(error);
    }
    this.#local.listen(name, deliver);
    let listening = true;
    return Promise.resolve(() => {
      if (listening) this.#local.unlisten(name, deliver);
      listening = false;
      return Promise.resolve();
    });
  }

  async groupAdd(group: string, channel: string): Promise<void> {
    await this.#local.add(group, channel);
  }

  async groupDiscard(group: string, channel: string): Promise<void> {
    await this.#local.discard(group, channel);
  }

  groupSend(group: string, event: LayerEvent): Promise<SendResult> {
    try {
      return Promise.resolve(this.groupSendNow(group, event));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * {@linkcode groupSend} without the promise: every member is here, so the event has reached
   * them all when this returns. Throws where `groupSend` rejects. The in-process streams call
   * it on the path of every message (see `GroupLayer.groupSendNow`).
   */
  groupSendNow(group: string, event: LayerEvent): SendResult {
    if (this.#closed) throw new Error("Layer is closed");
    // The hot path: a group with members had its name checked when they joined.
    if (!this.#local.hasMembers(group)) validateGroupName(group);
    return this.#local.deliverToGroup(group, event);
  }

  stats(): LayerStats {
    return this.#local.stats();
  }

  groupSizes(limit: number, skip?: (group: string) => boolean): GroupSize[] {
    return this.#local.groupSizes(limit, skip);
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}

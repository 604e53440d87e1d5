import type { Deliver, GroupLayer, LayerEvent, LayerStats, SendResult } from "./layer.ts";
import { validateGroupName } from "./layer.ts";
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
      return Promise.resolve(this.#local.deliverToChannel(channel, event));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async groupAdd(group: string, channel: string): Promise<void> {
    await this.#local.add(group, channel);
  }

  async groupDiscard(group: string, channel: string): Promise<void> {
    await this.#local.discard(group, channel);
  }

  groupSend(group: string, event: LayerEvent): Promise<SendResult> {
    if (this.#closed) return Promise.reject(new Error("Layer is closed"));
    try {
      // The hot path: a group with members had its name checked when they joined.
      if (!this.#local.hasMembers(group)) validateGroupName(group);
      return Promise.resolve(this.#local.deliverToGroup(group, event));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  stats(): LayerStats {
    return this.#local.stats();
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}

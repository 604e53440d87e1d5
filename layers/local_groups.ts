import type { Deliver, GroupSize, LayerEvent, LayerStats, SendResult } from "./layer.ts";
import { LAYER_GAP, noListenerResult, validateEvent, validateGroupName } from "./layer.ts";
import { log } from "../telemetry/log.ts";
import { checkedEventJson } from "./event_json.ts";
import { QuietWarning } from "../telemetry/quiet_warning.ts";

// One frozen object for every group and member.
const GAP_EVENT: LayerEvent = Object.freeze({ type: LAYER_GAP });

/** Called when a group gets its first local member or loses its last one. */
export interface MembershipHooks {
  firstLocalMember?(group: string): void | Promise<void>;
  lastLocalMemberLeft?(group: string): void | Promise<void>;
}

/**
 * This process's channels and group members: the part of every layer that does not depend
 * on the transport between processes. Phoenix PubSub keeps it apart the same way.
 */
export class LocalGroups {
  /** Channel names made here start with this id, so any process can tell whose they are. */
  readonly processId: string;
  #receivers = new Map<string, Deliver>();
  #channelCount = 0;
  // Each group's members with their receivers, so a group send walks one map, no lookups.
  #members = new Map<string, Map<string, Deliver>>();
  // A channel's groups: most sockets join one, held as the name itself (no Set per socket).
  #groupsOf = new Map<string, string | Set<string>>();
  #hooks: MembershipHooks;
  #carriesBytes: boolean;
  /** Named channels' listeners in this process; events are handed to them in turn. */
  #listeners = new Map<
    string,
    { delivers: Deliver[]; next: number; readies: Map<Deliver, () => Promise<void>> }
  >();
  #delivered = 0;
  #dropped = 0;
  #dropWarning = new QuietWarning();
  #groupSends = 0;

  /**
   * `carriesBytes`: the layer's wire keeps bytes (channels_redis' msgpack), so events with a
   * `Uint8Array` inside are handed on here too (see `checkedEventJson`).
   */
  constructor(hooks: MembershipHooks = {}, carriesBytes = false) {
    this.#carriesBytes = carriesBytes;
    this.processId = crypto.randomUUID().slice(0, 12);
    this.#hooks = hooks;
  }

  /** Registers a receiver under a fresh channel name. */
  newChannel(deliver: Deliver): string {
    // A counter, not a UUID: unique within the process, and the process id makes it unique
    // everywhere. Channel names are addresses, not secrets: only the server sends to them.
    const name = `${this.processId}!${(++this.#channelCount).toString(36)}`;
    this.#receivers.set(name, deliver);
    return name;
  }

  /** True when the channel was created by this process. */
  isLocalChannel(channel: string): boolean {
    return channel.startsWith(`${this.processId}!`);
  }

  /** Unregisters a channel and leaves all its groups. */
  async closeChannel(channel: string): Promise<void> {
    this.#receivers.delete(channel);
    // Out of every group at once, so nothing is delivered to it while the hooks run.
    const emptied = groupList(this.#groupsOf.get(channel)).filter((group) =>
      this.#remove(group, channel)
    );
    for (const group of emptied) await this.#hooks.lastLocalMemberLeft?.(group);
  }

  /**
   * Adds a member; returns true when it was not a member before. The membership is made at
   * once, so a leave or a close asked for after this join undoes it whatever the transport
   * still does; the group's first member then waits for the transport (a Redis SUBSCRIBE). When
   * that fails, this join is undone and the failure thrown.
   */
  async add(group: string, channel: string): Promise<boolean> {
    validateGroupName(group);
    const deliver = this.#receivers.get(channel);
    if (deliver === undefined) return false; // not a live channel of this process
    let members = this.#members.get(group);
    if (members?.has(channel)) return false;
    const first = members === undefined;
    if (members === undefined) {
      members = new Map();
      this.#members.set(group, members);
    }
    members.set(channel, deliver);
    const groups = this.#groupsOf.get(channel);
    if (groups === undefined) this.#groupsOf.set(channel, group);
    else if (typeof groups !== "string") groups.add(group);
    else this.#groupsOf.set(channel, new Set([groups, group]));
    if (first) {
      try {
        await this.#hooks.firstLocalMember?.(group);
      } catch (error) {
        await this.discard(group, channel).catch(() => {}); // the subscription's failure is told
        throw error;
      }
    }
    return true;
  }

  /** Removes a member; returns true when it was a member. */
  async discard(group: string, channel: string): Promise<boolean> {
    validateGroupName(group);
    if (!this.#members.get(group)?.has(channel)) return false;
    if (this.#remove(group, channel)) await this.#hooks.lastLocalMemberLeft?.(group);
    return true;
  }

  // Removes a membership; true when the group has no local member left.
  #remove(group: string, channel: string): boolean {
    const members = this.#members.get(group);
    if (!members?.delete(channel)) return false;
    const groups = this.#groupsOf.get(channel);
    if (groups === group) this.#groupsOf.delete(channel);
    else if (typeof groups === "object") {
      groups.delete(group);
      if (groups.size === 0) this.#groupsOf.delete(channel);
    }
    if (members.size > 0) return false;
    this.#members.delete(group);
    return true;
  }

  /** True when `group` has a local member: its name was checked when that member joined. */
  hasMembers(group: string): boolean {
    return this.#members.has(group);
  }

  /** Delivers to one local channel. */
  deliverToChannel(channel: string, event: LayerEvent): SendResult {
    validateEvent(event);
    // Receivers share it: frozen, its JSON made once (event_json.ts).
    checkedEventJson(event, this.#carriesBytes);
    const deliver = this.#receivers.get(channel);
    if (!deliver) return noListenerResult(channel, event);
    const accepted = safeDeliver(deliver, event);
    return this.#count(accepted ? 1 : 0, accepted ? 0 : 1, event, channel);
  }

  /** Delivers to every local member of a group. */
  deliverToGroup(group: string, event: LayerEvent): SendResult {
    validateEvent(event);
    // Members share it: frozen, its JSON made once (event_json.ts).
    checkedEventJson(event, this.#carriesBytes);
    const members = this.#members.get(group);
    let delivered = 0;
    let dropped = 0;
    // Counted where it was delivered: a Worker or process without a member had none to make.
    if (members && members.size > 0) this.#groupSends++;
    if (members) {
      for (const deliver of members.values()) {
        if (safeDeliver(deliver, event)) delivered++;
        else dropped++;
      }
    }
    return this.#count(delivered, dropped, event, group);
  }

  /**
   * Tells every local member of `group` that the layer may have lost events to it
   * ({@linkcode LAYER_GAP}): no event was sent, so none is counted.
   */
  signalGap(group: string): void {
    const members = this.#members.get(group);
    if (members) { for (const deliver of members.values()) safeDeliver(deliver, GAP_EVENT); }
  }

  /** Adds a listener of the named channel `name`; true when it is the first one here. */
  listen(name: string, deliver: Deliver, ready?: () => Promise<void>): boolean {
    const listeners = this.#listeners.get(name);
    if (listeners !== undefined) {
      listeners.delivers.push(deliver);
      if (ready !== undefined) listeners.readies.set(deliver, ready);
      return false;
    }
    const readies = new Map(ready === undefined ? [] : [[deliver, ready]]);
    this.#listeners.set(name, { delivers: [deliver], next: 0, readies });
    return true;
  }

  /**
   * Resolves once a listener of `name` here is ready for another event (see
   * `ListenOptions.ready`); at once for a listener that does not say, or when none listens.
   */
  namedReady(name: string): Promise<void> {
    const listeners = this.#listeners.get(name);
    if (listeners === undefined || listeners.readies.size < listeners.delivers.length) {
      return Promise.resolve();
    }
    return Promise.race([...listeners.readies.values()].map((ready) => ready()));
  }

  /** Removes a listener of `name`; true when it was the last one here. */
  unlisten(name: string, deliver: Deliver): boolean {
    const listeners = this.#listeners.get(name);
    const index = listeners?.delivers.indexOf(deliver) ?? -1;
    if (listeners === undefined || index < 0) return false;
    listeners.delivers.splice(index, 1);
    listeners.readies.delete(deliver);
    if (listeners.delivers.length > 0) return false;
    this.#listeners.delete(name);
    return true;
  }

  /** True when the named channel `name` has a listener in this process. */
  hasListener(name: string): boolean {
    return this.#listeners.has(name);
  }

  /**
   * Hands an event for the named channel `name` to one of its listeners here, in turn;
   * `null` when none listens here (the caller reports it).
   */
  deliverToNamed(name: string, event: LayerEvent): SendResult | null {
    validateEvent(event);
    // Checked whether anyone listens or not, as the other layers check it at the sender: an
    // event that is not plain data fails here, not only once a worker runs.
    checkedEventJson(event, this.#carriesBytes);
    const listeners = this.#listeners.get(name);
    if (listeners === undefined) return null;
    const deliver = listeners.delivers[listeners.next++ % listeners.delivers.length];
    const accepted = safeDeliver(deliver, event);
    return this.#count(accepted ? 1 : 0, accepted ? 0 : 1, event, name);
  }

  /** Counters for {@linkcode GroupLayer.stats}. */
  stats(): LayerStats {
    return {
      delivered: this.#delivered,
      dropped: this.#dropped,
      groups: this.#members.size,
      channels: this.#receivers.size,
      groupSends: this.#groupSends,
    };
  }

  /** The `limit` groups with the most members here, largest first (for the admin page). */
  groupSizes(limit: number, skip?: (group: string) => boolean): GroupSize[] {
    const sizes: GroupSize[] = [];
    for (const [group, members] of this.#members) {
      if (skip?.(group) !== true) sizes.push({ group, members: members.size });
    }
    return sizes.sort((a, b) => b.members - a.members || (a.group < b.group ? -1 : 1))
      .slice(0, limit);
  }

  /** Counts (and logs) an event lost to a full queue on the way to `target`. */
  countDropped(event: LayerEvent, target: string): SendResult {
    return this.#count(0, 1, event, target);
  }

  #count(delivered: number, dropped: number, event: LayerEvent, target: string): SendResult {
    this.#delivered += delivered;
    if (dropped > 0) {
      this.#dropped += dropped;
      warnDropped(this.#dropWarning, dropped, event.type, target);
    }
    return { delivered, dropped, remoteProcesses: 0 };
  }
}

/**
 * Says that `dropped` events of `type` to `target` were refused by a receiver over capacity, at
 * most once a minute per layer (`warning`): a busy worker's queue, or a room's slow readers,
 * refuse thousands a second, and one client's load would flood the log. The drops meanwhile are
 * counted into the next line, and every one is in the metrics (`channels_layer_dropped_total`).
 */
export function warnDropped(
  warning: QuietWarning,
  dropped: number,
  type: string,
  target: string,
): void {
  const what = `${dropped} "${type}" event(s) to ${target}: receiver over capacity`;
  warning.warn(
    "dropped",
    `Layer dropped ${what} (drops within a minute are counted, not logged)`,
    (count) => `Layer dropped events ${count} times since the last such line; the latest, ${what}`,
  );
}

/** A channel's groups as a list, whether it holds one (a name) or more (a set). */
function groupList(groups: string | Set<string> | undefined): string[] {
  if (groups === undefined) return [];
  return typeof groups === "string" ? [groups] : [...groups];
}

/** The process that created a channel (the part of its name before `!`); `null` if none. */
export function channelProcess(channel: string): string | null {
  const bang = channel.indexOf("!");
  return bang > 0 ? channel.slice(0, bang) : null;
}

/** Delivers `event`; a receiver that throws is logged and counts as a drop for it alone. */
export function safeDeliver(deliver: Deliver, event: LayerEvent): boolean {
  try {
    return deliver(event);
  } catch (error) {
    // A receiver's failure is its own: the other members still get the event.
    log.error("Layer receiver threw", error);
    return false;
  }
}

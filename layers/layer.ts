/**
 * The group layer: how a message reaches a connection, a group of connections, or every
 * process that has members of a group. Channels' channel layer, reduced to what push needs.
 *
 * Semantics every implementation keeps (the conformance suite in
 * `tests/layers/conformance.ts` checks each point):
 *
 * - **Channels.** {@linkcode GroupLayer.newChannel} gives every connection a fresh, unique
 *   channel name and registers the function that receives its events. Only the process that
 *   created a channel receives on it.
 * - **Events** are plain JSON-serialisable objects with a string `type`. Receivers must treat
 *   them as immutable: one object may be handed to every local member.
 * - **Group add is idempotent**: adding a channel twice leaves it a member once.
 * - **Discard of a missing member is a no-op**, as is discarding from an unknown group.
 * - **Delivery is at most once.** An event is never duplicated; it may be lost when a
 *   receiver is over capacity, when a process dies, or (Redis) while the broker is away.
 * - **Ordering**: events sent by one sender to one group arrive at each member in the order
 *   they were sent.
 * - **Overflow**: a receiver that cannot keep up refuses further events (its `deliver`
 *   returns `false`). The event is dropped for that receiver only; the drop is counted in
 *   the returned {@linkcode SendResult}, in {@linkcode LayerStats.dropped}, and logged at
 *   warning level. Senders are never slowed or blocked by a slow receiver.
 * - **Names**: group names are 1 to 200 characters with no control characters
 *   (see {@linkcode validateGroupName}); Unicode and spaces are allowed, so a chat room's
 *   own name can be part of its group name. An invalid name throws a `TypeError`.
 *
 * @example
 * ```ts
 * const channel = layer.newChannel((event) => { console.log(event.type); return true; });
 * await layer.groupAdd("chat.lobby", channel);
 * const { delivered, dropped } = await layer.groupSend("chat.lobby", { type: "chat.message" });
 * await layer.groupDiscard("chat.lobby", channel);
 * layer.closeChannel(channel);
 * ```
 */
export interface GroupLayer {
  /** Creates a channel whose events go to `deliver`; returns its unique name. */
  newChannel(deliver: Deliver): string;
  /** Unregisters a channel and discards it from every group it is in. */
  closeChannel(channel: string): Promise<void>;
  /** Sends one event to one channel, wherever it lives. */
  send(channel: string, event: LayerEvent): Promise<SendResult>;
  /** Adds a channel to a group; adding twice is the same as adding once. */
  groupAdd(group: string, channel: string): Promise<void>;
  /** Removes a channel from a group; a missing member or group is a no-op. */
  groupDiscard(group: string, channel: string): Promise<void>;
  /** Sends one event to every member of a group, local or remote. */
  groupSend(group: string, event: LayerEvent): Promise<SendResult>;
  /** Counters since the layer was opened. */
  stats(): LayerStats;
  /** Stops delivery and releases connections; safe to call twice. */
  close(): Promise<void>;
}

/** An event carried by the layer. */
export interface LayerEvent {
  /** What the event is, e.g. `chat.message`: consumers pick their handler by it. */
  type: string;
  /** Anything else JSON can carry (the Redis wire format reserves keys starting with `__`). */
  [key: string]: unknown;
}

/** Receives one event; returns `false` when the receiver is over capacity (a drop). */
export type Deliver = (event: LayerEvent) => boolean;

/**
 * What a send achieved. `delivered` and `dropped` count this process's receivers exactly.
 * `remoteProcesses` counts other processes the event was handed to; their own deliveries
 * and drops are counted (and logged) there.
 */
export interface SendResult {
  /** Receivers in this process that took the event. */
  delivered: number;
  /** Receivers in this process that were over capacity and did not get it. */
  dropped: number;
  /** Other processes the event was handed to. */
  remoteProcesses: number;
}

/** Counters a layer keeps for metrics and logs. */
export interface LayerStats {
  /** Events this process's receivers took. */
  delivered: number;
  /** Events refused by this process's receivers over capacity. */
  dropped: number;
  /** Groups with at least one member in this process. */
  groups: number;
  /** Open channels in this process. */
  channels: number;
}

const MAX_GROUP_NAME_LENGTH = 200;
// deno-lint-ignore no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

/** Throws a `TypeError` unless `name` is a valid group name (see {@linkcode GroupLayer}). */
export function validateGroupName(name: string): void {
  if (typeof name !== "string" || name.length === 0) {
    throw new TypeError("Group name must be a non-empty string");
  }
  // Counting code points copies the string: only do it when UTF-16 length says it might matter.
  if (name.length > MAX_GROUP_NAME_LENGTH && [...name].length > MAX_GROUP_NAME_LENGTH) {
    throw new TypeError(
      `Group name must be at most ${MAX_GROUP_NAME_LENGTH} characters: "${name.slice(0, 40)}..."`,
    );
  }
  if (CONTROL_CHARACTERS.test(name)) {
    throw new TypeError(`Group name must not contain control characters: ${JSON.stringify(name)}`);
  }
}

/** Throws a `TypeError` unless `event` is an object with a string `type`. */
export function validateEvent(event: LayerEvent): void {
  if (event === null || typeof event !== "object" || typeof event.type !== "string") {
    throw new TypeError('Event must be an object with a string "type"');
  }
}

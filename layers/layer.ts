import { log } from "../telemetry/log.ts";

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
 * - **Events** are plain data with a string `type`: objects, arrays, strings, numbers,
 *   booleans and null, nested at most `MAX_EVENT_DEPTH` (100) deep, with a JSON text; bytes
 *   (`Uint8Array`) only on a layer whose wire keeps them (channels_redis' msgpack). Anything
 *   else (a `Date`, a `Map`, a class's instance, a BigInt, a cycle) is refused at its sender
 *   with a `TypeError`: `checkedEventJson(event)` does that check (`checkedEventJson(event,
 *   true)` lets bytes through), and returns the text to put on the wire.
 * - **Members get frozen events**: one object may be handed to every local member, so it is
 *   frozen deeply first (`checkedEventJson` at the sender; `freezeEvent` on an event decoded
 *   from the wire), and none can change what the others get. Its JSON is then made once.
 * - **Group add is visible once it resolves**: events sent after `groupAdd` resolved, from any
 *   process, reach the new member. (Consumers join a group, then read its history or state:
 *   a layer that subscribed later would lose what was sent between.)
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
 * - **Names**: group names are 1 to 200 characters of well-formed Unicode (no lone
 *   surrogate) with no control characters
 *   (see {@linkcode validateGroupName}); Unicode and spaces are allowed, so a chat room's
 *   own name can be part of its group name. An invalid name is refused with a `TypeError`.
 * - **Failures** of a method that returns a promise (an invalid name, a broker away) reject
 *   that promise. The framework also survives a method that throws instead, and takes it as
 *   the same failure.
 *
 * **Named channels** (Channels' `send("thumbnails", …)` to a `runworker`): a name without `!`
 * (`thumbnails`, `dice`; ASCII letters, digits, `-`, `_`, `.`, under 100 characters, see
 * {@linkcode validateNamedChannel}) is a queue that any process may {@linkcode GroupLayer.listen}
 * on, e.g. a background worker.
 *
 * - **One listener per event**: each event sent to a named channel is taken by exactly one of
 *   its listeners, wherever they run (a queue, not a broadcast); none of the others sees it.
 * - **At most once**: an event is never handed to two listeners; it may be lost when its
 *   listener's process dies holding it, or when the broker is away.
 * - **Ordering**: events one sender sends to a named channel are handed out in the order
 *   sent; a listener gets its events in that order. With several listeners, two events may be
 *   handled at once by different listeners (as with several `runworker` processes).
 * - **Nobody listening is reported, never silent**: a send to a named channel with no
 *   listener anywhere resolves with `delivered: 0` and `noListener: true`, and is logged at
 *   warning level; the event is not queued (channels_redis: see its layer).
 * - **Overflow**: a queue holding its capacity refuses further events: `dropped: 1`, logged.
 *
 * A send to a process channel (a name with `!`, from {@linkcode GroupLayer.newChannel}) that
 * this process knows is gone also says `noListener: true`; one to another process's closed
 * channel may be lost unseen (that process logs nothing either: the channel is gone).
 *
 * @example
 * ```ts
 * import type { GroupLayer } from "@channels/deno";
 *
 * declare const layer: GroupLayer;
 * const channel = layer.newChannel((event) => { console.log(event.type); return true; });
 * await layer.groupAdd("chat.lobby", channel);
 * const { delivered, dropped } = await layer.groupSend("chat.lobby", { type: "chat.message" });
 * await layer.groupDiscard("chat.lobby", channel);
 * layer.closeChannel(channel);
 *
 * // A background worker's queue: each event reaches one listener.
 * const unlisten = await layer.listen("thumbnails", (event) => {
 *   console.log(event);
 *   return true;
 * });
 * const { noListener } = await layer.send("thumbnails", { type: "thumbnail.make", id: 7 });
 * await unlisten();
 * ```
 */
export interface GroupLayer {
  /** Creates a channel whose events go to `deliver`; returns its unique name. */
  newChannel(deliver: Deliver): string;
  /** Unregisters a channel and discards it from every group it is in. */
  closeChannel(channel: string): Promise<void>;
  /**
   * Sends one event to one channel, wherever it lives: a connection's channel (a name with
   * `!`) or a named channel (a queue: one of its listeners gets it).
   */
  send(channel: string, event: LayerEvent): Promise<SendResult>;
  /**
   * Takes events sent to the named channel `name` (a queue shared with every other listener
   * of that name, in any process); resolves once sends from any process can reach it, with
   * the function that stops listening. Throws a `TypeError` for an invalid name.
   */
  listen(name: string, deliver: Deliver, options?: ListenOptions): Promise<Unlisten>;
  /** Adds a channel to a group; adding twice is the same as adding once. */
  groupAdd(group: string, channel: string): Promise<void>;
  /** Removes a channel from a group; a missing member or group is a no-op. */
  groupDiscard(group: string, channel: string): Promise<void>;
  /** Sends one event to every member of a group, local or remote. */
  groupSend(group: string, event: LayerEvent): Promise<SendResult>;
  /**
   * Optional: {@linkcode GroupLayer.groupSend} without the promise, for a layer whose members
   * are all in this process, so the event has reached every one of them when it returns (it
   * throws where `groupSend` rejects). A publisher on the path of every message (the
   * in-process streams) uses it when the layer has it.
   */
  groupSendNow?(group: string, event: LayerEvent): SendResult;
  /**
   * Optional: for an event that came from outside this framework (a Django `group_send` on
   * channels_redis), an id that every process's copy of it shares and no other send has, so
   * that streams can keep it once however many processes received it, and how long after the
   * send a copy may still arrive; `undefined` when the layer cannot tell.
   */
  sendIdOf?(event: LayerEvent): { id: string; copiesWithinMs: number } | undefined;
  /** Counters since the layer was opened. */
  stats(): LayerStats;
  /**
   * The `limit` groups with the most members in this process, largest first, leaving out those
   * `skip` names (optional).
   */
  groupSizes?(limit: number, skip?: (group: string) => boolean): GroupSize[];
  /**
   * True when groups and named channels are shared with Django Channels (channels_redis'
   * format): group names then follow Channels' rules, and apps use Channels' conventions
   * (the chat's `chat_<room>` groups). Absent or false for the other layers.
   */
  readonly channelsCompatible?: boolean;
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

/**
 * The event a layer hands to a group's members in this process when it may have lost events
 * to them: its subscription to the group was lost and is back (a Redis connection restored).
 * A connection takes it for its consumer's `drained` hook, where a stream follower sends again
 * what it missed, read from the stream.
 */
export const LAYER_GAP = "layer.gap";

/** Receives one event; returns `false` when the receiver is over capacity (a drop). */
export type Deliver = (event: LayerEvent) => boolean;

/** How a listener of a named channel takes its events ({@linkcode GroupLayer.listen}). */
export interface ListenOptions {
  /**
   * Resolves once the listener is ready for another event. A layer whose queue lives outside
   * the process (Redis) takes the next event from it only then: the events this listener is
   * not ready for wait there, for another listener, and once that queue is full its sender is
   * told (`dropped: 1`), instead of being taken here and dropped unseen by the sender. The
   * in-process layers hand events over as they are sent and do not use it.
   */
  ready?(): Promise<void>;
}

/** Stops a {@linkcode GroupLayer.listen}; safe to call twice. */
export type Unlisten = () => Promise<void>;

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
  /** Other processes the event was handed to (for a named channel: its shared queue). */
  remoteProcesses: number;
  /**
   * True when the send named a channel nobody listens on, so nobody will get the event: a
   * named channel without listeners, or a channel this process knows is closed.
   */
  noListener?: boolean;
  /**
   * With `noListener`: the event still waits in the channel's shared queue for a listener
   * that does not announce itself (channels_redis: a Django `runworker`, for `expiry` seconds),
   * so it may yet be handled. Do not send it again.
   */
  queued?: boolean;
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
  /**
   * Group events delivered here (sent here or from another process), once per event with a
   * member here.
   */
  groupSends?: number;
}

/** A group and how many members it has in this process. */
export interface GroupSize {
  /** The group's name. */
  group: string;
  /** Its members in this process. */
  members: number;
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
      `Group name must be at most ${MAX_GROUP_NAME_LENGTH} characters: "${
        [...name].slice(0, 40).join("")
      }..."`,
    );
  }
  if (CONTROL_CHARACTERS.test(name)) {
    throw new TypeError(`Group name must not contain control characters: ${JSON.stringify(name)}`);
  }
  // A lone surrogate is no character: Deno KV and Redis write it as U+FFFD, so two such groups
  // (and the one named with U+FFFD) would share one stored history.
  if (!name.isWellFormed()) {
    throw new TypeError(
      `Group name must be well-formed Unicode (no lone surrogates): ${JSON.stringify(name)}`,
    );
  }
}

const MAX_NAMED_CHANNEL_LENGTH = 99;
const NAMED_CHANNEL = /^[a-zA-Z0-9\-_.]+$/;

/** True for the name of a named channel (a queue), false for a connection's (with `!`). */
export function isNamedChannel(channel: string): boolean {
  return !channel.includes("!");
}

/**
 * Throws a `TypeError` unless `name` is a valid named channel: ASCII letters, digits, `-`, `_`
 * and `.`, 1 to 99 characters (Channels' own rule, so Django can address it too).
 */
export function validateNamedChannel(name: string): void {
  if (
    typeof name !== "string" || name.length > MAX_NAMED_CHANNEL_LENGTH || !NAMED_CHANNEL.test(name)
  ) {
    throw new TypeError(
      `Channel name must be 1 to ${MAX_NAMED_CHANNEL_LENGTH} ASCII letters, digits, hyphens, ` +
        `underscores or periods, not ${JSON.stringify(name)}`,
    );
  }
}

/**
 * The counted result of a send nobody will receive, logged: at warning level for a named
 * channel (a worker is missing), at debug level for a connection's (it just closed).
 */
export function noListenerResult(channel: string, event: LayerEvent): SendResult {
  const text =
    `Nobody listens on channel "${channel}": the "${event.type}" event was not delivered`;
  if (isNamedChannel(channel)) log.warn(text);
  else log.debug(text);
  return { delivered: 0, dropped: 0, remoteProcesses: 0, noListener: true };
}

/** Throws a `TypeError` unless `event` is an object with a string `type`. */
export function validateEvent(event: LayerEvent): void {
  if (event === null || typeof event !== "object" || typeof event.type !== "string") {
    throw new TypeError('Event must be an object with a string "type"');
  }
}

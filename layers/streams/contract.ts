/**
 * Retained group streams: a group whose events are kept for a while, each with an offset, so
 * a client that reconnects (to any process or Worker) can say what it saw last and be sent
 * what it missed. Centrifugo's history and recovery, reduced to what a chat room needs.
 *
 * Semantics every implementation keeps (the conformance suite in
 * `tests/layers/streams/conformance.ts` checks each point):
 *
 * - **Offsets.** {@linkcode GroupStreams.publish} appends an event to its group's stream and
 *   gives it the next offset: 1 for a stream's first event, then +1 per event, with no gap
 *   and no repeat, whichever process or Worker publishes. The offset is assigned where the
 *   layer's shared state lives (Redis; the Workers' shared Deno KV; this process).
 * - **Epoch.** Every stream has an epoch, a short random string. It changes when the stream's
 *   history is lost (Redis restarted empty, the KV data removed, a crash before a batch was
 *   written), so an offset is only meaningful with its epoch.
 * - **Delivery.** The event is published to the group on the layer as
 *   `{offset, epoch, ...event}` (`offset` and `epoch` are reserved keys of a streamed event),
 *   so members receive it as they receive any group event. Members of one process receive a
 *   group's streamed events in offset order, except where an implementation says otherwise
 *   (then a reader that sees a gap reads it with {@linkcode GroupStreams.since}).
 * - **Retention.** A stream keeps its last `retention.messages` events and every event younger
 *   than `retention.seconds`, whichever keeps more, but never more than
 *   {@linkcode retainedAtMost} events.
 * - **Reads.** {@linkcode GroupStreams.since} returns every event after a position, in offset
 *   order, when the stream still holds all of them; when the epoch differs or an event after
 *   the position is no longer retained, it returns none, with `complete: false` and a `reason`
 *   (a reader then shows the latest events, read with {@linkcode GroupStreams.latest}).
 *
 * @example
 * ```ts
 * import type { GroupStreams } from "@channels/deno";
 *
 * declare const streams: GroupStreams;
 * const { offset, epoch } = await streams.publish("chat.lobby", { type: "chat.message" });
 * // ... later, a client that saw offset 41 of epoch "k3x9":
 * const { complete, events } = await streams.since("chat.lobby", { epoch: "k3x9", offset: 41 });
 * ```
 */
import type { Histogram } from "../../telemetry/metrics.ts";
import {
  type GroupLayer,
  type LayerEvent,
  type SendResult,
  validateEvent,
  validateGroupName,
} from "../layer.ts";
import { BYTES_REFUSED, freezeSentEvent, holdsBytes } from "../event_json.ts";

/** How much a read of what a client missed may come to (see `GroupStreams.since`). */
export interface SinceOptions {
  /**
   * More than this much of events' JSON is more than the reader can take, counted as the
   * framework counts what a socket holds: a string's length (UTF-16 units, near enough its
   * bytes; see `Connection.sendCapacity`).
   */
  maxBytes?: number;
  /**
   * A page: about this much of the events' JSON at most, and at least one event. A stream may
   * then answer with only the first events after the position; `complete`, `epoch` and `offset`
   * still speak for the whole read, so a reader whose last event is below `offset` reads on
   * from it. A hint, which a stream may ignore and answer with every event. It bounds what a
   * reader holds while it waits to send them: a slow socket catching up, times thousands.
   */
  pageBytes?: number;
}

/** The reason of a read refused because what was missed is more than `maxBytes`. */
export const SINCE_TOO_LARGE = "more was missed than the reader can take";

/** A position in a stream: what a client saw last. */
export interface StreamPosition {
  /** The stream's epoch when the client saw `offset`. */
  epoch: string;
  /** The last offset seen; 0 when nothing was. */
  offset: number;
}

/** An event as a stream keeps and delivers it. */
export interface StreamEvent extends LayerEvent {
  /** Its place in the group's stream: 1, 2, 3... */
  offset: number;
  /** The stream's epoch when it was published. */
  epoch: string;
}

/** What a publish achieved: the event's position, and the layer's result. */
export interface StreamPublished extends SendResult {
  /** The offset the event got. */
  offset: number;
  /** The stream's epoch. */
  epoch: string;
}

/** What a read found. */
export interface StreamRead {
  /** The stream's epoch now. */
  epoch: string;
  /** The stream's latest offset now; 0 when it is empty. */
  offset: number;
  /**
   * True when `events` holds everything after the position asked for (always for `latest`);
   * a `since` that is not complete returns no events.
   */
  complete: boolean;
  /** Why the read is not complete, for logs. */
  reason?: string;
  /** Retained events, oldest first. */
  events: StreamEvent[];
}

/** How long a group kind's stream keeps its events: whichever of the two keeps more. */
export interface StreamRetention {
  /** At least this many of the last events. */
  messages: number;
  /** And every event published less than this long ago (0: none by age). */
  seconds: number;
}

/** Per publish: how long this group kind keeps its events (the streams' default otherwise). */
export interface PublishOptions {
  /** The retention of the group's stream. */
  retention?: StreamRetention;
}

/** Retained group streams; see the module documentation for the semantics. */
export interface GroupStreams {
  /** Appends `event` to the group's stream with the next offset and publishes it. */
  publish(group: string, event: LayerEvent, options?: PublishOptions): Promise<StreamPublished>;
  /**
   * Every event after `position` (`complete: true`) or, when the stream no longer holds all of
   * them, none (`complete: false`, with a `reason`). With `maxBytes`, a stream that can tell
   * before reading them that they come to more (their JSON) may answer incomplete at once, with
   * the reason {@linkcode SINCE_TOO_LARGE}: a hint, which a stream that cannot tell cheaply
   * ignores.
   */
  since(group: string, position: StreamPosition, options?: SinceOptions): Promise<StreamRead>;
  /** The last `count` retained events. */
  latest(group: string, count: number): Promise<StreamRead>;
  /**
   * Optional: keeps `kept` (what `received` is stored as) in the group's stream, once however
   * many processes call it for their copy of `received`, an event a publisher outside this
   * framework sent to every member (a Django `group_send` on channels_redis, which its own
   * members already had). Every caller gets the one stored event back, offset and epoch in it,
   * for its own members only; nothing is sent through the layer. `null` when the layer cannot
   * tell `received`'s copies apart from another send (see `GroupLayer.sendIdOf`): send it as it
   * came.
   */
  keepForeign?(
    group: string,
    received: LayerEvent,
    kept: LayerEvent,
    options?: PublishOptions,
  ): Promise<StreamEvent | null>;
  /**
   * Optional, with `keepForeign`: an identity of `received`, an event from outside, that every
   * process computes alike for its own copy (`undefined` when the layer cannot tell): what it is
   * kept as can carry an id made from it, the same whether the stream kept it or a process that
   * could not keep it sent it as it came.
   */
  foreignIdOf?(received: LayerEvent): string | undefined;
  /** Writes what waits to be written and releases connections; safe to call twice. */
  close(): Promise<void>;
  /**
   * How long writes to the history took, in seconds, for the metrics: a batch written to the
   * store (in-process streams), one publish's round trip (Redis), or one commit of one or more
   * publishes (Deno KV).
   */
  readonly writeSeconds?: Histogram;
  /**
   * Writes to the history that failed, for the metrics: batches of the in-process streams, each
   * tried again at the next round.
   */
  readonly writeFailures?: number;
}

/** The retention of chat rooms unless configured: 1,000 messages or 10 minutes. */
export const DEFAULT_RETENTION: Readonly<StreamRetention> = Object.freeze({
  messages: 1000,
  seconds: 600,
});

/** The hard bound on a stream's length whatever its age window: 10x its message window. */
export function retainedAtMost(retention: StreamRetention): number {
  return Math.max(10 * retention.messages, 10_000);
}

/**
 * How long a stream read but never published to keeps its epoch in the shared store (Redis,
 * Deno KV), in ms: a page left open in an empty room recovers completely after a restart for
 * that long, and a room named once and never used leaves nothing behind for good.
 */
export const EMPTY_STREAM_KEPT_MS = 24 * 60 * 60 * 1000;

/**
 * How long a group's stored history outlives its last publish unless configured
 * (`HISTORY_IDLE_DAYS`), in ms: 30 days. Group names are free, so a room written in once and
 * left must not keep its window in the store for good. Redis drops the group's keys that long
 * after its last publish; Deno KV drops each stored event that long after it was written, and
 * the group's record with its last events.
 */
export const DEFAULT_IDLE_EXPIRY_MS = 30 * 24 * 60 * 60 * 1000;

/** The longest `idleExpiryMs` the streams take: ten years, as Deno KV keeps its expiries. */
export const MAX_IDLE_EXPIRY_MS = 10 * 365 * 24 * 60 * 60 * 1000;

/** Refuses an idle expiry that is not a whole number of ms from 1 to ten years. */
export function validateIdleExpiry(ms: number): number {
  if (!Number.isSafeInteger(ms) || ms < 1 || ms > MAX_IDLE_EXPIRY_MS) {
    throw new RangeError(
      `idleExpiryMs must be a whole number of ms from 1 to ${MAX_IDLE_EXPIRY_MS}`,
    );
  }
  return ms;
}

/** A fresh epoch: 8 random base-36 characters. */
export function newEpoch(): string {
  const [high, low] = crypto.getRandomValues(new Uint32Array(2));
  return (high.toString(36) + low.toString(36)).slice(0, 8).padStart(8, "0");
}

/**
 * A publish whose outcome is unknown: it went to the shared store, but its answer never came (a
 * timeout, or the connection lost after the write). The event may be stored; a reader that
 * recovers sees it if it is. Publishing it again may store it twice.
 */
export class PublishUnconfirmedError extends Error {
  /** `message` says what was lost; `options.cause` is the connection's own error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PublishUnconfirmedError";
  }
}

/**
 * A publish that was stored (as `offset`) but that the layer failed to hand to the group's
 * members: unconfirmed to them, never "not sent" (sent again it would be stored twice). They
 * get it from the stream when they next read it (a recovery, the gap the next event shows).
 */
export class PublishUndeliveredError extends PublishUnconfirmedError {
  /** Its offset in the group's stream. */
  readonly offset: number;
  /** `message` says what failed; `options.cause` is the layer's own error. */
  constructor(offset: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PublishUndeliveredError";
    this.offset = offset;
  }
}

/** The error of a publish stored as `offset` of `group` that its layer failed to hand on. */
export function undelivered(
  group: string,
  offset: number,
  error: unknown,
): PublishUndeliveredError {
  return new PublishUndeliveredError(
    offset,
    `Stored as offset ${offset} of "${group}", but the layer failed to hand it to the members`,
    { cause: error },
  );
}

/**
 * Hands `event`, stored as its `offset` and `epoch` of `group`, to `layer`'s members; a send that
 * fails is {@linkcode undelivered}, never "not sent" (sent again, it would be stored twice).
 */
export function sendStored(
  layer: Pick<GroupLayer, "groupSend">,
  group: string,
  event: StreamEvent,
): Promise<StreamPublished> {
  const { offset, epoch } = event;
  return Promise.try(() => layer.groupSend(group, event)).then(
    (result) => ({ ...result, offset, epoch }),
    (error) => Promise.reject(undelivered(group, offset, error)),
  );
}

/** `event` without the keys a stream reserves, as the stream will store it. */
export function withoutReserved(event: LayerEvent): LayerEvent {
  if (!("offset" in event) && !("epoch" in event)) return event;
  const { offset: _offset, epoch: _epoch, ...rest } = event;
  return rest as LayerEvent;
}

/** A read that found nothing to return because the position cannot be served. */
export function incomplete(epoch: string, offset: number, reason: string): StreamRead {
  return { epoch, offset, complete: false, reason, events: [] };
}

/**
 * Checks a read of everything after `position`: the reasons it cannot be complete, or `null`
 * when the retained events after it, the first of which has `firstOffset`, are all of them.
 */
export function sinceVerdict(
  position: StreamPosition,
  current: { epoch: string; offset: number },
  firstOffset: number | undefined,
): string | null {
  if (position.epoch !== current.epoch) return "the stream's epoch changed";
  if (position.offset > current.offset) return "the position is ahead of the stream";
  if (position.offset === current.offset) return null;
  if (firstOffset !== position.offset + 1) return "messages after the position expired";
  return null;
}

/** Throws a `TypeError` unless `position` is an epoch and a whole offset of 0 or more. */
export function validatePosition(position: StreamPosition): void {
  if (typeof position?.epoch !== "string" || !Number.isSafeInteger(position.offset)) {
    throw new TypeError("A stream position is an epoch string and a whole offset");
  }
  if (position.offset < 0) throw new TypeError("A stream offset is 0 or more");
}

/**
 * Throws a `TypeError` for what no stream may publish: an invalid group name, an event without
 * a string `type`, a bad retention. Checked before the event takes an offset.
 */
export function validatePublish(
  group: string,
  event: LayerEvent,
  options: PublishOptions | undefined,
): void {
  validateGroupName(group);
  validateEvent(event);
  validateRetention(options?.retention);
}

/**
 * Throws a `TypeError` when `event` holds bytes, or anything else that is not plain data: a
 * stream keeps JSON, and its history and recovery would give bytes back as `{"0": …}`. For a
 * stream that does not freeze the event itself (the in-process one checks what it froze).
 */
export function validateStreamedData(event: LayerEvent): void {
  if (holdsBytes(freezeSentEvent(event))) throw new TypeError(STREAM_BYTES_REFUSED);
}

/** Why a publish with bytes inside is refused. */
export const STREAM_BYTES_REFUSED = `${BYTES_REFUSED} (a stream keeps JSON)`;

/**
 * Throws a `TypeError` unless `retention` (when given) keeps a whole number of 0 or more
 * messages and 0 or more seconds: checked before a publish takes its offset.
 */
export function validateRetention(retention: StreamRetention | undefined): void {
  if (retention === undefined) return;
  const { messages, seconds } = retention ?? {};
  if (!Number.isSafeInteger(messages) || messages < 0) {
    throw new TypeError(`A retention keeps a whole number of 0 or more messages, not ${messages}`);
  }
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) {
    throw new TypeError(`A retention keeps 0 or more seconds, not ${seconds}`);
  }
}

/** Throws a `TypeError` unless `count` (of events to read) is a whole number of 0 or more. */
export function validateCount(count: number): void {
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new TypeError(`A count of events is a whole number of 0 or more, not ${count}`);
  }
}

/**
 * The server's side of the stream protocol the client module speaks (`client/channels_client.js`:
 * recover after a reconnect, each message once, in order), for sockets that follow a retained
 * group of {@linkcode GroupStreams}. The chat rooms are built on it; so can any consumer be.
 *
 * - **Entry** ({@linkcode StreamFollower.enter}, from `connect`, after `groupAdd`), by the
 *   socket's query:
 *   - `?epoch=E&since=N` (a client back after a lost connection):
 *     `{"type": "recovered", "complete": true, "epoch", "offset"}`, then every event after N,
 *     each frame marked `"recovered": true`. When that cannot be done whole (the events are no
 *     longer kept, the epoch is gone, or they are more than the socket can hold), `"complete":
 *     false` with a `reason`, then the last events as history.
 *   - `?stream=1` (a first visit of a client that follows offsets):
 *     `{"type": "recovered", "complete": true, "fresh": true, "epoch", "offset"}`, then the
 *     history.
 *   - Neither (a client that knows nothing of offsets): the history alone.
 *   History frames are marked `"history": true`.
 * - **Live** ({@linkcode StreamFollower.deliver}, from the group's event handler): each offset
 *   once, in order. Events that come before the entry is done wait for it. An event past a gap
 *   (processes' or Workers' publishes that crossed, events dropped for a slow socket) makes the
 *   socket read the gap from the stream; `deliver` returns at once all the same, so a burst never
 *   piles up behind the read (the stream holds every event; the socket holds at most 128 while
 *   it reads). An event of another epoch (the history was lost, as when Redis restarted empty),
 *   or a gap the stream no longer keeps, makes the socket enter again from where it was: a client
 *   that follows offsets is told `"complete": false` then and there and gets the latest events
 *   as history; any other socket gets the latest events it has not had. Stragglers of an epoch
 *   left behind are dropped. A stream that cannot be read (its store is away) lets the socket go
 *   on from the furthest event it saw, and a client that follows offsets is told
 *   `"complete": false`.
 *
 * Events that are not streamed (no `offset` and `epoch`, such as one sent from Django) are sent
 * as they come; but with `keepForeign`, on streams that can keep them (Redis streams under
 * `LAYER=channels_redis`), an event a Django `group_send` sent is kept in the stream once,
 * however many processes received it, and each process sends its sockets the kept event, with
 * its offset, instead: so it is in the history and recovered like any other.
 *
 * @example
 * ```ts
 * import type { Consumer, GroupStreams } from "@channels/deno";
 * import { ackFor, ProtocolError, refOf, StreamFollowing } from "@channels/deno";
 *
 * export function notesConsumer(streams: GroupStreams): Consumer {
 *   const following = new StreamFollowing(streams); // one per route: its sockets share reads
 *   return (conn) => {
 *     const follower = following.follow(conn, "notes");
 *     return {
 *       async connect() {
 *         await conn.groupAdd("notes");
 *         await follower.enter();
 *       },
 *       // `stream.send({ text }, { ack: true })` from the client module: answered by its `ref`.
 *       async receiveJson(value) {
 *         const text = (value as { text?: unknown } | null)?.text;
 *         if (typeof text !== "string") {
 *           throw new ProtocolError('Expected {"text": "…"}', undefined, { ref: refOf(value) });
 *         }
 *         const published = await streams.publish("notes", { type: "note", text });
 *         const ack = ackFor(value, published);
 *         if (ack !== null) conn.sendJson(ack);
 *       },
 *       events: { note: (event) => follower.deliver(event) },
 *       drained: () => follower.resume(), // what was dropped while it read too slowly
 *     };
 *   };
 * }
 * ```
 */
import type { LayerEvent } from "../layers/layer.ts";
import type { GroupStreams, StreamPublished, StreamRetention } from "../layers/streams/contract.ts";
import type { Connection } from "./consumer.ts";
import { type FrameRef, refOf } from "./close_codes.ts";
import { type FollowedRoute, followedRoute } from "./_followed_route.ts";
import { Follower, type StreamFollower } from "./_follower.ts";
import { RECOVERED } from "./_stream_entry.ts";

export { RECOVERED };

/** How many of a stream's last events a socket that cannot recover sees, unless configured. */
export const DEFAULT_HISTORY_SIZE = 50;

/** How the sockets of one route follow their streams. */
export interface StreamFollowingOptions {
  /** How many of the last events a fresh or unrecoverable socket sees (default 50). */
  historySize?: number;
  /**
   * The frame an event is sent as, or `null` to skip it. Default: the event itself, which the
   * layer serialises once for every member; a function that returns the same object for the same
   * event (a `WeakMap`) keeps that.
   */
  frameOf?: (event: LayerEvent, conn: Connection) => LayerEvent | null;
  /**
   * Each frame is its event, or one at least as long: `frameOf` adds to events, and never
   * skips nor shortens one. A reconnect that missed more than the socket can hold is then
   * refused before the events are read (the streams are told `maxBytes`), which bounds what one
   * handshake costs in a room of long messages. Default: `true` without a `frameOf`, else
   * `false` (every missed event is read, and the frames it makes are measured).
   */
  framesKeepEvents?: boolean;
  /**
   * What an event that came without an offset from outside this framework (a Django
   * `group_send`) is kept as in `group`'s stream, or `null` to send it as it came, not kept.
   * Used only where the streams can keep such events once (`GroupStreams.keepForeign`).
   * `foreignId` is the event's identity, the same in every process that got a copy (see
   * `GroupStreams.foreignIdOf`): an id made from it is the same on the kept copy and on one a
   * process sends as it is when it cannot keep it. Default: none is kept.
   */
  keepForeign?: (
    event: LayerEvent,
    group: string,
    foreignId: string | undefined,
  ) => LayerEvent | null;
  /** What the stream keeps of the events kept with `keepForeign` (default: its own default). */
  retention?: StreamRetention;
}

/**
 * The sockets of one route that follow streams: make one per route, and a
 * {@linkcode StreamFollower} per socket with {@linkcode StreamFollowing.follow}. Sockets of one
 * group that need the same read while one is under way (a gap, a lost history) share it.
 */
export class StreamFollowing {
  readonly #route: FollowedRoute;

  /** Sockets that follow `streams`. */
  constructor(streams: GroupStreams, options: StreamFollowingOptions = {}) {
    this.#route = followedRoute(streams, {
      ...options,
      historySize: options.historySize ?? DEFAULT_HISTORY_SIZE,
    });
  }

  /** A follower of `group` for the socket `conn` (its `enter()` checks the group's name). */
  follow(conn: Connection, group: string): StreamFollower {
    return new Follower(this.#route, conn, group);
  }
}

export type { StreamFollower };

/** What tells a client its send was stored: the frame's `ref`, with the message's position. */
export interface AckFrame {
  /** Always "ack". */
  type: "ack";
  /** The `ref` of the frame it answers. */
  ref: FrameRef;
  /** The stored message's offset in its stream. */
  offset: number;
  /** The stream's epoch. */
  epoch: string;
}

/**
 * The ack a client's frame asked for (`"ack": true` and a valid `ref`, as the client module's
 * `send(data, { ack: true })` sends it), for the message published from it; `null` when it
 * asked for none. Send it with `conn.sendJson` once `streams.publish` resolved: the client's
 * send resolves with it, and without it rejects after its `ackTimeoutMs` (10 s), unsure.
 */
export function ackFor(frame: unknown, published: StreamPublished): AckFrame | null {
  if ((frame as { ack?: unknown } | null)?.ack !== true) return null;
  const ref = refOf(frame);
  if (ref === undefined) return null;
  return { type: "ack", ref, offset: published.offset, epoch: published.epoch };
}

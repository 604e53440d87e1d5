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
 *   (processes' or Workers' publishes that crossed, events dropped for a slow socket) waits for
 *   the gap to be read from the stream. An event of another epoch (the history was lost, as when
 *   Redis restarted empty) makes the socket enter again from where it was: a client that follows
 *   offsets is told `"complete": false` then and there, and every socket gets the new epoch's
 *   latest events, in order.
 *
 * Events that are not streamed (no `offset` and `epoch`, such as one sent from Django) are sent
 * as they come.
 *
 * @example
 * ```ts
 * import type { Consumer, GroupStreams } from "@channels/deno";
 * import { StreamFollowing } from "@channels/deno";
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
 *       async receiveJson(value) {
 *         await streams.publish("notes", { type: "note", text: String(value) });
 *       },
 *       events: { note: (event) => follower.deliver(event) },
 *     };
 *   };
 * }
 * ```
 */
import type { LayerEvent } from "../layers/layer.ts";
import type { GroupStreams, StreamRead } from "../layers/streams/contract.ts";
import { log } from "../telemetry/log.ts";
import type { Connection } from "./consumer.ts";
import {
  enterStream,
  followsOffsets,
  type FrameOf,
  positionOf,
  type StreamReads,
} from "./_stream_entry.ts";

export { RECOVERED } from "./_stream_entry.ts";

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
    this.#route = {
      streams,
      historySize: options.historySize ?? DEFAULT_HISTORY_SIZE,
      frameOf: options.frameOf ?? ((event) => event),
      liveReads: sharedReads(streams),
    };
  }

  /** A follower of `group` for the socket `conn`. */
  follow(conn: Connection, group: string): StreamFollower {
    return new Follower(this.#route, conn, group);
  }
}

/** One socket's place in one group's stream; see the module documentation. */
export interface StreamFollower {
  /**
   * Sends what the socket's query asks for (recovery, or history), then the events that came
   * meanwhile. Call it once, after joining the group, so that nothing falls between the two.
   * `query` is the socket's, for a caller that parsed it already.
   */
  enter(query?: URLSearchParams): Promise<void>;
  /** Sends a live event of the group: each offset once, in order (see the module). */
  deliver(event: LayerEvent): void | Promise<void>;
}

/** What the followers of one route share. */
interface FollowedRoute {
  /** The streams the entry reads: not shared, see `liveReads`. */
  readonly streams: GroupStreams;
  readonly historySize: number;
  readonly frameOf: FrameOf;
  /**
   * Reads for sockets already in their group, shared while under way. Only for those: they
   * receive live whatever a shared read started too early to hold, which an entering socket,
   * not yet a member when the read began, would not.
   */
  readonly liveReads: StreamReads;
}

class Follower implements StreamFollower {
  readonly #route: FollowedRoute;
  readonly #conn: Connection;
  readonly #group: string;
  // The position the socket is at: what it sent last. Unknown (-1) until the stream is read.
  #epoch = "";
  #last = -1;
  /** Events that arrive before the entry is done wait for it. */
  #early: LayerEvent[] | null = [];

  constructor(route: FollowedRoute, conn: Connection, group: string) {
    this.#route = route;
    this.#conn = conn;
    this.#group = group;
  }

  async enter(query: URLSearchParams = this.#conn.scope.query): Promise<void> {
    const read = await this.#enterFrom(positionOf(query), query.get("stream") === "1", false);
    this.#epoch = read.epoch;
    this.#last = read.offset;
    // Drained before live events go straight through: a gap read here keeps them waiting.
    for (let event = this.#early?.shift(); event !== undefined; event = this.#early?.shift()) {
      await this.#send(event);
    }
    this.#early = null;
  }

  deliver(event: LayerEvent): void | Promise<void> {
    const early = this.#early;
    if (early !== null) early.push(event);
    else return this.#send(event);
  }

  #send(event: LayerEvent): void | Promise<void> {
    const offset = event.offset;
    if (typeof offset === "number" && typeof event.epoch === "string") {
      if (event.epoch !== this.#epoch) return this.#reenter(event);
      if (offset <= this.#last) return; // sent already (replayed, or read to fill a gap)
      if (offset > this.#last + 1) return this.#fillGap(event);
      this.#last = offset;
    }
    const frame = this.#route.frameOf(event, this.#conn);
    if (frame !== null) this.#conn.sendJson(frame);
  }

  #enterFrom(
    position: { epoch: string; offset: number } | null,
    wantsStream: boolean,
    live: boolean,
  ): Promise<StreamRead> {
    const route = this.#route;
    return enterStream(this.#conn, {
      reads: live ? route.liveReads : route.streams,
      group: this.#group,
      position,
      wantsStream,
      historySize: route.historySize,
      frameOf: route.frameOf,
    });
  }

  // What lies between is read from the stream, once for every socket of the group that needs it.
  async #fillGap(event: LayerEvent): Promise<void> {
    try {
      const read = await this.#route.liveReads.since(this.#group, {
        epoch: this.#epoch,
        offset: this.#last,
      });
      if (read.complete) {
        for (const missed of read.events) {
          if (missed.offset < (event.offset as number)) this.#send(missed);
        }
      }
    } catch (error) {
      log.warn(`Stream of "${this.#group}": a gap could not be read`, error);
    }
    this.#last = Math.max(this.#last, (event.offset as number) - 1);
    this.#send(event);
  }

  // What this socket saw cannot be followed on from: it enters again, as a client back with a
  // position whose epoch is gone does. The new epoch's latest events hold this one and any
  // that crossed it on the way.
  async #reenter(event: LayerEvent): Promise<void> {
    const follows = followsOffsets(this.#conn.scope.query);
    let read: StreamRead;
    try {
      const position = follows ? { epoch: this.#epoch, offset: this.#last } : null;
      read = await this.#enterFrom(position, false, true);
    } catch (error) {
      // Followed on from this event: what came before it in the new epoch is not known.
      log.warn(`Stream of "${this.#group}": its new epoch could not be read`, error);
      this.#epoch = event.epoch as string;
      this.#last = (event.offset as number) - 1;
      return this.#send(event);
    }
    this.#epoch = read.epoch;
    this.#last = read.offset;
    // Not of the epoch read: a straggler of one that is over.
    if (event.epoch === read.epoch) this.#send(event);
  }
}

function sharedReads(streams: GroupStreams): StreamReads {
  const reads = new Map<string, Promise<StreamRead>>();
  const shared = (key: string, read: () => Promise<StreamRead>) => {
    let pending = reads.get(key);
    if (pending === undefined) {
      pending = read();
      reads.set(key, pending);
      pending.finally(() => reads.delete(key)).catch(() => {});
    }
    return pending;
  };
  return {
    since: (group, position) =>
      shared(
        `since\n${position.epoch}\n${position.offset}\n${group}`,
        () => streams.since(group, position),
      ),
    latest: (group, count) =>
      shared(`latest\n${count}\n${group}`, () => streams.latest(group, count)),
  };
}

/**
 * One socket's follower of one group's stream: what `StreamFollowing.follow` returns (see
 * `stream_follower.ts` for the protocol). Its own file: the public module keeps the options and
 * the documentation, this one the ordering, the gap reads and the replays behind them.
 */
import { type LayerEvent, validateGroupName } from "../layers/layer.ts";
import type { StreamEvent, StreamRead } from "../layers/streams/contract.ts";
import { log } from "../telemetry/log.ts";
import { CloseCode } from "./close_codes.ts";
import { logConsumerFailure, warnNotInStream } from "./_connection_log.ts";
import { waitForRoom } from "./_socket_room.ts";
import { WebSocketConnection } from "./_connection.ts";
import type { Connection } from "./consumer.ts";
import type { FollowedRoute } from "./_followed_route.ts";
import { frameBytes } from "./_send_checks.ts";
import { throughOutage } from "./_through_outage.ts";
import { eventJson } from "../layers/event_json.ts";
import { enterStream, followsOffsets, positionOf, RECOVERED } from "./_stream_entry.ts";
import { HELD_AT_MOST, HeldEvents, IN_FLIGHT_MS } from "./_held_events.ts";
import { noteHeldBeforeEntry } from "./_consumer_failures.ts";

/** One socket's place in one group's stream; see the module documentation. */
export interface StreamFollower {
  /**
   * Sends what the socket's query asks for (recovery, or history), then the events that came
   * meanwhile. Call it once, after joining the group, so that nothing falls between the two (a
   * second call throws). `query` is the socket's, for a caller that parsed it already. Events
   * given to `deliver` before it wait for it: a follower never entered sends nothing.
   */
  enter(query?: URLSearchParams): Promise<void>;
  /**
   * Sends a live event of the group: each offset once, in order (see the module). It returns
   * at once, even when a gap is read: the socket's events never wait behind it.
   */
  deliver(event: LayerEvent): void;
  /**
   * Sends what the socket missed since the last event it sent: the events its connection
   * dropped while it read too slowly. Call it from the consumer's `drained` hook. Each frame
   * waits for room in the socket (`sendCapacity`), so the replay itself never overflows it; it
   * returns at once, as `deliver` does.
   */
  resume(): void;
}

/** How long a socket waits before it reads its stream again after a failed read, each time. */
const READ_RETRY_MS = [100, 300, 900];

/** A {@linkcode StreamFollower} of `group` for `conn`, on `route`. */
export class Follower implements StreamFollower {
  readonly #route: FollowedRoute;
  readonly #conn: Connection;
  readonly #group: string;
  // The position the socket is at: what it sent last. Unknown (-1) until the stream is read.
  #epoch = "";
  #last = -1;
  /** The epoch the socket left for a newer one: its stragglers are dropped. */
  #retired = "";
  #streamEpoch = ""; // the epoch the stream answered its last read with
  /** While the stream is read (the entry, a gap, a new epoch); `null` while the socket is live. */
  #held: HeldEvents | null = new HeldEvents();
  /** Reads in a row that got no nearer to the furthest event held. */
  #stalls = 0;
  /** `resume()` came while the stream was being read: it runs once that read is done. */
  #resumeAfterRead = false;
  #entered = false;
  /** Events without an offset that came while the stream was read; `null` until one does. */
  #loose: LayerEvent[] | null = null;

  constructor(route: FollowedRoute, conn: Connection, group: string) {
    this.#route = route;
    this.#conn = conn;
    this.#group = group;
  }

  async enter(query: URLSearchParams = this.#conn.scope.query): Promise<void> {
    // A second entry would send the history again, in the middle of the live events.
    if (this.#entered) throw new Error("StreamFollower.enter() was called already: call it once");
    validateGroupName(this.#group); // a `TypeError`, as `groupAdd` gives
    this.#entered = true;
    const read = await this.#enterFrom(positionOf(query), query.get("stream") === "1", false);
    this.#epoch = read.epoch;
    this.#last = read.offset;
    await this.#catchUp(); // with what came during the entry
  }

  deliver(event: LayerEvent): void {
    const offset = event.offset;
    if (typeof offset !== "number" || typeof event.epoch !== "string") {
      const keep = this.#route.keptForeign;
      if (keep === null) return this.#sendLoose(event); // not streamed: nothing to order it by
      // From Django: its copy kept in the stream comes instead, with its offset. What is not
      // kept comes back null and goes as it came, or comes back as it would have been kept,
      // without an offset, and goes so. A throw here reaches no hook.
      void keep(event, this.#group).then((kept) => {
        if (kept === null) this.#sendLoose(event);
        else if (typeof kept.offset !== "number") this.#sendLoose(kept);
        else this.deliver(kept);
      }).catch((error) => this.#failed(error));
      return;
    }
    const held = this.#held;
    if (held !== null) return this.#hold(event, held);
    if (event.epoch === this.#epoch) {
      if (offset <= this.#last) return; // sent already (replayed, or read to fill a gap)
      if (offset === this.#last + 1) {
        this.#last = offset;
        return this.#sendFrame(event);
      }
    } else if (event.epoch === this.#retired) return;
    // A gap (publishes that crossed, events dropped for a slow socket) or another epoch: the
    // stream is read, and this handler returns at once, so events never pile up behind it.
    this.#hold(event, this.#held = new HeldEvents());
    void this.#catchUp().catch((error) => this.#failed(error));
  }

  resume(): void {
    if (this.#last < 0) return; // not entered yet: the entry sends everything
    if (this.#held !== null) {
      this.#resumeAfterRead = true; // the read under way knows nothing of what was dropped
      return;
    }
    this.#held = new HeldEvents();
    void this.#replayMissed().then(() => this.#catchUp()).catch((error) => this.#failed(error));
  }

  // Everything after the position, each frame once there is room for it; what cannot follow on
  // from it (no longer kept, another epoch) enters again, as a gap would.
  async #replayMissed(): Promise<void> {
    const epoch = this.#epoch;
    // What it missed cannot be sent without the stream: given up, it reconnects and recovers.
    await throughOutage(this.#conn, async () => {
      // A retry reads on from what was sent already.
      if (!await this.#sendPagesFrom(epoch)) await this.#reenter();
    }, {
      log: `Stream of "${this.#group}" could not be read to resend what was dropped`,
      reason: "Missed messages could not be sent: reconnect",
    });
  }

  // Reads what follows the position in `epoch` and sends it, page by page, up to the stream's
  // offset at the last read: a page is about what the socket holds, so a socket far behind, or
  // one that stopped reading, holds one page while it waits for room, not all it missed (times
  // every such socket). False when the stream cannot follow on from the position (another
  // epoch, or no longer kept); true once sent, or once the socket closed.
  async #sendPagesFrom(epoch: string): Promise<boolean> {
    const pageBytes = this.#conn.sendBound;
    for (;;) {
      const last = this.#last;
      const read = await this.#route.liveReads.since(this.#group, { epoch, offset: last }, {
        pageBytes,
      });
      this.#streamEpoch = read.epoch;
      if (!read.complete || read.epoch !== epoch) return false;
      if (!await this.#sendOnFrom(read.events)) return true;
      // All sent, or a page that brought nothing on (a stream that ignores the hint has sent
      // all it had): done.
      if (this.#last >= read.offset || this.#last === last) return true;
    }
  }

  // Sends the events of a read of this epoch that follow the position, in order, each once
  // there is room for it; false when the socket closed first.
  async #sendOnFrom(events: readonly StreamEvent[]): Promise<boolean> {
    for (const event of events) {
      if (event.offset <= this.#last) continue;
      if (!await waitForRoom(this.#conn, this.#bytesOf(event))) return false;
      this.#last = event.offset;
      this.#sendFrame(event);
    }
    return true;
  }

  // The room `event`'s frame needs in the socket: at most the whole bound.
  #bytesOf(event: LayerEvent): number {
    const frame = this.#frameOf(event);
    if (frame === null) return 0;
    try {
      return Math.min(frameBytes(eventJson(frame)), this.#conn.sendBound);
    } catch (error) {
      this.#failed(error); // no JSON (a BigInt, a cycle): the app's frameOf
      return 0;
    }
  }

  // An event without an offset: sent now, or, while the stream is read, once that read is done
  // (it must not overtake what came before it, held meanwhile). At most as many as are held.
  #sendLoose(event: LayerEvent): void {
    if (this.#held === null) return this.#sendFrame(event);
    const loose = this.#loose ??= [];
    if (loose.length < HELD_AT_MOST) loose.push(event);
    else log.warn(`Dropped a "${event.type}" event to "${this.#group}": too many wait for a read`);
  }

  #sendFrame(event: LayerEvent): void {
    const frame = this.#frameOf(event);
    if (frame === null) return;
    try {
      this.#conn.sendJson(frame);
    } catch (error) {
      this.#failed(error); // a frame that is no JSON (a BigInt, a cycle): the app's frameOf
    }
  }

  // The app's `frameOf`. Much of a follower runs on its own (a gap read, a replay), where a
  // throw would reach no hook and end the process as an unhandled rejection: a throw is the
  // consumer's failure wherever it happens, as a hook's throw is.
  #frameOf(event: LayerEvent): LayerEvent | null {
    try {
      return this.#route.frameOf(event, this.#conn);
    } catch (error) {
      this.#failed(error);
      return null;
    }
  }

  // The consumer failed, as when a hook throws: logged, only this socket closed, with 1011, and
  // a test's communicator told why. Reads under way end, since the connection is closed.
  #failed(error: unknown): void {
    if (this.#conn.closed) return;
    if (WebSocketConnection.fail(this.#conn, error)) return;
    logConsumerFailure(this.#conn.scope, error); // a connection of the app's own making
    this.#conn.close(CloseCode.INTERNAL_ERROR, "Internal server error");
  }

  /** The group, while this follower waits for its `enter()`; else `null`. */
  get unenteredGroup(): string | null {
    return this.#entered ? null : this.#group;
  }

  #hold(event: LayerEvent, held: HeldEvents): void {
    if (event.epoch !== this.#retired) held.add(event, this.#epoch);
    if (!this.#entered) noteHeldBeforeEntry(WebSocketConnection.reportKeyOf(this.#conn), this);
  }

  // Reads the stream until the socket has everything up to the furthest event seen, then goes
  // live. Reads of the same gap are shared by the group's sockets.
  async #catchUp(): Promise<void> {
    for (let attempt = 0;; attempt++) {
      try {
        while (this.#sendHeld()) await this.#readOn();
        break;
      } catch (error) {
        if (this.#conn.closed) break;
        // The store may be coming back (Redis restarted, and its subscriber came back first).
        if (attempt === READ_RETRY_MS.length) {
          this.#giveUp(error);
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, READ_RETRY_MS[attempt]));
      }
    }
    this.#held = null;
    this.#stalls = 0;
    const loose = this.#loose;
    this.#loose = null;
    for (const event of loose ?? []) this.#sendFrame(event);
    if (this.#resumeAfterRead) {
      this.#resumeAfterRead = false;
      this.resume();
    }
  }

  // Sends the held events that follow on from the position; true while the furthest event
  // seen is still ahead of it.
  #sendHeld(): boolean {
    const held = this.#held!;
    let kept = 0;
    for (const event of held.sorted()) {
      // Another epoch's is read from the stream (a re-entry); one sent already is done with.
      if (event.epoch !== this.#epoch || (event.offset as number) <= this.#last) continue;
      // The next one goes now, if the socket has room for it. Any other is kept: beyond a gap,
      // or with no room yet (the socket still takes in a replay), the stream read below sends
      // it, paced, or, if the stream no longer has it, it is sent from here.
      if (event.offset === this.#last + 1 && this.#conn.sendCapacity >= this.#bytesOf(event)) {
        this.#last++;
        this.#sendFrame(event);
      } else held.events[kept++] = event;
    }
    held.events.length = kept;
    const ahead = held.ahead;
    if (ahead === null || this.#conn.closed) return false;
    if (ahead.epoch === this.#epoch) return (ahead.offset as number) > this.#last;
    return ahead.epoch !== this.#retired;
  }

  // One read towards the furthest event seen. Each read must get nearer to it: one the stream
  // cannot bring nearer (an event it never had, such as a raw publish with an offset, or one a
  // failover lost) is given up on, rather than read again and again.
  async #readOn(): Promise<void> {
    const ahead = this.#held!.ahead!;
    const [epoch, last] = [this.#epoch, this.#last];
    if (ahead.epoch === epoch && await this.#sendPagesFrom(epoch)) {
      if (this.#conn.closed) return;
      // No nearer: a read shared with a socket that began it a moment earlier may hold less
      // than this one saw, so once more; twice, and the stream does not have it.
      if (this.#last === last && ++this.#stalls > 1) this.#dropAhead();
      return;
    }
    // The gap is no longer kept, in this epoch: its events may still be on their way.
    if (ahead.epoch === epoch && this.#streamEpoch === epoch && await this.#filledInFlight()) {
      return;
    }
    // Another epoch (the history was lost, or the stream went on in a new one after a master
    // change), or the gap is no longer kept.
    await this.#reenter();
    // An epoch the stream does not have is none the socket can follow.
    const { ahead: furthest } = this.#held!;
    if (furthest !== null && furthest.epoch !== this.#epoch) this.#dropAhead();
  }

  // The stream no longer keeps the gap (a burst longer than its window), but its events may
  // still be on their way: another process's publishes reach this one after its own, which it
  // delivers as soon as its script answers. Held for a moment, they fill the gap; true when
  // they did, and were sent.
  async #filledInFlight(): Promise<boolean> {
    const deadline = performance.now() + IN_FLIGHT_MS;
    const held = this.#held!;
    while (this.#sendHeld()) {
      // One of another epoch came: the stream moved on, and a re-entry follows it.
      if (held.ahead?.epoch !== this.#epoch) return false;
      const next = held.events[0];
      if (next?.offset === this.#last + 1) {
        // It is here, but the socket has no room for it yet.
        if (!await waitForRoom(this.#conn, this.#bytesOf(next))) return true; // it closed
        continue;
      }
      const left = deadline - performance.now();
      if (left <= 0 || !await held.arrival(left)) return false;
    }
    return true;
  }

  // The furthest event seen is not in the stream: it is not sent, and that is said once per event
  // (every socket of the group sees it).
  #dropAhead(): void {
    const held = this.#held!;
    warnNotInStream(held.ahead!, this.#group);
    held.ahead = null;
  }

  // Another epoch, or a gap no longer kept: the socket enters again from where it was, as a
  // client back with its position does. When the stream cannot follow on from it, a client
  // that follows offsets is told and gets the latest events as history; any other socket gets
  // the latest events it has not had.
  async #reenter(): Promise<void> {
    const route = this.#route;
    let read: StreamRead;
    if (followsOffsets(this.#conn.scope.query)) {
      read = await this.#enterFrom({ epoch: this.#epoch, offset: this.#last }, false, true);
    } else {
      // What follows on from the position when the stream still has it (a master change that
      // lost nothing), else the latest.
      const after = await route.liveReads.since(this.#group, {
        epoch: this.#epoch,
        offset: this.#last,
      });
      read = after.complete ? after : await route.liveReads.latest(this.#group, route.historySize);
      for (const event of read.events) {
        if (read.epoch !== this.#epoch || event.offset > this.#last) this.#sendFrame(event);
      }
    }
    if (read.epoch !== this.#epoch) this.#retired = this.#epoch;
    this.#epoch = read.epoch;
    this.#last = read.offset;
  }

  // The stream cannot be read (its store is away, three times over 1.3 s): the socket goes on
  // from the furthest event seen, and a client that follows offsets is told it may miss some.
  #giveUp(error: unknown): void {
    log.warn(`Stream of "${this.#group}" could not be read to fill a gap`, error);
    const ahead = this.#held!.ahead;
    if (ahead === null) return;
    const offset = ahead.offset as number;
    if (ahead.epoch === this.#epoch && offset <= this.#last) return;
    if (followsOffsets(this.#conn.scope.query)) {
      this.#conn.sendJson({
        type: RECOVERED,
        complete: false,
        epoch: ahead.epoch,
        offset: offset - 1,
        reason: "the stream could not be read: messages before this one may be missing",
      });
    }
    if (ahead.epoch !== this.#epoch) this.#retired = this.#epoch;
    this.#epoch = ahead.epoch as string;
    this.#last = offset;
    this.#sendFrame(ahead);
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
      // Read again while live, the app's throw is caught as every live frame's is.
      frameOf: live ? (event) => this.#frameOf(event) : route.frameOf,
      framesKeepEvents: route.framesKeepEvents,
    });
  }
}

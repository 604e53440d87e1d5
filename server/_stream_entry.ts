/**
 * What a socket that follows a stream sees before its live frames: the events it missed, when
 * it comes back from a position the stream still holds, or else the stream's latest events as
 * history. The query parameters and frames are those the client module speaks.
 */
import type { LayerEvent } from "../layers/layer.ts";
import {
  type GroupStreams,
  SINCE_TOO_LARGE,
  type StreamPosition,
  type StreamRead,
} from "../layers/streams/contract.ts";
import type { Connection } from "./consumer.ts";
import { frameBytes } from "./_send_checks.ts";
import { BEFORE_OPEN_FACTOR } from "./_before_open.ts";

/** The frame that tells a client which position it is at, before any stream frame. */
export const RECOVERED = "recovered";

/**
 * The part of what a socket can hold unsent that a replay may fill: the rest is for what
 * follows it (a presence list, live events).
 */
const REPLAY_SHARE = 0.75;

/** Reads of a stream: the streams themselves, or reads shared between sockets. */
export type StreamReads = Pick<GroupStreams, "since" | "latest">;

/** The frame an event is sent as; `null` skips it. */
export type FrameOf = (event: LayerEvent, conn: Connection) => LayerEvent | null;

/**
 * What an event from outside this framework is kept as in `group`'s stream (`null`: sent as it
 * came); `StreamFollowingOptions.keepForeign`, which writes it out for the docs.
 */
export type KeepForeignAs = (
  event: LayerEvent,
  group: string,
  foreignId: string | undefined,
) => LayerEvent | null;

/** The stream a socket enters, and where its client says it was. */
export interface StreamEntry {
  reads: StreamReads;
  group: string;
  /** The position the client comes back from; `null` for a first visit. */
  position: StreamPosition | null;
  /** The client asked for its position even on a first visit (`?stream=1`). */
  wantsStream: boolean;
  /** How many of the last events a socket that cannot recover sees. */
  historySize: number;
  frameOf: FrameOf;
  /** Each frame is at least as long as its event (`StreamFollowingOptions.framesKeepEvents`). */
  framesKeepEvents: boolean;
}

/** The position a returning client names with `?epoch=E&since=N`; `null` without one. */
export function positionOf(query: URLSearchParams): StreamPosition | null {
  const epoch = query.get("epoch");
  const since = query.get("since");
  if (epoch === null && since === null) return null;
  // Decimal digits only: `Number` would also read "0x2", "+2", "2.0", " 2" or "1e0".
  const offset = since !== null && DIGITS.test(since) ? Number(since) : NaN;
  // A position that cannot be one recovers nothing: the client gets the history, and is told why.
  if (epoch === null || epoch === "" || !Number.isSafeInteger(offset)) return MALFORMED_POSITION;
  return { epoch, offset };
}

const DIGITS = /^[0-9]+$/;

// What `positionOf` gives for a query that names no position (no epoch, a bad offset): no
// stream has its epoch, and `enterStream` tells it by identity, to say why with the right reason.
const MALFORMED_POSITION: StreamPosition = Object.freeze({ epoch: "", offset: 0 });
const MALFORMED_REASON =
  'the position is malformed: "epoch" must name one and "since" be a whole number of 0 or more';

/** Whether the client follows offsets: it came back from a position, or asked `?stream=1`. */
export function followsOffsets(query: URLSearchParams): boolean {
  return positionOf(query) !== null || query.get("stream") === "1";
}

/**
 * Tells the client where it is, then sends what it should see before live frames: what it
 * missed after `position` (complete recovery), or the stream's last events as history. Resolves
 * with the read whose epoch and offset the socket is then at.
 */
export async function enterStream(conn: Connection, entry: StreamEntry): Promise<StreamRead> {
  const { reads, group, position, wantsStream } = entry;
  if (position !== null) {
    const room = conn.sendCapacity * REPLAY_SHARE;
    // Streams that can tell refuse at once what is sure not to fit, without reading it: when
    // frames are no shorter than their events, events' JSON over the most any socket of the
    // route can hold (one not yet open, `BEFORE_OPEN_FACTOR`). The route's bound, not this
    // socket's room: sockets that re-enter together still share one read.
    const most = conn.sendBound * BEFORE_OPEN_FACTOR * REPLAY_SHARE;
    const hint = entry.framesKeepEvents ? { maxBytes: most } : {};
    const read = await reads.since(group, position, hint);
    const frames = read.complete ? framesOf(read, conn, entry.frameOf, "recovered") : [];
    // All of it or, when the socket cannot hold it, none of it: never "complete" with a gap.
    const fits = read.complete && bytesOf(frames) <= room;
    if (fits) {
      conn.sendJson({ type: RECOVERED, complete: true, epoch: read.epoch, offset: read.offset });
      for (const frame of frames) conn.sendJson(frame);
      return read;
    }
    const reason = position === MALFORMED_POSITION
      ? MALFORMED_REASON
      : read.complete || read.reason === SINCE_TOO_LARGE
      ? `missed ${read.complete ? frames.length : read.offset - position.offset} messages, ` +
        `more than one reconnect replays; the last ${entry.historySize} follow`
      : read.reason;
    // The position told is where the history that follows ends: events may have come between
    // the two reads, and a client goes on from what it was told.
    const history = await reads.latest(group, entry.historySize);
    conn.sendJson({
      type: RECOVERED,
      complete: false,
      epoch: history.epoch,
      offset: history.offset,
      reason,
    });
    return sendHistory(history, conn, entry);
  }
  const read = await reads.latest(group, entry.historySize);
  if (position === null && wantsStream) {
    conn.sendJson({
      type: RECOVERED,
      complete: true,
      fresh: true,
      epoch: read.epoch,
      offset: read.offset,
    });
  }
  return sendHistory(read, conn, entry);
}

// Sends the history frames of `read`, the newest that fit, and gives `read` back.
function sendHistory(read: StreamRead, conn: Connection, entry: StreamEntry): StreamRead {
  for (const frame of newestThatFit(framesOf(read, conn, entry.frameOf, "history"), conn)) {
    conn.sendJson(frame);
  }
  return read;
}

// History is the last events: when the socket cannot hold them all, the newest that it can,
// rather than the oldest and a drop of the rest (the newest, which it would then never see).
function newestThatFit(
  frames: Record<string, unknown>[],
  conn: Connection,
): Record<string, unknown>[] {
  const room = conn.sendCapacity * REPLAY_SHARE;
  let bytes = 0;
  for (let i = frames.length - 1; i >= 0; i--) {
    bytes += frameBytes(JSON.stringify(frames[i]));
    if (bytes > room) return frames.slice(i + 1);
  }
  return frames;
}

function framesOf(
  read: StreamRead,
  conn: Connection,
  frameOf: FrameOf,
  mark: "recovered" | "history",
): Record<string, unknown>[] {
  const frames = [];
  for (const event of read.events) {
    const frame = frameOf(event, conn);
    if (frame !== null) frames.push({ ...frame, [mark]: true });
  }
  return frames;
}

function bytesOf(frames: Record<string, unknown>[]): number {
  let bytes = 0;
  for (const frame of frames) bytes += frameBytes(JSON.stringify(frame));
  return bytes;
}

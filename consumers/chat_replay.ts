/**
 * What a chat socket sees before its live frames: the frames it missed, when it reconnects from
 * a position the room's stream still holds, or else the room's latest messages as history.
 */
import {
  type Connection,
  frameBytes,
  type GroupStreams,
  type StreamPosition,
  type StreamRead,
} from "../mod.ts";
import { chatFrameOf } from "./chat_rooms.ts";

/** How many messages a room shows on entry, and after a recovery that was not complete. */
export const HISTORY_SIZE = 50;
/** The frame that tells a client which position it is at, before any chat frame. */
export const RECOVERED = "recovered";

/**
 * The part of what a socket can hold unsent that a replay may fill: the rest is for what
 * follows it (the room's presence list, live messages).
 */
const REPLAY_SHARE = 0.75;

function missedFrames(read: StreamRead, room: string): Record<string, unknown>[] {
  const frames = [];
  for (const event of read.events) {
    const frame = chatFrameOf(event, room);
    if (frame !== null) frames.push({ ...frame, recovered: true });
  }
  return frames;
}

function replayBytes(frames: Record<string, unknown>[]): number {
  let bytes = 0;
  for (const frame of frames) bytes += frameBytes(JSON.stringify(frame));
  return bytes;
}

/** The room a socket enters, and where its client says it was. */
export interface RoomEntry {
  streams: Pick<GroupStreams, "since" | "latest">;
  room: string;
  group: string;
  /** The position the client reconnects from; `null` for a first visit. */
  position: StreamPosition | null;
  /** The client asked for its position even on a first visit (`?stream=1`). */
  wantsStream: boolean;
}

/**
 * Tells the client where it is, then sends what it should see before live frames: what it
 * missed after `position` (complete recovery), or the room's last 50 as history. Resolves with
 * the read whose epoch and offset the socket is then at.
 */
export async function replay(conn: Connection, entry: RoomEntry): Promise<StreamRead> {
  const { streams, room, group, position, wantsStream } = entry;
  if (position !== null) {
    const read = await streams.since(group, position);
    const frames = read.complete ? missedFrames(read, room) : [];
    // All of it or, when the socket cannot hold it, none of it: never "complete" with a gap.
    const fits = read.complete && replayBytes(frames) <= conn.sendCapacity * REPLAY_SHARE;
    if (fits) {
      conn.sendJson({ type: RECOVERED, complete: true, epoch: read.epoch, offset: read.offset });
      for (const frame of frames) conn.sendJson(frame);
      return read;
    }
    conn.sendJson({
      type: RECOVERED,
      complete: false,
      epoch: read.epoch,
      offset: read.offset,
      reason: read.complete
        ? `missed ${frames.length} messages, more than one reconnect replays; the last ` +
          `${HISTORY_SIZE} follow`
        : read.reason,
    });
  }
  const read = await streams.latest(group, HISTORY_SIZE);
  if (position === null && wantsStream) {
    conn.sendJson({
      type: RECOVERED,
      complete: true,
      fresh: true,
      epoch: read.epoch,
      offset: read.offset,
    });
  }
  for (const event of read.events) {
    const frame = chatFrameOf(event, room);
    if (frame !== null) conn.sendJson({ ...frame, history: true });
  }
  return read;
}

/**
 * What a consumer sends before its socket opens (from `connect`, or events handled before the
 * upgrade): held in order and written once the socket opens, bounded in bytes as an open
 * socket's unsent frames are, and what did not fit counted, so it is reported, never silent.
 * Made on the first such frame only, and dropped once the socket opens: an open socket keeps
 * nothing of it.
 */
import { frameBytes } from "./_send_checks.ts";

/** A `sendJson` frame of a batching socket (see `_frame_batch.ts`). */
export type WaitingJson = { json: string };
/** A frame waiting for the socket to open. */
export type WaitingFrame = string | Uint8Array | WaitingJson;

/**
 * How many times `maxBufferedBytes` the frames before the open may hold: a reconnecting
 * client's replay of a room's whole window (1,000 messages by default) must fit, and it is
 * sent once.
 */
export const BEFORE_OPEN_FACTOR = 4;

/** The frames one socket was sent before it opened. */
export class BeforeOpenQueue {
  readonly frames: WaitingFrame[] = [];
  /** What `frames` hold, counted as `frameBytes` counts them. */
  bytes = 0;
  /** Frames that did not fit. */
  dropped = 0;

  /** `bound`: the most bytes the queue holds. */
  constructor(readonly bound: number) {}

  /** Holds `frame`, or counts it as dropped when it does not fit. */
  add(frame: WaitingFrame): void {
    const bytes = frameBytes(frame);
    if (this.bytes + bytes > this.bound) {
      this.dropped++;
      return;
    }
    // Bytes are copied, as a socket copies what it sends: the sender may reuse its buffer.
    this.frames.push(frame instanceof Uint8Array ? frame.slice() : frame);
    this.bytes += bytes;
  }

  /** Bytes the queue can still hold. */
  get room(): number {
    return Math.max(0, this.bound - this.bytes);
  }
}

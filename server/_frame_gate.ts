import { CloseCode, frameRef, ProtocolError } from "./close_codes.ts";
import { TokenBucket } from "./_token_bucket.ts";

/** A frame as a socket hands it over. */
export type IncomingFrame = string | ArrayBuffer | Blob;

/**
 * What lets a client's frame in: the size limit, then the per-socket rate limit. A refusal is a
 * {@linkcode ProtocolError} that says why; the connection tells the client, and closes the
 * socket when the error carries a close code (1009 for size, 1008 for a flood that goes on).
 */
export class FrameGate extends TokenBucket {
  // The bucket is this object's base, not an object of its own, and the limits read only on a
  // refusal stay in the shared limits: every field here is memory per idle socket.
  #maxBytes: number;
  #limits: { rateLimit: { perSecond: number; burst: number } };
  /** Refused frames since the last one let in: more than the burst at once is a flood. */
  #refusedInARow = 0;
  /**
   * What the client may still send over the longer run (`SUSTAINED_SECONDS` at the rate, on top
   * of the burst): every frame takes one, refused or not, and time gives them back at the rate.
   * A flood that gets a frame in whenever a token comes back empties it; a client under its
   * rate on average, in bursts (a paste), never does.
   */
  #sustained: number;

  constructor(
    limits: { maxMessageBytes: number; rateLimit: { perSecond: number; burst: number } },
    // `Date.now`, not `performance.now`: a rate limit needs milliseconds, and in Deno
    // `performance.now` is a call into the runtime on every frame (see TokenBucket for steps).
    now: () => number = Date.now,
  ) {
    super(limits.rateLimit.perSecond, limits.rateLimit.burst, now);
    this.#maxBytes = limits.maxMessageBytes;
    this.#limits = limits;
    this.#sustained = sustainedAllowance(limits.rateLimit);
  }

  /** `null` when the frame may go on to the consumer; otherwise why it may not. */
  check(data: IncomingFrame): ProtocolError | null {
    const bytes = typeof data === "string" ? utf8Length(data, this.#maxBytes) : byteLength(data);
    if (bytes > this.#maxBytes) {
      // Longer than the limit in characters, its bytes were not counted (see `utf8Length`).
      const size = typeof data === "string" && data.length > this.#maxBytes
        ? `${data.length} characters`
        : `${bytes} bytes`;
      return new ProtocolError(
        `Message too big: ${size}, the limit is ${this.#maxBytes} bytes`,
        CloseCode.MESSAGE_TOO_BIG,
        // Its `ref`, so the client knows which send was refused: read from a frame of a size
        // a client may mistake (parsing one of many megabytes would hold every other socket up).
        { ref: typeof data === "string" && bytes <= REF_READ_BYTES ? frameRef(data) : undefined },
      );
    }
    const { perSecond, burst } = this.#limits.rateLimit;
    const before = this.lastTakeAt;
    const taken = this.take();
    const elapsed = this.lastTakeAt - before;
    const allowance = sustainedAllowance(this.#limits.rateLimit);
    // A clock set back is taken as a long pause, as the bucket takes it.
    this.#sustained =
      (elapsed < 0
        ? allowance
        : Math.min(allowance, this.#sustained + elapsed * perSecond / 1000)) - 1;
    if (!taken) {
      // A client that keeps flooding after being told is closed; one that slows down is not.
      const persistent = ++this.#refusedInARow > burst || this.#sustained < 0;
      return new ProtocolError(
        `Rate limit exceeded: at most ${perSecond} messages per second; message dropped`,
        persistent ? CloseCode.POLICY_VIOLATION : undefined,
        { ref: typeof data === "string" ? frameRef(data) : undefined },
      );
    }
    this.#refusedInARow = 0;
    return null;
  }
}

/**
 * How long a flood over the rate on average may go on before it is closed (1008), in seconds of
 * the rate beyond the burst: at twice the rate, about this long; at 1.2 times, five times that.
 */
export const SUSTAINED_SECONDS = 10;

// The most the longer run allows at once: the burst, and `SUSTAINED_SECONDS` at the rate.
function sustainedAllowance(rate: { perSecond: number; burst: number }): number {
  return rate.burst + rate.perSecond * SUSTAINED_SECONDS;
}

/** The largest oversize frame whose `ref` the refusal names. */
export const REF_READ_BYTES = 1024 * 1024;

/**
 * UTF-8 length of `text`, computed exactly only when it decides whether `text` is over `limit`:
 * a text short enough cannot be over it, and one longer than `limit` in characters is over it
 * whatever they are (one byte each at least), so a frame of many megabytes is not encoded only
 * to be refused. Its length in characters then stands for its bytes.
 */
function utf8Length(text: string, limit: number): number {
  if (text.length * 3 <= limit || text.length > limit) return text.length;
  return new TextEncoder().encode(text).byteLength;
}

function byteLength(data: ArrayBuffer | Blob): number {
  return data instanceof Blob ? data.size : data.byteLength;
}

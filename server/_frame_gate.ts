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
  /**
   * Until when refusals weigh on the socket, in ms: each adds ten tokens' worth of time
   * (`STRIKE_TOKENS`), and time takes it off. More than `burst` refusals at once, or a steady
   * flood more than a tenth over the rate (even one that gets a frame in whenever a token comes
   * back), build up more than `burst` strikes' weight and close the socket; a client that slows
   * down sees its refusals forgotten. One number, not a list of times: memory per idle socket.
   */
  #weighsUntil = 0;

  constructor(
    limits: { maxMessageBytes: number; rateLimit: { perSecond: number; burst: number } },
    // `Date.now`, not `performance.now`: a rate limit needs milliseconds, and in Deno
    // `performance.now` is a call into the runtime on every frame (see TokenBucket for steps).
    now: () => number = Date.now,
  ) {
    super(limits.rateLimit.perSecond, limits.rateLimit.burst, now);
    this.#maxBytes = limits.maxMessageBytes;
    this.#limits = limits;
  }

  /** `null` when the frame may go on to the consumer; otherwise why it may not. */
  check(data: IncomingFrame): ProtocolError | null {
    const bytes = typeof data === "string" ? utf8Length(data, this.#maxBytes) : byteLength(data);
    if (bytes > this.#maxBytes) {
      return new ProtocolError(
        `Message too big: ${bytes} bytes, the limit is ${this.#maxBytes}`,
        CloseCode.MESSAGE_TOO_BIG,
        // Its `ref`, so the client knows which send was refused: read from a frame of a size
        // a client may mistake (parsing one of many megabytes would hold every other socket up).
        { ref: typeof data === "string" && bytes <= REF_READ_BYTES ? frameRef(data) : undefined },
      );
    }
    if (!this.take()) {
      const { perSecond, burst } = this.#limits.rateLimit;
      // A client that keeps flooding after being told is closed; one that slows down is not.
      const now = this.lastTakeAt;
      const strike = STRIKE_TOKENS * 1000 / perSecond;
      this.#weighsUntil = Math.max(now, this.#weighsUntil) + strike;
      const persistent = this.#weighsUntil - now > burst * strike;
      return new ProtocolError(
        `Rate limit exceeded: at most ${perSecond} messages per second; message dropped`,
        persistent ? CloseCode.POLICY_VIOLATION : undefined,
        { ref: typeof data === "string" ? frameRef(data) : undefined },
      );
    }
    return null;
  }
}

/**
 * How long a refused frame weighs on its socket, in tokens' time (at 20 a second, 0.5 s): a
 * steady flood more than a tenth over the rate adds weight faster than time takes it off.
 */
export const STRIKE_TOKENS = 10;

/** The largest oversize frame whose `ref` the refusal names. */
export const REF_READ_BYTES = 1024 * 1024;

/** UTF-8 length of `text`, computed exactly only when it could exceed `limit`. */
function utf8Length(text: string, limit: number): number {
  if (text.length * 3 <= limit) return text.length; // cannot exceed: skip the encode
  return new TextEncoder().encode(text).byteLength;
}

function byteLength(data: ArrayBuffer | Blob): number {
  return data instanceof Blob ? data.size : data.byteLength;
}

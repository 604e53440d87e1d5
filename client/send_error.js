/**
 * Why a send of the stream client (`channels_client.js`) failed, and whether the message may be
 * stored all the same: what an app shows beside a message that went wrong. With the two rules
 * the client's sends keep: how long an ack may be waited for, and which send a 1009 refused.
 */
import { MAX_TIMER_MS } from "./timer_limit.js";

/** Why a send failed: the server refused it, or the connection went before its answer. */
export class SendError extends Error {
  /**
   * @param {string} message The server's error text, or what happened to the connection.
   * @param {{ ref?: string,
   *   kind: "refused" | "unconfirmed" | "no-answer" | "disconnected" | "not-connected" | "closed",
   *   frame?: Record<string, unknown> }} details
   */
  constructor(message, details) {
    super(message);
    this.name = "SendError";
    /** The frame's `ref` (none when it never went out). */
    this.ref = details.ref;
    /**
     * "refused": the server answered with an error, or closed the socket for the frame's size
     * (1009); "unconfirmed": the server answered that it lost its storage's answer, so the
     * message may be stored; "no-answer": no answer came in `ackTimeoutMs`, so it may be stored
     * too; "disconnected": the connection
     * was lost before the answer; "not-connected": the frame never went out; "closed":
     * `close()` was called before the answer.
     */
    this.kind = details.kind;
    /** The server's error frame, when it answered. */
    this.frame = details.frame;
  }

  /**
   * True when the server may have stored the message although no ack came: the connection was
   * lost after the frame went out, the server could not confirm it, or gave no answer in time.
   * A recovered stream then shows it if it was stored.
   */
  get maybeStored() {
    return this.kind === "unconfirmed" || this.kind === "no-answer" ||
      this.kind === "disconnected" || this.kind === "closed";
  }
}

// A wait `setTimeout` cannot keep (2^31 ms or more, Infinity, NaN) would end at once: refused
// before anything is sent, as a heartbeat's times are. Infinity is no wait at all.
export function checkAckTimeout(ms) {
  if (ms === undefined || ms === Infinity) return;
  if (typeof ms !== "number" || !(ms > 0) || ms > MAX_TIMER_MS) {
    throw new TypeError(
      `ackTimeoutMs must be a number of milliseconds above 0 and up to ${MAX_TIMER_MS}, or ` +
        `Infinity, not ${ms}`,
    );
  }
}

/**
 * Bytes of `text` in UTF-8: what the server's frame limit counts. Exact for the text of
 * `JSON.stringify`, which escapes lone surrogates.
 * @param {string} text
 * @returns {number}
 */
export function utf8Bytes(text) {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    // 2 bytes below U+0800; a surrogate pair is 4 bytes for 2 units; else 3.
    if (code >= 0x80) bytes += code < 0x800 || (code >= 0xd800 && code <= 0xdfff) ? 1 : 2;
  }
  return bytes;
}

/**
 * The size above which the server refused a frame, when `close` says it did (1009, "…the limit
 * is N bytes"): a frame of more than N bytes in UTF-8 (see {@linkcode utf8Bytes}) is over it.
 * @param {import("./live_socket.js").LiveClose | null} close
 * @returns {number | null}
 */
export function tooBigAt(close) {
  if (close?.code !== 1009) return null;
  const limit = /the limit is (\d+) bytes/.exec(close.reason);
  return limit === null ? null : Number(limit[1]);
}

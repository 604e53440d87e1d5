/**
 * The sends of a stream (`channels_client.js`) that wait for the server's answer: each one's
 * promise, settled by the `ack` or `error` frame with its `ref`, by a time-out (after asking
 * the heartbeat whether the connection is alive at all), or by the loss of the connection it
 * went out on.
 */
import { SendError, tooBigAt } from "./send_error.js";

// How long a send with `ack` waits for its answer unless told otherwise (as phoenix.js's push).
const ACK_WAIT_MS = 10_000;
// After the heartbeat's verdict on a probe is due: its own timer, set first, runs first.
const VERDICT_SLACK_MS = 50;

/**
 * @typedef {{ resolve: (result: SendResult) => void, reject: (e: SendError) => void,
 *   timer: ReturnType<typeof setTimeout> | undefined, bytes: number, sentAt: number,
 *   probed: boolean }} PendingSend
 *   A send with `ack` not answered yet, with its frame's size in UTF-8, when it went
 *   (`performance.now()`), and whether its time-out asked the heartbeat already.
 * @typedef {object} SendResult What a sent frame got.
 * @property {string} ref The `ref` the client put on the frame.
 * @property {number} [offset] With `ack`: the stored message's offset.
 * @property {string} [epoch] With `ack`: the stream's epoch.
 */

/** The sends with `ack` of one stream that no answer settled yet, by `ref`. */
export class PendingSends {
  #live;
  #address;
  /** @type {Map<string, PendingSend>} */
  #pending = new Map();
  /** Whether any ack came on this stream: a timeout before the first one may mean none will. */
  #everAcked = false;
  #warnedNoAck = false;

  /**
   * @param {import("./live_socket.js").LiveSocket} live The connection the sends go out on,
   *   asked whether it is alive when an answer is late.
   * @param {() => string} address The stream's address for the console, without its query.
   */
  constructor(live, address) {
    this.#live = live;
    this.#address = address;
  }

  /**
   * Waits for the answer to the frame just sent with `ref`, of `bytes` in UTF-8, for
   * `ackTimeoutMs` (default 10 s; `Infinity`: for as long as the connection lasts).
   * @param {string} ref @param {number} bytes @param {number | undefined} ackTimeoutMs
   * @returns {Promise<SendResult>}
   */
  wait(ref, bytes, ackTimeoutMs) {
    return new Promise((resolve, reject) => {
      const waitMs = ackTimeoutMs ?? ACK_WAIT_MS;
      const timer = waitMs === Infinity
        ? undefined
        : setTimeout(() => this.#noAnswer(ref, waitMs), waitMs);
      const sentAt = performance.now();
      this.#pending.set(ref, { resolve, reject, timer, bytes, sentAt, probed: false });
    });
  }

  /**
   * Settles the send `frame` answers (its `ref`, an `ack` or an `error`).
   * @param {Record<string, unknown>} frame
   * @returns {boolean} whether it answered a send: an `ack` always counts, as one that came
   *   after its send gave up waiting is no message of the stream
   */
  answer(frame) {
    const ref = String(frame.ref);
    const pending = this.#pending.get(ref);
    if (pending === undefined) return frame.type === "ack";
    if (frame.type === "ack") {
      clearTimeout(pending.timer);
      this.#everAcked = true;
      this.#pending.delete(ref);
      const result = { ref };
      if (typeof frame.offset === "number") result.offset = frame.offset;
      if (typeof frame.epoch === "string") result.epoch = frame.epoch;
      pending.resolve(result);
      return true;
    }
    if (frame.type === "error") {
      clearTimeout(pending.timer);
      this.#pending.delete(ref);
      const text = String(frame.error ?? "Refused by the server");
      // `unconfirmed`: the server lost its storage's answer, so the message may be stored.
      const kind = frame.unconfirmed === true ? "unconfirmed" : "refused";
      pending.reject(new SendError(text, { ref, kind, frame }));
      return true;
    }
    return false;
  }

  /**
   * Rejects every send still waiting: the socket they went out on is gone, closed by the app
   * (`closing`) or lost, as `lastClose` says.
   * @param {boolean} closing
   * @param {import("./live_socket.js").LiveClose | null} lastClose
   */
  failAll(closing, lastClose) {
    const kind = closing ? "closed" : "disconnected";
    const text = closing
      ? "The connection was closed before the server answered"
      : "The connection was lost before the server answered";
    const pending = [...this.#pending];
    this.#pending.clear();
    const tooBig = closing ? null : tooBigAt(lastClose);
    for (const [ref, { reject, timer, bytes }] of pending) {
      clearTimeout(timer);
      // A frame over the server's limit closed the socket (1009): refused, so not stored. Its
      // `ref` is not read from a frame that large, so the close tells which send it was.
      if (tooBig !== null && bytes > tooBig) {
        reject(new SendError(lastClose.reason, { ref, kind: "refused" }));
      } else reject(new SendError(text, { ref, kind }));
    }
  }

  // An ack that never comes (a consumer of the app's own that answers none, a server stuck)
  // must not leave the send waiting for as long as the socket stays open.
  #noAnswer(ref, waitMs) {
    const pending = this.#pending.get(ref);
    if (pending === undefined) return;
    const heard = this.#live.heardSince(pending.sentAt);
    if (!heard && !pending.probed) {
      // Nothing came since the send: the connection may be dead (a Wi-Fi gone sends no close,
      // and the heartbeat alone would find out 25 s later), not the server slow to answer. The
      // heartbeat asks now: a connection that answers nothing is lost, and the send fails with
      // the others on it as "disconnected"; one that answers leaves this a "no-answer".
      const verdictMs = this.#live.probe(() => this.#noAnswer(ref, waitMs));
      if (verdictMs >= 0) {
        pending.probed = true;
        pending.timer = setTimeout(() => this.#noAnswer(ref, waitMs), verdictMs + VERDICT_SLACK_MS);
        return;
      }
    }
    clearTimeout(pending.timer);
    this.#pending.delete(ref);
    // A connection that said nothing to its probe is no sign of a consumer that answers none.
    if ((heard || !pending.probed) && !this.#everAcked && !this.#warnedNoAck) {
      this.#warnedNoAck = true;
      console.warn(
        `No answer to a send with ack in ${waitMs / 1000} s on ${this.#address()}: does the ` +
          "route's consumer answer it (ackFor on the server)?",
      );
    }
    const text = `No answer from the server in ${waitMs / 1000} s: the message may be stored`;
    pending.reject(new SendError(text, { ref, kind: "no-answer" }));
  }
}

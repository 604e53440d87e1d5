/**
 * The client of a Channels message stream, for the browser and for Deno: connect, reconnect
 * with backoff, recover what was missed, send with acknowledgement. It knows the wire protocol
 * of a stream socket (such as the chat rooms' `/ws/chat/<room>/`) and nothing of any page.
 *
 * - Every stream message carries an `offset` (1, 2, 3… per stream) and the stream has an
 *   `epoch`. The client remembers both, and after a lost connection it reconnects with
 *   `?epoch=E&since=N`: the server replays what the client missed, in order, then goes on live.
 * - Each (re)connect starts with a `recovered` frame, passed to `onRecovered`. `complete: false`
 *   means messages were lost for this client (it was away longer than the server keeps them,
 *   or the stream's history was lost); the server then sends its last messages again, as on a
 *   first visit, and the app should say so. A connection whose stream loses its history while
 *   it is open gets another `recovered` frame (`complete: false`, the new epoch) then and there.
 * - `onMessage` receives each message once, in offset order: a message at or below the last
 *   delivered offset is dropped (within one epoch).
 * - `send(data, { ack: true })` resolves once the server stored the message.
 *
 * @example
 * ```js
 * import { connectStream, SendError } from "/channels/channels_client.js";
 *
 * const stream = connectStream("/ws/chat/lobby/", {
 *   batch: true,
 *   onMessage: (message) => show(message),
 *   onRecovered: ({ complete, fresh }) => {
 *     if (!complete && !fresh) warn("Some messages could not be recovered");
 *   },
 *   onStateChange: (state, text) => (label.textContent = text),
 * });
 * // On an open socket only: before the first open, or while reconnecting, a send rejects.
 * form.addEventListener("submit", async (event) => {
 *   event.preventDefault();
 *   try {
 *     const { offset } = await stream.send({ message: input.value }, { ack: true });
 *   } catch (error) {
 *     if (error instanceof SendError) warn(`Not sent: ${error.message}`);
 *   }
 * });
 * ```
 *
 * @module
 */
import { jsonObjects, ndjsonFrames } from "./json_frames.js";
import { checkClose, LiveSocket, STATE_TEXT } from "./live_socket.js";
import { PendingSends } from "./pending_sends.js";
import { checkAckTimeout, SendError, utf8Bytes } from "./send_error.js";

// A ping after 25 s of quiet (proxies close idle connections after 30 to 60 s), lost 10 s later.
const DEFAULT_HEARTBEAT = Object.freeze({ idleMs: 25_000, timeoutMs: 10_000 });
// How long after connecting a stream's `recovered` frame may take before the console is told.
const POSITION_WAIT_MS = 5000;

export { ndjsonFrames, SendError, STATE_TEXT };

/** How many messages a stream server sends as history on a fresh or incomplete connect. */
export const HISTORY_SIZE = 50;

/**
 * @typedef {import("./live_socket.js").LiveState} StreamState
 * @typedef {import("./live_socket.js").CloseVerdict} CloseVerdict
 * @typedef {Record<string, unknown> & { offset: number }} StreamMessage
 *   A message of the stream, as the server sent it, with its `offset`; `history: true` marks the
 *   last messages sent on a fresh or incomplete connect, `recovered: true` a replayed one.
 * @typedef {object} Recovery What the first frame of each connection says.
 * @property {boolean} complete False when messages between the last one delivered and now are
 *   lost for this client; the server then sends its last messages as history.
 * @property {boolean} fresh True on a connection that did not ask to recover (the first one).
 * @property {string} epoch The stream's epoch; it changes when the stream's history is lost.
 * @property {number} offset The stream's latest offset when the client connected.
 * @property {string} [reason] Why recovery was not complete, for logs.
 * @typedef {import("./pending_sends.js").PendingSend} PendingSend A send with `ack` not
 *   answered yet.
 * @typedef {import("./pending_sends.js").SendResult} SendResult What a sent frame got.
 * @typedef {object} StreamOptions
 * @property {(message: StreamMessage) => void} [onMessage] Each stream message, once, in order.
 * @property {(recovery: Recovery) => void} [onRecovered] The first frame of each connection,
 *   before the messages it announces; again, with `complete: false`, when the stream's history
 *   is lost while the connection is open.
 * @property {(frame: Record<string, unknown>) => void} [onFrame] Every other frame: those without
 *   an offset (presence, errors without a `ref` of a pending send…).
 * @property {(state: StreamState, text: string) => void} [onStateChange] Each change of the
 *   connection's state ("connecting", "open", "reconnecting", "closed"), with a text to show.
 * @property {(event: import("./live_socket.js").LiveClose) => CloseVerdict | undefined | void} [onClose] Called when the
 *   connection is lost; return `{ stop: "why" }` to stay closed, `{ atLeastAttempts: n }` to
 *   wait longer before the next attempt.
 * @property {boolean} [batch] Accept several frames per WebSocket message (`?batch=1`,
 *   newline-delimited JSON): fewer, larger writes under load.
 * @property {number} [historySize] How many messages the server sends as history (50).
 * @property {number} [ackTimeoutMs] How long a send with `ack` waits for the server's answer
 *   before it rejects with kind "no-answer" (default 10 000 ms; `Infinity`: for as long as the
 *   connection lasts; anything else not above 0 or over 2^31 - 1 throws a `TypeError`). When
 *   nothing at all came from the server since the send, the heartbeat asks it first (a ping,
 *   up to its `timeoutMs` more): a connection that answers nothing is lost, and the send
 *   rejects with "disconnected", as the others unanswered on it.
 * @property {Partial<Record<StreamState, string>>} [texts] Overrides of `STATE_TEXT`.
 * @property {import("./backoff.js").ReconnectDelays | import("./backoff.js").BackoffOptions}
 *   [backoff] Delays between attempts (default 0.5 s doubling to 10 s, with jitter): a `Backoff`,
 *   or its options; anything else throws a `TypeError`.
 * @property {typeof WebSocket} [WebSocket] The socket class (a fake one in tests).
 * @property {EventTarget} [window] Where `pagehide`, `pageshow` and `online` come from.
 * @property {typeof fetch | false} [probe] After two attempts in a row that did not open, the
 *   address is fetched over HTTP: a 404, a redirect or the server's refusal of the handshake
 *   stops the attempts, with a "closed" text that says which (default: the global `fetch`;
 *   `false`: never; see `LiveSocketOptions`).
 * @property {import("./live_socket.js").Heartbeat | false} [heartbeat] Tell a connection that
 *   died without a close from a quiet one (default: a ping after 25 s of quiet, lost 10 s later
 *   without an answer); `false` turns it off.
 */

/**
 * Connects to a stream socket and keeps it connected, recovering on every reconnect.
 * `url` may be relative to the page (`/ws/chat/lobby/`) or `ws(s)://…`; its own query
 * parameters (`?presence=1`) are kept.
 * @param {string | URL} url
 * @param {StreamOptions} [options]
 * @returns {ChannelStream}
 */
export function connectStream(url, options = {}) {
  const stream = new ChannelStream(url, options);
  stream.connect();
  return stream;
}

/** A recovering connection to one stream; `connectStream` makes and connects one. */
export class ChannelStream {
  #url;
  #options;
  #live;
  /** @type {StreamState} */
  #state = "connecting";
  /** @type {string | null} */
  #epoch = null;
  // Highest offset delivered in this epoch: anything at or below it is a duplicate.
  #delivered = 0;
  // Where resuming may start when nothing was delivered since a fresh or incomplete connect.
  #floor = 0;
  #positioned = false;
  #nextRef = 0;
  /** The sends with `ack` still waiting for their answer. */
  #pending;
  /**
   * Why the server is closing the open connection (its error frame said `closing`), or null:
   * nothing more is sent on it, so its close frame arrives rather than a reset (see `#receive`).
   */
  #closingFor = /** @type {string | null} */ (null);
  /** How the last connection ended (`onClose`), read when its pending sends are failed. */
  #lastClose = /** @type {import("./live_socket.js").LiveClose | null} */ (null);
  #closing = false;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #positionTimer = undefined;
  #warnedNoPosition = false;

  /** @param {string | URL} url @param {StreamOptions} [options] */
  constructor(url, options = {}) {
    checkAckTimeout(options.ackTimeoutMs);
    this.#url = url;
    this.#options = options;
    this.#live = new LiveSocket(() => this.#connectUrl(), {
      texts: options.texts,
      backoff: options.backoff,
      heartbeat: options.heartbeat ?? DEFAULT_HEARTBEAT,
      WebSocket: options.WebSocket,
      window: options.window,
      probe: options.probe,
      decode: options.batch ? ndjsonFrames : jsonObjects,
      onState: (state, text) => this.#changeState(state, text),
      onFrame: (frame) => this.#receive(frame),
      onClose: (event) => {
        this.#lastClose = event;
        return options.onClose?.(event);
      },
    });
    this.#pending = new PendingSends(this.#live, () => shown(this.#url));
  }

  /** Opens the connection (once); `connectStream` calls it. */
  connect() {
    this.#live.start();
  }

  /** The connection's state: "connecting", "open", "reconnecting" or "closed". */
  get state() {
    return this.#state;
  }

  /** Whether a frame sent now goes out. */
  get isOpen() {
    return this.#live.isOpen;
  }

  /** The stream's epoch, once the server said it. */
  get epoch() {
    return this.#epoch;
  }

  /** The offset of the last message delivered to `onMessage` in this epoch (0: none). */
  get offset() {
    return this.#delivered;
  }

  /**
   * Sends one JSON frame with a fresh `ref`. Without `ack` it resolves as soon as the frame went
   * out (an error the server answers later reaches `onFrame` with that `ref`). With `ack` it
   * resolves with the stored message's offset and epoch, and rejects with a `SendError` carrying
   * the server's error text. Sends are not queued and never retried: while not connected it
   * rejects at once, and a send still unanswered when the connection is lost is rejected with
   * `maybeStored` true (retrying could store it twice; recovery shows it if it was stored), as
   * is one with no answer in `ackTimeoutMs`.
   * @param {Record<string, unknown>} data
   * @param {{ ack?: boolean }} [options]
   * @returns {Promise<SendResult>}
   */
  send(data, { ack = false } = {}) {
    if (!this.isOpen) {
      return Promise.reject(new SendError("Not connected", { kind: "not-connected" }));
    }
    if (this.#closingFor !== null) {
      const text = `The server is closing this connection (${this.#closingFor})`;
      return Promise.reject(new SendError(text, { kind: "not-connected" }));
    }
    const ref = `r${++this.#nextRef}`;
    const frame = ack ? { ...data, ref, ack: true } : { ...data, ref };
    let text;
    try {
      text = JSON.stringify(frame);
    } catch (error) {
      // A BigInt or a cycle: rejected as the returned promise says, not thrown.
      return Promise.reject(error);
    }
    this.#live.send(text);
    if (!ack) return Promise.resolve({ ref });
    return this.#pending.wait(ref, utf8Bytes(text), this.#options.ackTimeoutMs);
  }

  /** Closes the connection for good; unanswered sends are rejected. */
  close(code = 1000, reason = "") {
    checkClose(code, reason); // before anything changes: a bad code leaves the stream as it was
    this.#closing = true;
    this.#live.stop(code, reason);
  }

  #connectUrl() {
    const url = new URL(this.#url, globalThis.location?.href);
    if (url.protocol === "http:") url.protocol = "ws:";
    if (url.protocol === "https:") url.protocol = "wss:";
    const params = url.searchParams;
    for (const name of ["stream", "epoch", "since", "batch"]) params.delete(name);
    if (this.#positioned && this.#epoch !== null) {
      params.set("epoch", this.#epoch);
      // The history's floor only until some of it came: a route whose history is longer than
      // `historySize` sends more than the floor assumes, and what it sent after the last one
      // delivered is still owed.
      params.set("since", String(this.#delivered > 0 ? this.#delivered : this.#floor));
    } else {
      params.set("stream", "1");
    }
    if (this.#options.batch) params.set("batch", "1");
    return url.href;
  }

  #changeState(state, text) {
    this.#state = state;
    if (state === "open") {
      this.#closingFor = null;
      this.#lastClose = null;
    }
    // Every send went out on an open socket: any other state means that socket is gone.
    if (state !== "open") this.#pending.failAll(this.#closing, this.#lastClose);
    this.#watchForPosition(state === "open");
    this.#options.onStateChange?.(state, text);
  }

  // A route that follows no stream never sends `recovered`, and an ack never comes from it: said
  // on the console once, rather than left to look like a slow server.
  #watchForPosition(open) {
    clearTimeout(this.#positionTimer);
    this.#positionTimer = undefined;
    if (!open || this.#warnedNoPosition) return;
    this.#positionTimer = setTimeout(() => {
      this.#warnedNoPosition = true;
      console.warn(
        `No "recovered" frame ${POSITION_WAIT_MS / 1000} s after connecting to ${
          shown(this.#url)
        }: ` +
          "is it a stream route (StreamFollowing on the server)? Use LiveSocket for one that is " +
          "not. (A stream route whose store is slow to answer, in an outage, sends it later.)",
      );
    }, POSITION_WAIT_MS);
  }

  /** @param {Record<string, unknown>} frame */
  #receive(frame) {
    if (frame.type === "recovered") return this.#recovered(frame);
    // The server closes this connection after this error (a flood, a frame too big) once the
    // client stops sending: one that went on would lose the close frame to the connection's
    // reset, and learn only "1006" where the server said why.
    if (frame.type === "error" && typeof frame.closing === "number") {
      this.#closingFor = String(frame.error ?? frame.closing);
    }
    if (frame.ref !== undefined && this.#pending.answer(frame)) return;
    if (typeof frame.offset === "number" && frame.type !== "ack") return this.#message(frame);
    this.#options.onFrame?.(frame);
  }

  /** @param {Record<string, unknown>} frame */
  #recovered(frame) {
    clearTimeout(this.#positionTimer);
    const epoch = String(frame.epoch ?? "");
    const latest = Number.isSafeInteger(frame.offset) ? Number(frame.offset) : 0;
    const complete = frame.complete === true;
    const fresh = frame.fresh === true;
    if (!complete || fresh || epoch !== this.#epoch) {
      // History follows: the last messages again, from a new starting point.
      this.#delivered = 0;
      this.#floor = Math.max(0, latest - (this.#options.historySize ?? HISTORY_SIZE));
    }
    this.#epoch = epoch;
    this.#positioned = true;
    /** @type {Recovery} */
    const recovery = { complete, fresh, epoch, offset: latest };
    if (typeof frame.reason === "string") recovery.reason = frame.reason;
    this.#options.onRecovered?.(recovery);
  }

  /** @param {Record<string, unknown>} frame */
  #message(frame) {
    const offset = /** @type {number} */ (frame.offset);
    if (this.#positioned && offset <= this.#delivered) return;
    this.#delivered = offset;
    this.#options.onMessage?.(/** @type {StreamMessage} */ (frame));
  }
}

// A stream's address for the console: without its query, which may hold a token.
function shown(url) {
  try {
    const address = new URL(url, globalThis.location?.href);
    return `${address.origin}${address.pathname}`;
  } catch {
    return "the stream";
  }
}

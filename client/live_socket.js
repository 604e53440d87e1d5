/**
 * A WebSocket that reconnects by itself, shared by the chat and presence clients: it reports
 * its state (connecting, open, reconnecting, closed), waits 0.5 s doubling to 10 s with jitter
 * between attempts, starts again from the short delay after a connection that lasted, and
 * stops while the page is being left. The client decides per close whether to go on.
 */
import { UnopenedAttempts } from "./address_check.js";
import { reconnectDelays } from "./backoff.js";
import { PING_FRAME, PONG_TYPE, SocketHeartbeat } from "./heartbeat.js";
import { jsonObjects } from "./json_frames.js";

// Where apps and tests have always imported them from.
export { jsonObjects, PING_FRAME };

// A connection that lasted this long was healthy: the next loss starts again at a short delay.
const STABLE_MS = 5_000;

/** What the connection label says in each state unless a client says otherwise. */
export const STATE_TEXT = Object.freeze({
  connecting: "Connecting…",
  open: "Connected",
  reconnecting: "Reconnecting…",
  closed: "Disconnected",
});

/**
 * @typedef {"connecting" | "open" | "reconnecting" | "closed"} LiveState
 * @typedef {{ stop?: string, atLeastAttempts?: number }} CloseVerdict
 *   `stop`: do not reconnect, and show this text as "closed"; `atLeastAttempts`: skip the
 *   short delays (see `Backoff.atLeast`).
 * @typedef {object} LiveSocketOptions
 * @property {(state: LiveState, text: string) => void} [onState] Called on every state change.
 * @property {() => void} [onOpen] Called once a connection is open, after `onState("open")`.
 * @property {(frame: Record<string, unknown>) => void} [onFrame] Called with each frame that is
 *   a JSON object; any other frame is ignored.
 * @property {(data: unknown) => Record<string, unknown>[]} [decode] Turns one WebSocket
 *   message into the frames it carries (default: one JSON object, or none).
 * @property {(event: LiveClose) => CloseVerdict | undefined | void} [onClose] Called when an open or
 *   opening connection is lost while the page stays; its verdict decides what comes next.
 * @property {Partial<Record<LiveState, string>>} [texts] Overrides of `STATE_TEXT`.
 * @property {import("./backoff.js").ReconnectDelays | import("./backoff.js").BackoffOptions}
 *   [backoff] The delays between attempts: a `Backoff`, or its options (`{ initialMs, maxMs }`);
 *   anything else throws a `TypeError`.
 * @property {typeof WebSocket} [WebSocket] The socket class (a fake one in tests).
 * @property {EventTarget} [window] Where `pagehide`, `pageshow` and `online` come from.
 * @property {typeof fetch | false} [probe] After two attempts in a row that did not open, the
 *   address is fetched over HTTP with it (default: the global `fetch`; `false`: never): a 404,
 *   a redirect, or the server's refusal of the handshake (an expired token, a login required,
 *   a room its consumer refused) stops the attempts, with a "closed" text that says which, the
 *   server's reason for a refusal (`address_check.js`). With a URL function, a refusal stops
 *   them only when the function gives the same address again (a fresh token may pass).
 * @property {Heartbeat | false} [heartbeat] Tell a connection that died without a close (a
 *   laptop's Wi-Fi gone, a proxy that stopped forwarding) from a quiet one: after `idleMs`
 *   without a frame the socket sends `{"type":"channels.ping"}`, which the server answers
 *   itself, and after `timeoutMs` more without any frame it is taken as lost (the usual
 *   reconnect follows). An attempt that has not opened after `idleMs + timeoutMs` is given up
 *   the same way. Off unless given.
 * @typedef {{ idleMs: number, timeoutMs: number }} Heartbeat
 * @typedef {{ code: number, reason: string, wasClean: boolean }} LiveClose
 *   How a connection ended: its close event's code (1006 when it had none), reason and
 *   `wasClean`, or, when the heartbeat gave it up (no answer, open or opening), code 1006 with
 *   the reason "No answer from the server".
 */

/**
 * A reconnecting WebSocket; `start()` opens it. The URL may be a function, asked again before
 * every attempt (a client that resumes where it stopped puts its position there).
 */
export class LiveSocket {
  #url;
  #options;
  #texts;
  #backoff;
  #WebSocket;
  /** @type {WebSocket | null} */
  #socket = null;
  #openedAt = 0;
  #retryTimer = 0;
  #leaving = false;
  #stopped = false;
  #started = false;
  #heartbeat;
  /** The attempts in a row that never opened, which lead to asking about the address. */
  #unopened;
  /** The page's listeners, removed on `stop()` so a closed socket is not kept alive by them. */
  #listeners = /** @type {[string, (event: Event) => void][]} */ ([]);
  /** Why the server refused the handshake, once that stopped the attempts. */
  #refused = /** @type {string | null} */ (null);

  /** @param {string | (() => string)} url @param {LiveSocketOptions} [options] */
  constructor(url, options = {}) {
    this.#heartbeat = new SocketHeartbeat(options.heartbeat, {
      isCurrent: (ws) => ws === this.#socket,
      isConnecting: (ws) => ws.readyState === this.#WebSocket.CONNECTING,
      lost: (ws, event) => this.#lost(event, ws.url),
    });
    this.#url = url;
    this.#options = options;
    this.#unopened = new UnopenedAttempts(options.probe);
    this.#texts = { ...STATE_TEXT, ...options.texts };
    this.#backoff = reconnectDelays(options.backoff);
    this.#WebSocket = options.WebSocket ?? WebSocket;
  }

  /** Whether a frame sent now goes out. */
  get isOpen() {
    return this.#socket !== null && this.#socket.readyState === this.#WebSocket.OPEN;
  }

  /**
   * Why the server refuses the handshake, in its one word (`login_required`, `token`,
   * `origin`, `name_conflict`, `consumer`), once that stopped the attempts; otherwise `null`.
   * Set before the state becomes "closed": a page told so can tell a log-out from a bad address.
   */
  get refused() {
    return this.#refused;
  }

  /**
   * Connects, and follows the page: no reconnecting while it is left, back when it returns.
   * Once: a second call does nothing (a second socket would be one `stop()` never closes).
   */
  start() {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    this.#listeners = [
      ["pagehide", () => {
        this.#leaving = true;
        // A reconnect waiting in its backoff would open a socket for a page being left.
        if (this.#socket === null && this.#retryTimer !== 0) {
          clearTimeout(this.#retryTimer);
          this.#retryTimer = 0;
          this.#setState("closed");
        }
      }],
      ["pageshow", (event) => {
        this.#leaving = false;
        const persisted = /** @type {PageTransitionEvent} */ (event).persisted;
        if (persisted && this.#socket === null && !this.#stopped) this.#connect();
      }],
      ["online", () => {
        if (this.#socket === null && !this.#leaving && !this.#stopped) this.#connect();
      }],
    ];
    const target = this.#options.window ?? globalThis;
    for (const [type, listener] of this.#listeners) target.addEventListener(type, listener);
    try {
      this.#connect();
    } catch (error) {
      // A URL no WebSocket takes: nothing to follow, and no listener left to try it again.
      this.#stopFollowing();
      throw error;
    }
  }

  /**
   * Whether any frame came from the server at or after `time` (a `performance.now()` reading)
   * on the open socket: a sign the connection was alive then.
   * @param {number} time
   */
  heardSince(time) {
    return this.isOpen && this.#heartbeat.heardSince(time);
  }

  /**
   * Asks the server for a sign of life now, rather than after the heartbeat's quiet time: a
   * heartbeat ping, unless one already waits for its answer. A connection that answers nothing
   * within the heartbeat's `timeoutMs` is then given up as lost, as the heartbeat gives up a
   * silent one (a Wi-Fi gone, a proxy that stopped forwarding: no close ever comes); one that
   * answers calls `onAnswer` at its next frame. Returns the ms until the verdict on silence, or
   * -1 when there is no open socket or no heartbeat to ask.
   * @param {() => void} [onAnswer]
   */
  probe(onAnswer) {
    const ws = this.#socket;
    if (!this.isOpen || ws === null) return -1;
    return this.#heartbeat.probe(ws, onAnswer);
  }

  /** Sends one frame on the open socket (check `isOpen` first). */
  send(data) {
    if (this.#socket === null) {
      throw new Error(
        "LiveSocket.send: no socket (call start() first; after stop() there is none)",
      );
    }
    this.#socket.send(data);
  }

  /**
   * Closes the connection for good: no more attempts; the state becomes "closed". A code or
   * reason a close frame cannot carry throws before anything changes (as `WebSocket.close`
   * would): 1000 or 3000-4999, and at most 123 bytes of reason.
   */
  stop(code = 1000, reason = "") {
    if (this.#stopped) return;
    checkClose(code, reason);
    this.#end(code, reason, this.#texts.closed);
  }

  #end(code, reason, text) {
    this.#stopFollowing();
    const ws = this.#socket;
    this.#socket = null;
    ws?.close(code, reason);
    this.#setState("closed", text);
  }

  #connect() {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = 0;
    if (this.#stopped || this.#leaving) return;
    this.#setState(this.#backoff.attempts === 0 ? "connecting" : "reconnecting");
    if (this.#stopped) return; // the state handler may have stopped it
    const url = typeof this.#url === "function" ? this.#url() : this.#url;
    const ws = new this.#WebSocket(url);
    this.#socket = ws;
    this.#heartbeat.watchOpening(ws);
    ws.onopen = () => {
      if (ws !== this.#socket) return;
      this.#unopened.opened();
      this.#openedAt = performance.now();
      this.#heartbeat.watchOpen(ws);
      this.#setState("open");
      // The state handler may have stopped it, or lost it: `onOpen` is for an open socket.
      if (ws !== this.#socket) return;
      this.#call(this.#options.onOpen);
    };
    ws.onmessage = (event) => {
      if (ws !== this.#socket) return;
      this.#heartbeat.heard();
      const decode = this.#options.decode ?? jsonObjects;
      for (const frame of decode(event.data)) {
        // A handler may stop the socket or reconnect: the rest of this message is stale then.
        if (ws !== this.#socket) return;
        if (frame.type === PONG_TYPE) continue;
        try {
          this.#options.onFrame?.(frame);
        } catch (error) {
          // The app's handler failed on this frame: reported as an uncaught error is, and the
          // frames after it in a batched message still go on (they would be lost for good).
          reportUncaught(error);
        }
      }
      // After the frames: an answer among them (an ack) is read before the probe is told. A
      // callback that throws is reported, and the others are still told.
      for (const answered of this.#heartbeat.takeAnswered()) this.#call(answered);
    };
    ws.onclose = (event) => {
      // Only the current socket speaks for the page: a stale close must not plan a second retry.
      if (ws === this.#socket) this.#lost(event, url);
    };
  }

  // A wrong address or a refused handshake would otherwise say "Connection lost" for ever: see
  // `address_check.js`.
  async #checkAddress(url) {
    const refusal = await this.#unopened.ask(url);
    if (refusal === null || this.#stopped) return;
    if (refusal.refused !== undefined && typeof this.#url === "function") {
      // The URL function may give the next attempt another address (a fresh token, say): the
      // refusal stands only for the one it gives again.
      if (this.#url() !== url) return this.#unopened.askSoon();
      if (this.#stopped) return;
    }
    // Its path only: a query may hold a token, and a console may be shared in a bug report.
    console.error(
      refusal.refused === undefined
        ? `LiveSocket: ${refusal.text} at ${refusal.origin}; no more attempts`
        : `LiveSocket: ${refusal.origin} refuses this connection (${refusal.refused}): ` +
          `${refusal.text}; no more attempts`,
    );
    this.#refused = refusal.refused ?? null;
    this.#end(1000, "", refusal.text);
  }

  #lost(event, url) {
    this.#heartbeat.stop();
    this.#socket = null;
    if (this.#leaving) return this.#setState("closed");
    if (this.#openedAt !== 0 && performance.now() - this.#openedAt >= STABLE_MS) {
      this.#backoff.reset();
    }
    if (this.#openedAt === 0) this.#unopened.failed();
    this.#openedAt = 0;
    // As the declared type says, whichever runtime: Deno gives 0 for a connection that ended
    // without a close frame (or never opened), browsers 1006.
    const ended = {
      code: event.code || 1006,
      reason: event.reason ?? "",
      wasClean: !!event.wasClean,
    };
    // An app's handler that throws is reported, and the socket goes on as without a verdict:
    // one bug in a handler must not end the reconnecting for good.
    const verdict = this.#call(this.#options.onClose, ended) ?? {};
    if (this.#stopped) return;
    if (verdict.stop !== undefined) {
      // For good, as `stop()`: no page event (`online`, say) may bring it back.
      this.#stopFollowing();
      return this.#setState("closed", verdict.stop);
    }
    if (verdict.atLeastAttempts !== undefined) this.#backoff.atLeast(verdict.atLeastAttempts);
    const delay = this.#backoff.next();
    // An app that gave its own "reconnecting" text (another language) gets it for the wait too.
    const text = this.#options.texts?.reconnecting ??
      `Connection lost. Reconnecting in ${Math.ceil(delay / 1000)} s…`;
    // Planned before the state is told, so that a handler that calls `stop()` cancels it.
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
    this.#setState("reconnecting", text);
    if (this.#unopened.due && !this.#stopped) void this.#checkAddress(url);
  }

  // No more attempts, and no more page listeners, which would keep this object alive.
  #stopFollowing() {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    this.#heartbeat.stop();
    this.#unopened.abort();
    const target = this.#options.window ?? globalThis;
    for (const [type, listener] of this.#listeners) target.removeEventListener(type, listener);
    this.#listeners = [];
  }

  #setState(state, text = this.#texts[state]) {
    this.#call(this.#options.onState, state, text);
  }

  // The app's callback, if any; what it throws is reported as a listener's error is, and the
  // socket goes on (a label that failed to update must not stop the reconnecting).
  #call(callback, ...args) {
    if (callback === undefined) return undefined;
    try {
      return callback(...args);
    } catch (error) {
      reportUncaught(error);
      return undefined;
    }
  }
}

/**
 * Throws what `WebSocket.close` would throw for `code` and `reason`, before a caller changes
 * its own state: a close it cannot send would leave the socket open while it says "closed".
 * @param {number} code @param {string} reason
 */
export function checkClose(code, reason) {
  if (code !== 1000 && !(code >= 3000 && code <= 4999)) {
    throw new RangeError(`A client may close with 1000 or 3000-4999, not ${code}`);
  }
  if (new TextEncoder().encode(reason).length > 123) {
    throw new RangeError("A close reason is at most 123 bytes of UTF-8");
  }
}

// As an error thrown from an event listener is reported: an "error" event on the global
// object, which a page's listener may take (`preventDefault`), else the console shows it. Not
// with `reportError`: in Deno an error reported so, and not taken, ends the program, and the
// connection is meant to go on.
function reportUncaught(error) {
  const message = error instanceof Error ? error.message : String(error);
  const event = new ErrorEvent("error", { error, message, cancelable: true });
  globalThis.dispatchEvent(event);
  if (!event.defaultPrevented) console.error("A handler of the live socket threw:", error);
}

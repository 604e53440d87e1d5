/**
 * The heartbeat of the reconnecting socket (`live_socket.js`): it tells a connection that died
 * without a close (a laptop's Wi-Fi gone, a proxy that stopped forwarding) from a quiet one, by
 * a ping after `idleMs` of quiet that must be answered within `timeoutMs`, and gives up an
 * attempt that no server answers. It keeps the times and timers; the socket it watches stays
 * the `LiveSocket`'s, which is told when one is lost.
 */
import { MAX_TIMER_MS } from "./timer_limit.js";

/** The heartbeat's ping: the server answers it with a `channels.pong` frame, on every route. */
export const PING_FRAME = '{"type":"channels.ping"}';

/** The `type` of the server's answer to {@linkcode PING_FRAME}, a frame no app is shown. */
export const PONG_TYPE = "channels.pong";

/**
 * What the watched socket's owner answers and is told.
 * @typedef {object} HeartbeatHooks
 * @property {(ws: WebSocket) => boolean} isCurrent Whether `ws` is still the owner's socket: a
 *   timer of one that was replaced or lost does nothing.
 * @property {(ws: WebSocket) => boolean} isConnecting Whether `ws` has not opened yet.
 * @property {(ws: WebSocket, event: SilentClose) => void} lost Called when `ws` is given up
 *   for its silence, before it is closed.
 * @typedef {{ code: number, reason: string, wasClean: boolean }} SilentClose How a socket given
 *   up for its silence ended, as a `LiveClose` says it: 1006, "No answer from the server".
 */

/**
 * One `LiveSocket`'s heartbeat (see `LiveSocketOptions.heartbeat`); without one (`undefined`
 * or `false`) it only keeps when the open socket was last heard.
 */
export class SocketHeartbeat {
  #beat;
  #hooks;
  #lastHeard = 0;
  /** When the heartbeat's ping went out, unanswered so far (0: none waits). */
  #pingedAt = 0;
  #heartbeatTimer = 0;
  /** The open socket's heartbeat check, for `probe()` to run early; null when none runs. */
  #wake = /** @type {(() => void) | null} */ (null);
  /** Who `probe()` tells of the next frame heard (the answer); cleared once told, or lost. */
  #probeAnswered = /** @type {(() => void)[]} */ ([]);
  #openTimer = 0;

  /**
   * Throws a `TypeError` for a heartbeat without its two times above 0.
   * @param {{ idleMs: number, timeoutMs: number } | false | undefined} beat
   * @param {HeartbeatHooks} hooks
   */
  constructor(beat, hooks) {
    checkHeartbeat(beat);
    this.#beat = beat;
    this.#hooks = hooks;
  }

  /**
   * Watches an attempt that is opening: one that no server answers (a proxy that accepts and
   * never forwards) would stay "connecting" for good, so with a heartbeat it is given up as an
   * open socket's silence is.
   * @param {WebSocket} ws
   */
  watchOpening(ws) {
    clearTimeout(this.#openTimer);
    const beat = this.#beat;
    if (!beat) return;
    this.#openTimer = setTimeout(() => {
      if (!this.#hooks.isCurrent(ws) || !this.#hooks.isConnecting(ws)) return;
      this.#hooks.lost(ws, { code: 1006, reason: "No answer from the server", wasClean: false });
      try {
        ws.close();
      } catch {
        // closing already
      }
    }, beat.idleMs + beat.timeoutMs);
  }

  /**
   * Watches a socket that just opened: one timer, set for when the socket will have been quiet
   * long enough to ping, or to give up, rather than a timer reset on every frame: a frame
   * meanwhile only moves the next wake-up.
   * @param {WebSocket} ws
   */
  watchOpen(ws) {
    clearTimeout(this.#openTimer);
    clearTimeout(this.#heartbeatTimer);
    this.#lastHeard = performance.now();
    this.#wake = null;
    const beat = this.#beat;
    if (!beat) return;
    this.#pingedAt = 0;
    const wake = () => {
      if (!this.#hooks.isCurrent(ws)) return;
      const now = performance.now();
      const quiet = now - this.#lastHeard;
      // Given up timeoutMs after the ping went out, not after the last frame: a page that was
      // frozen or asleep pings late, and its answer needs its own round trip.
      if (this.#pingedAt !== 0 && now - this.#pingedAt >= beat.timeoutMs) {
        // No close will come from a connection that died this way: it is lost now.
        this.#hooks.lost(ws, { code: 1006, reason: "No answer from the server", wasClean: false });
        try {
          ws.close(4000, "No answer to the heartbeat");
        } catch {
          // closing already
        }
        return;
      }
      if (this.#pingedAt === 0 && quiet >= beat.idleMs) {
        this.#pingedAt = now;
        ws.send(PING_FRAME);
      }
      const wait = this.#pingedAt !== 0
        ? this.#pingedAt + beat.timeoutMs - now
        : beat.idleMs - quiet;
      this.#heartbeatTimer = setTimeout(wake, Math.max(10, wait));
    };
    this.#wake = wake;
    this.#heartbeatTimer = setTimeout(wake, beat.idleMs);
  }

  /** The open socket heard a message: it is alive, and any ping is answered. */
  heard() {
    this.#lastHeard = performance.now();
    this.#pingedAt = 0;
  }

  /**
   * Whether the open socket heard anything at or after `time` (a `performance.now()` reading).
   * @param {number} time
   */
  heardSince(time) {
    return this.#lastHeard >= time;
  }

  /**
   * Pings the open socket `ws` now, unless a ping already waits for its answer, and has its
   * silence judged `timeoutMs` after that ping (see `LiveSocket.probe`). Returns the ms until
   * that verdict, or -1 with no heartbeat running.
   * @param {WebSocket} ws @param {() => void} [onAnswer]
   */
  probe(ws, onAnswer) {
    const beat = this.#beat;
    if (!beat || this.#wake === null) return -1;
    if (onAnswer !== undefined) this.#probeAnswered.push(onAnswer);
    const now = performance.now();
    if (this.#pingedAt === 0) {
      this.#pingedAt = now;
      ws.send(PING_FRAME);
      clearTimeout(this.#heartbeatTimer);
      this.#heartbeatTimer = setTimeout(this.#wake, beat.timeoutMs);
    }
    return Math.max(0, this.#pingedAt + beat.timeoutMs - now);
  }

  /**
   * Who probed since the last message, to be told it was answered; each is handed out once.
   * @returns {(() => void)[]}
   */
  takeAnswered() {
    if (this.#probeAnswered.length === 0) return [];
    const told = this.#probeAnswered;
    this.#probeAnswered = [];
    return told;
  }

  /**
   * Stops watching, when the socket is lost or stopped; those who probed hear of the loss by
   * its own close handling.
   */
  stop() {
    clearTimeout(this.#heartbeatTimer);
    this.#wake = null;
    this.#probeAnswered = [];
    clearTimeout(this.#openTimer);
  }
}

// A heartbeat without its two times would give every attempt up at once (a NaN timeout), and
// so would times a timer cannot keep: an attempt is given up after both together.
function checkHeartbeat(beat) {
  if (beat === undefined || beat === false) return;
  for (const name of ["idleMs", "timeoutMs"]) {
    const ms = beat?.[name];
    if (typeof ms !== "number" || !(ms > 0) || ms > MAX_TIMER_MS) {
      throw new TypeError(
        `heartbeat.${name} must be a number of milliseconds above 0 and up to ${MAX_TIMER_MS}, ` +
          `not ${ms}`,
      );
    }
  }
  if (beat.idleMs + beat.timeoutMs > MAX_TIMER_MS) {
    throw new TypeError(
      `heartbeat.idleMs and heartbeat.timeoutMs together must be at most ${MAX_TIMER_MS} ms ` +
        `(a timer's longest wait), not ${beat.idleMs + beat.timeoutMs}`,
    );
  }
}

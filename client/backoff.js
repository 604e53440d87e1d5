import { MAX_TIMER_MS } from "./timer_limit.js";

/**
 * What a reconnecting socket asks of its backoff; a `Backoff` is one, and a test may bring its
 * own.
 * @typedef {object} ReconnectDelays
 * @property {number} attempts How many delays were handed out since the last reset.
 * @property {() => number} next The delay before the next attempt, in milliseconds.
 * @property {() => void} reset Starts again from the shortest delay.
 * @property {(attempts: number) => void} atLeast Skips the delays of the first `attempts`.
 */

/**
 * A `Backoff`'s options: 0 < `initialMs` ≤ `maxMs` ≤ 2^31 − 1 ms.
 * @typedef {object} BackoffOptions
 * @property {number} [initialMs] The first delay's ceiling (500 ms).
 * @property {number} [maxMs] The longest delay (10,000 ms).
 * @property {() => number} [random] Draws the jitter (`Math.random`).
 */

/**
 * Exponential backoff with jitter for reconnecting: 0.5 s, 1 s, 2 s … up to 10 s, each delay
 * drawn from the upper half of its step so that many pages do not return all at once.
 */
export class Backoff {
  #initialMs;
  #maxMs;
  #random;
  #attempts = 0;

  /** @param {BackoffOptions} [options] */
  constructor({ initialMs = 500, maxMs = 10_000, random = Math.random } = {}) {
    // A first delay of 0 stays 0 however often it doubles (a reconnect loop with no wait at all),
    // and one a timer cannot keep fires at once.
    if (typeof initialMs !== "number" || !(initialMs > 0) || initialMs > MAX_TIMER_MS) {
      throw new TypeError(
        `Backoff initialMs must be a number of milliseconds above 0 and up to ${MAX_TIMER_MS}, ` +
          `not ${initialMs}`,
      );
    }
    if (typeof maxMs !== "number" || !(maxMs >= initialMs) || maxMs > MAX_TIMER_MS) {
      throw new TypeError(
        `Backoff maxMs must be a number of milliseconds from initialMs (${initialMs}) up to ` +
          `${MAX_TIMER_MS}, not ${maxMs}`,
      );
    }
    if (typeof random !== "function") {
      throw new TypeError(`Backoff random must be a function, not ${typeof random}`);
    }
    this.#initialMs = initialMs;
    this.#maxMs = maxMs;
    this.#random = random;
  }

  /** How many delays were handed out since the last reset. */
  get attempts() {
    return this.#attempts;
  }

  /** The delay before the next attempt, in milliseconds. */
  next() {
    const ceiling = Math.min(this.#maxMs, this.#initialMs * 2 ** this.#attempts);
    this.#attempts = Math.min(this.#attempts + 1, 30);
    return ceiling / 2 + this.#random() * (ceiling / 2);
  }

  /** Starts again from the shortest delay (after a connection that lasted). */
  reset() {
    this.#attempts = 0;
  }

  /** Skips the short delays, e.g. after the server closed for a policy violation. */
  atLeast(attempts) {
    this.#attempts = Math.max(this.#attempts, attempts);
  }
}

const BACKOFF_OPTIONS = new Set(["initialMs", "maxMs", "random"]);

/**
 * The delays a reconnecting socket is given as `options.backoff`: a `Backoff` (or any
 * `ReconnectDelays`) as is, a `Backoff`'s options (`{ initialMs, maxMs }`) made into one, and
 * nothing the default (0.5 s doubling to 10 s). Anything else throws a `TypeError` now: found only
 * at the first lost connection, it would end the reconnects with nobody told.
 * @param {unknown} given
 * @returns {ReconnectDelays}
 */
export function reconnectDelays(given) {
  if (given === undefined) return new Backoff();
  if (typeof given !== "object" || given === null) {
    throw new TypeError(`backoff must be a Backoff or its options, not ${String(given)}`);
  }
  const delays = /** @type {Record<string, unknown>} */ (given);
  // A delays object of its own (a class's methods are on its prototype, so `in`): all of it, or
  // a `TypeError` that names what it lacks, never the default in its place.
  const parts = ["next", "reset", "atLeast", "attempts"];
  if (parts.some((part) => part in delays)) {
    const lacking = parts.filter((part) =>
      part === "attempts" ? typeof delays[part] !== "number" : typeof delays[part] !== "function"
    );
    if (lacking.length === 0) return /** @type {ReconnectDelays} */ (given);
    throw new TypeError(
      `backoff must be a Backoff or its options; this one has no ${lacking.join(", ")} ` +
        "(next, reset and atLeast functions, and a number of attempts)",
    );
  }
  const unknown = Object.keys(delays).filter((key) => !BACKOFF_OPTIONS.has(key));
  if (unknown.length > 0) {
    throw new TypeError(
      "backoff must be a Backoff (next, reset, atLeast and a number of attempts) or its options " +
        `(initialMs, maxMs, random), not an object with ${unknown.join(", ")}`,
    );
  }
  return new Backoff(delays);
}

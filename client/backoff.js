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
 * Exponential backoff with jitter for reconnecting: 0.5 s, 1 s, 2 s … up to 10 s, each delay
 * drawn from the upper half of its step so that many pages do not return all at once.
 */
export class Backoff {
  #initialMs;
  #maxMs;
  #random;
  #attempts = 0;

  /** @param {{ initialMs?: number, maxMs?: number, random?: () => number }} [options] */
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

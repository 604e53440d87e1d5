/**
 * A token bucket: `perSecond` tokens flow in, at most `burst` are kept. Each message takes one.
 * The clock is passed in so tests need no sleeps.
 */
export class TokenBucket {
  #tokens: number;
  #last: number;
  readonly #perMs: number;
  readonly #burst: number;
  readonly #now: () => number;

  constructor(
    perSecond: number,
    burst: number,
    now: () => number = performance.now.bind(performance),
  ) {
    this.#perMs = perSecond / 1000;
    this.#burst = burst;
    this.#tokens = burst;
    this.#now = now;
    this.#last = now();
  }

  /** Takes a token; false when the bucket is empty. */
  take(): boolean {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) * this.#perMs);
    this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

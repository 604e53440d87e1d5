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

  /** When `take` last read the clock (ms): a subclass that needs the time of a take reads it. */
  protected get lastTakeAt(): number {
    return this.#last;
  }

  /** Takes a token; false when the bucket is empty. */
  take(): boolean {
    const now = this.#now();
    const elapsed = now - this.#last;
    this.#last = now;
    // A wall clock set back (NTP, a VM resumed) hides how long it was: taken as a long pause,
    // the bucket full again, rather than a client refused for as long as the clock went back.
    // It is followed from its new reading on.
    this.#tokens = elapsed < 0
      ? this.#burst
      : Math.min(this.#burst, this.#tokens + elapsed * this.#perMs);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

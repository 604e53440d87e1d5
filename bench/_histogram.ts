/**
 * Latency histogram with logarithmic buckets (1% wide, 0.01 ms to ~100 s): constant memory
 * however many samples, and percentiles within 1%.
 */

const MIN_MS = 0.01;
const GROWTH = Math.log(1.01);
const BUCKETS = 1700;

/** Latency summary, in milliseconds. */
export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Counts samples into buckets. */
export class Histogram {
  #counts = new Uint32Array(BUCKETS);
  #count = 0;
  #max = 0;

  /** Adds one sample in milliseconds. */
  add(ms: number): void {
    const index = ms <= MIN_MS
      ? 0
      : Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / MIN_MS) / GROWTH));
    this.#counts[index]++;
    this.#count++;
    if (ms > this.#max) this.#max = ms;
  }

  /** The value below which `q` (0..1) of the samples fall; 0 without samples. */
  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.ceil(q * this.#count);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i];
      if (seen >= rank) return Math.min(this.#max, MIN_MS * Math.exp(i * GROWTH));
    }
    return this.#max;
  }

  /** Count, p50, p90, p99 and max. */
  summary(): LatencySummary {
    return {
      count: this.#count,
      p50: this.quantile(0.5),
      p90: this.quantile(0.9),
      p99: this.quantile(0.99),
      max: this.#max,
    };
  }
}

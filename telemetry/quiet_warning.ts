/**
 * A warning a flood would repeat once per request or per event (every handshake refused because
 * Django's view is flooded or away; every event a receiver over capacity drops): for each kind of
 * it, the first is written, then at most one line per period, counting the ones not written. A
 * new kind (the view now fails another way) is written at once. What each one was is kept
 * elsewhere meanwhile (a refused request's access line, at info; the metrics' drop counts), so
 * nothing is lost but the repetition.
 */
import { log } from "./log.ts";

/** How often, at most, a quiet warning writes a line: the rest are counted meanwhile. */
export const QUIET_WARNING_PERIOD_MS = 60_000;

/** One warning, written at most once a period for each of its kinds (see the module comment). */
export class QuietWarning {
  #periodMs: number;
  #now: () => number;
  // By kind (a handful, named by the caller): when its last line was written, and the warnings
  // of it not written since.
  #kinds = new Map<string, { since: number; more: number }>();

  /** Writes at most one line of a kind every `periodMs`, by the clock `now` (in ms). */
  constructor(periodMs = QUIET_WARNING_PERIOD_MS, now: () => number = () => performance.now()) {
    this.#periodMs = periodMs;
    this.#now = now;
  }

  /**
   * Writes `message`, unless a line of `kind` was written within the period: then it is only
   * counted. The first one after the period writes `summary(count)` instead when some were only
   * counted, `count` being those and this one: a flood shows as one line a period, with its size.
   */
  warn(kind: string, message: string, summary: (count: number) => string): void {
    const now = this.#now();
    const last = this.#kinds.get(kind);
    if (last !== undefined && now - last.since < this.#periodMs) {
      last.more++;
      return;
    }
    log.warn(last !== undefined && last.more > 0 ? summary(last.more + 1) : message);
    this.#kinds.set(kind, { since: now, more: 0 });
  }
}
